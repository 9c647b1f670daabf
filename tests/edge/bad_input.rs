//! Bad input is refused at the edge with the right status and `code`, names
//! the offending field, and writes nothing.

use crate::{id_of, list_items, snapshot};
use berth_tests::{TestApp, TestTenant, expect_invalid_field, expect_problem, expect_status};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// POSTs a raw body with an optional content type.
async fn post_raw(app: &TestApp, path: &str, token: &str, content_type: Option<&str>, body: impl Into<reqwest::Body>) -> reqwest::Response {
    let mut request = app.request(Method::POST, path, Some(token)).body(body);
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    request.send().await.expect("the request is sent")
}

async fn tenant_with_one_environment(app: &TestApp) -> (TestTenant, Value) {
    let acme = app.tenant("Acme").await;
    let env = app.environment(&acme, "Test", "test").await;
    (acme, env)
}

#[tokio::test]
async fn malformed_json_is_refused_with_400_and_nothing_is_written() {
    let app = TestApp::spawn().await;
    let (acme, _) = tenant_with_one_environment(&app).await;
    let before = snapshot(&app, &acme).await;
    for body in [
        r#"{"name": "Production", "classification": "production""#,
        "{name: Production}",
        r#"{"name": "Production", "classification": "production"} trailing"#,
        "",
    ] {
        expect_problem(post_raw(&app, "/v1/environments", &acme.admin, Some("application/json"), body).await, StatusCode::BAD_REQUEST, "malformed_json").await;
    }
    assert_eq!(snapshot(&app, &acme).await, before);
}

#[tokio::test]
async fn a_body_not_declared_as_json_is_refused_with_415_and_nothing_is_written() {
    let app = TestApp::spawn().await;
    let (acme, _) = tenant_with_one_environment(&app).await;
    let before = snapshot(&app, &acme).await;
    let valid = r#"{"name": "Production", "classification": "production"}"#;
    for content_type in [None, Some("text/plain"), Some("application/x-www-form-urlencoded"), Some("application/jsonx"), Some("json")] {
        expect_problem(
            post_raw(&app, "/v1/environments", &acme.admin, content_type, valid).await,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        )
        .await;
    }
    assert_eq!(snapshot(&app, &acme).await, before);
    // The same body declared as JSON (with parameters) is accepted.
    expect_status(post_raw(&app, "/v1/environments", &acme.admin, Some("application/json; charset=utf-8"), valid).await, StatusCode::CREATED).await;
}

#[tokio::test]
async fn an_unknown_field_is_refused_with_422_naming_it() {
    let app = TestApp::spawn().await;
    let (acme, env) = tenant_with_one_environment(&app).await;
    let before = snapshot(&app, &acme).await;
    expect_invalid_field(
        app.post("/v1/environments", &acme.admin, json!({"name": "Production", "classification": "production", "colour": "blue"})).await,
        "colour",
    )
    .await;
    expect_invalid_field(app.post("/v1/runtimes", &acme.admin, json!({"name": "atom-1", "tenant_id": uuid::Uuid::new_v4()})).await, "tenant_id").await;
    expect_invalid_field(app.patch(&format!("/v1/environments/{}", id_of(&env)), &acme.admin, json!({"enabeld": false})).await, "enabeld").await;
    assert_eq!(snapshot(&app, &acme).await, before);
}

#[tokio::test]
async fn an_empty_blank_or_overlong_name_is_refused_with_422_on_name() {
    let app = TestApp::spawn().await;
    let (acme, env) = tenant_with_one_environment(&app).await;
    let env_path = format!("/v1/environments/{}", id_of(&env));
    let before = snapshot(&app, &acme).await;
    for name in [String::new(), "   ".to_string(), "x".repeat(101), "é".repeat(101), "Prod\nuction".to_string()] {
        expect_invalid_field(app.post("/v1/environments", &acme.admin, json!({"name": name, "classification": "test"})).await, "name").await;
        expect_invalid_field(app.post("/v1/runtimes", &acme.admin, json!({"name": name})).await, "name").await;
        expect_invalid_field(app.patch(&env_path, &acme.admin, json!({"name": name})).await, "name").await;
    }
    assert_eq!(snapshot(&app, &acme).await, before);

    // 100 characters is the limit, not past it.
    let longest =
        expect_status(app.post("/v1/environments", &acme.admin, json!({"name": "é".repeat(100), "classification": "test"})).await, StatusCode::CREATED).await;
    assert_eq!(longest["name"], "é".repeat(100));
}

#[tokio::test]
async fn an_unknown_classification_or_runtime_kind_is_refused_with_422_naming_it() {
    let app = TestApp::spawn().await;
    let (acme, _) = tenant_with_one_environment(&app).await;
    let before = snapshot(&app, &acme).await;
    for classification in ["staging", "Production", "", "TEST"] {
        expect_invalid_field(app.post("/v1/environments", &acme.admin, json!({"name": "Staging", "classification": classification})).await, "classification")
            .await;
    }
    expect_invalid_field(app.post("/v1/runtimes", &acme.admin, json!({"name": "atom-1", "kind": "mainframe"})).await, "kind").await;
    assert_eq!(snapshot(&app, &acme).await, before);
}

#[tokio::test]
async fn a_missing_required_field_is_refused_with_422_saying_which() {
    let app = TestApp::spawn().await;
    let (acme, _) = tenant_with_one_environment(&app).await;
    let before = snapshot(&app, &acme).await;
    for (body, missing) in [(json!({"name": "Production"}), "classification"), (json!({"classification": "production"}), "name"), (json!({}), "name")] {
        let problem = expect_problem(app.post("/v1/environments", &acme.admin, body).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        let said = problem["errors"].to_string();
        assert!(said.contains(missing), "the errors mention {missing}: {problem}");
    }
    let problem =
        expect_problem(app.post("/v1/runtimes", &acme.admin, json!({"kind": "cloud"})).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert!(problem["errors"].to_string().contains("name"), "the errors mention name: {problem}");
    assert_eq!(snapshot(&app, &acme).await, before);
}

#[tokio::test]
async fn a_field_of_the_wrong_json_type_is_refused_with_422_naming_it() {
    let app = TestApp::spawn().await;
    let (acme, env) = tenant_with_one_environment(&app).await;
    let before = snapshot(&app, &acme).await;
    expect_invalid_field(
        app.post("/v1/environments", &acme.admin, json!({"name": "Production", "classification": "production", "enabled": "yes"})).await,
        "enabled",
    )
    .await;
    expect_invalid_field(app.post("/v1/environments", &acme.admin, json!({"name": 42, "classification": "production"})).await, "name").await;
    expect_invalid_field(app.patch(&format!("/v1/environments/{}", id_of(&env)), &acme.admin, json!({"enabled": 1})).await, "enabled").await;
    expect_problem(app.post("/v1/environments", &acme.admin, json!("Production")).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(snapshot(&app, &acme).await, before);
}

#[tokio::test]
async fn an_enum_field_given_valid_json_of_the_wrong_type_is_refused_with_422_naming_it() {
    let app = TestApp::spawn().await;
    let (acme, _) = tenant_with_one_environment(&app).await;
    let before = snapshot(&app, &acme).await;
    // Well-formed JSON, so not 400 `malformed_json`: the field has the wrong type.
    for classification in [json!(["production"]), json!(5), json!(true), json!(null)] {
        let body = json!({"name": "Production", "classification": classification});
        expect_invalid_field(app.post("/v1/environments", &acme.admin, body).await, "classification").await;
    }
    expect_invalid_field(app.post("/v1/runtimes", &acme.admin, json!({"name": "atom-1", "kind": 1})).await, "kind").await;
    assert_eq!(snapshot(&app, &acme).await, before);
}

#[tokio::test]
async fn a_method_a_known_route_does_not_serve_is_refused_with_a_405_problem() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let before = snapshot(&app, &acme).await;
    for (method, path) in [(Method::PUT, "/v1/environments"), (Method::DELETE, "/v1/environments"), (Method::POST, "/v1/me"), (Method::PATCH, "/v1/runtimes")] {
        let response = app.request(method.clone(), path, Some(&acme.admin)).json(&json!({})).send().await.unwrap();
        let allow = response.headers().get("allow").map(|v| v.to_str().unwrap().to_string());
        let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_string());
        let status = response.status();
        let body = response.text().await.unwrap();
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}: {body}");
        assert!(allow.is_some_and(|a| a.contains("GET")), "{method} {path} says which methods it serves");
        assert_eq!(content_type.as_deref(), Some("application/problem+json"), "{method} {path} answers problem+json, got {body:?}");
        let problem: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(problem["status"], 405);
    }
    assert_eq!(snapshot(&app, &acme).await, before);
}

#[tokio::test]
async fn an_id_in_the_path_that_is_not_a_uuid_is_refused_with_400_invalid_id() {
    let app = TestApp::spawn().await;
    let (acme, env) = tenant_with_one_environment(&app).await;
    let runtime = app.runtime(&acme, "atom-1").await;
    let before = snapshot(&app, &acme).await;
    expect_problem(app.get("/v1/environments/not-a-uuid", &acme.admin).await, StatusCode::BAD_REQUEST, "invalid_id").await;
    expect_problem(app.patch("/v1/environments/not-a-uuid", &acme.admin, json!({"enabled": false})).await, StatusCode::BAD_REQUEST, "invalid_id").await;
    expect_problem(app.delete("/v1/environments/not-a-uuid", &acme.admin).await, StatusCode::BAD_REQUEST, "invalid_id").await;
    expect_problem(app.get("/v1/runtimes/123", &acme.admin).await, StatusCode::BAD_REQUEST, "invalid_id").await;
    expect_problem(app.delete("/v1/runtimes/123", &acme.admin).await, StatusCode::BAD_REQUEST, "invalid_id").await;
    expect_problem(app.put(&format!("/v1/environments/{}/runtimes/nope", id_of(&env)), &acme.admin).await, StatusCode::BAD_REQUEST, "invalid_id").await;
    expect_problem(app.put(&format!("/v1/environments/nope/runtimes/{}", id_of(&runtime)), &acme.admin).await, StatusCode::BAD_REQUEST, "invalid_id").await;
    expect_problem(app.get("/platform/v1/tenants/not-a-uuid", &app.platform_token()).await, StatusCode::BAD_REQUEST, "invalid_id").await;
    assert_eq!(snapshot(&app, &acme).await, before);
}

#[tokio::test]
async fn an_unknown_id_is_refused_with_404_not_found() {
    let app = TestApp::spawn().await;
    let (acme, env) = tenant_with_one_environment(&app).await;
    let runtime = app.runtime(&acme, "atom-1").await;
    let before = snapshot(&app, &acme).await;
    let ghost = uuid::Uuid::new_v4();
    let ghost_env = format!("/v1/environments/{ghost}");
    expect_problem(app.get(&ghost_env, &acme.admin).await, StatusCode::NOT_FOUND, "not_found").await;
    expect_problem(app.patch(&ghost_env, &acme.admin, json!({"enabled": false})).await, StatusCode::NOT_FOUND, "not_found").await;
    expect_problem(app.delete(&ghost_env, &acme.admin).await, StatusCode::NOT_FOUND, "not_found").await;
    expect_problem(app.get(&format!("{ghost_env}/runtimes"), &acme.admin).await, StatusCode::NOT_FOUND, "not_found").await;
    expect_problem(app.get(&format!("/v1/runtimes/{ghost}"), &acme.admin).await, StatusCode::NOT_FOUND, "not_found").await;
    expect_problem(app.delete(&format!("/v1/runtimes/{ghost}"), &acme.admin).await, StatusCode::NOT_FOUND, "not_found").await;
    expect_problem(app.put(&format!("{ghost_env}/runtimes/{}", id_of(&runtime)), &acme.admin).await, StatusCode::NOT_FOUND, "not_found").await;
    expect_problem(app.put(&format!("/v1/environments/{}/runtimes/{ghost}", id_of(&env)), &acme.admin).await, StatusCode::NOT_FOUND, "not_found").await;
    expect_problem(app.get(&format!("/platform/v1/tenants/{ghost}"), &app.platform_token()).await, StatusCode::NOT_FOUND, "not_found").await;
    expect_problem(
        app.patch(&format!("/platform/v1/tenants/{ghost}"), &app.platform_token(), json!({"suspended": true})).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_eq!(snapshot(&app, &acme).await, before);
}

#[tokio::test]
async fn a_body_over_one_mebibyte_is_refused_with_413_and_nothing_is_written() {
    let app = TestApp::spawn().await;
    let (acme, env) = tenant_with_one_environment(&app).await;
    let before = snapshot(&app, &acme).await;
    let huge = json!({"name": "Production", "classification": "production", "description": "x".repeat(1024 * 1024)});
    expect_problem(app.post("/v1/environments", &acme.admin, huge.clone()).await, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    let keyed = app.request(Method::POST, "/v1/environments", Some(&acme.admin)).header("idempotency-key", "huge-1").json(&huge).send().await.unwrap();
    expect_problem(keyed, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    let patch = json!({"description": "x".repeat(1024 * 1024 + 1)});
    expect_problem(app.patch(&format!("/v1/environments/{}", id_of(&env)), &acme.admin, patch).await, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    assert_eq!(snapshot(&app, &acme).await, before);
}

#[tokio::test]
async fn a_limit_that_is_zero_over_a_hundred_or_not_a_number_is_refused() {
    let app = TestApp::spawn().await;
    let (acme, _) = tenant_with_one_environment(&app).await;
    for limit in ["0", "101", "-1", "abc", "1.5", "99999999999"] {
        for list in ["/v1/environments", "/v1/runtimes", "/v1/audit"] {
            let response = app.get(&format!("{list}?limit={limit}"), &acme.admin).await;
            let status = response.status();
            assert!(status == StatusCode::UNPROCESSABLE_ENTITY || status == StatusCode::BAD_REQUEST, "limit={limit} on {list} is refused, not {status}");
            let problem = expect_problem(response, status, if status == StatusCode::BAD_REQUEST { "invalid_query" } else { "validation_failed" }).await;
            if status == StatusCode::UNPROCESSABLE_ENTITY {
                assert_eq!(problem["errors"][0]["field"], "limit", "{problem}");
            }
        }
    }
    for limit in ["1", "100"] {
        assert_eq!(list_items(&app, &format!("/v1/environments?limit={limit}"), &acme.admin).await.len(), 1);
    }
}

#[tokio::test]
async fn a_garbage_cursor_is_refused_with_422_on_cursor() {
    let app = TestApp::spawn().await;
    let (acme, _) = tenant_with_one_environment(&app).await;
    use base64::Engine;
    let crafted = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"pk":"TENANTS","sk":"x"}"#);
    for cursor in ["garbage", "not%20base64!", "eyJ9", crafted.as_str()] {
        for list in ["/v1/environments", "/v1/runtimes", "/v1/audit"] {
            expect_invalid_field(app.get(&format!("{list}?cursor={cursor}"), &acme.admin).await, "cursor").await;
        }
    }
}

#[tokio::test]
async fn a_cursor_from_another_tenants_list_is_refused_and_reveals_nothing() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let globex = app.tenant("Globex").await;
    for name in ["Alpha", "Beta", "Gamma"] {
        app.environment(&acme, name, "test").await;
    }
    app.environment(&globex, "Globex Test", "test").await;

    let first = expect_status(app.get("/v1/environments?limit=1", &acme.admin).await, StatusCode::OK).await;
    let cursor = first["next_cursor"].as_str().expect("more than one page").to_string();
    // Acme's own cursor reads Acme's next page.
    let second = expect_status(app.get(&format!("/v1/environments?limit=1&cursor={cursor}"), &acme.admin).await, StatusCode::OK).await;
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert_ne!(second["items"][0]["id"], first["items"][0]["id"]);

    let problem = expect_invalid_field(app.get(&format!("/v1/environments?limit=1&cursor={cursor}"), &globex.admin).await, "cursor").await;
    for name in ["Alpha", "Beta", "Gamma"] {
        assert!(!problem.to_string().contains(name), "nothing of Acme leaks: {problem}");
    }
    // Nor does it open another of Acme's own lists.
    expect_invalid_field(app.get(&format!("/v1/runtimes?cursor={cursor}"), &acme.admin).await, "cursor").await;
}

#[tokio::test]
async fn an_unknown_route_is_a_404_problem() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    for path in ["/v1/nope", "/v2/environments", "/v1/environments/x/y/z", "/agent/v1/nope", "/"] {
        expect_problem(app.get(path, &acme.admin).await, StatusCode::NOT_FOUND, "not_found").await;
        expect_problem(app.request(Method::GET, path, None).send().await.unwrap(), StatusCode::NOT_FOUND, "not_found").await;
    }
    expect_problem(app.post("/v1/nope", &acme.admin, json!({})).await, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn patching_the_classification_is_refused_with_422_and_it_stays() {
    let app = TestApp::spawn().await;
    let (acme, env) = tenant_with_one_environment(&app).await;
    let before = snapshot(&app, &acme).await;
    let path = format!("/v1/environments/{}", id_of(&env));
    expect_invalid_field(app.patch(&path, &acme.admin, json!({"classification": "production"})).await, "classification").await;
    expect_invalid_field(app.patch(&path, &acme.admin, json!({"name": "Renamed", "classification": "production"})).await, "classification").await;
    let after = expect_status(app.get(&path, &acme.admin).await, StatusCode::OK).await;
    assert_eq!(after["classification"], "test");
    assert_eq!(after["name"], "Test", "a refused patch applies none of its fields");
    assert_eq!(after["etag"], env["etag"]);
    assert_eq!(snapshot(&app, &acme).await, before);
}

#[tokio::test]
async fn a_heartbeat_reporting_a_bad_digest_is_refused_with_422_and_not_recorded() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let runtime = app.runtime(&acme, "atom-1").await;
    let credential = app.register_agent(&runtime).await;
    let good = format!("sha256:{}", "a".repeat(64));
    for digest in ["md5:abc", "sha256:xyz", &format!("sha256:{}", "A".repeat(64)), &format!("sha256:{}", "a".repeat(63)), &"a".repeat(64)] {
        let body = json!({"agent_version": "1.0.0", "status": "ok", "running": [
            {"component_id": uuid::Uuid::new_v4(), "package_id": uuid::Uuid::new_v4(), "digest": good},
            {"component_id": uuid::Uuid::new_v4(), "package_id": uuid::Uuid::new_v4(), "digest": digest},
        ]});
        let response = app.request(Method::POST, "/agent/v1/heartbeat", Some(&credential)).json(&body).send().await.unwrap();
        let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert!(problem["errors"][0]["field"].as_str().unwrap_or("").contains("running"), "the error points into running: {problem}");
    }
    let seen = expect_status(app.get(&format!("/v1/runtimes/{}", id_of(&runtime)), &acme.admin).await, StatusCode::OK).await;
    assert_eq!(seen["last_seen_at"], Value::Null, "no refused heartbeat was recorded");
}

#[tokio::test]
async fn a_heartbeat_with_a_bad_agent_version_or_too_many_running_packages_is_refused_with_422() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let runtime = app.runtime(&acme, "atom-1").await;
    let credential = app.register_agent(&runtime).await;
    let entry = json!({"component_id": uuid::Uuid::new_v4(), "package_id": uuid::Uuid::new_v4(), "digest": format!("sha256:{}", "b".repeat(64))});
    for (body, field) in [
        (json!({"agent_version": "", "status": "ok", "running": []}), "agent_version"),
        (json!({"agent_version": "v".repeat(65), "status": "ok", "running": []}), "agent_version"),
        (json!({"agent_version": "1.0.0", "status": "sleepy", "running": []}), "status"),
        (json!({"agent_version": "1.0.0", "status": "ok", "running": vec![entry; 1001]}), "running"),
    ] {
        let response = app.request(Method::POST, "/agent/v1/heartbeat", Some(&credential)).json(&body).send().await.unwrap();
        expect_invalid_field(response, field).await;
    }
    let seen = expect_status(app.get(&format!("/v1/runtimes/{}", id_of(&runtime)), &acme.admin).await, StatusCode::OK).await;
    assert_eq!(seen["last_seen_at"], Value::Null, "no refused heartbeat was recorded");
}

#[tokio::test]
async fn a_registration_refused_for_bad_input_does_not_use_up_the_token() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let runtime = app.runtime(&acme, "atom-1").await;
    let token = runtime["registration_token"].clone();
    for (body, field) in [
        (json!({"registration_token": token, "agent_version": ""}), "agent_version"),
        (json!({"registration_token": token, "agent_version": "1.0.0", "name": " "}), "name"),
        (json!({"registration_token": token, "agent_version": "1.0.0", "colour": "blue"}), "colour"),
    ] {
        expect_invalid_field(app.request(Method::POST, "/agent/v1/register", None).json(&body).send().await.unwrap(), field).await;
    }
    let credential = app.register_agent(&runtime).await;
    expect_status(app.heartbeat(&credential).await, StatusCode::OK).await;
}

#[tokio::test]
async fn paging_through_a_list_yields_every_item_exactly_once() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let mut created = vec![];
    for i in 0..5 {
        created.push(id_of(&app.environment(&acme, &format!("Env {i}"), "test").await));
    }
    let mut seen = vec![];
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let path = match &cursor {
            Some(c) => format!("/v1/environments?limit=2&cursor={c}"),
            None => "/v1/environments?limit=2".to_string(),
        };
        let page = expect_status(app.get(&path, &acme.admin).await, StatusCode::OK).await;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2, "a page holds at most `limit` items");
        seen.extend(items.iter().map(id_of));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, created, "every environment once, oldest first");
}

#[tokio::test]
async fn a_plan_limit_over_100000_is_refused_with_422_and_nothing_is_written() {
    let app = TestApp::spawn().await;
    let platform = app.platform_token();
    let acme = app.tenant("Acme").await;
    let tenants_before = list_items(&app, "/platform/v1/tenants", &platform).await;
    let before = snapshot(&app, &acme).await;

    for field in ["max_environments", "max_runtimes", "connection_licenses"] {
        let over = json!({"name": "Globex", "plan": {field: 100_001}});
        expect_invalid_field(app.post("/platform/v1/tenants", &platform, over).await, &format!("plan.{field}")).await;
        let patch = json!({"plan": {field: 100_001}});
        expect_invalid_field(app.patch(&format!("/platform/v1/tenants/{}", acme.id), &platform, patch).await, &format!("plan.{field}")).await;
    }
    expect_invalid_field(app.post("/platform/v1/tenants", &platform, json!({"name": "Globex", "plan": {"max_runtimes": -1}})).await, "plan.max_runtimes").await;

    assert_eq!(list_items(&app, "/platform/v1/tenants", &platform).await, tenants_before, "no tenant was created or changed");
    assert_eq!(snapshot(&app, &acme).await, before);
    let ceiling =
        expect_status(app.post("/platform/v1/tenants", &platform, json!({"name": "Globex", "plan": {"max_environments": 100_000}})).await, StatusCode::CREATED)
            .await;
    assert_eq!(ceiling["plan"]["max_environments"], 100_000);
}
