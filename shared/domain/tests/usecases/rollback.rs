//! Rollbacks: a person returns an environment to the version active before
//! the current one, through the policy as a deploy; with `auto_rollback` a
//! failed deployment brings the previous version back by itself, exempt from
//! roles, approvals and freeze windows.

use crate::fixture::{ANN, World, freeze_now, refused};
use berth_domain::deployment::{Deployment, DeploymentKind, DeploymentStatus, TargetState};
use berth_domain::package::Package;
use berth_domain::policy::{Decision, Policy};
use berth_domain::values::Role;

/// Production ran Orders v1, then v2 (active now).
async fn two_versions() -> (World, Package) {
    let w = World::new().await;
    w.deploy_active(&w.v1, w.prod.id).await;
    let v2 = w.next_orders("v2").await;
    w.deploy_active(&v2, w.prod.id).await;
    (w, v2)
}

async fn roll_back(w: &World) -> berth_domain::Result<Deployment> {
    w.berth.roll_back(&w.ann, w.prod.id, w.orders.id, "v2 is slow".into(), false).await
}

/// The deployments the system requested on its own.
async fn automatic(w: &World) -> Vec<Deployment> {
    w.deployments().await.into_iter().filter(|d| d.requested_by == "system:auto-rollback").collect()
}

#[tokio::test]
async fn a_person_rolls_back_to_the_version_active_before_the_current_one() {
    let (w, v2) = two_versions().await;
    let rollback = roll_back(&w).await.expect("the rollback is accepted");
    assert_eq!((rollback.kind, rollback.status), (DeploymentKind::Rollback, DeploymentStatus::Queued));
    assert_eq!((rollback.package_id, rollback.version.to_string()), (w.v1.id, "v1".to_string()));
    assert_eq!((rollback.requested_by.as_str(), rollback.notes.as_str()), (ANN, "v2 is slow"));
    assert_eq!(rollback.previous_package_id, Some(v2.id));

    w.run(TargetState::Deployed).await;
    assert_eq!(w.status(&rollback).await, DeploymentStatus::Succeeded);
    assert_eq!(w.active_orders(w.prod.id).await.as_deref(), Some("v1"));
}

#[tokio::test]
async fn a_person_s_rollback_passes_the_policy_as_a_deploy_does() {
    let (w, _) = two_versions().await;
    w.set_policy(w.prod.id, Policy { deployer_roles: vec![Role::Admin], ..Policy::default() }).await;
    assert_eq!(refused(roll_back(&w).await).code(), "forbidden");
    w.set_policy(w.prod.id, Policy { freeze_windows: vec![freeze_now()], ..Policy::default() }).await;
    assert_eq!(refused(roll_back(&w).await).code(), "freeze_window");
    assert_eq!(w.deployments().await.len(), 2, "nothing was recorded");

    w.set_policy(w.prod.id, Policy { required_approvals: 1, ..Policy::default() }).await;
    let rollback = roll_back(&w).await.expect("the rollback is accepted");
    assert_eq!(rollback.status, DeploymentStatus::PendingApproval, "it waits for approvals as a deploy does");
    w.run(TargetState::Deployed).await;
    assert_eq!(w.active_orders(w.prod.id).await.as_deref(), Some("v2"), "nothing ran before approval");

    w.decide(&w.carol, &rollback, Decision::Approve).await.expect("Carol approves");
    w.run(TargetState::Deployed).await;
    assert_eq!(w.active_orders(w.prod.id).await.as_deref(), Some("v1"));
}

#[tokio::test]
async fn a_rollback_with_no_earlier_version_is_refused_no_previous_version() {
    let w = World::new().await;
    assert_eq!(refused(roll_back(&w).await).code(), "not_found", "nothing is active");
    w.deploy_active(&w.v1, w.prod.id).await;
    assert_eq!(refused(roll_back(&w).await).code(), "no_previous_version");
    assert_eq!(w.deployments().await.len(), 1, "nothing was recorded");
}

#[tokio::test]
async fn with_auto_rollback_a_failed_deployment_brings_the_previous_version_back_by_itself() {
    let w = World::new().await;
    w.set_policy(w.prod.id, Policy { auto_rollback: true, ..Policy::default() }).await;
    w.deploy_active(&w.v1, w.prod.id).await;
    let v2 = w.next_orders("v2").await;

    let failed = w.deploy_and_fail(&v2, w.prod.id).await;
    assert_eq!(failed.status, DeploymentStatus::RolledBack);
    let [rollback] = automatic(&w).await.try_into().expect("one automatic rollback");
    assert_eq!((rollback.kind, rollback.status, rollback.package_id), (DeploymentKind::Rollback, DeploymentStatus::Queued, w.v1.id));
    assert!(rollback.notes.contains(&failed.id.to_string()), "it says which deployment failed: {}", rollback.notes);

    w.run(TargetState::Deployed).await;
    assert_eq!(w.status(&rollback).await, DeploymentStatus::Succeeded);
    assert_eq!(w.active_orders(w.prod.id).await.as_deref(), Some("v1"));
}

#[tokio::test]
async fn an_automatic_rollback_needs_no_approval_no_deployer_role_and_is_not_frozen() {
    let w = World::new().await;
    w.deploy_active(&w.v1, w.prod.id).await;
    let v2 = w.next_orders("v2").await;
    let d = w.request(&w.admin, &v2, w.prod.id).await.expect("v2 is accepted");
    w.dispatch().await;
    let job = w.atom.next_job(&w.berth).await.expect("v2's job");
    // While v2 runs, Production is frozen, waits for approvals and lets only deployers change it.
    let strict =
        Policy { auto_rollback: true, required_approvals: 2, deployer_roles: vec![Role::Deployer], freeze_windows: vec![freeze_now()], ..Policy::default() };
    w.set_policy(w.prod.id, strict).await;
    w.atom.report(&w.berth, job.job_id, TargetState::Failed).await.expect("the agent reports the failure");

    assert_eq!(w.status(&d).await, DeploymentStatus::RolledBack);
    let [rollback] = automatic(&w).await.try_into().expect("one automatic rollback");
    assert_eq!((rollback.status, rollback.required_approvals, rollback.scheduled_at), (DeploymentStatus::Queued, 0, None));
    w.run(TargetState::Deployed).await;
    assert_eq!(w.active_orders(w.prod.id).await.as_deref(), Some("v1"), "the previous version runs again despite the window");
}

#[tokio::test]
async fn without_auto_rollback_a_failed_deployment_leaves_the_previous_version_active_and_starts_nothing() {
    let w = World::new().await;
    w.deploy_active(&w.v1, w.prod.id).await;
    let v2 = w.next_orders("v2").await;
    let failed = w.deploy_and_fail(&v2, w.prod.id).await;
    assert_eq!(failed.status, DeploymentStatus::Failed);
    assert!(automatic(&w).await.is_empty());
    assert!(w.dispatch().await.is_empty());
    assert_eq!(w.active_orders(w.prod.id).await.as_deref(), Some("v1"));
}

#[tokio::test]
async fn with_auto_rollback_a_first_deployment_that_fails_has_nothing_to_roll_back_to() {
    let w = World::new().await;
    w.set_policy(w.prod.id, Policy { auto_rollback: true, ..Policy::default() }).await;
    let failed = w.deploy_and_fail(&w.v1, w.prod.id).await;
    assert_eq!(failed.status, DeploymentStatus::Failed);
    assert!(automatic(&w).await.is_empty());
    assert_eq!(w.active_orders(w.prod.id).await, None);
}
