use berth_tests::{TestApp, expect_status};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_registered_agent_that_heartbeats_is_listed_online_in_its_environment_until_detached_and_deleted() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;

    let test_env = app.environment(&acme, "Test", "test").await;
    let env_id = test_env["id"].as_str().unwrap();
    let runtime = app.runtime(&acme, "atom-1").await;
    let runtime_id = runtime["id"].as_str().unwrap();
    assert_eq!(runtime["status"], "unknown");
    assert!(runtime["registration_token"].as_str().unwrap().starts_with("brr_"));

    let credential = app.register_agent(&runtime).await;
    let beat = expect_status(app.heartbeat(&credential).await, StatusCode::OK).await;
    assert_eq!(beat["status"], "online");

    let attached = expect_status(app.put(&format!("/v1/environments/{env_id}/runtimes/{runtime_id}"), &acme.admin).await, StatusCode::CREATED).await;
    assert_eq!(attached["environments"], json!([env_id]));

    let listed = expect_status(app.get(&format!("/v1/environments/{env_id}/runtimes"), &acme.admin).await, StatusCode::OK).await;
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], runtime_id);
    assert_eq!(items[0]["status"], "online");
    assert_eq!(items[0]["agent_version"], "1.0.0");
    assert!(items[0]["last_seen_at"].is_string());
    assert!(items[0].get("registration_token").is_none(), "the registration token is shown once only");

    expect_status(app.delete(&format!("/v1/environments/{env_id}/runtimes/{runtime_id}"), &acme.admin).await, StatusCode::NO_CONTENT).await;
    let listed = expect_status(app.get(&format!("/v1/environments/{env_id}/runtimes"), &acme.admin).await, StatusCode::OK).await;
    assert_eq!(listed["items"], json!([]));

    expect_status(app.delete(&format!("/v1/runtimes/{runtime_id}"), &acme.admin).await, StatusCode::NO_CONTENT).await;
    expect_status(app.get(&format!("/v1/runtimes/{runtime_id}"), &acme.admin).await, StatusCode::NOT_FOUND).await;
    expect_status(app.delete(&format!("/v1/environments/{env_id}"), &acme.admin).await, StatusCode::NO_CONTENT).await;
    expect_status(app.get(&format!("/v1/environments/{env_id}"), &acme.admin).await, StatusCode::NOT_FOUND).await;

    let actions: Vec<String> = app.audit(&acme).await.iter().map(|e| e["action"].as_str().unwrap().to_string()).collect();
    assert_eq!(
        actions,
        [
            "tenant.created",
            "environment.created",
            "runtime.created",
            "runtime.registered",
            "runtime.attached",
            "runtime.detached",
            "runtime.deleted",
            "environment.deleted"
        ]
    );
    let mut verify = expect_status(app.get("/v1/audit/verify", &acme.admin).await, StatusCode::OK).await;
    assert_eq!(verify["checkpoint"]["seq"], 8, "the verified chain is checkpointed: {verify}");
    verify.as_object_mut().expect("a report").remove("checkpoint");
    assert_eq!(
        verify,
        json!({"ok": true, "checked": 8, "first_broken": null, "full": false, "from_seq": 1, "to_seq": 8, "head_seq": 8, "remaining": 0, "next_cursor": null})
    );
}

#[tokio::test]
async fn deleting_a_runtime_removes_its_job_queue() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let runtime = app.runtime(&acme, "atom-1").await;
    let id: uuid::Uuid = runtime["id"].as_str().unwrap().parse().unwrap();
    let (queue, dlq) = berth_aws::keys::runtime_queue_names(&app.names.queue_prefix, berth_domain::ids::RuntimeId::from_uuid(id));
    for name in [&queue, &dlq] {
        assert!(app.clients.sqs.get_queue_url().queue_name(name).send().await.is_ok(), "{name} exists while the runtime does");
    }

    expect_status(app.delete(&format!("/v1/runtimes/{id}"), &acme.admin).await, StatusCode::NO_CONTENT).await;
    for name in [&queue, &dlq] {
        assert!(app.clients.sqs.get_queue_url().queue_name(name).send().await.is_err(), "{name} is gone with the runtime");
    }
}
