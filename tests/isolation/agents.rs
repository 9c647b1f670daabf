//! The agent API (`/agent/v1`): a runtime token names its tenant and runtime
//! in clear, so those parts must never be trusted on their own.

use crate::{TwoTenants, send};
use berth_tests::{expect_problem, expect_status};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The four `_`-separated parts of a runtime token: kind, tenant, runtime, secret.
fn parts(token: &str) -> [String; 4] {
    let parts: Vec<String> = token.split('_').map(str::to_string).collect();
    parts.try_into().unwrap_or_else(|p| panic!("a token has four parts: {p:?}"))
}

fn hex(id: &str) -> String {
    id.replace('-', "")
}

async fn heartbeat_as(t: &TwoTenants, credential: &str, agent_version: &str) -> reqwest::Response {
    let body = json!({"agent_version": agent_version, "status": "ok", "running": []});
    t.app.request(Method::POST, "/agent/v1/heartbeat", Some(credential)).json(&body).send().await.expect("the request is sent")
}

async fn register(t: &TwoTenants, registration_token: &str) -> reqwest::Response {
    let body = json!({"registration_token": registration_token, "agent_version": "6.6.6", "name": "hijacked"});
    t.app.request(Method::POST, "/agent/v1/register", None).json(&body).send().await.expect("the request is sent")
}

async fn a_runtime(t: &TwoTenants, id: &str) -> Value {
    let runtime = expect_status(t.app.get(&format!("/v1/runtimes/{id}"), &t.a.tenant.admin).await, StatusCode::OK).await;
    json!({"name": runtime["name"], "last_seen_at": runtime["last_seen_at"], "agent_version": runtime["agent_version"], "environments": runtime["environments"]})
}

#[tokio::test]
async fn a_credential_forged_from_tenant_a_s_ids_and_tenant_b_s_secret_is_refused() {
    let t = TwoTenants::spawn().await;
    let before = a_runtime(&t, &t.a.runtime_id).await;
    let [kind, b_tenant, b_runtime, b_secret] = parts(&t.b.credential);
    assert_eq!(kind, "brc");
    assert_eq!((b_tenant.as_str(), b_runtime.as_str()), (hex(&t.b.tenant.id).as_str(), hex(&t.b.runtime_id).as_str()));
    let (a_tenant, a_runtime_hex) = (hex(&t.a.tenant.id), hex(&t.a.runtime_id));

    for forged in [
        format!("brc_{a_tenant}_{a_runtime_hex}_{b_secret}"),
        format!("brc_{b_tenant}_{a_runtime_hex}_{b_secret}"),
        format!("brc_{a_tenant}_{b_runtime}_{b_secret}"),
    ] {
        expect_problem(heartbeat_as(&t, &forged, "6.6.6").await, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
    // Nor is a runtime credential a portal token.
    expect_problem(t.app.get(&format!("/v1/runtimes/{}", t.a.runtime_id), &t.b.credential).await, StatusCode::UNAUTHORIZED, "unauthenticated").await;

    assert_eq!(a_runtime(&t, &t.a.runtime_id).await, before, "A's runtime saw no heartbeat");
    let a_audit = t.app.audit(&t.a.tenant).await;
    assert_eq!(a_audit.len(), 5, "A's trail has its setup events only: {a_audit:?}");
}

#[tokio::test]
async fn tenant_b_s_registration_token_cannot_register_tenant_a_s_runtime() {
    let t = TwoTenants::spawn().await;
    let a_new = t.app.runtime(&t.a.tenant, "Acme-atom-2").await;
    let a_new_id = a_new["id"].as_str().expect("a runtime id").to_string();
    let b_new = t.app.runtime(&t.b.tenant, "Globex-atom-2").await;
    let [_, a_tenant, a_runtime_hex, _] = parts(a_new["registration_token"].as_str().expect("a registration token"));
    let [kind, b_tenant, _, b_secret] = parts(b_new["registration_token"].as_str().expect("a registration token"));
    assert_eq!(kind, "brr");

    for forged in [format!("brr_{a_tenant}_{a_runtime_hex}_{b_secret}"), format!("brr_{b_tenant}_{a_runtime_hex}_{b_secret}")] {
        expect_problem(register(&t, &forged).await, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
    // B's credential secret fares no better as a registration secret.
    let [_, _, _, b_credential_secret] = parts(&t.b.credential);
    expect_problem(register(&t, &format!("brr_{a_tenant}_{a_runtime_hex}_{b_credential_secret}")).await, StatusCode::UNAUTHORIZED, "unauthenticated").await;

    let untouched = expect_status(t.app.get(&format!("/v1/runtimes/{a_new_id}"), &t.a.tenant.admin).await, StatusCode::OK).await;
    assert_eq!(untouched["name"], "Acme-atom-2");
    assert_eq!(untouched["status"], "unknown");
    assert_eq!(untouched["agent_version"], Value::Null);
    assert!(!t.app.audit(&t.a.tenant).await.iter().any(|e| e["entity_id"] == a_new_id.as_str() && e["action"] == "runtime.registered"));

    // A's own token still works: B's attempts did not use it up.
    let credential = t.app.register_agent(&a_new).await;
    assert_eq!(parts(&credential)[..3], ["brc".to_string(), a_tenant, a_runtime_hex]);
}

#[tokio::test]
async fn tenant_b_s_agent_heartbeats_leave_tenant_a_s_runtime_untouched() {
    let t = TwoTenants::spawn().await;
    let before = a_runtime(&t, &t.a.runtime_id).await;
    assert!(before["last_seen_at"].is_string(), "A's agent has heartbeated: {before}");
    assert_eq!(before["agent_version"], "1.0.0");
    // Let the clock move, so a heartbeat landing on A's runtime would show.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;

    let beat = expect_status(heartbeat_as(&t, &t.b.credential, "6.6.6").await, StatusCode::OK).await;
    assert_eq!(beat["runtime_id"], t.b.runtime_id.as_str());

    assert_eq!(a_runtime(&t, &t.a.runtime_id).await, before, "A's last_seen_at and agent_version are unchanged");
    let b_runtime = expect_status(send(&t.app, Method::GET, &format!("/v1/runtimes/{}", t.b.runtime_id), &t.b.tenant.admin, None).await, StatusCode::OK).await;
    assert_eq!(b_runtime["agent_version"], "6.6.6", "B's heartbeat landed on B's runtime: {b_runtime}");
    assert_ne!(b_runtime["last_seen_at"], before["last_seen_at"]);
}
