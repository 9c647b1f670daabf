//! Seed scenario 5 (docs/scenarios.md) and the policy rules around it.

use berth_tests::{Agent, TestApp, TestTenant, expect_problem, expect_status};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn put_policy(app: &TestApp, t: &TestTenant, env: &Value, policy: Value) -> Value {
    let path = format!("/v1/environments/{}/policy", env["id"].as_str().unwrap());
    let current = app.get(&path, &t.admin).await;
    let etag = current.headers().get("etag").unwrap().to_str().unwrap().to_string();
    let response = app.request(reqwest::Method::PUT, &path, Some(&t.admin)).header("if-match", etag).json(&policy).send().await.unwrap();
    expect_status(response, StatusCode::OK).await
}

async fn decide(app: &TestApp, token: &str, d: &Value, decision: &str) -> reqwest::Response {
    let path = format!("/v1/deployments/{}/approvals", d["id"].as_str().unwrap());
    app.post(&path, token, json!({"decision": decision, "comment": format!("{decision} from a test")})).await
}

#[tokio::test]
async fn scenario_5_production_waits_for_two_approvers_other_than_the_requester_and_for_success_in_test() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let test = app.environment(&acme, "Test", "test").await;
    let prod = app.environment(&acme, "Production", "production").await;
    let runtime = app.runtime(&acme, "atom").await;
    app.attach(&acme, &test, &runtime).await;
    app.attach(&acme, &prod, &runtime).await;
    let _agent = Agent::start(&app, &runtime, None);
    put_policy(&app, &acme, &prod, json!({"required_approvals": 2, "require_success_in": [test["id"]]})).await;

    let alice = app.user_token(&acme.id, "alice@acme.example", &["deployer", "approver"]);
    let bob = app.user_token(&acme.id, "bob@acme.example", &["approver"]);
    let carol = app.user_token(&acme.id, "carol@acme.example", &["approver"]);
    let dave = app.user_token(&acme.id, "dave@acme.example", &["developer"]);
    let process = app.component(&acme, "Orders", "process", b"v1", &[]).await;
    let package = app.package(&acme, &process, Some("v1")).await;
    let to_prod = json!({"package_id": package["id"], "environment_id": prod["id"], "notes": "release 1"});

    expect_problem(app.post("/v1/deployments", &alice, to_prod.clone()).await, StatusCode::CONFLICT, "promotion_required").await;
    let in_test = app.post("/v1/deployments", &alice, json!({"package_id": package["id"], "environment_id": test["id"]})).await;
    let in_test = expect_status(in_test, StatusCode::CREATED).await;
    app.wait_for_status(&acme, &in_test, "succeeded").await;

    let d = expect_status(app.post("/v1/deployments", &alice, to_prod).await, StatusCode::CREATED).await;
    assert_eq!(d["status"], "pending_approval");
    assert_eq!(d["required_approvals"], 2);
    expect_problem(decide(&app, &alice, &d, "approve").await, StatusCode::FORBIDDEN, "self_approval_forbidden").await;
    expect_problem(decide(&app, &dave, &d, "approve").await, StatusCode::FORBIDDEN, "not_an_approver").await;
    let once = expect_status(decide(&app, &bob, &d, "approve").await, StatusCode::CREATED).await;
    assert_eq!(once["status"], "pending_approval", "one approval of two");
    expect_problem(decide(&app, &bob, &d, "approve").await, StatusCode::CONFLICT, "already_decided").await;
    let twice = expect_status(decide(&app, &carol, &d, "approve").await, StatusCode::CREATED).await;
    assert_eq!(twice["status"], "queued", "the second approver's approval queues it");
    let done = app.wait_for_status(&acme, &d, "succeeded").await;

    let approvers: Vec<&str> = done["approvals"].as_array().unwrap().iter().map(|a| a["approver"].as_str().unwrap()).collect();
    assert_eq!(approvers, ["bob@acme.example", "carol@acme.example"]);
    for a in done["approvals"].as_array().unwrap() {
        assert_eq!(a["decision"], "approve");
        assert_eq!(a["digests"], json!([package["digest"]]), "each approval is bound to the exact package digest");
    }
    let history = expect_status(app.get(&format!("/v1/deployments?environment_id={}", prod["id"].as_str().unwrap()), &acme.admin).await, StatusCode::OK).await;
    assert_eq!(history["items"][0]["requested_by"], "alice@acme.example");
    assert_eq!(history["items"][0]["approvals"].as_array().unwrap().len(), 2, "history shows who approved");
}

#[tokio::test]
async fn one_reject_ends_a_deployment_and_frees_the_environment_for_another() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let prod = app.environment(&acme, "Production", "production").await;
    let runtime = app.runtime(&acme, "atom").await;
    app.attach(&acme, &prod, &runtime).await;
    put_policy(&app, &acme, &prod, json!({"required_approvals": 2})).await;
    let process = app.component(&acme, "Orders", "process", b"v1", &[]).await;
    let package = app.package(&acme, &process, None).await;
    let d = app.deploy(&acme, &package, &prod, "").await;
    assert_eq!(d["status"], "pending_approval");

    let approver = app.user_token(&acme.id, "bob@acme.example", &["approver"]);
    let rejected = expect_status(decide(&app, &approver, &d, "reject").await, StatusCode::CREATED).await;
    assert_eq!(rejected["status"], "rejected");
    let other = app.user_token(&acme.id, "carol@acme.example", &["approver"]);
    expect_problem(decide(&app, &other, &d, "approve").await, StatusCode::CONFLICT, "not_pending_approval").await;
    let again = app.deploy(&acme, &package, &prod, "second try").await;
    assert_eq!(again["status"], "pending_approval", "the rejected one no longer holds the environment");
}

#[tokio::test]
async fn a_policy_is_read_and_replaced_with_if_match_by_admins_only_and_must_be_consistent() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let prod = app.environment(&acme, "Production", "production").await;
    let path = format!("/v1/environments/{}/policy", prod["id"].as_str().unwrap());
    let default = expect_status(app.get(&path, &acme.admin).await, StatusCode::OK).await;
    assert_eq!(default["required_approvals"], 0);
    assert_eq!(default["allow_self_approval"], false);
    assert_eq!(default["deployer_roles"], json!(["deployer", "admin"]));

    let stored = put_policy(&app, &acme, &prod, json!({"required_approvals": 1, "auto_rollback": true})).await;
    assert_eq!(stored["auto_rollback"], true);
    let stale = app
        .request(reqwest::Method::PUT, &path, Some(&acme.admin))
        .header("if-match", default["etag"].as_str().unwrap())
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    expect_problem(stale, StatusCode::PRECONDITION_FAILED, "precondition_failed").await;
    let viewer = app.token(&acme.id, &["viewer"]);
    let by_viewer = app.request(reqwest::Method::PUT, &path, Some(&viewer)).json(&json!({})).send().await.unwrap();
    expect_problem(by_viewer, StatusCode::FORBIDDEN, "forbidden").await;

    let bad = [
        json!({"required_approvals": 11}),
        json!({"required_approvals": 1, "approver_roles": []}),
        json!({"require_success_in": [prod["id"]]}),
        json!({"require_success_in": [uuid::Uuid::now_v7()]}),
        json!({"freeze_windows": [{"start": "2026-12-02T00:00:00Z", "end": "2026-12-01T00:00:00Z"}]}),
        json!({"approver_roles": ["root"]}),
    ];
    for body in bad {
        let response = app.request(reqwest::Method::PUT, &path, Some(&acme.admin)).json(&body).send().await.unwrap();
        expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    }
    assert_eq!(expect_status(app.get(&path, &acme.admin).await, StatusCode::OK).await, stored, "nothing was changed");
}

#[tokio::test]
async fn a_freeze_window_refuses_a_deployment_or_holds_it_until_the_window_ends() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let prod = app.environment(&acme, "Production", "production").await;
    let runtime = app.runtime(&acme, "atom").await;
    app.attach(&acme, &prod, &runtime).await;
    let now = chrono::Utc::now();
    let end = now + chrono::Duration::hours(1);
    put_policy(&app, &acme, &prod, json!({"freeze_windows": [{"start": now - chrono::Duration::hours(1), "end": end}]})).await;
    let process = app.component(&acme, "Orders", "process", b"v1", &[]).await;
    let package = app.package(&acme, &process, None).await;

    let body = json!({"package_id": package["id"], "environment_id": prod["id"]});
    expect_problem(app.post("/v1/deployments", &acme.admin, body.clone()).await, StatusCode::CONFLICT, "freeze_window").await;
    let mut held = body.clone();
    held["hold_if_frozen"] = json!(true);
    let d = expect_status(app.post("/v1/deployments", &acme.admin, held).await, StatusCode::CREATED).await;
    assert_eq!(d["status"], "scheduled");
    let at: chrono::DateTime<chrono::Utc> = d["scheduled_at"].as_str().unwrap().parse().unwrap();
    assert!((at - end).num_seconds().abs() <= 1, "held until the window ends: {at} vs {end}");
}

#[tokio::test]
async fn a_policy_can_keep_deployers_out_of_an_environment() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let prod = app.environment(&acme, "Production", "production").await;
    let runtime = app.runtime(&acme, "atom").await;
    app.attach(&acme, &prod, &runtime).await;
    put_policy(&app, &acme, &prod, json!({"deployer_roles": ["admin"]})).await;
    let process = app.component(&acme, "Orders", "process", b"v1", &[]).await;
    let package = app.package(&acme, &process, None).await;
    let deployer = app.token(&acme.id, &["deployer"]);
    let body = json!({"package_id": package["id"], "environment_id": prod["id"]});
    expect_problem(app.post("/v1/deployments", &deployer, body.clone()).await, StatusCode::FORBIDDEN, "forbidden").await;
    expect_status(app.post("/v1/deployments", &acme.admin, body).await, StatusCode::CREATED).await;
}

#[tokio::test]
async fn with_auto_rollback_a_failed_apply_brings_the_previous_version_back_on_every_runtime() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let prod = app.environment(&acme, "Production", "production").await;
    put_policy(&app, &acme, &prod, json!({"auto_rollback": true})).await;
    // Runtime "good" applies anything; runtime "bad" fails to apply v2.
    let good = app.runtime(&acme, "good").await;
    let bad = app.runtime(&acme, "bad").await;
    app.attach(&acme, &prod, &good).await;
    app.attach(&acme, &prod, &bad).await;
    let good_agent = Agent::start(&app, &good, None);
    let bad_agent = Agent::start(&app, &bad, Some(r#"[ "$BERTH_VERSION" != "v2" ]"#));
    let process = app.component(&acme, "Orders", "process", b"v1", &[]).await;
    let v1 = app.package(&acme, &process, Some("v1")).await;
    let d1 = app.deploy(&acme, &v1, &prod, "").await;
    app.wait_for_status(&acme, &d1, "succeeded").await;
    app.revise(&acme, &process, b"v2").await;
    let v2 = app.package(&acme, &process, Some("v2")).await;

    let d2 = app.deploy(&acme, &v2, &prod, "").await;
    app.wait_for_status(&acme, &d2, "rolled_back").await;
    // The failed deployment releases the environment first; the rollback is requested right after.
    let mut rollback = Value::Null;
    for _ in 0..100 {
        let all = expect_status(app.get(&format!("/v1/deployments?environment_id={}", prod["id"].as_str().unwrap()), &acme.admin).await, StatusCode::OK).await;
        if let Some(r) = all["items"].as_array().unwrap().iter().find(|d| d["kind"] == "rollback") {
            rollback = r.clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(rollback.is_object(), "a rollback deployment was requested");
    assert_eq!(rollback["version"], "v1");
    assert_eq!(rollback["requested_by"], "system:auto-rollback");
    assert_eq!(rollback["required_approvals"], 0);
    assert!(rollback["notes"].as_str().unwrap().contains(d2["id"].as_str().unwrap()), "the reason names the failed deployment");
    app.wait_for_status(&acme, &rollback, "succeeded").await;

    assert_eq!(app.active(&acme, &prod).await[0]["version"], "v1");
    assert_eq!(good_agent.installed(&prod, &process).unwrap()["version"], "v1", "the runtime that had applied v2 runs v1 again");
    assert_eq!(bad_agent.installed(&prod, &process).unwrap()["version"], "v1");
    let audit = app.audit(&acme).await;
    assert!(audit.iter().any(|e| e["action"] == "deployment.rollback_requested" && e["actor"]["id"] == "auto-rollback"), "the rollback is audited");
}

#[tokio::test]
async fn the_audit_trail_filters_by_entity_actor_and_action_and_stays_intact_under_concurrent_changes() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let mut set = tokio::task::JoinSet::new();
    for i in 0..10 {
        let request =
            app.request(reqwest::Method::POST, "/v1/environments", Some(&acme.admin)).json(&json!({"name": format!("env-{i}"), "classification": "test"}));
        set.spawn(async move { request.send().await.unwrap().status() });
    }
    while let Some(status) = set.join_next().await {
        assert_eq!(status.unwrap(), StatusCode::CREATED);
    }
    let mut verify = expect_status(app.get("/v1/audit/verify", &acme.admin).await, StatusCode::OK).await;
    assert_eq!(verify["checkpoint"]["seq"], 11, "the verified chain is checkpointed: {verify}");
    verify.as_object_mut().expect("a report").remove("checkpoint");
    assert_eq!(
        verify,
        json!({"ok": true, "checked": 11, "first_broken": null, "full": false, "from_seq": 1, "to_seq": 11, "head_seq": 11, "remaining": 0, "next_cursor": null})
    );

    let created = expect_status(app.get("/v1/audit?action=environment.created&limit=100", &acme.admin).await, StatusCode::OK).await;
    assert_eq!(created["items"].as_array().unwrap().len(), 10);
    let env_id = created["items"][3]["entity_id"].as_str().unwrap().to_string();
    let one = expect_status(app.get(&format!("/v1/audit?entity_type=environment&entity_id={env_id}"), &acme.admin).await, StatusCode::OK).await;
    assert_eq!(one["items"].as_array().unwrap().len(), 1);
    let by_operator = expect_status(app.get("/v1/audit?actor=operator@berth.example", &acme.admin).await, StatusCode::OK).await;
    assert_eq!(by_operator["items"][0]["action"], "tenant.created");
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339().replace('+', "%2B");
    let none = expect_status(app.get(&format!("/v1/audit?from={future}"), &acme.admin).await, StatusCode::OK).await;
    assert_eq!(none["items"], json!([]));
    expect_problem(app.get("/v1/audit?from=yesterday", &acme.admin).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
}

#[tokio::test]
async fn an_audit_event_edited_directly_in_dynamodb_is_reported_by_verify() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    app.environment(&acme, "Test", "test").await;
    app.environment(&acme, "Production", "production").await;
    let tenant: berth_domain::ids::TenantId = acme.id.parse().unwrap();
    let (pk, sk) = berth_aws::keys::audit_event(tenant, 2);
    app.clients
        .dynamo
        .update_item()
        .table_name(&app.names.table)
        .key("pk", AttributeValue::S(pk))
        .key("sk", AttributeValue::S(sk))
        .update_expression("SET #a = :a")
        .expression_attribute_names("#a", "action")
        .expression_attribute_values(":a", AttributeValue::S("environment.deleted".into()))
        .send()
        .await
        .unwrap();
    let verify = expect_status(app.get("/v1/audit/verify", &acme.admin).await, StatusCode::OK).await;
    assert_eq!(verify["ok"], false);
    assert_eq!(verify["first_broken"]["seq"], 2);
    assert_eq!(verify["checked"], 1);
}
