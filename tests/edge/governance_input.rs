//! Governance edges: bad policies, bad or out-of-turn approvals, approvals
//! racing each other, freeze-window boundaries, change requests taken out of
//! order and audit filters. Each refusal is a problem+json with the right
//! status and `code`, and reading back shows nothing was written.

use crate::id_of;
use berth_tests::{Agent, TestApp, TestTenant, expect_invalid_field, expect_problem, expect_status};
use chrono::{DateTime, Duration, Utc};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// Acme's Production, with a runtime attached (no agent unless a test starts
/// one), its policy requiring `required_approvals`, two packaged processes,
/// a deployer (Ann) and three approvers (Bob, Carol, Dave).
struct Gov {
    app: TestApp,
    acme: TestTenant,
    prod: Value,
    runtime: Value,
    orders: Value,
    billing: Value,
    ann: String,
    bob: String,
    carol: String,
    dave: String,
}

const ANN: &str = "ann@acme.example";
const BOB: &str = "bob@acme.example";
const CAROL: &str = "carol@acme.example";
const DAVE: &str = "dave@acme.example";

async fn gov(required_approvals: u32) -> Gov {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let prod = app.environment(&acme, "Production", "production").await;
    let runtime = app.runtime(&acme, "atom").await;
    app.attach(&acme, &prod, &runtime).await;
    let orders = app.component(&acme, "Orders", "process", b"orders v1", &[]).await;
    let billing = app.component(&acme, "Billing", "process", b"billing v1", &[]).await;
    let orders = app.package(&acme, &orders, Some("v1")).await;
    let billing = app.package(&acme, &billing, Some("v1")).await;
    let ann = app.user_token(&acme.id, ANN, &["deployer"]);
    let bob = app.user_token(&acme.id, BOB, &["approver"]);
    let carol = app.user_token(&acme.id, CAROL, &["approver"]);
    let dave = app.user_token(&acme.id, DAVE, &["approver"]);
    let w = Gov { app, acme, prod, runtime, orders, billing, ann, bob, carol, dave };
    if required_approvals > 0 {
        expect_status(w.put_policy(&w.acme.admin, json!({"required_approvals": required_approvals}), None).await, StatusCode::OK).await;
    }
    w
}

impl Gov {
    fn policy_path(&self) -> String {
        format!("/v1/environments/{}/policy", id_of(&self.prod))
    }

    async fn put_policy(&self, token: &str, body: Value, if_match: Option<&str>) -> Response {
        let mut request = self.app.request(Method::PUT, &self.policy_path(), Some(token)).json(&body);
        if let Some(etag) = if_match {
            request = request.header("if-match", etag);
        }
        request.send().await.expect("the request is sent")
    }

    /// The policy as stored: its `ETag` header and body.
    async fn policy(&self) -> (String, Value) {
        let response = self.app.get(&self.policy_path(), &self.acme.admin).await;
        let etag = response.headers().get("etag").and_then(|v| v.to_str().ok()).expect("an ETag").to_string();
        (etag, expect_status(response, StatusCode::OK).await)
    }

    /// Replaces the policy with the current etag; returns it.
    async fn set_policy(&self, body: Value) -> Value {
        let (etag, _) = self.policy().await;
        expect_status(self.put_policy(&self.acme.admin, body, Some(&etag)).await, StatusCode::OK).await
    }

    fn deploy_body(&self, package: &Value) -> Value {
        json!({"package_id": package["id"], "environment_id": self.prod["id"], "notes": "release"})
    }

    /// Ann requests `package` in Production (201 expected).
    async fn request(&self, package: &Value) -> Value {
        expect_status(self.app.post("/v1/deployments", &self.ann, self.deploy_body(package)).await, StatusCode::CREATED).await
    }

    fn approvals_path(d: &Value) -> String {
        format!("/v1/deployments/{}/approvals", id_of(d))
    }

    async fn decide(&self, token: &str, d: &Value, body: Value) -> Response {
        self.app.post(&Self::approvals_path(d), token, body).await
    }

    async fn approve(&self, token: &str, d: &Value) -> Response {
        self.decide(token, d, json!({"decision": "approve", "comment": "ok"})).await
    }

    async fn deployment(&self, d: &Value) -> Value {
        expect_status(self.app.get(&format!("/v1/deployments/{}", id_of(d)), &self.acme.admin).await, StatusCode::OK).await
    }

    /// The deployment's timeline lines.
    async fn timeline(&self, d: &Value) -> Vec<String> {
        let events = expect_status(self.app.get(&format!("/v1/deployments/{}/events?limit=100", id_of(d)), &self.acme.admin).await, StatusCode::OK).await;
        events["items"].as_array().expect("items").iter().map(|e| e["message"].as_str().expect("a message").to_string()).collect()
    }

    /// What a refused decision must leave alone: the deployment (with its
    /// approvals), its timeline and the tenant's audit trail.
    async fn ledger(&self, d: &Value) -> Value {
        json!({"deployment": self.deployment(d).await, "timeline": self.timeline(d).await, "audit": self.app.audit(&self.acme).await})
    }

    /// The deployments of Production.
    async fn deployments(&self) -> Vec<Value> {
        let list =
            expect_status(self.app.get(&format!("/v1/deployments?environment_id={}&limit=100", id_of(&self.prod)), &self.acme.admin).await, StatusCode::OK)
                .await;
        list["items"].as_array().expect("items").clone()
    }

    fn change_body(&self, items: &[&Value]) -> Value {
        let items: Vec<Value> = items.iter().map(|p| json!({"package_id": p["id"]})).collect();
        json!({"name": "Quarterly release", "overview": "orders and billing", "change_type": "normal", "target_environment_id": self.prod["id"],
            "items": items, "links": ["https://tickets.acme.example/CHG-7"]})
    }

    /// A draft change request by `token` (201 expected).
    async fn change(&self, token: &str, items: &[&Value]) -> Value {
        expect_status(self.app.post("/v1/change-requests", token, self.change_body(items)).await, StatusCode::CREATED).await
    }

    async fn step(&self, token: &str, cr: &Value, step: &str, body: Option<Value>) -> Response {
        let request = self.app.request(Method::POST, &format!("/v1/change-requests/{}/{step}", id_of(cr)), Some(token));
        match body {
            Some(b) => request.json(&b),
            None => request,
        }
        .send()
        .await
        .expect("the request is sent")
    }

    /// A change request as stored: its `ETag` header and body.
    async fn read_change(&self, cr: &Value) -> (String, Value) {
        let response = self.app.get(&format!("/v1/change-requests/{}", id_of(cr)), &self.acme.admin).await;
        let etag = response.headers().get("etag").and_then(|v| v.to_str().ok()).expect("an ETag").to_string();
        (etag, expect_status(response, StatusCode::OK).await)
    }

    async fn patch_change(&self, token: &str, cr: &Value, if_match: Option<&str>, body: Value) -> Response {
        let mut request = self.app.request(Method::PATCH, &format!("/v1/change-requests/{}", id_of(cr)), Some(token)).json(&body);
        if let Some(etag) = if_match {
            request = request.header("if-match", etag);
        }
        request.send().await.expect("the request is sent")
    }

    /// The actions of the audit events matching `query`.
    async fn audit_actions(&self, query: &str) -> Vec<String> {
        let page = expect_status(self.app.get(&format!("/v1/audit?limit=100&{query}"), &self.acme.admin).await, StatusCode::OK).await;
        page["items"].as_array().expect("items").iter().map(|e| e["action"].as_str().expect("an action").to_string()).collect()
    }
}

fn at(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap_or_else(|| panic!("a time: {v}")).parse().expect("an RFC 3339 time")
}

fn count(lines: &[String], line: &str) -> usize {
    lines.iter().filter(|l| l.as_str() == line).count()
}

// ---------------------------------------------------------------- policies

#[tokio::test]
async fn a_bad_policy_is_refused_with_the_right_status_and_code_and_the_stored_policy_is_unchanged() {
    let w = gov(1).await;
    let globex = w.app.tenant("Globex").await;
    let globex_test = w.app.environment(&globex, "Test", "test").await;
    let (etag, stored) = w.policy().await;
    assert_eq!(stored["required_approvals"], 1);
    let trail = w.app.audit(&w.acme).await;
    let admin = w.acme.admin.as_str();

    // Not JSON at all: 400.
    let raw = w
        .app
        .request(Method::PUT, &w.policy_path(), Some(admin))
        .header("content-type", "application/json")
        .header("if-match", etag.as_str())
        .body(r#"{"required_approvals": 2,"#)
        .send()
        .await
        .expect("the request is sent");
    expect_problem(raw, StatusCode::BAD_REQUEST, "malformed_json").await;

    // JSON that is not a policy: 422 naming the field.
    let monday = "2026-01-05T08:00:00Z".parse::<DateTime<Utc>>().expect("a time");
    for (body, field) in [
        (json!({"required_approvals": 2, "approvers": [BOB]}), "approvers"),
        (json!({"required_approvals": -1}), "required_approvals"),
        (json!({"required_approvals": "two"}), "required_approvals"),
        (json!({"required_approvals": 1.5}), "required_approvals"),
        (json!({"freeze_windows": [{"start": "2026-12-24 00:00", "end": "2026-12-27T00:00:00Z"}]}), "freeze_windows[0].start"),
        (json!({"freeze_windows": [{"start": "2026-12-24T00:00:00Z", "end": "after christmas"}]}), "freeze_windows[0].end"),
        (json!({"freeze_windows": [{"start": "1767225600", "end": "2026-12-27T00:00:00Z"}]}), "freeze_windows[0].start"),
        (json!({"freeze_windows": [{"start": monday, "end": monday + Duration::weeks(1), "weekly": true}]}), "freeze_windows[0].end"),
        (json!({"freeze_windows": [{"start": monday, "end": monday + Duration::days(8), "weekly": true}]}), "freeze_windows[0].end"),
        (json!({"required_approvals": 1, "approver_roles": ["platform_admin"]}), "approver_roles"),
        (json!({"deployer_roles": ["platform_admin"]}), "deployer_roles"),
        (json!({"require_success_in": [globex_test["id"]]}), "require_success_in[0]"),
    ] {
        expect_invalid_field(w.put_policy(admin, body.clone(), Some(&etag)).await, field).await;
        expect_invalid_field(w.put_policy(admin, body, None).await, field).await;
    }

    // Another tenant's environment is refused exactly as one that never existed.
    let foreign = w.put_policy(admin, json!({"require_success_in": [globex_test["id"]]}), None).await;
    let foreign = expect_problem(foreign, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let ghost = w.put_policy(admin, json!({"require_success_in": [uuid::Uuid::now_v7()]}), None).await;
    assert_eq!(foreign, expect_problem(ghost, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await);
    assert!(!foreign.to_string().contains(&globex.id), "the refusal names nothing of Globex: {foreign}");

    // A stale or unreadable If-Match.
    let good = json!({"required_approvals": 2});
    for stale in ["\"0\"", "\"2\"", "\"99\"", "W/\"7\""] {
        expect_problem(w.put_policy(admin, good.clone(), Some(stale)).await, StatusCode::PRECONDITION_FAILED, "precondition_failed").await;
    }
    for malformed in ["seven", "\"1.0\"", "\"-1\"", "\"\""] {
        expect_problem(w.put_policy(admin, good.clone(), Some(malformed)).await, StatusCode::BAD_REQUEST, "invalid_if_match").await;
    }

    // Only admins replace a policy, even with its etag.
    for role in ["deployer", "approver", "viewer", "developer"] {
        let token = w.app.token(&w.acme.id, &[role]);
        expect_problem(w.put_policy(&token, good.clone(), Some(&etag)).await, StatusCode::FORBIDDEN, "forbidden").await;
        expect_problem(w.put_policy(&token, good.clone(), None).await, StatusCode::FORBIDDEN, "forbidden").await;
    }
    let all_but_admin = w.app.token(&w.acme.id, &["viewer", "developer", "deployer", "approver"]);
    expect_problem(w.put_policy(&all_but_admin, good.clone(), None).await, StatusCode::FORBIDDEN, "forbidden").await;

    // Nothing was written.
    assert_eq!(w.policy().await, (etag.clone(), stored), "the policy and its etag are as they were");
    assert_eq!(w.app.audit(&w.acme).await, trail, "no audit event");

    // A weekly window one second short of a week is fine: the limit is the week itself.
    let almost = json!({"freeze_windows": [{"start": monday, "end": monday + Duration::weeks(1) - Duration::seconds(1), "weekly": true}]});
    let accepted = expect_status(w.put_policy(admin, almost, Some(&etag)).await, StatusCode::OK).await;
    assert_eq!(accepted["freeze_windows"][0]["weekly"], true);
    assert_ne!(accepted["etag"], json!(etag), "a stored change gets a new etag");
}

#[tokio::test]
async fn a_policy_read_with_get_can_be_put_back_as_it_is() {
    let w = gov(0).await;
    let stored = w.set_policy(json!({"required_approvals": 2, "auto_rollback": true})).await;
    let (etag, read) = w.policy().await;
    assert_eq!(read, stored);
    // The body carries `etag`, documented as ignored on input: If-Match is what counts.
    let put_back = expect_status(w.put_policy(&w.acme.admin, read.clone(), Some(&etag)).await, StatusCode::OK).await;
    assert_eq!(put_back["required_approvals"], 2);
    assert_eq!(put_back["auto_rollback"], true);
    assert_ne!(put_back["etag"], read["etag"], "a stored policy gets a new etag");
    // A stale etag in the body does not stand in for If-Match, nor block it.
    let (etag, mut current) = w.policy().await;
    current["etag"] = json!("\"0\"");
    current["required_approvals"] = json!(1);
    assert_eq!(expect_status(w.put_policy(&w.acme.admin, current, Some(&etag)).await, StatusCode::OK).await["required_approvals"], 1);
}

// ---------------------------------------------------------------- approvals

#[tokio::test]
async fn a_bad_decision_on_a_deployment_is_refused_and_records_nothing() {
    let w = gov(1).await;
    let d = w.request(&w.orders).await;
    assert_eq!(d["status"], "pending_approval");
    let before = w.ledger(&d).await;

    for (body, field) in [
        (json!({"decision": "maybe"}), "decision"),
        (json!({"decision": "APPROVE"}), "decision"),
        (json!({"decision": true}), "decision"),
        (json!({"decision": "approve", "weight": 2}), "weight"),
        (json!({"decision": "approve", "comment": "x".repeat(2001)}), "comment"),
        (json!({"decision": "approve", "comment": "é".repeat(2001)}), "comment"),
        (json!({"decision": "reject", "comment": "x".repeat(2001)}), "comment"),
    ] {
        expect_invalid_field(w.decide(&w.bob, &d, body).await, field).await;
    }
    let missing = expect_problem(w.decide(&w.bob, &d, json!({"comment": "no decision"})).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert!(missing["errors"].to_string().contains("decision"), "the error names the missing decision: {missing}");
    let raw = w
        .app
        .request(Method::POST, &Gov::approvals_path(&d), Some(&w.bob))
        .header("content-type", "application/json")
        .body(r#"{"decision": "approve""#)
        .send()
        .await
        .expect("the request is sent");
    expect_problem(raw, StatusCode::BAD_REQUEST, "malformed_json").await;

    // Roles the policy does not take approvals from.
    for roles in [&["viewer"][..], &["developer"][..], &["deployer"][..], &["viewer", "developer", "deployer"][..]] {
        let token = w.app.token(&w.acme.id, roles);
        for decision in ["approve", "reject"] {
            let refused = w.decide(&token, &d, json!({"decision": decision})).await;
            expect_problem(refused, StatusCode::FORBIDDEN, "not_an_approver").await;
        }
    }
    assert_eq!(w.ledger(&d).await, before, "the deployment, its approvals, its timeline and the audit trail are unchanged");

    // 2000 characters is the limit, not past it.
    let approved = expect_status(w.decide(&w.bob, &d, json!({"decision": "approve", "comment": "é".repeat(2000)})).await, StatusCode::CREATED).await;
    assert_eq!(approved["status"], "queued");
    assert_eq!(approved["approvals"][0]["comment"].as_str().expect("a comment").chars().count(), 2000);
}

#[tokio::test]
async fn an_approver_of_a_suspended_tenant_cannot_decide_until_the_tenant_is_reinstated() {
    let w = gov(1).await;
    let d = w.request(&w.orders).await;
    let cr = w.change(&w.ann, &[&w.billing]).await;
    expect_status(w.step(&w.ann, &cr, "submit", None).await, StatusCode::OK).await;
    let tenant_path = format!("/platform/v1/tenants/{}", w.acme.id);
    expect_status(w.app.patch(&tenant_path, &w.app.platform_token(), json!({"suspended": true})).await, StatusCode::OK).await;
    let before = w.ledger(&d).await;
    let (cr_etag, _) = w.read_change(&cr).await;

    for decision in ["approve", "reject"] {
        expect_problem(w.decide(&w.bob, &d, json!({"decision": decision})).await, StatusCode::FORBIDDEN, "tenant_suspended").await;
        let on_change = w.step(&w.bob, &cr, "approvals", Some(json!({"decision": decision}))).await;
        expect_problem(on_change, StatusCode::FORBIDDEN, "tenant_suspended").await;
    }
    assert_eq!(w.ledger(&d).await, before, "the deployment still waits, with no approval");
    let (etag, change) = w.read_change(&cr).await;
    assert_eq!((etag, change["status"].clone(), change["approvals"].clone()), (cr_etag, json!("submitted"), json!([])));

    expect_status(w.app.patch(&tenant_path, &w.app.platform_token(), json!({"suspended": false})).await, StatusCode::OK).await;
    let approved = expect_status(w.approve(&w.bob, &d).await, StatusCode::CREATED).await;
    assert_eq!(approved["status"], "queued", "once reinstated, Bob's approval counts");
}

// ---------------------------------------------------------------- races

/// Sends the same request as each of `callers`, all at once; returns each
/// caller's status and body.
async fn all_at_once(w: &Gov, path: &str, callers: &[(&str, &str)], body: Value) -> Vec<(String, StatusCode, Value)> {
    let mut set = tokio::task::JoinSet::new();
    for (who, token) in callers {
        let request = w.app.request(Method::POST, path, Some(token)).json(&body);
        let who = who.to_string();
        set.spawn(async move {
            let response = request.send().await.expect("the request is sent");
            let status = response.status();
            let text = response.text().await.expect("a body");
            (who, status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
        });
    }
    let mut outcomes = vec![];
    while let Some(outcome) = set.join_next().await {
        outcomes.push(outcome.expect("the request task ends"));
    }
    outcomes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_approvers_racing_on_a_policy_of_two_release_each_deployment_exactly_once() {
    let w = gov(2).await;
    let _agent = Agent::start(&w.app, &w.runtime, None);
    let approvers = [(BOB, w.bob.as_str()), (CAROL, w.carol.as_str()), (DAVE, w.dave.as_str())];

    for package in [&w.orders, &w.billing] {
        let d = w.request(package).await;
        assert_eq!(d["status"], "pending_approval");
        let outcomes = all_at_once(&w, &Gov::approvals_path(&d), &approvers, json!({"decision": "approve", "comment": "racing"})).await;

        let mut recorded = BTreeSet::new();
        for (who, status, body) in &outcomes {
            match *status {
                StatusCode::CREATED => {
                    assert!(["pending_approval", "queued", "in_progress", "succeeded"].contains(&body["status"].as_str().unwrap_or("")), "{who}: {body}");
                    recorded.insert(who.clone());
                }
                StatusCode::CONFLICT => assert_eq!(body["code"], "not_pending_approval", "{who} is refused cleanly: {body}"),
                other => panic!("{who}: an approval is recorded or refused cleanly, not {other}: {body}"),
            }
        }
        assert!(recorded.len() >= 2, "at least the two approvals the policy needs are recorded: {outcomes:?}");

        let done = w.app.wait_for_status(&w.acme, &d, "succeeded").await;
        let approvals = done["approvals"].as_array().expect("approvals");
        let approved_by: BTreeSet<String> = approvals.iter().map(|a| a["approver"].as_str().expect("an approver").to_string()).collect();
        assert_eq!(approved_by, recorded, "exactly the approvals answered 201 are recorded: {done}");
        assert!((2..=3).contains(&approvals.len()), "{done}");
        for a in approvals {
            assert_eq!(a["decision"], "approve");
            assert_eq!(a["digests"], json!([package["digest"]]), "each approval is bound to the deployment's digest: {a}");
        }
        let timeline = w.timeline(&d).await;
        assert_eq!(count(&timeline, "Approvals complete: queued"), 1, "released exactly once: {timeline:?}");
        let targets = expect_status(w.app.get(&format!("/v1/deployments/{}/targets", id_of(&d)), &w.acme.admin).await, StatusCode::OK).await;
        assert_eq!(targets["items"].as_array().expect("items").len(), 1, "one job for the one runtime: {targets}");
        let audited = w.audit_actions(&format!("entity_type=deployment&entity_id={}", id_of(&d))).await;
        assert_eq!(audited.iter().filter(|a| *a == "deployment.approved").count(), recorded.len(), "{audited:?}");
    }
    let deployments = w.deployments().await;
    assert_eq!(deployments.len(), 2, "one deployment per request, none duplicated: {deployments:?}");
    let verify = expect_status(w.app.get("/v1/audit/verify", &w.acme.admin).await, StatusCode::OK).await;
    assert_eq!(verify["ok"], true, "the chain survives the race: {verify}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_concurrent_decisions_by_the_same_approver_count_once() {
    let w = gov(2).await;
    for package in [&w.orders, &w.billing] {
        let d = w.request(package).await;
        let outcomes = all_at_once(&w, &Gov::approvals_path(&d), &[(BOB, w.bob.as_str()), (BOB, w.bob.as_str())], json!({"decision": "approve"})).await;
        let mut statuses: Vec<u16> = outcomes.iter().map(|(_, s, _)| s.as_u16()).collect();
        statuses.sort();
        assert_eq!(statuses, [201, 409], "one decision is recorded, the other refused: {outcomes:?}");
        let (_, _, refused) = outcomes.iter().find(|(_, s, _)| *s == StatusCode::CONFLICT).expect("a refusal");
        assert_eq!(refused["code"], "already_decided", "{refused}");

        let now = w.deployment(&d).await;
        assert_eq!(now["status"], "pending_approval", "Bob's approval counts once: one of two");
        let approvers: Vec<&str> = now["approvals"].as_array().expect("approvals").iter().map(|a| a["approver"].as_str().expect("an approver")).collect();
        assert_eq!(approvers, [BOB]);
        let audited = w.audit_actions(&format!("entity_type=deployment&entity_id={}", id_of(&d))).await;
        assert_eq!(audited, ["deployment.requested", "deployment.approved"]);
        let released = expect_status(w.approve(&w.carol, &d).await, StatusCode::CREATED).await;
        assert_eq!(released["status"], "queued", "Carol's is the second approval");
    }
}

/// One approval that completes the count and one reject, sent at once.
async fn approve_and_reject_at_once(w: &Gov, path: &str) -> Vec<(String, StatusCode, Value)> {
    let mut set = tokio::task::JoinSet::new();
    for (who, token, decision) in [(CAROL, w.carol.clone(), "approve"), (DAVE, w.dave.clone(), "reject")] {
        let request = w.app.request(Method::POST, path, Some(&token)).json(&json!({"decision": decision, "comment": format!("{decision} (racing)")}));
        set.spawn(async move {
            let response = request.send().await.expect("the request is sent");
            let status = response.status();
            let text = response.text().await.expect("a body");
            (who.to_string(), status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
        });
    }
    let mut outcomes = vec![];
    while let Some(outcome) = set.join_next().await {
        outcomes.push(outcome.expect("the request task ends"));
    }
    outcomes
}

/// What is wrong, if anything, with a race between Carol's approval (the
/// last one needed) and Dave's reject: one reject ends the request, so a
/// reject answered 201 and recorded must leave it `rejected`.
fn reject_ignored(outcomes: &[(String, StatusCode, Value)], after: &Value) -> Option<String> {
    for (who, status, body) in outcomes {
        match *status {
            StatusCode::CREATED => {}
            StatusCode::CONFLICT if ["not_pending_approval", "not_submitted"].contains(&body["code"].as_str().unwrap_or("")) => {}
            other => return Some(format!("{who} was answered {other}: {body}")),
        }
    }
    let recorded: Vec<String> = after["approvals"]
        .as_array()
        .expect("approvals")
        .iter()
        .map(|a| format!("{} {}", a["approver"].as_str().unwrap_or("?"), a["decision"].as_str().unwrap_or("?")))
        .collect();
    let answers: Vec<String> =
        outcomes.iter().map(|(who, status, body)| format!("{who}: {} {}", status.as_u16(), body["status"].as_str().unwrap_or(""))).collect();
    let recorded_reject = recorded.iter().any(|r| r.ends_with(" reject"));
    let dave_201 = outcomes.iter().any(|(who, status, _)| who == DAVE && *status == StatusCode::CREATED);
    if (recorded_reject || dave_201) && after["status"] != "rejected" {
        return Some(format!("it is {} with decisions [{}]; answers [{}]", after["status"], recorded.join(", "), answers.join(", ")));
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_approval_and_a_reject_racing_never_leave_a_recorded_reject_on_a_deployment_or_change_request_that_goes_ahead() {
    // The race is won either way at random: enough rounds to see both outcomes.
    const ROUNDS: usize = 16;
    let w = gov(2).await;
    let mut ignored = vec![];
    for round in 0..ROUNDS {
        // A component of its own each round, so that no deployment holds another's slot.
        let process = w.app.component(&w.acme, &format!("Process {round}"), "process", format!("round {round}").as_bytes(), &[]).await;
        let package = w.app.package(&w.acme, &process, None).await;
        let d = w.request(&package).await;
        expect_status(w.approve(&w.bob, &d).await, StatusCode::CREATED).await;
        let outcomes = approve_and_reject_at_once(&w, &Gov::approvals_path(&d)).await;
        if let Some(wrong) = reject_ignored(&outcomes, &w.deployment(&d).await) {
            ignored.push(format!("deployment, round {round}: {wrong}"));
        }

        let cr = w.change(&w.ann, &[&package]).await;
        expect_status(w.step(&w.ann, &cr, "submit", None).await, StatusCode::OK).await;
        expect_status(w.step(&w.bob, &cr, "approvals", Some(json!({"decision": "approve"}))).await, StatusCode::CREATED).await;
        let outcomes = approve_and_reject_at_once(&w, &format!("/v1/change-requests/{}/approvals", id_of(&cr))).await;
        if let Some(wrong) = reject_ignored(&outcomes, &w.read_change(&cr).await.1) {
            ignored.push(format!("change request, round {round}: {wrong}"));
        }
    }
    assert!(ignored.is_empty(), "a recorded reject was ignored in {} of {} races:\n{}", ignored.len(), 2 * ROUNDS, ignored.join("\n"));
}

// ---------------------------------------------------------------- freeze windows

// ---------------------------------------------------------------- change requests

#[tokio::test]
async fn a_bad_change_request_is_refused_naming_the_field_and_nothing_is_written() {
    let w = gov(1).await;
    let legacy = w.app.component(&w.acme, "Legacy", "process", b"legacy", &[]).await;
    let legacy = w.app.package(&w.acme, &legacy, Some("v1")).await;
    expect_status(w.app.delete(&format!("/v1/packages/{}", id_of(&legacy)), &w.acme.admin).await, StatusCode::NO_CONTENT).await;
    let trail = w.app.audit(&w.acme).await;
    let with = |field: &str, value: Value| {
        let mut body = w.change_body(&[&w.orders]);
        body[field] = value;
        body
    };
    let links = |n: usize| json!((0..n).map(|i| format!("https://tickets.acme.example/CHG-{i}")).collect::<Vec<_>>());

    for (body, field) in [
        (with("change_type", json!("urgent")), "change_type"),
        (with("change_type", json!("Normal")), "change_type"),
        (with("items", json!([])), "items"),
        (with("items", json!([{"package_id": w.orders["id"]}, {"package_id": w.orders["id"]}])), "items"),
        (with("items", json!([{"package_id": w.orders["id"]}, {"package_id": legacy["id"]}])), "items[1]"),
        (with("items", json!([{"package_id": w.orders["id"], "pinned": true}])), "items[0].pinned"),
        (with("links", links(21)), "links"),
        (with("links", json!(["ftp://tickets.acme.example/CHG-7"])), "links[0]"),
        (with("priority", json!("high")), "priority"),
    ] {
        expect_invalid_field(w.app.post("/v1/change-requests", &w.ann, body).await, field).await;
    }
    let deleted = expect_invalid_field(w.app.post("/v1/change-requests", &w.ann, with("items", json!([{"package_id": legacy["id"]}]))).await, "items[0]").await;
    assert!(deleted["errors"][0]["message"].as_str().expect("a message").contains("deleted"), "the error says the package was deleted: {deleted}");

    // Readers and approvers do not draft change requests.
    for role in ["viewer", "approver", "developer"] {
        let token = w.app.token(&w.acme.id, &[role]);
        expect_problem(w.app.post("/v1/change-requests", &token, w.change_body(&[&w.orders])).await, StatusCode::FORBIDDEN, "forbidden").await;
    }
    let listed = expect_status(w.app.get("/v1/change-requests", &w.acme.admin).await, StatusCode::OK).await;
    assert_eq!(listed["items"], json!([]), "no change request was written");
    assert_eq!(w.app.audit(&w.acme).await, trail, "no audit event");

    // 20 links is the limit, not past it; a PATCH breaking the rules changes nothing.
    let cr = expect_status(w.app.post("/v1/change-requests", &w.ann, with("links", links(20))).await, StatusCode::CREATED).await;
    let (etag, stored) = w.read_change(&cr).await;
    for (body, field) in [
        (json!({"links": links(21)}), "links"),
        (json!({"items": [{"package_id": legacy["id"]}]}), "items[0]"),
        (json!({"items": [{"package_id": w.billing["id"]}, {"package_id": w.billing["id"]}]}), "items"),
        (json!({"items": []}), "items"),
        (json!({"change_type": "urgent"}), "change_type"),
        (json!({"status": "approved"}), "status"),
    ] {
        expect_invalid_field(w.patch_change(&w.ann, &cr, Some(&etag), body).await, field).await;
    }
    let viewer = w.app.token(&w.acme.id, &["viewer"]);
    expect_problem(w.patch_change(&viewer, &cr, Some(&etag), json!({"name": "Mine"})).await, StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(w.read_change(&cr).await, (etag, stored), "the change request is as it was");
}

#[tokio::test]
async fn change_request_steps_taken_out_of_turn_are_refused_and_change_nothing() {
    let w = gov(1).await;
    // Erin may both draft and approve: she still may not approve her own.
    let erin = w.app.user_token(&w.acme.id, "erin@acme.example", &["deployer", "approver"]);
    let cr = w.change(&erin, &[&w.orders, &w.billing]).await;
    let first_etag = cr["etag"].as_str().expect("an etag").to_string();

    // If-Match: the current etag wins once; the stale one is then refused.
    let renamed = expect_status(w.patch_change(&erin, &cr, Some(&first_etag), json!({"name": "Q3 release"})).await, StatusCode::OK).await;
    assert_ne!(renamed["etag"], json!(first_etag));
    let stale = w.patch_change(&erin, &cr, Some(&first_etag), json!({"overview": "overwritten"})).await;
    expect_problem(stale, StatusCode::PRECONDITION_FAILED, "precondition_failed").await;
    expect_problem(w.patch_change(&erin, &cr, Some("latest"), json!({"overview": "overwritten"})).await, StatusCode::BAD_REQUEST, "invalid_if_match").await;
    let (etag, draft) = w.read_change(&cr).await;
    assert_eq!((draft["name"].as_str(), draft["overview"].as_str()), (Some("Q3 release"), Some("orders and billing")));

    // A draft is neither approved nor deployed.
    expect_problem(w.step(&erin, &cr, "deploy", None).await, StatusCode::CONFLICT, "not_approved").await;
    expect_problem(w.step(&w.bob, &cr, "approvals", Some(json!({"decision": "approve"}))).await, StatusCode::CONFLICT, "not_submitted").await;
    assert_eq!(w.read_change(&cr).await, (etag, draft));

    let submitted = expect_status(w.step(&erin, &cr, "submit", None).await, StatusCode::OK).await;
    assert_eq!(submitted["status"], "submitted");
    let (etag, submitted) = w.read_change(&cr).await;
    let trail = w.app.audit(&w.acme).await;
    expect_problem(w.step(&erin, &cr, "submit", None).await, StatusCode::CONFLICT, "not_draft").await;
    expect_problem(w.step(&erin, &cr, "deploy", None).await, StatusCode::CONFLICT, "not_approved").await;
    for decision in ["approve", "reject"] {
        let own = w.step(&erin, &cr, "approvals", Some(json!({"decision": decision, "comment": "mine"}))).await;
        expect_problem(own, StatusCode::FORBIDDEN, "self_approval_forbidden").await;
    }
    let viewer = w.app.token(&w.acme.id, &["viewer"]);
    expect_problem(w.step(&viewer, &cr, "approvals", Some(json!({"decision": "approve"}))).await, StatusCode::FORBIDDEN, "not_an_approver").await;
    expect_invalid_field(w.step(&w.bob, &cr, "approvals", Some(json!({"decision": "maybe"}))).await, "decision").await;
    assert_eq!(w.read_change(&cr).await, (etag, submitted), "still submitted, with no approval");
    assert_eq!(w.app.audit(&w.acme).await, trail, "no audit event");
    assert_eq!(w.deployments().await, Vec::<Value>::new(), "no deployment was created");

    let approved = expect_status(w.step(&w.bob, &cr, "approvals", Some(json!({"decision": "approve"}))).await, StatusCode::CREATED).await;
    assert_eq!(approved["status"], "approved", "another approver's approval counts");
}

// ---------------------------------------------------------------- audit

#[tokio::test]
async fn the_audit_list_refuses_times_that_are_not_rfc_3339_and_filters_exactly() {
    let w = gov(2).await;
    let d = w.request(&w.orders).await;
    expect_status(w.approve(&w.bob, &d).await, StatusCode::CREATED).await;
    let released = expect_status(w.approve(&w.carol, &d).await, StatusCode::CREATED).await;
    assert_eq!(released["status"], "queued");
    // No agent runs: dispatched, it stays in progress (and every step so far is audited).
    w.app.wait_for_status(&w.acme, &d, "in_progress").await;

    for (query, field) in [
        ("from=yesterday", "from"),
        ("to=2026-13-01T00:00:00Z", "to"),
        ("from=1700000000", "from"),
        ("to=2026-01-01", "to"),
        ("from=2026-01-01T00:00:00Z&to=soon", "to"),
    ] {
        expect_invalid_field(w.app.get(&format!("/v1/audit?{query}"), &w.acme.admin).await, field).await;
    }

    // Filters that match nothing give an empty page, not an error.
    let future = (Utc::now() + Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    for query in [
        format!("entity_id={}", uuid::Uuid::now_v7()),
        "action=deployment.teleported".to_string(),
        "actor=nobody@acme.example".to_string(),
        format!("from={future}"),
        "to=1970-01-01T00:00:00Z".to_string(),
        format!("entity_type=change_request&entity_id={}", id_of(&d)),
        format!("entity_id={}&actor={DAVE}", id_of(&d)),
    ] {
        assert_eq!(w.audit_actions(&query).await, Vec::<String>::new(), "{query}");
    }

    // A deployment's own events, in order.
    let page = expect_status(w.app.get(&format!("/v1/audit?entity_type=deployment&entity_id={}", id_of(&d)), &w.acme.admin).await, StatusCode::OK).await;
    let events = page["items"].as_array().expect("items");
    let steps: Vec<(&str, &str)> = events.iter().map(|e| (e["action"].as_str().expect("an action"), e["actor"]["id"].as_str().expect("an actor"))).collect();
    assert_eq!(
        steps,
        [
            ("deployment.requested", ANN),
            ("deployment.approved", BOB),
            ("deployment.approved", CAROL),
            ("deployment.approvals_complete", CAROL),
            ("deployment.started", "dispatcher")
        ]
    );
    assert!(events.windows(2).all(|p| p[0]["seq"].as_u64() < p[1]["seq"].as_u64() && at(&p[0]["at"]) <= at(&p[1]["at"])), "oldest first: {page}");
    assert_eq!(events[1]["summary"]["digests"], json!([w.orders["digest"]]), "the approval's digest is audited");

    // `from` includes its instant, `to` excludes it.
    let (requested_at, approved_at) = (events[0]["at"].as_str().expect("a time"), events[1]["at"].as_str().expect("a time"));
    let window = format!("entity_id={}&from={requested_at}&to={approved_at}", id_of(&d));
    assert_eq!(w.audit_actions(&window).await, ["deployment.requested"]);
    assert_eq!(
        w.audit_actions(&format!("entity_id={}&from={approved_at}", id_of(&d))).await,
        ["deployment.approved", "deployment.approved", "deployment.approvals_complete", "deployment.started"]
    );
}
