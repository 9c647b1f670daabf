//! Seed scenario 6 (docs/scenarios.md) and change-request governance.

use berth_tests::{Agent, TestApp, TestTenant, expect_problem, expect_status};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn post(app: &TestApp, token: &str, cr: &Value, step: &str, body: Option<Value>) -> reqwest::Response {
    let path = format!("/v1/change-requests/{}/{step}", cr["id"].as_str().unwrap());
    let r = app.request(Method::POST, &path, Some(token));
    match body {
        Some(b) => r.json(&b),
        None => r,
    }
    .send()
    .await
    .unwrap()
}

struct Release {
    app: TestApp,
    acme: TestTenant,
    prod: Value,
    a: Value,
    b: Value,
    author: String,
    bob: String,
    carol: String,
}

async fn release(required: u32) -> Release {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let prod = app.environment(&acme, "Production", "production").await;
    let path = format!("/v1/environments/{}/policy", prod["id"].as_str().unwrap());
    let r = app.request(Method::PUT, &path, Some(&acme.admin)).json(&json!({"required_approvals": required})).send().await.unwrap();
    expect_status(r, StatusCode::OK).await;
    let orders = app.component(&acme, "Orders", "process", b"orders", &[]).await;
    let billing = app.component(&acme, "Billing", "process", b"billing", &[]).await;
    let a = app.package(&acme, &orders, None).await;
    let b = app.package(&acme, &billing, None).await;
    let author = app.user_token(&acme.id, "ann@acme.example", &["deployer"]);
    let bob = app.user_token(&acme.id, "bob@acme.example", &["approver"]);
    let carol = app.user_token(&acme.id, "carol@acme.example", &["approver"]);
    Release { app, acme, prod, a, b, author, bob, carol }
}

impl Release {
    async fn draft(&self, items: &[&Value]) -> Value {
        let items: Vec<Value> = items.iter().map(|p| json!({"package_id": p["id"]})).collect();
        let body = json!({"name": "Quarterly release", "overview": "orders and billing", "change_type": "normal", "target_environment_id": self.prod["id"],
            "items": items, "links": ["https://tickets.example/CHG-42"]});
        expect_status(self.app.post("/v1/change-requests", &self.author, body).await, StatusCode::CREATED).await
    }
}

#[tokio::test]
async fn scenario_6_a_change_request_with_two_packages_is_submitted_approved_deployed_and_completed_and_the_audit_verifies() {
    let r = release(1).await;
    let runtime = r.app.runtime(&r.acme, "atom").await;
    r.app.attach(&r.acme, &r.prod, &runtime).await;
    let _agent = Agent::start(&r.app, &runtime, None);

    let cr = r.draft(&[&r.a, &r.b]).await;
    assert_eq!(cr["status"], "draft");
    assert_eq!(cr["items"][1]["digest"], r.b["digest"]);
    expect_problem(post(&r.app, &r.author, &cr, "deploy", None).await, StatusCode::CONFLICT, "not_approved").await;
    let submitted = expect_status(post(&r.app, &r.author, &cr, "submit", None).await, StatusCode::OK).await;
    assert_eq!(submitted["status"], "submitted");
    assert_eq!(submitted["required_approvals"], 1);
    let approval = json!({"decision": "approve", "comment": "looks good"});
    expect_problem(post(&r.app, &r.author, &cr, "approvals", Some(approval.clone())).await, StatusCode::FORBIDDEN, "not_an_approver").await;
    let approved = expect_status(post(&r.app, &r.bob, &cr, "approvals", Some(approval)).await, StatusCode::CREATED).await;
    assert_eq!(approved["status"], "approved");
    assert_eq!(approved["approvals"][0]["digests"], json!([r.a["digest"], r.b["digest"]]));

    let deploying = expect_status(post(&r.app, &r.author, &cr, "deploy", None).await, StatusCode::OK).await;
    assert_eq!(deploying["status"], "deploying");
    let deployments = deploying["deployments"].as_array().unwrap().clone();
    assert_eq!(deployments.len(), 2);
    for d in &deployments {
        let d = json!({"id": d});
        let done = r.app.wait_for_status(&r.acme, &d, "succeeded").await;
        assert_eq!(done["required_approvals"], 0, "the change request's approval stands for the deployment's");
    }
    let path = format!("/v1/change-requests/{}", cr["id"].as_str().unwrap());
    let mut status = Value::Null;
    for _ in 0..50 {
        status = expect_status(r.app.get(&path, &r.acme.admin).await, StatusCode::OK).await["status"].clone();
        if status == "completed" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, "completed", "it completes by itself when its deployments succeed");
    let completed = expect_status(post(&r.app, &r.author, &cr, "complete", None).await, StatusCode::OK).await;
    assert_eq!(completed["status"], "completed");
    assert_eq!(r.app.active(&r.acme, &r.prod).await.len(), 2);

    let audit = expect_status(r.app.get(&format!("/v1/audit?entity_id={}&limit=100", cr["id"].as_str().unwrap()), &r.acme.admin).await, StatusCode::OK).await;
    let steps: Vec<&str> = audit["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        steps,
        [
            "change_request.created",
            "change_request.submitted",
            "change_request.approved",
            "change_request.approvals_complete",
            "change_request.deploying",
            "change_request.deployments_created",
            "change_request.completed"
        ]
    );
    let verify = expect_status(r.app.get("/v1/audit/verify", &r.acme.admin).await, StatusCode::OK).await;
    assert_eq!(verify["ok"], true, "{verify}");
}

#[tokio::test]
async fn changing_the_items_of_an_approved_change_request_voids_its_approvals() {
    let r = release(2).await;
    let cr = r.draft(&[&r.a]).await;
    post(&r.app, &r.author, &cr, "submit", None).await;
    let approve = json!({"decision": "approve"});
    expect_status(post(&r.app, &r.bob, &cr, "approvals", Some(approve.clone())).await, StatusCode::CREATED).await;
    let approved = expect_status(post(&r.app, &r.carol, &cr, "approvals", Some(approve.clone())).await, StatusCode::CREATED).await;
    assert_eq!(approved["status"], "approved");

    let path = format!("/v1/change-requests/{}", cr["id"].as_str().unwrap());
    let edited = r.app.patch(&path, &r.author, json!({"items": [{"package_id": r.a["id"]}, {"package_id": r.b["id"]}]})).await;
    let edited = expect_status(edited, StatusCode::OK).await;
    assert_eq!(edited["status"], "submitted", "the approvals no longer count");
    expect_problem(post(&r.app, &r.author, &cr, "deploy", None).await, StatusCode::CONFLICT, "not_approved").await;
    let once = expect_status(post(&r.app, &r.bob, &cr, "approvals", Some(approve.clone())).await, StatusCode::CREATED).await;
    assert_eq!(once["status"], "submitted", "bob may approve the new items, and one of two is not enough");
    expect_problem(post(&r.app, &r.bob, &cr, "approvals", Some(approve.clone())).await, StatusCode::CONFLICT, "already_decided").await;
    let again = expect_status(post(&r.app, &r.carol, &cr, "approvals", Some(approve)).await, StatusCode::CREATED).await;
    assert_eq!(again["status"], "approved");
}

#[tokio::test]
async fn one_reject_ends_a_change_request() {
    let r = release(2).await;
    let cr = r.draft(&[&r.a]).await;
    post(&r.app, &r.author, &cr, "submit", None).await;
    let rejected =
        expect_status(post(&r.app, &r.bob, &cr, "approvals", Some(json!({"decision": "reject", "comment": "not now"}))).await, StatusCode::CREATED).await;
    assert_eq!(rejected["status"], "rejected");
    expect_problem(post(&r.app, &r.carol, &cr, "approvals", Some(json!({"decision": "approve"}))).await, StatusCode::CONFLICT, "not_submitted").await;
    let path = format!("/v1/change-requests/{}", cr["id"].as_str().unwrap());
    expect_problem(r.app.patch(&path, &r.author, json!({"name": "renamed"})).await, StatusCode::CONFLICT, "change_request_locked").await;
}

#[tokio::test]
async fn bad_change_requests_are_refused_and_another_tenant_sees_none_of_them() {
    let r = release(1).await;
    let body =
        |items: Value, links: Value| json!({"name": "R", "change_type": "normal", "target_environment_id": r.prod["id"], "items": items, "links": links});
    let cases = [
        (body(json!([]), json!([])), "validation_failed"),
        (body(json!([{"package_id": r.a["id"]}, {"package_id": r.a["id"]}]), json!([])), "validation_failed"),
        (body(json!([{"package_id": uuid::Uuid::now_v7()}]), json!([])), "validation_failed"),
        (body(json!([{"package_id": r.a["id"]}]), json!(["ftp://x"])), "validation_failed"),
        (json!({"name": "R", "change_type": "urgent", "target_environment_id": r.prod["id"], "items": [{"package_id": r.a["id"]}]}), "validation_failed"),
    ];
    for (b, code) in cases {
        expect_problem(r.app.post("/v1/change-requests", &r.author, b).await, StatusCode::UNPROCESSABLE_ENTITY, code).await;
    }
    let listed = expect_status(r.app.get("/v1/change-requests", &r.acme.admin).await, StatusCode::OK).await;
    assert_eq!(listed["items"], json!([]), "nothing was written");

    let cr = r.draft(&[&r.a]).await;
    let other = r.app.tenant("Globex").await;
    let path = format!("/v1/change-requests/{}", cr["id"].as_str().unwrap());
    expect_problem(r.app.get(&path, &other.admin).await, StatusCode::NOT_FOUND, "not_found").await;
    expect_problem(r.app.patch(&path, &other.admin, json!({"name": "mine"})).await, StatusCode::NOT_FOUND, "not_found").await;
    for step in ["submit", "deploy", "complete"] {
        expect_problem(post(&r.app, &other.admin, &cr, step, None).await, StatusCode::NOT_FOUND, "not_found").await;
    }
    expect_problem(post(&r.app, &other.admin, &cr, "approvals", Some(json!({"decision": "approve"}))).await, StatusCode::NOT_FOUND, "not_found").await;
    let mine = json!({"name": "R", "change_type": "normal", "target_environment_id": r.prod["id"], "items": [{"package_id": r.a["id"]}]});
    expect_problem(r.app.post("/v1/change-requests", &other.admin, mine).await, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(expect_status(r.app.get("/v1/change-requests", &other.admin).await, StatusCode::OK).await["items"], json!([]));
    assert_eq!(expect_status(r.app.get(&path, &r.acme.admin).await, StatusCode::OK).await["name"], "Quarterly release");
}
