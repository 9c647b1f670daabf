//! The (environment, component) lock: one deployment of a component to an
//! environment in flight at a time; the holder is named to whoever is
//! refused; it is released when the deployment ends or is cancelled; the
//! undeploys sent to a detached runtime take none.

use crate::fixture::{World, deploy_input, refused};
use berth_domain::DomainError;
use berth_domain::component::ComponentType;
use berth_domain::deployment::{Deployment, DeploymentKind, DeploymentStatus, TargetState};
use berth_domain::policy::{Decision, Policy};
use berth_domain::usecases::NewDeployment;
use chrono::{Duration, Utc};

/// Refused `deployment_in_progress`, naming `holder`.
fn held_by(err: DomainError, holder: &Deployment) {
    assert_eq!(err.code(), "deployment_in_progress", "{err}");
    assert!(err.to_string().contains(&holder.id.to_string()), "the refusal names the deployment in flight: {err}");
}

#[tokio::test]
async fn a_second_deployment_of_a_component_to_an_environment_in_flight_is_refused_naming_the_holder() {
    let w = World::new().await;
    let first = w.request(&w.ann, &w.v1, w.prod.id).await.expect("the first deployment is accepted");
    assert_eq!(first.status, DeploymentStatus::Queued);
    let v2 = w.next_orders("v2").await;

    held_by(refused(w.request(&w.ann, &w.v1, w.prod.id).await), &first);
    held_by(refused(w.request(&w.ann, &v2, w.prod.id).await), &first);
    let report = w.berth.validate_deployment(&w.ann, v2.id, w.prod.id).await.expect("the dry run answers");
    assert_eq!(report.errors.iter().map(|e| e.code).collect::<Vec<_>>(), ["deployment_in_progress"]);
    assert!(report.errors[0].message.contains(&first.id.to_string()));

    w.dispatch().await;
    assert_eq!(w.status(&first).await, DeploymentStatus::InProgress);
    held_by(refused(w.request(&w.ann, &v2, w.prod.id).await), &first);
    assert_eq!(w.deployments().await.iter().map(|d| d.id).collect::<Vec<_>>(), [first.id], "the refused ones were not recorded");
}

#[tokio::test]
async fn a_deployment_waiting_for_approvals_or_for_its_time_holds_the_lock_too() {
    let w = World::new().await;
    w.set_policy(w.prod.id, Policy { required_approvals: 1, ..Policy::default() }).await;
    let pending = w.request(&w.ann, &w.v1, w.prod.id).await.expect("the deployment is accepted");
    assert_eq!(pending.status, DeploymentStatus::PendingApproval);
    held_by(refused(w.request(&w.ann, &w.v1, w.prod.id).await), &pending);

    let tomorrow = NewDeployment { scheduled_at: Some(Utc::now() + Duration::days(1)), ..deploy_input(&w.v1, w.test.id) };
    let scheduled = w.berth.create_deployment(&w.ann, tomorrow).await.expect("the deployment is scheduled");
    assert_eq!(scheduled.status, DeploymentStatus::Scheduled);
    held_by(refused(w.request(&w.ann, &w.v1, w.test.id).await), &scheduled);
}

#[tokio::test]
async fn another_component_or_another_environment_is_not_locked() {
    let w = World::new().await;
    w.request(&w.ann, &w.v1, w.prod.id).await.expect("Orders goes to Production");
    let billing = w.component("Billing", ComponentType::Process, b"billing", &[]).await;
    let billing = w.package(billing.id, "v1").await;
    assert_eq!(w.request(&w.ann, &billing, w.prod.id).await.expect("Billing goes to Production too").status, DeploymentStatus::Queued);
    assert_eq!(w.request(&w.ann, &w.v1, w.test.id).await.expect("Orders goes to Test too").status, DeploymentStatus::Queued);
}

#[tokio::test]
async fn the_lock_is_released_when_the_deployment_succeeds_or_fails() {
    let w = World::new().await;
    w.deploy_active(&w.v1, w.prod.id).await;
    let v2 = w.next_orders("v2").await;
    let failed = w.deploy_and_fail(&v2, w.prod.id).await;
    assert_eq!(failed.status, DeploymentStatus::Failed);
    let v3 = w.next_orders("v3").await;
    assert_eq!(w.request(&w.ann, &v3, w.prod.id).await.expect("nothing is in flight").status, DeploymentStatus::Queued);
}

#[tokio::test]
async fn the_lock_is_released_when_the_deployment_is_cancelled_or_rejected() {
    let w = World::new().await;
    w.set_policy(w.prod.id, Policy { required_approvals: 1, ..Policy::default() }).await;
    let cancelled = w.request(&w.ann, &w.v1, w.prod.id).await.expect("the deployment is accepted");
    w.berth.cancel_deployment(&w.ann, cancelled.id).await.expect("cancelled");
    let rejected = w.request(&w.ann, &w.v1, w.prod.id).await.expect("the cancelled deployment no longer holds the lock");
    w.decide(&w.bob, &rejected, Decision::Reject).await.expect("Bob rejects");
    let third = w.request(&w.ann, &w.v1, w.prod.id).await.expect("the rejected deployment no longer holds the lock");
    assert_eq!(third.status, DeploymentStatus::PendingApproval);
}

#[tokio::test]
async fn a_deployment_that_started_can_no_longer_be_cancelled_and_keeps_the_lock() {
    let w = World::new().await;
    let d = w.request(&w.ann, &w.v1, w.prod.id).await.expect("the deployment is accepted");
    w.dispatch().await;
    assert_eq!(refused(w.berth.cancel_deployment(&w.ann, d.id).await).code(), "deployment_started");
    held_by(refused(w.request(&w.ann, &w.v1, w.prod.id).await), &d);
}

#[tokio::test]
async fn an_undeploy_is_refused_while_a_deployment_of_the_component_is_in_flight_and_holds_the_lock_itself() {
    let w = World::new().await;
    w.deploy_active(&w.v1, w.prod.id).await;
    let v2 = w.next_orders("v2").await;
    let deploying = w.request(&w.ann, &v2, w.prod.id).await.expect("v2 is accepted");
    held_by(refused(w.berth.undeploy(&w.ann, w.prod.id, w.orders.id, false).await), &deploying);

    w.run(TargetState::Deployed).await;
    let undeploy = w.berth.undeploy(&w.ann, w.prod.id, w.orders.id, false).await.expect("the undeploy is accepted");
    assert_eq!((undeploy.kind, undeploy.status), (DeploymentKind::Undeploy, DeploymentStatus::Queued));
    held_by(refused(w.request(&w.ann, &w.v1, w.prod.id).await), &undeploy);
    w.run(TargetState::Deployed).await;
    assert_eq!(w.status(&undeploy).await, DeploymentStatus::Succeeded);
    assert_eq!(w.active_orders(w.prod.id).await, None, "Orders is gone from Production");
    w.request(&w.ann, &w.v1, w.prod.id).await.expect("the undeploy released the lock");
}

#[tokio::test]
async fn a_retry_takes_the_lock_again_and_is_refused_while_another_deployment_holds_it() {
    let w = World::new().await;
    let failed = w.deploy_and_fail(&w.v1, w.prod.id).await;
    let v2 = w.next_orders("v2").await;
    let other = w.request(&w.ann, &v2, w.prod.id).await.expect("v2 is accepted");
    held_by(refused(w.berth.retry_deployment(&w.ann, failed.id).await), &other);
    assert_eq!(w.status(&failed).await, DeploymentStatus::Failed);

    w.berth.cancel_deployment(&w.ann, other.id).await.expect("cancelled");
    let retried = w.berth.retry_deployment(&w.ann, failed.id).await.expect("the retry is accepted");
    assert_eq!(retried.status, DeploymentStatus::InProgress);
    held_by(refused(w.request(&w.ann, &v2, w.prod.id).await), &failed);
}

#[tokio::test]
async fn the_undeploy_sent_to_a_detached_runtime_takes_no_lock() {
    let w = World::new().await;
    let spare = w.runtime("spare", &[w.prod.id]).await;
    let d = w.request(&w.admin, &w.v1, w.prod.id).await.expect("v1 is accepted");
    w.dispatch().await;
    w.atom.run_jobs(&w.berth, TargetState::Deployed).await;
    spare.run_jobs(&w.berth, TargetState::Deployed).await;
    assert_eq!(w.status(&d).await, DeploymentStatus::Succeeded);

    w.berth.detach_runtime(&w.admin, w.prod.id, spare.runtime).await.expect("spare is detached");
    let undeploy = w.deployments().await.into_iter().find(|d| d.kind == DeploymentKind::Undeploy).expect("spare is sent an undeploy");
    assert_eq!((undeploy.only_runtime, undeploy.status), (Some(spare.runtime), DeploymentStatus::Queued));

    let v2 = w.next_orders("v2").await;
    let next = w.request(&w.ann, &v2, w.prod.id).await.expect("the per-runtime undeploy holds no lock");
    assert_eq!(next.status, DeploymentStatus::Queued);
    w.dispatch().await;
    assert_eq!(spare.run_jobs(&w.berth, TargetState::Deployed).await.iter().map(|j| j.deployment_id).collect::<Vec<_>>(), [undeploy.id]);
    w.atom.run_jobs(&w.berth, TargetState::Deployed).await;
    assert_eq!(w.status(&undeploy).await, DeploymentStatus::Succeeded);
    assert_eq!(w.status(&next).await, DeploymentStatus::Succeeded);
    assert_eq!(w.active_orders(w.prod.id).await.as_deref(), Some("v2"), "the per-runtime undeploy left the environment's versions alone");
}

#[tokio::test]
async fn a_deployment_that_succeeded_can_be_neither_cancelled_nor_retried_and_an_inactive_component_cannot_be_undeployed() {
    let w = World::new().await;
    let done = w.deploy_active(&w.v1, w.test.id).await;
    assert_eq!(refused(w.berth.cancel_deployment(&w.admin, done.id).await).code(), "deployment_started");
    assert_eq!(refused(w.berth.retry_deployment(&w.admin, done.id).await).code(), "not_retryable");
    // Billing was never deployed; Orders runs in Test, not in Production.
    let billing = w.component("Billing", ComponentType::Process, b"billing", &[]).await;
    for (env, component) in [(w.test.id, billing.id), (w.prod.id, w.orders.id), (w.prod.id, billing.id)] {
        assert_eq!(refused(w.berth.undeploy(&w.admin, env, component, false).await).code(), "not_found");
    }
    assert_eq!(w.deployments().await, [done], "nothing else was recorded");
    assert_eq!(w.active_orders(w.test.id).await.as_deref(), Some("v1"));
}
