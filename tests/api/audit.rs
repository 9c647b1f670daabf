//! Audit verification stays cheap: each call checks a bounded slice, an
//! incremental call only what was appended since the last verified
//! checkpoint, and a full verification (admins) pages from the genesis.

use aws_sdk_dynamodb::types::AttributeValue;
use berth_domain::usecases::Settings;
use berth_tests::{TestApp, TestTenant, expect_problem, expect_status};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Rewrites the action of audit event `seq` of `tenant` straight in DynamoDB.
async fn tamper(app: &TestApp, tenant: &TestTenant, seq: u64) {
    let tenant_id: berth_domain::ids::TenantId = tenant.id.parse().expect("a tenant id");
    let (pk, sk) = berth_aws::keys::audit_event(tenant_id, seq);
    app.clients
        .dynamo
        .update_item()
        .table_name(&app.names.table)
        .key("pk", AttributeValue::S(pk))
        .key("sk", AttributeValue::S(sk))
        .update_expression("SET #a = :a")
        .condition_expression("attribute_exists(pk)")
        .expression_attribute_names("#a", "action")
        .expression_attribute_values(":a", AttributeValue::S("environment.tampered".into()))
        .send()
        .await
        .expect("the event is edited in place");
}

async fn verify(app: &TestApp, token: &str, query: &str) -> Value {
    expect_status(app.get(&format!("/v1/audit/verify{query}"), token).await, StatusCode::OK).await
}

/// `n` more environments, so `n` more audit events.
async fn environments(app: &TestApp, tenant: &TestTenant, names: &[&str]) {
    for name in names {
        app.environment(tenant, name, "test").await;
    }
}

/// The report without its checkpoint (whose time varies), and the checkpoint's seq.
fn split(mut report: Value) -> (Value, Value) {
    let checkpoint = report.as_object_mut().and_then(|o| o.remove("checkpoint")).unwrap_or(Value::Null);
    (report, checkpoint["seq"].clone())
}

#[tokio::test]
async fn an_incremental_verification_checks_only_the_events_appended_since_the_last_one() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    environments(&app, &acme, &["Test", "Staging"]).await;
    let auditor = app.user_token(&acme.id, "auditor@acme.example", &["viewer"]);

    let first = verify(&app, &auditor, "").await;
    let events = app.audit(&acme).await;
    assert_eq!(
        first["checkpoint"],
        json!({"seq": 3, "hash": events[2]["hash"], "at": first["checkpoint"]["at"], "by": "auditor@acme.example"}),
        "the verified events are checkpointed, with who verified them: {first}"
    );
    assert_eq!(
        split(first),
        (
            json!({"ok": true, "checked": 3, "first_broken": null, "full": false, "from_seq": 1, "to_seq": 3, "head_seq": 3, "remaining": 0, "next_cursor": null}),
            json!(3)
        )
    );

    environments(&app, &acme, &["Production", "Sandbox"]).await;
    assert_eq!(
        split(verify(&app, &auditor, "").await),
        (
            json!({"ok": true, "checked": 2, "first_broken": null, "full": false, "from_seq": 4, "to_seq": 5, "head_seq": 5, "remaining": 0, "next_cursor": null}),
            json!(5)
        ),
        "the second call checks the two new events only"
    );
    let again = verify(&app, &acme.admin, "").await;
    assert_eq!((again["ok"].clone(), again["checked"].clone(), again["checkpoint"]["seq"].clone()), (json!(true), json!(0), json!(5)), "{again}");
}

#[tokio::test]
async fn an_incremental_verification_of_a_chain_longer_than_one_slice_continues_where_the_last_call_stopped() {
    let app = TestApp::spawn_with(Settings { audit_verify_max_events: 3, ..Settings::default() }).await;
    let acme = app.tenant("Acme").await;
    environments(&app, &acme, &["E1", "E2", "E3", "E4", "E5", "E6", "E7"]).await;
    let mut slices = vec![];
    for _ in 0..4 {
        let report = verify(&app, &acme.admin, "").await;
        assert_eq!(report["ok"], true, "{report}");
        slices.push((report["from_seq"].clone(), report["to_seq"].clone(), report["remaining"].clone(), report["checkpoint"]["seq"].clone()));
    }
    assert_eq!(
        slices,
        [
            (json!(1), json!(3), json!(5), json!(3)),
            (json!(4), json!(6), json!(2), json!(6)),
            (json!(7), json!(8), json!(0), json!(8)),
            (json!(9), json!(8), json!(0), json!(8))
        ]
    );
}

#[tokio::test]
async fn a_tampered_event_after_the_checkpoint_is_reported_and_the_checkpoint_stops_before_it() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    environments(&app, &acme, &["Test", "Staging"]).await;
    assert_eq!(verify(&app, &acme.admin, "").await["checkpoint"]["seq"], 3);
    environments(&app, &acme, &["Production", "Sandbox"]).await;
    tamper(&app, &acme, 5).await;

    for call in ["the first call", "a later call"] {
        let report = verify(&app, &acme.admin, "").await;
        assert_eq!(report["ok"], false, "{call}: {report}");
        assert_eq!(report["first_broken"]["seq"], 5, "{call}: {report}");
        assert_eq!(report["first_broken"]["reason"], "hash does not match the event's content", "{call}: {report}");
        assert_eq!(report["to_seq"], 4, "{call}: event 4 is intact: {report}");
        assert_eq!(report["checkpoint"]["seq"], 4, "{call}: the checkpoint moves to the last intact event only: {report}");
    }
}

#[tokio::test]
async fn an_edited_checkpoint_event_is_reported_by_the_incremental_verification() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    environments(&app, &acme, &["Test", "Staging"]).await;
    verify(&app, &acme.admin, "").await;
    environments(&app, &acme, &["Production"]).await;
    tamper(&app, &acme, 3).await;

    let report = verify(&app, &acme.admin, "").await;
    assert_eq!((report["ok"].clone(), report["checked"].clone()), (json!(false), json!(0)), "{report}");
    assert_eq!(report["first_broken"]["seq"], 3, "{report}");
    assert_eq!(report["checkpoint"]["seq"], 3, "the checkpoint does not move past a broken event: {report}");
}

#[tokio::test]
async fn a_tampered_event_before_the_checkpoint_is_found_by_a_full_verification() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    environments(&app, &acme, &["Test", "Staging", "Production"]).await;
    assert_eq!(verify(&app, &acme.admin, "").await["checkpoint"]["seq"], 4);
    tamper(&app, &acme, 2).await;

    let incremental = verify(&app, &acme.admin, "").await;
    assert_eq!((incremental["ok"].clone(), incremental["checked"].clone()), (json!(true), json!(0)), "the incremental check starts at event 4: {incremental}");

    let full = verify(&app, &acme.admin, "?full=true").await;
    assert_eq!(full["ok"], false, "{full}");
    assert_eq!(full["first_broken"]["seq"], 2, "{full}");
    assert_eq!((full["full"].clone(), full["from_seq"].clone(), full["to_seq"].clone(), full["checked"].clone()), (json!(true), json!(1), json!(1), json!(1)));
    assert_eq!(full["next_cursor"], Value::Null, "a full verification stops at the break: {full}");
    assert_eq!(full["checkpoint"]["seq"], 4, "a full verification leaves the checkpoint alone: {full}");
}

#[tokio::test]
async fn a_full_verification_pages_through_a_chain_longer_than_one_slice_with_next_cursor() {
    let app = TestApp::spawn_with(Settings { audit_verify_max_events: 3, ..Settings::default() }).await;
    let acme = app.tenant("Acme").await;
    environments(&app, &acme, &["E1", "E2", "E3", "E4", "E5", "E6", "E7"]).await;

    let mut slices = vec![];
    let mut query = "?full=true".to_string();
    loop {
        let report = verify(&app, &acme.admin, &query).await;
        assert_eq!((report["ok"].clone(), report["full"].clone(), report["head_seq"].clone()), (json!(true), json!(true), json!(8)), "{report}");
        assert_eq!(report["checkpoint"], Value::Null, "a full verification does not set the checkpoint: {report}");
        slices.push((report["from_seq"].clone(), report["to_seq"].clone(), report["checked"].clone(), report["remaining"].clone()));
        match report["next_cursor"].as_str() {
            Some(cursor) => query = format!("?full=true&cursor={cursor}"),
            None => break,
        }
        assert!(slices.len() < 10, "the cursor moves on: {slices:?}");
    }
    assert_eq!(slices, [(json!(1), json!(3), json!(3), json!(5)), (json!(4), json!(6), json!(3), json!(2)), (json!(7), json!(8), json!(2), json!(0))]);
}

#[tokio::test]
async fn a_full_verification_resumed_after_an_event_that_changed_reports_that_event() {
    let app = TestApp::spawn_with(Settings { audit_verify_max_events: 2, ..Settings::default() }).await;
    let acme = app.tenant("Acme").await;
    environments(&app, &acme, &["Test", "Staging", "Production"]).await;
    let first = verify(&app, &acme.admin, "?full=true").await;
    let cursor = first["next_cursor"].as_str().expect("a cursor after two of four events").to_string();
    tamper(&app, &acme, 2).await;

    let resumed = verify(&app, &acme.admin, &format!("?full=true&cursor={cursor}")).await;
    assert_eq!(resumed["ok"], false, "{resumed}");
    assert_eq!(resumed["first_broken"]["seq"], 2, "{resumed}");
    assert_eq!(resumed["checked"], 0, "{resumed}");
}

#[tokio::test]
async fn only_an_admin_may_run_a_full_verification() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    for role in ["viewer", "developer", "deployer", "approver"] {
        let token = app.token(&acme.id, &[role]);
        expect_problem(app.get("/v1/audit/verify?full=true", &token).await, StatusCode::FORBIDDEN, "forbidden").await;
        assert_eq!(verify(&app, &token, "").await["ok"], true, "a {role} may verify incrementally");
    }
    assert_eq!(verify(&app, &acme.admin, "?full=true").await["ok"], true);
}

#[tokio::test]
async fn a_verification_with_a_malformed_full_flag_or_cursor_or_a_cursor_past_the_head_is_refused() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let hash = "0".repeat(64);
    for (query, field) in [
        ("?full=yes".to_string(), "full"),
        (format!("?cursor=1.{hash}"), "cursor"),
        ("?full=true&cursor=abc".to_string(), "cursor"),
        (format!("?full=true&cursor=0.{hash}"), "cursor"),
        ("?full=true&cursor=1.XYZ".to_string(), "cursor"),
        (format!("?full=true&cursor=2.{hash}"), "cursor"),
    ] {
        let problem =
            expect_problem(app.get(&format!("/v1/audit/verify{query}"), &acme.admin).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], field, "{query}: {problem}");
    }
}
