//! Plans and integrity rules: quotas hold under concurrency, attached
//! runtimes keep an environment alive, and the API describes itself.

use crate::{id_of, list_items, snapshot};
use berth_tests::{TestApp, expect_problem, expect_status};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// How many SQS queues this app's runtimes own.
async fn runtime_queue_count(app: &TestApp) -> usize {
    let out = app.clients.sqs.list_queues().queue_name_prefix(format!("{}rt-", app.names.queue_prefix)).send().await.expect("queues are listed");
    out.queue_urls().len()
}

#[tokio::test]
async fn a_tenant_on_a_plan_of_two_environments_gets_429_for_a_third_until_it_deletes_one() {
    let app = TestApp::spawn().await;
    let acme = app.tenant_with_plan("Acme", json!({"max_environments": 2})).await;
    let test_env = app.environment(&acme, "Test", "test").await;
    app.environment(&acme, "Production", "production").await;

    let before = snapshot(&app, &acme).await;
    expect_problem(
        app.post("/v1/environments", &acme.admin, json!({"name": "Staging", "classification": "test"})).await,
        StatusCode::TOO_MANY_REQUESTS,
        "quota_exceeded",
    )
    .await;
    assert_eq!(snapshot(&app, &acme).await, before, "a refused create writes nothing");

    expect_status(app.delete(&format!("/v1/environments/{}", id_of(&test_env)), &acme.admin).await, StatusCode::NO_CONTENT).await;
    app.environment(&acme, "Staging", "test").await;
    expect_problem(
        app.post("/v1/environments", &acme.admin, json!({"name": "Again", "classification": "test"})).await,
        StatusCode::TOO_MANY_REQUESTS,
        "quota_exceeded",
    )
    .await;

    // Raising the plan makes room.
    let platform = app.platform_token();
    expect_status(app.patch(&format!("/platform/v1/tenants/{}", acme.id), &platform, json!({"plan": {"max_environments": 3}})).await, StatusCode::OK).await;
    app.environment(&acme, "Again", "test").await;
    assert_eq!(list_items(&app, "/v1/environments", &acme.admin).await.len(), 3);
}

#[tokio::test]
async fn a_tenant_on_a_plan_of_two_runtimes_gets_429_for_a_third_until_it_deletes_one() {
    let app = TestApp::spawn().await;
    let acme = app.tenant_with_plan("Acme", json!({"max_runtimes": 2})).await;
    let first = app.runtime(&acme, "atom-1").await;
    app.runtime(&acme, "atom-2").await;
    assert_eq!(runtime_queue_count(&app).await, 4, "a queue and a dead-letter queue per runtime");

    let before = snapshot(&app, &acme).await;
    expect_problem(app.post("/v1/runtimes", &acme.admin, json!({"name": "atom-3"})).await, StatusCode::TOO_MANY_REQUESTS, "quota_exceeded").await;
    assert_eq!(snapshot(&app, &acme).await, before, "a refused create writes nothing");
    assert_eq!(runtime_queue_count(&app).await, 4, "the refused runtime's queues were removed");

    expect_status(app.delete(&format!("/v1/runtimes/{}", id_of(&first)), &acme.admin).await, StatusCode::NO_CONTENT).await;
    app.runtime(&acme, "atom-3").await;
    expect_problem(app.post("/v1/runtimes", &acme.admin, json!({"name": "atom-4"})).await, StatusCode::TOO_MANY_REQUESTS, "quota_exceeded").await;
    assert_eq!(list_items(&app, "/v1/runtimes", &acme.admin).await.len(), 2);
}

#[tokio::test]
async fn refused_creates_do_not_use_up_the_quota() {
    let app = TestApp::spawn().await;
    let acme = app.tenant_with_plan("Acme", json!({"max_environments": 2})).await;
    app.environment(&acme, "Test", "test").await;
    for _ in 0..3 {
        expect_problem(app.post("/v1/environments", &acme.admin, json!({"name": "TEST", "classification": "test"})).await, StatusCode::CONFLICT, "name_exists")
            .await;
        expect_problem(
            app.post("/v1/environments", &acme.admin, json!({"name": "", "classification": "test"})).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
    }
    app.environment(&acme, "Production", "production").await;
    assert_eq!(list_items(&app, "/v1/environments", &acme.admin).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_concurrent_creates_on_a_plan_of_two_environments_create_exactly_two() {
    let app = TestApp::spawn().await;
    let acme = app.tenant_with_plan("Acme", json!({"max_environments": 2})).await;
    let requests: Vec<_> = (1..=5)
        .map(|i| {
            tokio::spawn(
                app.request(Method::POST, "/v1/environments", Some(&acme.admin)).json(&json!({"name": format!("Env {i}"), "classification": "test"})).send(),
            )
        })
        .collect();
    let mut created = 0;
    for request in requests {
        let response = request.await.unwrap().unwrap();
        if response.status() == StatusCode::CREATED {
            created += 1;
            response.text().await.unwrap();
        } else {
            expect_problem(response, StatusCode::TOO_MANY_REQUESTS, "quota_exceeded").await;
        }
    }
    assert_eq!(created, 2);
    assert_eq!(list_items(&app, "/v1/environments", &acme.admin).await.len(), 2);
    let created_events = app.audit(&acme).await.iter().filter(|e| e["action"] == "environment.created").count();
    assert_eq!(created_events, 2);
}

#[tokio::test]
async fn an_environment_with_an_attached_runtime_cannot_be_deleted_until_the_runtime_is_detached() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let env = app.environment(&acme, "Test", "test").await;
    let runtime = app.runtime(&acme, "atom-1").await;
    let (env_id, runtime_id) = (id_of(&env), id_of(&runtime));
    let attachment = format!("/v1/environments/{env_id}/runtimes/{runtime_id}");
    expect_status(app.put(&attachment, &acme.admin).await, StatusCode::CREATED).await;

    let before = snapshot(&app, &acme).await;
    expect_problem(app.delete(&format!("/v1/environments/{env_id}"), &acme.admin).await, StatusCode::CONFLICT, "environment_has_runtimes").await;
    assert_eq!(snapshot(&app, &acme).await, before, "the environment and its attachment are still there");
    let attached = list_items(&app, &format!("/v1/environments/{env_id}/runtimes"), &acme.admin).await;
    assert_eq!(attached.iter().map(id_of).collect::<Vec<_>>(), vec![runtime_id.clone()]);

    expect_status(app.delete(&attachment, &acme.admin).await, StatusCode::NO_CONTENT).await;
    expect_status(app.delete(&format!("/v1/environments/{env_id}"), &acme.admin).await, StatusCode::NO_CONTENT).await;
    expect_problem(app.get(&format!("/v1/environments/{env_id}"), &acme.admin).await, StatusCode::NOT_FOUND, "not_found").await;
    let runtime = expect_status(app.get(&format!("/v1/runtimes/{runtime_id}"), &acme.admin).await, StatusCode::OK).await;
    assert_eq!(runtime["environments"], json!([]));
}

#[tokio::test]
async fn deleting_an_attached_runtime_lets_its_environment_be_deleted() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let env = app.environment(&acme, "Test", "test").await;
    let runtime = app.runtime(&acme, "atom-1").await;
    let (env_id, runtime_id) = (id_of(&env), id_of(&runtime));
    expect_status(app.put(&format!("/v1/environments/{env_id}/runtimes/{runtime_id}"), &acme.admin).await, StatusCode::CREATED).await;

    expect_status(app.delete(&format!("/v1/runtimes/{runtime_id}"), &acme.admin).await, StatusCode::NO_CONTENT).await;
    assert!(list_items(&app, &format!("/v1/environments/{env_id}/runtimes"), &acme.admin).await.is_empty());
    expect_status(app.delete(&format!("/v1/environments/{env_id}"), &acme.admin).await, StatusCode::NO_CONTENT).await;
}

#[tokio::test]
async fn attaching_twice_answers_201_then_200_and_lists_the_environment_once() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let env = app.environment(&acme, "Test", "test").await;
    let runtime = app.runtime(&acme, "atom-1").await;
    let (env_id, runtime_id) = (id_of(&env), id_of(&runtime));
    let attachment = format!("/v1/environments/{env_id}/runtimes/{runtime_id}");

    let first = expect_status(app.put(&attachment, &acme.admin).await, StatusCode::CREATED).await;
    let second = expect_status(app.put(&attachment, &acme.admin).await, StatusCode::OK).await;
    assert_eq!(first["environments"], json!([env_id]));
    assert_eq!(second["environments"], json!([env_id]));
    let stored = expect_status(app.get(&format!("/v1/runtimes/{runtime_id}"), &acme.admin).await, StatusCode::OK).await;
    assert_eq!(stored["environments"], json!([env_id]));
    assert_eq!(list_items(&app, &format!("/v1/environments/{env_id}/runtimes"), &acme.admin).await.len(), 1);
    let attached_events = app.audit(&acme).await.iter().filter(|e| e["action"] == "runtime.attached").count();
    assert_eq!(attached_events, 1, "attaching again records nothing");

    // One detach undoes it: the environment can then be deleted.
    expect_status(app.delete(&attachment, &acme.admin).await, StatusCode::NO_CONTENT).await;
    expect_status(app.delete(&format!("/v1/environments/{env_id}"), &acme.admin).await, StatusCode::NO_CONTENT).await;
}

#[tokio::test]
async fn detaching_a_runtime_that_is_not_attached_is_404_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let env = app.environment(&acme, "Test", "test").await;
    let attached = app.runtime(&acme, "atom-1").await;
    let loose = app.runtime(&acme, "atom-2").await;
    let env_id = id_of(&env);
    expect_status(app.put(&format!("/v1/environments/{env_id}/runtimes/{}", id_of(&attached)), &acme.admin).await, StatusCode::CREATED).await;

    let before = snapshot(&app, &acme).await;
    expect_problem(app.delete(&format!("/v1/environments/{env_id}/runtimes/{}", id_of(&loose)), &acme.admin).await, StatusCode::NOT_FOUND, "not_found").await;
    expect_problem(app.delete(&format!("/v1/environments/{env_id}/runtimes/{}", uuid::Uuid::new_v4()), &acme.admin).await, StatusCode::NOT_FOUND, "not_found")
        .await;
    assert_eq!(snapshot(&app, &acme).await, before);

    expect_status(app.delete(&format!("/v1/environments/{env_id}/runtimes/{}", id_of(&attached)), &acme.admin).await, StatusCode::NO_CONTENT).await;
    expect_problem(app.delete(&format!("/v1/environments/{env_id}/runtimes/{}", id_of(&attached)), &acme.admin).await, StatusCode::NOT_FOUND, "not_found")
        .await;
    // Nothing was left half-detached: the environment is free to go.
    expect_status(app.delete(&format!("/v1/environments/{env_id}"), &acme.admin).await, StatusCode::NO_CONTENT).await;
}

#[tokio::test]
async fn the_openapi_document_is_openapi_3_and_lists_the_environment_and_tenant_paths() {
    let app = TestApp::spawn().await;
    let response = app.request(Method::GET, "/v1/openapi.json", None).send().await.unwrap();
    let content_type = response.headers().get("content-type").unwrap().to_str().unwrap().to_string();
    let doc = expect_status(response, StatusCode::OK).await;
    assert!(content_type.starts_with("application/json"), "{content_type}");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "an OpenAPI 3 document: {}", doc["openapi"]);
    let paths = doc["paths"].as_object().expect("paths");
    for path in ["/v1/environments", "/v1/environments/{id}", "/platform/v1/tenants", "/platform/v1/tenants/{id}", "/v1/runtimes", "/v1/me"] {
        assert!(paths.contains_key(path), "the document lists {path}: {:?}", paths.keys().collect::<Vec<_>>());
    }
    assert!(paths["/v1/environments"]["post"].is_object() && paths["/v1/environments"]["get"].is_object());
    assert!(paths["/platform/v1/tenants"]["post"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object(), "the bearer scheme is described");
}
