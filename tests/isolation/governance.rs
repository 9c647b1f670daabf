//! Governance: tenant B's admin, approver and deployer can neither read nor
//! change tenant A's policy, approvals, change requests or audit trail, even
//! when they know every id of A's; A's own approvers go on as before.

use crate::{MALLORY, ids, send};
use berth_tests::{TestApp, TestTenant, expect_problem, expect_status};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

/// Tenant B's approver and deployer, as A's audit trail would record them.
const BEA: &str = "bea@globex.example";
const DAN: &str = "dan@globex.example";

/// Tenant A (Acme): Production requiring one approval, a deployment of
/// `Orders` waiting for it (requested by Ann) and a submitted change request
/// releasing `Billing`. Tenant B (Globex): its own Production, a runtime and a
/// package, with an admin (`MALLORY`), an approver (`BEA`) and a deployer (`DAN`).
struct Governed {
    app: TestApp,
    a: TestTenant,
    a_env: Value,
    a_orders: Value,
    a_billing: Value,
    a_deployment: Value,
    a_change: Value,
    /// A's approver (Bob), who has not decided yet.
    a_approver: String,
    b: TestTenant,
    b_env: Value,
    b_package: Value,
    b_approver: String,
    b_deployer: String,
}

async fn governed() -> Governed {
    let app = TestApp::spawn().await;
    let a = app.tenant("Acme").await;
    let a_env = app.environment(&a, "Production", "production").await;
    let a_runtime = app.runtime(&a, "acme-atom").await;
    app.attach(&a, &a_env, &a_runtime).await;
    let policy_path = format!("/v1/environments/{}/policy", id(&a_env));
    expect_status(send(&app, Method::PUT, &policy_path, &a.admin, Some(&json!({"required_approvals": 1}))).await, StatusCode::OK).await;
    let orders = app.component(&a, "Orders", "process", b"acme orders", &[]).await;
    let billing = app.component(&a, "Billing", "process", b"acme billing", &[]).await;
    let a_orders = app.package(&a, &orders, Some("v1")).await;
    let a_billing = app.package(&a, &billing, Some("v1")).await;
    let ann = app.user_token(&a.id, "ann@acme.example", &["deployer"]);
    let requested = app.post("/v1/deployments", &ann, json!({"package_id": a_orders["id"], "environment_id": a_env["id"], "notes": "acme release"})).await;
    let a_deployment = expect_status(requested, StatusCode::CREATED).await;
    assert_eq!(a_deployment["status"], "pending_approval");
    let draft = json!({"name": "Acme billing release", "change_type": "normal", "target_environment_id": a_env["id"],
        "items": [{"package_id": a_billing["id"]}], "links": ["https://tickets.acme.example/CHG-1"]});
    let a_change = expect_status(app.post("/v1/change-requests", &ann, draft).await, StatusCode::CREATED).await;
    let submitted = expect_status(send(&app, Method::POST, &format!("/v1/change-requests/{}/submit", id(&a_change)), &ann, None).await, StatusCode::OK).await;
    assert_eq!(submitted["status"], "submitted");
    let a_approver = app.user_token(&a.id, "bob@acme.example", &["approver"]);

    let mut b = app.tenant("Globex").await;
    b.admin = app.user_token(&b.id, MALLORY, &["admin"]);
    let b_env = app.environment(&b, "Production", "production").await;
    let b_runtime = app.runtime(&b, "globex-atom").await;
    app.attach(&b, &b_env, &b_runtime).await;
    let b_process = app.component(&b, "Orders", "process", b"globex orders", &[]).await;
    let b_package = app.package(&b, &b_process, Some("v1")).await;
    let b_approver = app.user_token(&b.id, BEA, &["approver"]);
    let b_deployer = app.user_token(&b.id, DAN, &["deployer"]);
    Governed { app, a, a_env, a_orders, a_billing, a_deployment, a_change, a_approver, b, b_env, b_package, b_approver, b_deployer }
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap_or_else(|| panic!("an id in {v}")).to_string()
}

/// A's governance state as A sees it.
#[derive(Debug, PartialEq)]
struct Ledger {
    policy_etag: String,
    policy: Value,
    deployment: Value,
    change_etag: String,
    change: Value,
    audit: Vec<Value>,
}

impl Governed {
    fn b_users(&self) -> [(&'static str, &str); 3] {
        [(MALLORY, self.b.admin.as_str()), (BEA, self.b_approver.as_str()), (DAN, self.b_deployer.as_str())]
    }

    /// A's ids that nothing B receives may contain.
    fn a_secrets(&self) -> Vec<String> {
        [&self.a_env, &self.a_orders, &self.a_billing, &self.a_deployment, &self.a_change].iter().map(|v| id(v)).chain([self.a.id.clone()]).collect()
    }

    async fn a_read(&self, path: &str) -> (String, Value) {
        let response = self.app.get(path, &self.a.admin).await;
        let etag = response.headers().get("etag").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        (etag, expect_status(response, StatusCode::OK).await)
    }

    async fn a_ledger(&self) -> Ledger {
        let (policy_etag, policy) = self.a_read(&format!("/v1/environments/{}/policy", id(&self.a_env))).await;
        let (_, deployment) = self.a_read(&format!("/v1/deployments/{}", id(&self.a_deployment))).await;
        let (change_etag, change) = self.a_read(&format!("/v1/change-requests/{}", id(&self.a_change))).await;
        Ledger { policy_etag, policy, deployment, change_etag, change, audit: self.app.audit(&self.a).await }
    }

    /// Asserts A's trail holds nothing done by any of B's users.
    async fn assert_a_trail_has_nothing_of_b(&self) {
        let audit = self.app.audit(&self.a).await;
        for (who, _) in self.b_users() {
            assert!(!audit.iter().any(|e| e["actor"]["id"] == who), "{who} left nothing in A's trail: {audit:?}");
        }
    }
}

/// Asserts a 404 `not_found` that names nothing of A's.
async fn expect_hidden(response: Response, what: &str, secrets: &[String]) {
    let problem = expect_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    for secret in secrets {
        assert!(!problem.to_string().contains(secret.as_str()), "{what}: the refusal reveals nothing of A's: {problem}");
    }
}

#[tokio::test]
async fn tenant_b_can_neither_read_nor_change_tenant_a_s_policy_approvals_or_change_requests() {
    let w = governed().await;
    let before = w.a_ledger().await;
    assert_eq!(before.policy["required_approvals"], 1);
    assert_eq!(before.deployment["status"], "pending_approval");
    assert_eq!(before.change["status"], "submitted");
    let secrets = w.a_secrets();
    let (env, d, cr) = (id(&w.a_env), id(&w.a_deployment), id(&w.a_change));
    let a_policy_etag = before.policy_etag.clone();

    for (who, token) in w.b_users() {
        // A's policy: neither read nor replaced, with or without A's etag.
        let policy_path = format!("/v1/environments/{env}/policy");
        expect_hidden(w.app.get(&policy_path, token).await, &format!("{who}: GET policy"), &secrets).await;
        for if_match in [None, Some(a_policy_etag.as_str())] {
            let mut put = w.app.request(Method::PUT, &policy_path, Some(token)).json(&json!({"required_approvals": 0}));
            if let Some(etag) = if_match {
                put = put.header("if-match", etag);
            }
            expect_hidden(put.send().await.expect("the request is sent"), &format!("{who}: PUT policy (If-Match {if_match:?})"), &secrets).await;
        }

        // A's deployment: neither approved nor rejected.
        for decision in ["approve", "reject"] {
            let body = json!({"decision": decision, "comment": format!("{decision} by {who}")});
            let response = send(&w.app, Method::POST, &format!("/v1/deployments/{d}/approvals"), token, Some(&body)).await;
            expect_hidden(response, &format!("{who}: {decision} A's deployment"), &secrets).await;
        }

        // A's change request: no endpoint answers for it.
        let cr_path = format!("/v1/change-requests/{cr}");
        let approve = json!({"decision": "approve"});
        let rename = json!({"name": "globex was here"});
        for (method, path, body) in [
            (Method::GET, cr_path.clone(), None),
            (Method::PATCH, cr_path.clone(), Some(&rename)),
            (Method::POST, format!("{cr_path}/submit"), None),
            (Method::POST, format!("{cr_path}/approvals"), Some(&approve)),
            (Method::POST, format!("{cr_path}/deploy"), None),
            (Method::POST, format!("{cr_path}/complete"), None),
        ] {
            let what = format!("{who}: {method} {path}");
            expect_hidden(send(&w.app, method, &path, token, body).await, &what, &secrets).await;
        }
        // A PATCH carrying A's etag is no better.
        let with_etag = w.app.request(Method::PATCH, &cr_path, Some(token)).header("if-match", before.change_etag.as_str()).json(&rename);
        expect_hidden(with_etag.send().await.expect("the request is sent"), &format!("{who}: PATCH with A's etag"), &secrets).await;
    }

    // Creating a change request aimed at A's environment is 404, whoever's packages it names.
    for items in [json!([{"package_id": w.b_package["id"]}]), json!([{"package_id": w.a_orders["id"]}])] {
        let body = json!({"name": "Into Acme", "change_type": "emergency", "target_environment_id": env, "items": items});
        for (who, token) in [(MALLORY, w.b.admin.as_str()), (DAN, w.b_deployer.as_str())] {
            expect_hidden(w.app.post("/v1/change-requests", token, body.clone()).await, &format!("{who}: a change request into A's environment"), &secrets)
                .await;
        }
    }

    // Naming A's packages in a change request to B's own environment: 422 on
    // the item, worded exactly as for a package that never existed.
    let ghost = uuid::Uuid::now_v7().to_string();
    let mut refusals = vec![];
    for package in [id(&w.a_orders), id(&w.a_billing), ghost] {
        let body = json!({"name": "Borrowed", "change_type": "normal", "target_environment_id": w.b_env["id"],
            "items": [{"package_id": w.b_package["id"]}, {"package_id": package}]});
        let problem = expect_problem(w.app.post("/v1/change-requests", &w.b_deployer, body).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(problem["errors"], json!([{"field": "items[1]", "message": "no such package"}]), "{problem}");
        for secret in &secrets {
            assert!(!problem.to_string().contains(secret.as_str()), "the refusal reveals nothing of A's: {problem}");
        }
        refusals.push(problem);
    }
    assert_eq!(refusals[0], refusals[2], "A's package is refused exactly as a package that never existed");
    assert_eq!(refusals[1], refusals[2]);

    // B's own change request works, and B's list shows it alone.
    let own =
        json!({"name": "Globex release", "change_type": "standard", "target_environment_id": w.b_env["id"], "items": [{"package_id": w.b_package["id"]}]});
    let b_change = expect_status(w.app.post("/v1/change-requests", &w.b_deployer, own).await, StatusCode::CREATED).await;
    for (who, token) in w.b_users() {
        let listed = expect_status(w.app.get("/v1/change-requests?limit=100", token).await, StatusCode::OK).await;
        assert_eq!(ids(&listed), vec![id(&b_change)], "{who} lists B's change request only: {listed}");
    }

    // B's audit trail shows nothing of A's, however it is filtered.
    let a_requester = "ann@acme.example";
    for query in [
        String::new(),
        format!("entity_id={d}"),
        format!("entity_type=deployment&entity_id={d}"),
        format!("entity_id={cr}"),
        format!("entity_type=change_request&entity_id={cr}"),
        format!("entity_type=environment&entity_id={env}"),
        format!("actor={a_requester}"),
        "action=deployment.requested".to_string(),
        "action=policy.updated".to_string(),
        "entity_type=change_request".to_string(),
    ] {
        let page = expect_status(w.app.get(&format!("/v1/audit?limit=100&{query}"), &w.b.admin).await, StatusCode::OK).await;
        let items = page["items"].as_array().expect("items");
        for secret in secrets.iter().map(String::as_str).chain([a_requester]) {
            assert!(!page.to_string().contains(secret), "B's audit with {query:?} shows nothing of A's ({secret}): {page}");
        }
        if query.contains(&d) || query.contains(&cr) || query.contains(&env) || query.contains(a_requester) {
            assert_eq!(items.len(), 0, "B's audit with {query:?} is empty: {page}");
        }
    }
    let b_trail = w.app.audit(&w.b).await;
    assert!(b_trail.iter().any(|e| e["entity_id"] == b_change["id"]), "B's own change request is in B's trail");
    let verify = expect_status(w.app.get("/v1/audit/verify", &w.b.admin).await, StatusCode::OK).await;
    assert_eq!(verify["ok"], true, "{verify}");
    assert_eq!(verify["checked"], b_trail.len(), "B's chain covers B's events only");

    // A's world is as it was.
    let after = w.a_ledger().await;
    assert_eq!(after.policy_etag, a_policy_etag, "A's policy keeps its etag");
    assert_eq!(after.policy["required_approvals"], 1);
    assert_eq!(after.deployment["status"], "pending_approval");
    assert_eq!(after.deployment["approvals"], json!([]), "no approval was recorded on A's deployment");
    assert_eq!(after.change["status"], "submitted");
    assert_eq!(after.change["approvals"], json!([]));
    assert_eq!(after.change["name"], "Acme billing release");
    assert_eq!(after, before);
    w.assert_a_trail_has_nothing_of_b().await;
}

#[tokio::test]
async fn an_approver_of_tenant_b_cannot_approve_tenant_a_s_deployment_even_knowing_its_id_but_a_s_own_approver_still_can() {
    let w = governed().await;
    let before = w.a_ledger().await;
    let secrets = w.a_secrets();
    let d = id(&w.a_deployment);
    let approve = json!({"decision": "approve", "comment": "lgtm"});

    // Bea approves tenant B's work; A's deployment is not hers to see, by id
    // or by any id near it.
    for guess in [d.clone(), d.to_uppercase(), uuid::Uuid::now_v7().to_string()] {
        let response = send(&w.app, Method::POST, &format!("/v1/deployments/{guess}/approvals"), &w.b_approver, Some(&approve)).await;
        expect_hidden(response, &format!("Bea approving {guess}"), &secrets).await;
    }
    let on_change = send(&w.app, Method::POST, &format!("/v1/change-requests/{}/approvals", id(&w.a_change)), &w.b_approver, Some(&approve)).await;
    expect_hidden(on_change, "Bea approving A's change request", &secrets).await;
    assert_eq!(w.a_ledger().await, before, "one approval is all A's policy needs: had Bea's counted, the deployment would have moved");

    // A's own approver still decides.
    let approved = send(&w.app, Method::POST, &format!("/v1/deployments/{d}/approvals"), &w.a_approver, Some(&approve)).await;
    let approved = expect_status(approved, StatusCode::CREATED).await;
    assert_eq!(approved["status"], "queued", "Bob's approval releases it");
    let approvers: Vec<&str> = approved["approvals"].as_array().expect("approvals").iter().map(|a| a["approver"].as_str().expect("an approver")).collect();
    assert_eq!(approvers, ["bob@acme.example"]);
    assert_eq!(approved["approvals"][0]["digests"], json!([w.a_orders["digest"]]));
    let on_change = send(&w.app, Method::POST, &format!("/v1/change-requests/{}/approvals", id(&w.a_change)), &w.a_approver, Some(&approve)).await;
    assert_eq!(expect_status(on_change, StatusCode::CREATED).await["status"], "approved", "and approves A's change request");
    w.assert_a_trail_has_nothing_of_b().await;
}
