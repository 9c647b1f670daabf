//! The credential lifecycle over HTTP with real agents: registration tokens
//! expire and are re-issued, a credential is rotated with an overlap (the
//! old one works until the new one is used), and a revoke stops an agent at once.

use crate::id_of;
use berth_tests::{Agent, TestApp, TestTenant, eventually, expect_invalid_field, expect_problem, expect_status};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn setup() -> (TestApp, TestTenant) {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    (app, acme)
}

async fn register(app: &TestApp, token: &Value) -> reqwest::Response {
    let body = json!({"registration_token": token, "agent_version": "1.0.0"});
    app.request(Method::POST, "/agent/v1/register", None).json(&body).send().await.expect("sent")
}

async fn rotate(app: &TestApp, credential: &str) -> reqwest::Response {
    app.request(Method::POST, "/agent/v1/credentials/rotate", Some(credential)).send().await.expect("sent")
}

async fn reissue(app: &TestApp, t: &TestTenant, runtime: &Value, body: Value) -> reqwest::Response {
    app.post(&format!("/v1/runtimes/{}/registration-token", id_of(runtime)), &t.admin, body).await
}

/// The credential a real agent keeps in its state directory.
fn stored_credential(agent: &Agent) -> Option<String> {
    std::fs::read_to_string(agent.state.path().join("credential")).ok().map(|c| c.trim().to_string())
}

#[tokio::test]
async fn a_rotated_credential_leaves_the_old_one_working_until_the_new_one_is_used_then_only_the_new_one_works() {
    let (app, acme) = setup().await;
    let runtime = app.runtime(&acme, "edge-1").await;
    let old = app.register_agent(&runtime).await;

    let lost = expect_status(rotate(&app, &old).await, StatusCode::OK).await;
    expect_status(app.heartbeat(&old).await, StatusCode::OK).await;
    let rotated = expect_status(rotate(&app, &old).await, StatusCode::OK).await;
    let new = rotated["credential"].as_str().expect("a credential").to_string();
    assert!(new.starts_with("brc_") && new != old);
    expect_problem(app.heartbeat(lost["credential"].as_str().expect("a credential")).await, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    expect_status(app.heartbeat(&old).await, StatusCode::OK).await;

    expect_status(app.heartbeat(&new).await, StatusCode::OK).await;
    expect_problem(app.heartbeat(&old).await, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    expect_status(app.heartbeat(&new).await, StatusCode::OK).await;
    let rotations = app.audit(&acme).await.iter().filter(|e| e["action"] == "runtime.credential_rotated" && e["entity_id"] == runtime["id"]).count();
    assert_eq!(rotations, 2, "each rotation is audited");
}

#[tokio::test]
async fn an_agent_whose_credential_is_older_than_thirty_days_rotates_it_by_itself_and_keeps_working() {
    let (app, acme) = setup().await;
    let runtime = app.runtime(&acme, "edge-1").await;
    let mut agent = Agent::start(&app, &runtime, None);
    let first = eventually("the agent registered", || async { stored_credential(&agent).ok_or_else(|| "no credential yet".to_string()) }).await;
    agent.kill().await;

    // The credential was last written 31 days ago, as far as the agent can tell.
    let file = std::fs::File::options().write(true).open(agent.state.path().join("credential")).expect("the credential file");
    file.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(31 * 86_400)).expect("backdated");
    agent.restart();

    let second = eventually("the agent rotated its credential", || async {
        match stored_credential(&agent) {
            Some(c) if c != first => Ok(c),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    eventually("the old credential is refused once the agent used the new one", || async {
        let status = app.heartbeat(&first).await.status();
        if status == StatusCode::UNAUTHORIZED { Ok(()) } else { Err(status.to_string()) }
    })
    .await;
    expect_status(app.heartbeat(&second).await, StatusCode::OK).await;
    assert!(app.audit(&acme).await.iter().any(|e| e["action"] == "runtime.credential_rotated"), "the rotation is audited");
    assert!(!agent.log().contains("rotation failed"), "{}", agent.log());
}

#[tokio::test]
async fn a_revoked_runtime_s_agent_is_refused_on_its_next_call_until_a_reissued_token_brings_it_back() {
    let (app, acme) = setup().await;
    let runtime = app.runtime(&acme, "edge-1").await;
    let agent = Agent::start(&app, &runtime, None);
    let credential = eventually("the agent registered", || async { stored_credential(&agent).ok_or_else(|| "no credential yet".to_string()) }).await;
    expect_status(app.heartbeat(&credential).await, StatusCode::OK).await;

    let revoked = expect_status(app.post(&format!("/v1/runtimes/{}/revoke", id_of(&runtime)), &acme.admin, json!({})).await, StatusCode::OK).await;
    assert!(revoked["revoked_at"].is_string(), "{revoked}");
    expect_problem(app.heartbeat(&credential).await, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    expect_problem(rotate(&app, &credential).await, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    eventually("the agent is refused", || async {
        let log = agent.log();
        if log.contains("401 Unauthorized") { Ok(()) } else { Err(log) }
    })
    .await;
    let shown = expect_status(app.get(&format!("/v1/runtimes/{}", id_of(&runtime)), &acme.admin).await, StatusCode::OK).await;
    assert_eq!(shown["revoked_at"], revoked["revoked_at"]);
    assert!(app.audit(&acme).await.iter().any(|e| e["action"] == "runtime.revoked" && e["entity_id"] == runtime["id"]));

    let issued = expect_status(reissue(&app, &acme, &runtime, json!({})).await, StatusCode::OK).await;
    let back = expect_status(register(&app, &issued["registration_token"]).await, StatusCode::CREATED).await;
    expect_status(app.heartbeat(back["credential"].as_str().expect("a credential")).await, StatusCode::OK).await;
    let shown = expect_status(app.get(&format!("/v1/runtimes/{}", id_of(&runtime)), &acme.admin).await, StatusCode::OK).await;
    assert!(shown["revoked_at"].is_null(), "registered again: {shown}");
}

#[tokio::test]
async fn a_reissued_registration_token_works_once_and_the_one_it_replaced_does_not() {
    let (app, acme) = setup().await;
    let runtime = app.runtime(&acme, "edge-1").await;
    let path = format!("/v1/runtimes/{}/registration-token", id_of(&runtime));
    let send = || {
        app.request(Method::POST, &path, Some(&acme.admin))
            .header("idempotency-key", "reissue-once")
            .json(&json!({"registration_token_ttl_seconds": 600}))
            .send()
    };
    let issued = expect_status(send().await.expect("sent"), StatusCode::OK).await;
    let token = issued["registration_token"].as_str().expect("a token shown once");
    assert!(token.starts_with("brr_") && issued["registration_token"] != runtime["registration_token"]);
    assert!(issued["registration_token_expires_at"].is_string(), "{issued}");
    let replayed = expect_status(send().await.expect("sent"), StatusCode::OK).await;
    assert!(replayed.get("registration_token").is_none(), "a replay never shows the token again: {replayed}");

    expect_problem(register(&app, &runtime["registration_token"]).await, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    expect_status(register(&app, &issued["registration_token"]).await, StatusCode::CREATED).await;
    expect_problem(register(&app, &issued["registration_token"]).await, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let events = app.audit(&acme).await;
    let issued_event = events.iter().find(|e| e["action"] == "runtime.registration_token_issued").expect("the re-issue is audited");
    assert!(!issued_event.to_string().contains(token), "the audit trail never holds the token");

    let deployer = app.token(&acme.id, &["deployer"]);
    expect_problem(app.post(&path, &deployer, json!({})).await, StatusCode::FORBIDDEN, "forbidden").await;
}

#[tokio::test]
async fn an_expired_registration_token_is_refused_401_registration_token_expired() {
    let (app, acme) = setup().await;
    for ttl in [59, 30 * 86_400 + 1] {
        expect_invalid_field(
            app.post("/v1/runtimes", &acme.admin, json!({"name": "edge", "registration_token_ttl_seconds": ttl})).await,
            "registration_token_ttl_seconds",
        )
        .await;
    }
    let runtime =
        expect_status(app.post("/v1/runtimes", &acme.admin, json!({"name": "edge-1", "registration_token_ttl_seconds": 60})).await, StatusCode::CREATED).await;
    let expires_at: chrono::DateTime<chrono::Utc> = runtime["registration_token_expires_at"].as_str().expect("an expiry").parse().expect("a time");
    assert!((expires_at - chrono::Utc::now()).num_seconds() <= 60);

    // A minute later, as the table would hold it (written as the adapter writes times).
    let past = serde_json::to_value(chrono::Utc::now() - chrono::Duration::seconds(1)).expect("a time").as_str().expect("a string").to_string();
    let key = berth_aws::keys::runtime(acme.id.parse().expect("a tenant"), id_of(&runtime).parse().expect("a runtime"));
    app.clients
        .dynamo
        .update_item()
        .table_name(&app.names.table)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(key.0))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S(key.1))
        .update_expression("SET registration_expires_at = :past")
        .expression_attribute_values(":past", aws_sdk_dynamodb::types::AttributeValue::S(past))
        .send()
        .await
        .expect("the expiry is moved into the past");
    let problem = expect_problem(register(&app, &runtime["registration_token"]).await, StatusCode::UNAUTHORIZED, "registration_token_expired").await;
    assert!(problem["detail"].as_str().is_some_and(|d| d.contains("registration-token")), "says how to get a new one: {problem}");

    let issued = expect_status(reissue(&app, &acme, &runtime, json!({"registration_token_ttl_seconds": 3600})).await, StatusCode::OK).await;
    expect_status(register(&app, &issued["registration_token"]).await, StatusCode::CREATED).await;
}
