//! Issue 14 (items 1-3): components declare extension points, each
//! environment sets its own values (secrets sealed with KMS, write-only), and
//! validation and deploys check them: over HTTP, with a real agent.

use berth_tests::{Agent, TestApp, TestTenant, expect_invalid_field, expect_problem, expect_status, id_of};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

fn crm_points() -> Value {
    json!({
        "connection_fields": [{"name": "url", "secret": false, "required": true}, {"name": "password", "secret": true, "required": true}],
        "properties": [{"name": "batch_size", "type": "number", "default": 100}],
        "lookups": [{"table": "countries", "keys": ["DE", "FR"]}]
    })
}

fn extensions_path(env: &Value) -> String {
    format!("/v1/environments/{}/extensions", id_of(env))
}

async fn put_extensions(app: &TestApp, token: &str, env: &Value, if_match: Option<&str>, body: Value) -> Response {
    let mut request = app.request(Method::PUT, &extensions_path(env), Some(token)).json(&body);
    if let Some(etag) = if_match {
        request = request.header("If-Match", etag);
    }
    request.send().await.expect("sent")
}

/// Reads the environment's values; returns them with their ETag.
async fn get_extensions(app: &TestApp, t: &TestTenant, env: &Value) -> (Value, String) {
    let response = app.get(&extensions_path(env), &t.admin).await;
    let etag = response.headers().get("etag").and_then(|v| v.to_str().ok()).expect("an ETag").to_string();
    (expect_status(response, StatusCode::OK).await, etag)
}

async fn validate(app: &TestApp, t: &TestTenant, package: &Value, env: &Value) -> Value {
    let body = json!({"package_id": package["id"], "environment_id": env["id"]});
    expect_status(app.post("/v1/deployments/validate", &t.admin, body).await, StatusCode::OK).await
}

fn codes(issues: &Value) -> Vec<String> {
    issues.as_array().expect("issues").iter().map(|i| i["code"].as_str().unwrap_or_default().to_string()).collect()
}

/// The raw DynamoDB item holding the environment's values, as text.
async fn raw_item(app: &TestApp, t: &TestTenant, env: &Value) -> String {
    use aws_sdk_dynamodb::types::AttributeValue;
    let item = app
        .clients
        .dynamo
        .get_item()
        .table_name(&app.names.table)
        .key("pk", AttributeValue::S(format!("T#{}#EXT", t.id)))
        .key("sk", AttributeValue::S(id_of(env)))
        .send()
        .await
        .expect("the item is read")
        .item
        .expect("the environment's values are one item");
    format!("{item:?}")
}

#[tokio::test]
async fn test_and_production_keep_their_own_values_a_missing_secret_refuses_the_deploy_and_an_unresolved_lookup_only_warns() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let (test, prod, atom) = app.test_and_production(&acme).await;
    let _agent = Agent::start(&app, &atom, None);

    // Declared on the connection's revision, snapshotted in the package.
    let body = json!({"name": "CRM", "type": "connection", "content": berth_tests::b64(b"crm"), "extensions": crm_points()});
    let crm = expect_status(app.post("/v1/components", &acme.admin, body).await, StatusCode::CREATED).await;
    assert_eq!(crm["extensions"], crm_points());
    let sync = app.component(&acme, "Sync", "process", b"sync", &[&crm]).await;
    let v1 = app.package(&acme, &sync, Some("v1")).await;
    let shown = expect_status(app.get(&format!("/v1/packages/{}", id_of(&v1)), &acme.admin).await, StatusCode::OK).await;
    let entry = shown["manifest"]["components"].as_array().unwrap().iter().find(|e| e["id"] == crm["id"]).cloned().expect("CRM is bundled");
    assert_eq!(entry["extensions"], crm_points(), "GET /v1/packages/{{id}} shows the bundled extension points");

    let (empty, etag) = get_extensions(&app, &acme, &test).await;
    assert_eq!((empty["components"].clone(), empty["version"].clone(), etag.as_str()), (json!({}), json!(0), "\"0\""));
    let secret = format!("test-pw-{}", uuid::Uuid::new_v4().simple());
    let test_values = json!({"components": {id_of(&crm): {
        "connection": {"url": "https://crm.test.example", "password": secret},
        "properties": {"batch_size": 10},
        "lookups": {"countries": {"DE": "Deutschland"}}
    }}});
    expect_problem(put_extensions(&app, &acme.admin, &test, None, test_values.clone()).await, StatusCode::PRECONDITION_REQUIRED, "precondition_required").await;
    let written = expect_status(put_extensions(&app, &acme.admin, &test, Some(&etag), test_values.clone()).await, StatusCode::OK).await;
    assert_eq!(written["version"], 1);
    expect_problem(put_extensions(&app, &acme.admin, &test, Some(&etag), test_values).await, StatusCode::PRECONDITION_FAILED, "precondition_failed").await;
    let prod_values = json!({"components": {id_of(&crm): {
        "connection": {"url": "https://crm.example"},
        "lookups": {"countries": {"DE": "Germany", "FR": "France"}}
    }}});
    expect_status(put_extensions(&app, &acme.admin, &prod, Some("\"0\""), prod_values).await, StatusCode::OK).await;

    // The secret reads back only as set, and is nowhere in clear: not in the item, not in the audit.
    let (read, etag) = get_extensions(&app, &acme, &test).await;
    let password = &read["components"][id_of(&crm)]["connection"]["password"];
    assert_eq!((password["set"].clone(), password["updated_by"].is_string()), (json!(true), true), "{read}");
    assert_eq!(read["components"][id_of(&crm)]["connection"]["url"], "https://crm.test.example");
    assert_eq!(read["components"][id_of(&crm)]["properties"]["batch_size"], 10);
    assert!(!read.to_string().contains(&secret), "GET never returns the secret: {read}");
    let (prod_read, _) = get_extensions(&app, &acme, &prod).await;
    assert_eq!(prod_read["components"][id_of(&crm)]["connection"], json!({"url": "https://crm.example"}), "Production has its own values");
    let item = raw_item(&app, &acme, &test).await;
    assert!(item.contains("password") && !item.contains(&secret), "the item holds the field, sealed: {item}");
    let trail = app.audit(&acme).await;
    let updated: Vec<&Value> = trail.iter().filter(|e| e["action"] == "environment.extensions_updated").collect();
    assert_eq!(updated.len(), 2, "one event per write");
    assert_eq!(updated[0]["entity_id"], test["id"]);
    assert_eq!(
        updated[0]["summary"]["components"][0]["changed"],
        json!(["connection.password", "connection.url", "lookups.countries", "properties.batch_size"])
    );
    assert!(!serde_json::to_string(&trail).unwrap().contains(&secret), "the audit names fields, never values");

    // Production lacks the secret: an error, and the deploy is refused; Test lacks a mapping: a warning only.
    let report = validate(&app, &acme, &v1, &prod).await;
    assert_eq!(codes(&report["errors"]), ["extension_missing"], "{report}");
    let message = report["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("\"CRM\"") && message.contains("\"password\"") && message.contains("\"Production\""), "{message}");
    let refused = app.post("/v1/deployments", &acme.admin, json!({"package_id": v1["id"], "environment_id": prod["id"]})).await;
    expect_problem(refused, StatusCode::CONFLICT, "extension_missing").await;
    let report = validate(&app, &acme, &v1, &test).await;
    assert!(report["errors"].as_array().unwrap().is_empty(), "{report}");
    let unresolved: Vec<&Value> = report["warnings"].as_array().unwrap().iter().filter(|w| w["code"] == "lookup_unresolved").collect();
    assert_eq!(unresolved.len(), 1, "{report}");
    let message = unresolved[0]["message"].as_str().unwrap();
    assert!(message.contains("\"CRM\"") && message.contains("\"countries\"") && message.contains("\"FR\""), "{message}");
    assert_eq!((report["extensions_version"].clone(), report["extensions_changed"].clone()), (json!(1), Value::Null));

    let first = app.deploy(&acme, &v1, &test, "with a warning").await;
    let first = app.wait_for_status(&acme, &first, "succeeded").await;
    assert_eq!((first["extensions_version"].clone(), first["extensions_changed"].clone()), (json!(1), Value::Null), "{first}");

    // A redeploy shows whether the values changed since.
    assert_eq!(validate(&app, &acme, &v1, &test).await["extensions_changed"], false);
    let changed = json!({"components": {id_of(&crm): {
        "connection": {"url": "https://crm2.test.example", "password": password},
        "properties": {"batch_size": 10},
        "lookups": {"countries": {"DE": "Deutschland", "FR": "Frankreich"}}
    }}});
    let written = expect_status(put_extensions(&app, &acme.admin, &test, Some(&etag), changed).await, StatusCode::OK).await;
    assert_eq!(written["components"][id_of(&crm)]["connection"]["password"]["set"], true, "a secret sent back as read keeps its value");
    let report = validate(&app, &acme, &v1, &test).await;
    assert_eq!((report["extensions_version"].clone(), report["extensions_changed"].clone()), (json!(2), json!(true)), "{report}");
    assert!(!codes(&report["warnings"]).contains(&"lookup_unresolved".to_string()), "{report}");
    let again = app.deploy(&acme, &v1, &test, "new values").await;
    let again = app.wait_for_status(&acme, &again, "succeeded").await;
    assert_eq!((again["extensions_version"].clone(), again["extensions_changed"].clone()), (json!(2), json!(true)), "{again}");
}

#[tokio::test]
async fn extension_points_and_values_are_checked_strictly() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let test = app.environment(&acme, "Test", "test").await;
    let create = |extensions: Value| json!({"name": "CRM", "type": "connection", "content": berth_tests::b64(b"crm"), "extensions": extensions});
    let unknown = create(json!({"connection_fields": [{"name": "url", "secret": false, "required": true, "encrypted": true}]}));
    assert_eq!(app.post("/v1/components", &acme.admin, unknown).await.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let twice = create(json!({"connection_fields": [{"name": "url"}, {"name": "url"}]}));
    expect_invalid_field(app.post("/v1/components", &acme.admin, twice).await, "extensions.connection_fields[1]").await;
    let mistyped = create(json!({"properties": [{"name": "batch_size", "type": "number", "default": "ten"}]}));
    expect_invalid_field(app.post("/v1/components", &acme.admin, mistyped).await, "extensions.properties[0].default").await;
    let long = create(json!({"lookups": [{"table": "t".repeat(129), "keys": []}]}));
    expect_invalid_field(app.post("/v1/components", &acme.admin, long).await, "extensions.lookups[0].table").await;
    let crm = expect_status(app.post("/v1/components", &acme.admin, create(crm_points())).await, StatusCode::CREATED).await;

    let put = async |body: Value| put_extensions(&app, &acme.admin, &test, Some("\"0\""), body).await;
    let field = |name: &str| json!({"components": {id_of(&crm): {"connection": {name: "x"}}}});
    let problem = expect_problem(put(field("username")).await, StatusCode::UNPROCESSABLE_ENTITY, "extension_unknown").await;
    assert_eq!(problem["errors"][0]["field"], format!("components.{}.connection.username", id_of(&crm)));
    let mistyped = json!({"components": {id_of(&crm): {"properties": {"batch_size": "ten"}}}});
    expect_invalid_field(put(mistyped).await, &format!("components.{}.properties.batch_size", id_of(&crm))).await;
    let nowhere = uuid::Uuid::new_v4();
    let problem = expect_problem(put(json!({"components": {nowhere.to_string(): {}}})).await, StatusCode::UNPROCESSABLE_ENTITY, "component_not_found").await;
    assert_eq!(problem["errors"][0]["field"], format!("components.{nowhere}"));
    assert_eq!(put(json!({"components": {}, "version": 3})).await.status(), StatusCode::UNPROCESSABLE_ENTITY, "unknown fields are refused");
    assert_eq!(get_extensions(&app, &acme, &test).await.0["version"], 0, "nothing refused was stored");
}

#[tokio::test]
async fn only_admins_read_or_write_an_environments_extensions_and_another_tenant_finds_none() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let globex = app.tenant("Globex").await;
    let test = app.environment(&acme, "Test", "test").await;
    let body = json!({"components": {}});
    expect_problem(app.get(&extensions_path(&test), &globex.admin).await, StatusCode::NOT_FOUND, "not_found").await;
    expect_problem(put_extensions(&app, &globex.admin, &test, Some("\"0\""), body.clone()).await, StatusCode::NOT_FOUND, "not_found").await;
    let deployer = app.token(&acme.id, &["deployer", "developer", "viewer", "approver"]);
    expect_problem(app.get(&extensions_path(&test), &deployer).await, StatusCode::FORBIDDEN, "forbidden").await;
    expect_problem(put_extensions(&app, &deployer, &test, Some("\"0\""), body.clone()).await, StatusCode::FORBIDDEN, "forbidden").await;
    expect_status(put_extensions(&app, &acme.admin, &test, Some("\"0\""), body).await, StatusCode::OK).await;
}
