//! Separation of duties on change requests: whoever created it or changed
//! its items is an author, and no author may approve it.

use crate::{World, id_of, world};
use berth_tests::{expect_problem, expect_status};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn a_colleague_who_swaps_a_change_request_s_items_for_their_own_cannot_then_approve_it() {
    let w = world().await;
    w.set_policy(json!({"required_approvals": 1})).await;
    let path = submitted_by_ann(&w).await;

    // Bob (deployer and approver) swaps Ann's item for his package...
    let edited = expect_status(
        w.app.request(Method::PATCH, &path, Some(&w.bob)).json(&json!({"items": [{"package_id": w.v2["id"]}]})).send().await.expect("sent"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(edited["items"][0]["package_id"], w.v2["id"]);
    // ...and may not approve what he now co-authored.
    let approve = json!({"decision": "approve", "comment": "looks good"});
    expect_problem(w.app.post(&format!("{path}/approvals"), &w.bob, approve.clone()).await, StatusCode::FORBIDDEN, "self_approval_forbidden").await;
    expect_problem(w.app.post(&format!("{path}/approvals"), &w.ann, approve.clone()).await, StatusCode::FORBIDDEN, "not_an_approver").await;
    let still = expect_status(w.app.get(&path, &w.acme.admin).await, StatusCode::OK).await;
    assert_eq!(still["status"], "submitted", "nothing was approved");

    let approved = expect_status(w.app.post(&format!("{path}/approvals"), &w.carol, approve).await, StatusCode::CREATED).await;
    assert_eq!(approved["status"], "approved", "an approver who is not an author can");
}

#[tokio::test]
async fn an_editor_who_changed_only_the_wording_may_still_approve() {
    let w = world().await;
    w.set_policy(json!({"required_approvals": 1})).await;
    let path = submitted_by_ann(&w).await;
    expect_status(w.app.request(Method::PATCH, &path, Some(&w.bob)).json(&json!({"overview": "typo fixed"})).send().await.expect("sent"), StatusCode::OK).await;
    let approved = expect_status(w.app.post(&format!("{path}/approvals"), &w.bob, json!({"decision": "approve"})).await, StatusCode::CREATED).await;
    assert_eq!(approved["status"], "approved");
}

#[tokio::test]
async fn with_self_approval_allowed_an_editor_may_approve() {
    let w = world().await;
    w.set_policy(json!({"required_approvals": 1, "allow_self_approval": true})).await;
    let path = submitted_by_ann(&w).await;
    expect_status(
        w.app.request(Method::PATCH, &path, Some(&w.bob)).json(&json!({"items": [{"package_id": w.v2["id"]}]})).send().await.expect("sent"),
        StatusCode::OK,
    )
    .await;
    let approved = expect_status(w.app.post(&format!("{path}/approvals"), &w.bob, json!({"decision": "approve"})).await, StatusCode::CREATED).await;
    assert_eq!(approved["status"], "approved");
}

/// Ann's change request of Orders v1 to Production, submitted; its path.
async fn submitted_by_ann(w: &World) -> String {
    let body = json!({"name": "Orders v1", "change_type": "normal", "target_environment_id": w.prod["id"], "items": [{"package_id": w.v1["id"]}]});
    let cr = expect_status(w.app.post("/v1/change-requests", &w.ann, body).await, StatusCode::CREATED).await;
    let path = format!("/v1/change-requests/{}", id_of(&cr));
    expect_status(w.app.post(&format!("{path}/submit"), &w.ann, json!({})).await, StatusCode::OK).await;
    path
}
