//! One policy for every change to an environment: undeploy, rollback,
//! cancel, retry, change-request deploys and runtime attach/detach pass the
//! same deployer roles, freeze windows and (where a deploy needs them) approvals.

use crate::{id_of, world, world_with_apply};
use berth_tests::{expect_problem, expect_status};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn an_undeploy_by_a_deployer_outside_the_policy_s_deployer_roles_is_refused_and_removes_nothing() {
    let w = world().await;
    w.deploy_active(&w.v1).await;
    w.set_policy(json!({"deployer_roles": ["admin"]})).await;

    expect_problem(w.app.delete(&w.undeploy_path(), &w.ann).await, StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(w.active_version().await.as_deref(), Some("v1"), "Production still runs v1");
    assert!(!w.audit_actions(&id_of(&w.prod)).await.is_empty(), "the environment's own history is there");
    let undeploys = w.app.audit(&w.acme).await.iter().filter(|e| e["action"] == "deployment.undeploy_requested").count();
    assert_eq!(undeploys, 0, "no undeploy was recorded");
}

#[tokio::test]
async fn an_undeploy_inside_a_freeze_window_is_refused_or_held_until_the_window_ends() {
    let w = world().await;
    w.deploy_active(&w.v1).await;
    let end = w.freeze(json!({})).await;

    expect_problem(w.app.delete(&w.undeploy_path(), &w.ann).await, StatusCode::CONFLICT, "freeze_window").await;
    let held = expect_status(w.app.delete(&format!("{}?hold_if_frozen=true", w.undeploy_path()), &w.ann).await, StatusCode::ACCEPTED).await;
    assert_eq!(held["status"], "scheduled");
    assert_eq!(held["scheduled_at"].as_str().and_then(|t| t.parse::<chrono::DateTime<chrono::Utc>>().ok()), Some(end), "held until the window ends");
    expect_problem(w.app.delete(&format!("{}?hold_if_frozen=maybe", w.undeploy_path()), &w.ann).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
        .await;
    assert_eq!(w.active_version().await.as_deref(), Some("v1"), "nothing was removed");
    assert_eq!(w.installed_version().as_deref(), Some("v1"), "the agent still runs v1");
}

#[tokio::test]
async fn an_undeploy_that_needs_approvals_waits_and_removes_nothing_until_approved() {
    let w = world().await;
    w.deploy_active(&w.v1).await;
    w.set_policy(json!({"required_approvals": 1})).await;

    let undeploy = expect_status(w.app.delete(&w.undeploy_path(), &w.ann).await, StatusCode::ACCEPTED).await;
    assert_eq!(undeploy["status"], "pending_approval");
    assert_eq!(undeploy["required_approvals"], 1);
    // The agent polls every second: give it time to (wrongly) act.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(w.deployment(&undeploy).await["status"], "pending_approval");
    assert_eq!(w.active_version().await.as_deref(), Some("v1"), "nothing is removed before approval");
    assert_eq!(w.installed_version().as_deref(), Some("v1"));
    expect_problem(w.approve(&w.ann, &undeploy).await, StatusCode::FORBIDDEN, "not_an_approver").await;

    expect_status(w.approve(&w.carol, &undeploy).await, StatusCode::CREATED).await;
    w.app.wait_for_status(&w.acme, &undeploy, "succeeded").await;
    assert_eq!(w.active_version().await, None, "Orders is gone from Production");
    assert_eq!(w.installed_version(), None, "and from the runtime");
}

#[tokio::test]
async fn cancel_refuses_a_deployer_the_policy_does_not_name() {
    let w = world().await;
    w.set_policy(json!({"required_approvals": 1, "deployer_roles": ["admin"]})).await;
    let pending = w.app.deploy(&w.acme, &w.v1, &w.prod, "waits for approval").await;
    assert_eq!(pending["status"], "pending_approval");

    let cancel = format!("/v1/deployments/{}/cancel", id_of(&pending));
    expect_problem(w.app.post(&cancel, &w.ann, json!({})).await, StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(w.deployment(&pending).await["status"], "pending_approval", "still waiting");
    let cancelled = expect_status(w.app.post(&cancel, &w.acme.admin, json!({})).await, StatusCode::OK).await;
    assert_eq!(cancelled["status"], "cancelled");
}

#[tokio::test]
async fn a_cancel_inside_a_freeze_window_is_allowed_because_it_changes_nothing_that_runs() {
    let w = world().await;
    w.freeze(json!({})).await;
    let held = expect_status(
        w.app.post("/v1/deployments", &w.ann, json!({"package_id": w.v1["id"], "environment_id": w.prod["id"], "hold_if_frozen": true})).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(held["status"], "scheduled");
    let cancelled = expect_status(w.app.post(&format!("/v1/deployments/{}/cancel", id_of(&held)), &w.ann, json!({})).await, StatusCode::OK).await;
    assert_eq!(cancelled["status"], "cancelled");
}

#[tokio::test]
async fn retry_refuses_a_deployer_the_policy_does_not_name_and_is_refused_inside_a_freeze_window() {
    let flag = tempfile::tempdir().expect("a dir");
    let fail = flag.path().join("fail");
    std::fs::write(&fail, b"").expect("the flag");
    let w = world_with_apply(Some(&format!("test ! -f {}", fail.display()))).await;
    let failed = w.app.deploy(&w.acme, &w.v1, &w.prod, "will fail").await;
    let failed = w.app.wait_for_status(&w.acme, &failed, "rolled_back").await;
    std::fs::remove_file(&fail).expect("the flag goes");
    let retry = format!("/v1/deployments/{}/retry", id_of(&failed));

    w.set_policy(json!({"deployer_roles": ["admin"]})).await;
    expect_problem(w.app.post(&retry, &w.ann, json!({})).await, StatusCode::FORBIDDEN, "forbidden").await;
    w.freeze(json!({})).await;
    expect_problem(w.app.post(&retry, &w.acme.admin, json!({})).await, StatusCode::CONFLICT, "freeze_window").await;
    assert_eq!(w.deployment(&failed).await["status"], "rolled_back", "neither retried");

    w.set_policy(json!({})).await;
    expect_status(w.app.post(&retry, &w.ann, json!({})).await, StatusCode::OK).await;
    w.app.wait_for_status(&w.acme, &failed, "succeeded").await;
}

#[tokio::test]
async fn a_person_rolls_back_to_the_previous_version_through_the_same_policy_as_a_deploy() {
    let w = world().await;
    expect_problem(w.app.post(&w.rollback_path(), &w.ann, json!({})).await, StatusCode::NOT_FOUND, "not_found").await;
    w.deploy_active(&w.v1).await;
    expect_problem(w.app.post(&w.rollback_path(), &w.ann, json!({})).await, StatusCode::CONFLICT, "no_previous_version").await;
    w.deploy_active(&w.v2).await;

    w.set_policy(json!({"deployer_roles": ["admin"]})).await;
    expect_problem(w.app.post(&w.rollback_path(), &w.ann, json!({})).await, StatusCode::FORBIDDEN, "forbidden").await;
    w.freeze(json!({})).await;
    expect_problem(w.app.post(&w.rollback_path(), &w.acme.admin, json!({})).await, StatusCode::CONFLICT, "freeze_window").await;

    w.set_policy(json!({"required_approvals": 1})).await;
    let rollback = expect_status(w.app.post(&w.rollback_path(), &w.ann, json!({"notes": "v2 is slow"})).await, StatusCode::CREATED).await;
    assert_eq!(rollback["kind"], "rollback");
    assert_eq!(rollback["version"], "v1");
    assert_eq!(rollback["status"], "pending_approval", "a person's rollback waits for approvals as a deploy does");
    assert_eq!(w.active_version().await.as_deref(), Some("v2"));

    expect_status(w.approve(&w.carol, &rollback).await, StatusCode::CREATED).await;
    w.app.wait_for_status(&w.acme, &rollback, "succeeded").await;
    assert_eq!(w.active_version().await.as_deref(), Some("v1"));
    assert_eq!(w.installed_version().as_deref(), Some("v1"), "the runtime runs v1 again");
    let requested = w.app.audit(&w.acme).await.into_iter().find(|e| e["action"] == "deployment.rollback_requested").expect("the rollback is audited");
    assert_eq!(requested["actor"]["id"], crate::ANN);
    assert_eq!(requested["summary"]["automatic"], false);
}

#[tokio::test]
async fn attaching_detaching_or_deleting_a_runtime_passes_the_policy() {
    let w = world().await;
    let spare = w.app.runtime(&w.acme, "spare").await;
    let attach_spare = format!("/v1/environments/{}/runtimes/{}", id_of(&w.prod), id_of(&spare));
    let detach_atom = format!("/v1/environments/{}/runtimes/{}", id_of(&w.prod), id_of(&w.runtime));

    // Admins manage runtimes, but this policy lets only deployers change Production.
    w.set_policy(json!({"deployer_roles": ["deployer"]})).await;
    expect_problem(w.app.put(&attach_spare, &w.acme.admin).await, StatusCode::FORBIDDEN, "forbidden").await;
    expect_problem(w.app.delete(&detach_atom, &w.acme.admin).await, StatusCode::FORBIDDEN, "forbidden").await;
    expect_problem(w.app.delete(&format!("/v1/runtimes/{}", id_of(&w.runtime)), &w.acme.admin).await, StatusCode::FORBIDDEN, "forbidden").await;

    w.freeze(json!({})).await;
    expect_problem(w.app.put(&attach_spare, &w.acme.admin).await, StatusCode::CONFLICT, "freeze_window").await;
    expect_problem(w.app.delete(&detach_atom, &w.acme.admin).await, StatusCode::CONFLICT, "freeze_window").await;
    expect_problem(w.app.delete(&format!("/v1/runtimes/{}", id_of(&w.runtime)), &w.acme.admin).await, StatusCode::CONFLICT, "freeze_window").await;

    let attached = expect_status(w.app.get(&format!("/v1/environments/{}/runtimes", id_of(&w.prod)), &w.acme.admin).await, StatusCode::OK).await;
    let names: Vec<&str> = attached["items"].as_array().expect("items").iter().map(|r| r["name"].as_str().expect("a name")).collect();
    assert_eq!(names, ["atom"], "nothing was attached, detached or deleted");

    w.set_policy(json!({})).await;
    let status = w.app.put(&attach_spare, &w.acme.admin).await.status();
    assert!(status.is_success(), "outside the window, with the role: {status}");
}

#[tokio::test]
async fn a_change_request_deploy_inside_a_freeze_window_is_refused_or_held_when_asked() {
    let w = world().await;
    let body = json!({"name": "Orders v2", "change_type": "normal", "target_environment_id": w.prod["id"], "items": [{"package_id": w.v2["id"]}]});
    let cr = expect_status(w.app.post("/v1/change-requests", &w.ann, body).await, StatusCode::CREATED).await;
    let cr_path = format!("/v1/change-requests/{}", id_of(&cr));
    let submitted = expect_status(w.app.post(&format!("{cr_path}/submit"), &w.ann, json!({})).await, StatusCode::OK).await;
    assert_eq!(submitted["status"], "approved", "no approvals required");

    let end = w.freeze(json!({})).await;
    expect_problem(w.app.post(&format!("{cr_path}/deploy"), &w.ann, json!({})).await, StatusCode::CONFLICT, "freeze_window").await;
    let deploying = expect_status(w.app.post(&format!("{cr_path}/deploy"), &w.ann, json!({"hold_if_frozen": true})).await, StatusCode::OK).await;
    assert_eq!(deploying["status"], "deploying");
    let d = json!({"id": deploying["deployments"][0]});
    let held = w.deployment(&d).await;
    assert_eq!(held["status"], "scheduled", "held by the window");
    assert_eq!(held["scheduled_at"].as_str().and_then(|t| t.parse::<chrono::DateTime<chrono::Utc>>().ok()), Some(end));
    let _ = w.app.request(Method::POST, &format!("/v1/deployments/{}/cancel", id_of(&d)), Some(&w.ann)).send().await;
}
