//! Issue 13: deploying the latest revision in one step, a change request's
//! dry run, scan and outdated gate (and where its packages came from), the
//! plan's usage, and an approver's inbox: over HTTP, with real agents.

use berth_tests::{Agent, TestApp, TestTenant, expect_invalid_field, expect_problem, expect_status, id_of};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Acme with Test and Production, the runtime `atom` attached to both and its agent running.
async fn estate(plan: Value) -> (TestApp, TestTenant, Value, Value, Agent) {
    let app = TestApp::spawn().await;
    let acme = app.tenant_with_plan("Acme", plan).await;
    let (test, prod, atom) = app.test_and_production(&acme).await;
    let agent = Agent::start(&app, &atom, None);
    (app, acme, test, prod, agent)
}

async fn package_count(app: &TestApp, t: &TestTenant, component: &Value) -> usize {
    let list = expect_status(app.get(&format!("/v1/packages?component_id={}", id_of(component)), &t.admin).await, StatusCode::OK).await;
    list["items"].as_array().expect("items").len()
}

async fn deploy_latest(app: &TestApp, t: &TestTenant, component: &Value, env: &Value, key: &str) -> Value {
    let body = json!({"component_id": component["id"], "environment_id": env["id"], "latest_revision": true, "notes": "latest"});
    let response = app.request(Method::POST, "/v1/deployments", Some(&t.admin)).header("Idempotency-Key", key).json(&body).send().await.expect("sent");
    expect_status(response, StatusCode::CREATED).await
}

#[tokio::test]
async fn deploying_the_latest_revision_packages_it_once_then_reuses_the_package_until_the_component_is_revised() {
    let (app, acme, test, _, agent) = estate(json!({})).await;
    let orders = app.component(&acme, "Orders", "process", b"orders v1", &[]).await;

    let first = deploy_latest(&app, &acme, &orders, &test, "latest-1").await;
    assert_eq!(first["package_created"], true, "{first}");
    let replay = deploy_latest(&app, &acme, &orders, &test, "latest-1").await;
    assert_eq!((replay["id"].clone(), replay["package_id"].clone()), (first["id"].clone(), first["package_id"].clone()), "a replay answers the same");
    assert_eq!(package_count(&app, &acme, &orders).await, 1, "a replayed request packages nothing more");
    app.wait_for_status(&acme, &first, "succeeded").await;
    let package = expect_status(app.get(&format!("/v1/packages/{}", first["package_id"].as_str().unwrap()), &acme.admin).await, StatusCode::OK).await;
    assert_eq!(agent.installed(&test, &orders).expect("the agent runs Orders")["digest"], package["digest"]);

    let again = deploy_latest(&app, &acme, &orders, &test, "latest-2").await;
    assert_eq!((again["package_created"].clone(), again["package_id"].clone()), (json!(false), first["package_id"].clone()), "reused: {again}");
    app.wait_for_status(&acme, &again, "succeeded").await;

    app.revise(&acme, &orders, b"orders v2").await;
    let revised = deploy_latest(&app, &acme, &orders, &test, "latest-3").await;
    assert_eq!(revised["package_created"], true);
    assert_ne!(revised["package_id"], first["package_id"]);
    assert_eq!(revised["version"], "2");
    app.wait_for_status(&acme, &revised, "succeeded").await;
    assert_eq!(package_count(&app, &acme, &orders).await, 2);
}

#[tokio::test]
async fn a_deploy_request_names_a_package_or_the_latest_revision_never_both_nor_neither() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let test = app.environment(&acme, "Test", "test").await;
    let orders = app.component(&acme, "Orders", "process", b"orders", &[]).await;
    let v1 = app.package(&acme, &orders, None).await;
    let both = json!({"package_id": v1["id"], "component_id": orders["id"], "environment_id": test["id"], "latest_revision": true});
    let problem = expect_invalid_field(app.post("/v1/deployments", &acme.admin, both).await, "package_id").await;
    assert!(problem["errors"].as_array().unwrap().iter().any(|e| e["field"] == "latest_revision"), "{problem}");
    let neither = json!({"environment_id": test["id"]});
    expect_invalid_field(app.post("/v1/deployments", &acme.admin, neither).await, "package_id").await;
    let no_component = json!({"environment_id": test["id"], "latest_revision": true});
    expect_invalid_field(app.post("/v1/deployments", &acme.admin, no_component).await, "component_id").await;
    assert_eq!(package_count(&app, &acme, &orders).await, 1, "nothing was packaged");
}

async fn cr_step(app: &TestApp, token: &str, cr: &Value, step: &str, body: Value) -> reqwest::Response {
    app.request(Method::POST, &format!("/v1/change-requests/{}/{step}", id_of(cr)), Some(token)).json(&body).send().await.expect("sent")
}

#[tokio::test]
async fn a_promoted_change_request_is_validated_scanned_held_back_while_outdated_and_deployed_with_accept_outdated_naming_its_source() {
    let (app, acme, test, prod, agent) = estate(json!({})).await;
    app.set_policy(&acme, &prod, json!({"require_success_in": [test["id"]]})).await;
    let mapping = app.component(&acme, "Mapping", "map", b"map v1", &[]).await;
    let orders = app.component(&acme, "Orders", "process", b"orders v1", &[&mapping]).await;
    let v1 = app.package(&acme, &orders, None).await;
    let in_test = app.deploy(&acme, &v1, &test, "to test").await;
    app.wait_for_status(&acme, &in_test, "succeeded").await;

    let body = json!({"name": "Release", "change_type": "normal", "target_environment_id": prod["id"], "items": [{"package_id": v1["id"]}]});
    let cr = expect_status(app.post("/v1/change-requests", &acme.admin, body).await, StatusCode::CREATED).await;
    expect_status(cr_step(&app, &acme.admin, &cr, "submit", json!({})).await, StatusCode::OK).await;

    let report = expect_status(cr_step(&app, &acme.admin, &cr, "validate", json!({})).await, StatusCode::OK).await;
    assert_eq!(report["items"][0]["package_id"], v1["id"]);
    assert_eq!(report["items"][0]["component_id"], orders["id"]);
    assert_eq!(report["items"][0]["errors"], json!([]), "{report}");
    let scan = expect_status(cr_step(&app, &acme.admin, &cr, "scan", json!({})).await, StatusCode::OK).await;
    assert_eq!(scan["items"][0]["outdated"], false);

    app.revise(&acme, &mapping, b"map v2").await;
    let scan = expect_status(cr_step(&app, &acme.admin, &cr, "scan", json!({})).await, StatusCode::OK).await;
    assert_eq!(scan["items"][0]["outdated"], true);
    assert_eq!(scan["items"][0]["changes"], json!([{"component_id": mapping["id"], "name": "Mapping", "packaged_revision": 1, "current_revision": 2}]));
    let report = expect_status(cr_step(&app, &acme.admin, &cr, "validate", json!({})).await, StatusCode::OK).await;
    assert!(report["items"][0]["warnings"].as_array().unwrap().iter().any(|w| w["code"] == "outdated"), "{report}");

    let problem = expect_problem(cr_step(&app, &acme.admin, &cr, "deploy", json!({})).await, StatusCode::CONFLICT, "outdated_items").await;
    assert!(problem["detail"].as_str().unwrap().contains(v1["id"].as_str().unwrap()), "{problem}");
    let unknown = cr_step(&app, &acme.admin, &cr, "deploy", json!({"accept_outdated": true, "accept_everything": true})).await;
    assert_eq!(unknown.status(), StatusCode::UNPROCESSABLE_ENTITY, "unknown fields are refused");

    let deploying = expect_status(cr_step(&app, &acme.admin, &cr, "deploy", json!({"accept_outdated": true})).await, StatusCode::OK).await;
    let d = json!({"id": deploying["deployments"][0]});
    let d = app.wait_for_status(&acme, &d, "succeeded").await;
    assert_eq!((d["source_environment_id"].clone(), d["accepted_outdated"].clone()), (test["id"].clone(), json!(true)), "{d}");
    assert_eq!(agent.installed(&prod, &orders).expect("Production runs Orders")["digest"], v1["digest"], "deployed as packaged");
    let trail = app.audit(&acme).await;
    let event = trail.iter().find(|e| e["action"] == "change_request.deploying").expect("the deploy is audited");
    assert_eq!(event["summary"]["accepted_outdated"], json!([v1["id"]]));
}

#[tokio::test]
async fn usage_shows_each_connection_where_it_runs_after_deploys_and_the_licence_refusal_names_it() {
    let (app, acme, test, prod, _agent) = estate(json!({"connection_licenses": 1, "max_runtimes": 3, "max_environments": 5})).await;
    let db = app.component(&acme, "Sales DB", "connection", b"jdbc:sales", &[]).await;
    let sales = app.component(&acme, "Sales", "process", b"sales", &[&db]).await;
    let sales = app.package(&acme, &sales, None).await;
    for env in [&test, &prod] {
        let d = app.deploy(&acme, &sales, env, "sales").await;
        app.wait_for_status(&acme, &d, "succeeded").await;
    }
    let viewer = app.token(&acme.id, &["viewer"]);
    let usage = expect_status(app.get("/v1/usage", &viewer).await, StatusCode::OK).await;
    for (classification, env) in [("test", &test), ("production", &prod)] {
        assert_eq!(
            usage["connection_licenses"][classification],
            json!({"used": 1, "limit": 1, "connections": [{"component_id": db["id"], "environments": [env["id"]]}]}),
            "{usage}"
        );
    }
    assert_eq!(usage["runtimes"], json!({"used": 1, "limit": 3}));
    assert_eq!(usage["environments"], json!({"used": 2, "limit": 5}));

    let crm = app.component(&acme, "CRM", "connection", b"https://crm", &[]).await;
    let sync = app.component(&acme, "Sync", "process", b"sync", &[&crm]).await;
    let sync = app.package(&acme, &sync, None).await;
    let body = json!({"package_id": sync["id"], "environment_id": test["id"]});
    let problem = expect_problem(app.post("/v1/deployments", &acme.admin, body).await, StatusCode::CONFLICT, "connection_licenses_exceeded").await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("\"Sales DB\"") && detail.contains("in Test"), "{detail}");
}

async fn inbox(app: &TestApp, token: &str) -> Vec<Value> {
    let list = expect_status(app.get("/v1/approvals/pending", token).await, StatusCode::OK).await;
    list["items"].as_array().expect("items").iter().map(|i| i["id"].clone()).collect()
}

#[tokio::test]
async fn two_approvers_with_different_roles_each_see_only_what_they_may_decide_and_the_requester_not_their_own() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let (test, prod, _atom) = app.test_and_production(&acme).await;
    app.set_policy(&acme, &prod, json!({"required_approvals": 1, "approver_roles": ["approver"]})).await;
    app.set_policy(&acme, &test, json!({"required_approvals": 1, "approver_roles": ["admin"]})).await;
    let orders = app.component(&acme, "Orders", "process", b"orders", &[]).await;
    let v1 = app.package(&acme, &orders, None).await;

    let ann = app.user_token(&acme.id, "ann@acme.example", &["deployer", "approver"]);
    let bob = app.user_token(&acme.id, "bob@acme.example", &["approver"]);
    let root = app.user_token(&acme.id, "root@acme.example", &["admin"]);
    let request = |env: &Value| json!({"package_id": v1["id"], "environment_id": env["id"]});
    let to_prod = expect_status(app.post("/v1/deployments", &ann, request(&prod)).await, StatusCode::CREATED).await;
    let to_test = expect_status(app.post("/v1/deployments", &ann, request(&test)).await, StatusCode::CREATED).await;
    assert_eq!((to_prod["status"].clone(), to_test["status"].clone()), (json!("pending_approval"), json!("pending_approval")));
    let body = json!({"name": "Release", "change_type": "normal", "target_environment_id": prod["id"], "items": [{"package_id": v1["id"]}]});
    let cr = expect_status(app.post("/v1/change-requests", &ann, body).await, StatusCode::CREATED).await;
    expect_status(cr_step(&app, &ann, &cr, "submit", json!({})).await, StatusCode::OK).await;

    assert_eq!(inbox(&app, &bob).await, [to_prod["id"].clone(), cr["id"].clone()], "the approver: Production's, oldest first");
    assert_eq!(inbox(&app, &root).await, [to_test["id"].clone()], "the admin: Test's");
    assert!(inbox(&app, &ann).await.is_empty(), "the requester holds the approver role but sees none of her own");
    let listed = expect_status(app.get("/v1/approvals/pending", &bob).await, StatusCode::OK).await;
    assert_eq!((listed["items"][0]["kind"].clone(), listed["items"][1]["kind"].clone()), (json!("deployment"), json!("change_request")));

    let approve = json!({"decision": "approve", "comment": "ok"});
    let path = format!("/v1/deployments/{}/approvals", id_of(&to_prod));
    expect_status(app.request(Method::POST, &path, Some(&bob)).json(&approve).send().await.unwrap(), StatusCode::CREATED).await;
    assert_eq!(inbox(&app, &bob).await, [cr["id"].clone()], "decided: gone from the inbox");
    let other_tenant = app.tenant("Globex").await;
    assert!(inbox(&app, &other_tenant.admin).await.is_empty(), "tenant-scoped");
}
