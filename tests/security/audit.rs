//! Every transition of a deployment is in the audit chain, with the server's
//! request id (the client's own kept beside it), and the chain verifies.

use crate::{id_of, world};
use berth_tests::expect_status;
use chrono::{Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn every_transition_of_an_approved_deployment_is_audited_and_the_chain_verifies() {
    let w = world().await;
    w.set_policy(json!({"required_approvals": 1})).await;
    let d = expect_status(w.app.post("/v1/deployments", &w.ann, json!({"package_id": w.v1["id"], "environment_id": w.prod["id"]})).await, StatusCode::CREATED)
        .await;
    expect_status(w.approve(&w.carol, &d).await, StatusCode::CREATED).await;
    w.app.wait_for_status(&w.acme, &d, "succeeded").await;

    assert_eq!(
        w.audit_actions(&id_of(&d)).await,
        ["deployment.requested", "deployment.approved", "deployment.approvals_complete", "deployment.started", "deployment.succeeded"]
    );
    let trail = w.app.audit(&w.acme).await;
    let finished = trail.iter().find(|e| e["action"] == "deployment.succeeded").expect("the terminal event");
    assert_eq!(finished["summary"]["targets"], json!({"deployed": 1}), "the terminal event counts its targets");
    let started = trail.iter().find(|e| e["action"] == "deployment.started").expect("dispatch");
    assert_eq!(started["actor"], json!({"kind": "system", "id": "dispatcher"}));
    let verify = expect_status(w.app.get("/v1/audit/verify", &w.acme.admin).await, StatusCode::OK).await;
    assert_eq!(verify["ok"], true, "{verify}");
}

#[tokio::test]
async fn a_rejected_and_a_scheduled_deployment_record_each_step() {
    let w = world().await;
    w.set_policy(json!({"required_approvals": 1})).await;
    let rejected =
        expect_status(w.app.post("/v1/deployments", &w.ann, json!({"package_id": w.v1["id"], "environment_id": w.prod["id"]})).await, StatusCode::CREATED)
            .await;
    expect_status(w.app.post(&format!("/v1/deployments/{}/approvals", id_of(&rejected)), &w.carol, json!({"decision": "reject"})).await, StatusCode::CREATED)
        .await;
    assert_eq!(w.audit_actions(&id_of(&rejected)).await, ["deployment.requested", "deployment.rejected", "deployment.closed"]);

    w.set_policy(json!({})).await;
    let at = Utc::now() + Duration::seconds(2);
    let scheduled = expect_status(
        w.app.post("/v1/deployments", &w.ann, json!({"package_id": w.v1["id"], "environment_id": w.prod["id"], "scheduled_at": at})).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(scheduled["status"], "scheduled");
    w.app.wait_for_status(&w.acme, &scheduled, "succeeded").await;
    assert_eq!(w.audit_actions(&id_of(&scheduled)).await, ["deployment.requested", "deployment.released", "deployment.started", "deployment.succeeded"]);
    let verify = expect_status(w.app.get("/v1/audit/verify", &w.acme.admin).await, StatusCode::OK).await;
    assert_eq!(verify["ok"], true, "{verify}");
}

#[tokio::test]
async fn the_audit_records_the_server_s_request_id_and_keeps_the_client_s_beside_it() {
    let w = world().await;
    let response = w
        .app
        .request(Method::POST, "/v1/environments", Some(&w.acme.admin))
        .header("x-request-id", "client-chosen-42")
        .json(&json!({"name": "Staging", "classification": "test"}))
        .send()
        .await
        .expect("sent");
    let server_id = response.headers().get("x-request-id").and_then(|v| v.to_str().ok()).expect("a request id").to_string();
    assert_ne!(server_id, "client-chosen-42", "the server mints its own request id");
    assert!(uuid::Uuid::parse_str(&server_id).is_ok(), "{server_id}");
    let env = expect_status(response, StatusCode::CREATED).await;

    let created = w.app.audit(&w.acme).await.into_iter().find(|e| e["entity_id"] == env["id"]).expect("the creation is audited");
    assert_eq!(created["request_id"], server_id.as_str());
    assert_eq!(created["client_request_id"], "client-chosen-42");
    let verify = expect_status(w.app.get("/v1/audit/verify", &w.acme.admin).await, StatusCode::OK).await;
    assert_eq!(verify["ok"], true, "the client's id is covered by the chain: {verify}");
}
