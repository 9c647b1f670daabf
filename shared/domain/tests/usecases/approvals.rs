//! Approvals of a deployment: the policy's count, from approvers other than
//! the requester, one decision each; one rejection closes it; the last
//! approval releases it (queued, or held by its time or a freeze window).

use crate::fixture::{CAROL, World, freeze_now, refused, window};
use berth_domain::deployment::{Deployment, DeploymentStatus};
use berth_domain::policy::{Decision, Policy};
use berth_domain::usecases::NewDeployment;
use berth_domain::values::Role;
use chrono::{Duration, Utc};

async fn world(required_approvals: u32) -> World {
    let w = World::new().await;
    w.set_policy(w.prod.id, Policy { required_approvals, ..Policy::default() }).await;
    w
}

async fn approvers(w: &World, d: &Deployment) -> Vec<(String, Decision)> {
    w.berth.deployment_approvals(&w.admin, d.id).await.expect("approvals are listed").into_iter().map(|a| (a.approver, a.decision)).collect()
}

#[tokio::test]
async fn a_deployment_waits_for_the_policy_s_count_of_approvals_and_is_queued_by_the_last() {
    let w = world(2).await;
    let d = w.request(&w.ann, &w.v1, w.prod.id).await.expect("the deployment is accepted");
    assert_eq!((d.status, d.required_approvals), (DeploymentStatus::PendingApproval, 2));
    assert!(w.dispatch().await.is_empty(), "nothing is queued for the dispatcher");

    let once = w.decide(&w.bob, &d, Decision::Approve).await.expect("Bob approves");
    assert_eq!(once.status, DeploymentStatus::PendingApproval, "one approval of two");
    let twice = w.decide(&w.carol, &d, Decision::Approve).await.expect("Carol approves");
    assert_eq!(twice.status, DeploymentStatus::Queued, "the second approval queues it");
    assert_eq!(w.dispatch().await, [d.id], "the dispatcher is sent the deployment");
    w.atom.run_jobs(&w.berth, berth_domain::deployment::TargetState::Deployed).await;
    assert_eq!(w.status(&d).await, DeploymentStatus::Succeeded);
    assert_eq!(w.active_orders(w.prod.id).await.as_deref(), Some("v1"));

    let approvals = w.berth.deployment_approvals(&w.admin, d.id).await.expect("approvals are listed");
    assert_eq!(approvals.len(), 2);
    assert!(approvals.iter().all(|a| a.digests == [w.v1.digest.clone().unwrap()]), "each approval is bound to the package's digest");
}

#[tokio::test]
async fn the_requester_may_not_approve_their_own_deployment_unless_the_policy_allows_self_approval() {
    let w = world(1).await;
    let alice = w.user("alice@acme.example", &[Role::Deployer, Role::Approver]);
    let d = w.request(&alice, &w.v1, w.prod.id).await.expect("the deployment is accepted");

    for decision in [Decision::Approve, Decision::Reject] {
        assert_eq!(refused(w.decide(&alice, &d, decision).await).code(), "self_approval_forbidden");
    }
    assert!(approvers(&w, &d).await.is_empty(), "no decision was recorded");
    assert_eq!(w.status(&d).await, DeploymentStatus::PendingApproval);

    w.set_policy(w.prod.id, Policy { required_approvals: 1, allow_self_approval: true, ..Policy::default() }).await;
    let approved = w.decide(&alice, &d, Decision::Approve).await.expect("self-approval is allowed now");
    assert_eq!(approved.status, DeploymentStatus::Queued);
    assert_eq!(approvers(&w, &d).await, [("alice@acme.example".to_string(), Decision::Approve)]);
}

#[tokio::test]
async fn only_the_policy_s_approver_roles_may_decide() {
    let w = world(1).await;
    let d = w.request(&w.ann, &w.v1, w.prod.id).await.expect("the deployment is accepted");
    for roles in [&[Role::Viewer][..], &[Role::Developer], &[Role::Deployer], &[Role::Viewer, Role::Developer, Role::Deployer]] {
        let caller = w.user("someone@acme.example", roles);
        for decision in [Decision::Approve, Decision::Reject] {
            assert_eq!(refused(w.decide(&caller, &d, decision).await).code(), "not_an_approver", "{roles:?}");
        }
    }
    assert!(approvers(&w, &d).await.is_empty());

    // A policy may take approvals from admins only.
    w.set_policy(w.prod.id, Policy { required_approvals: 1, approver_roles: vec![Role::Admin], ..Policy::default() }).await;
    assert_eq!(refused(w.decide(&w.bob, &d, Decision::Approve).await).code(), "not_an_approver");
    assert_eq!(w.decide(&w.admin, &d, Decision::Approve).await.expect("an admin approves").status, DeploymentStatus::Queued);
}

#[tokio::test]
async fn one_rejection_closes_the_deployment_and_frees_the_environment_for_another() {
    let w = world(2).await;
    let d = w.request(&w.ann, &w.v1, w.prod.id).await.expect("the deployment is accepted");
    w.decide(&w.bob, &d, Decision::Approve).await.expect("Bob approves");
    let rejected = w.decide(&w.carol, &d, Decision::Reject).await.expect("Carol rejects");
    assert_eq!(rejected.status, DeploymentStatus::Rejected);
    assert!(rejected.finished_at.is_some());

    let dave = w.user("dave@acme.example", &[Role::Approver]);
    assert_eq!(refused(w.decide(&dave, &d, Decision::Approve).await).code(), "not_pending_approval");
    assert_eq!(w.status(&d).await, DeploymentStatus::Rejected, "a later approval does not revive it");
    assert!(w.dispatch().await.is_empty(), "nothing was sent to the dispatcher");
    let again = w.request(&w.ann, &w.v1, w.prod.id).await.expect("the rejected deployment no longer holds the environment");
    assert_eq!(again.status, DeploymentStatus::PendingApproval);
}

#[tokio::test]
async fn a_second_decision_by_the_same_approver_is_refused_and_counts_once() {
    let w = world(2).await;
    let d = w.request(&w.ann, &w.v1, w.prod.id).await.expect("the deployment is accepted");
    w.decide(&w.bob, &d, Decision::Approve).await.expect("Bob approves");

    assert_eq!(refused(w.decide(&w.bob, &d, Decision::Approve).await).code(), "already_decided");
    assert_eq!(refused(w.decide(&w.bob, &d, Decision::Reject).await).code(), "already_decided", "nor may Bob change his mind");
    assert_eq!(w.status(&d).await, DeploymentStatus::PendingApproval, "one approval of two");
    assert_eq!(approvers(&w, &d).await, [(crate::fixture::BOB.to_string(), Decision::Approve)]);
    assert_eq!(w.decide(&w.carol, &d, Decision::Approve).await.expect("Carol approves").status, DeploymentStatus::Queued);
    assert_eq!(approvers(&w, &d).await.last(), Some(&(CAROL.to_string(), Decision::Approve)));
}

#[tokio::test]
async fn a_decision_on_a_deployment_that_waits_for_no_approval_is_refused_not_pending_approval() {
    let w = world(0).await;
    let d = w.request(&w.ann, &w.v1, w.prod.id).await.expect("the deployment is accepted");
    assert_eq!(d.status, DeploymentStatus::Queued);
    for decision in [Decision::Approve, Decision::Reject] {
        assert_eq!(refused(w.decide(&w.bob, &d, decision).await).code(), "not_pending_approval");
    }
    w.run(berth_domain::deployment::TargetState::Deployed).await;
    assert_eq!(refused(w.decide(&w.bob, &d, Decision::Reject).await).code(), "not_pending_approval");
    assert_eq!(w.status(&d).await, DeploymentStatus::Succeeded, "a late reject undoes nothing");
    assert!(approvers(&w, &d).await.is_empty());
    let audited = w.audit_actions(d.id).await;
    assert!(!audited.iter().any(|a| a == "deployment.approved" || a == "deployment.rejected"), "no decision was recorded: {audited:?}");
}

#[tokio::test]
async fn approvals_completed_before_the_requested_time_schedule_the_deployment_for_that_time() {
    let w = world(1).await;
    let at = Utc::now() + Duration::days(1);
    let input = NewDeployment { scheduled_at: Some(at), ..crate::fixture::deploy_input(&w.v1, w.prod.id) };
    let d = w.berth.create_deployment(&w.ann, input).await.expect("the deployment is accepted");
    assert_eq!(d.status, DeploymentStatus::PendingApproval, "approvals come first");

    let approved = w.decide(&w.bob, &d, Decision::Approve).await.expect("Bob approves");
    assert_eq!((approved.status, approved.scheduled_at), (DeploymentStatus::Scheduled, Some(at)));
    assert!(w.dispatch().await.is_empty(), "it waits for its time");
    let report = w.berth.sweep(at + Duration::seconds(1)).await.expect("the sweeper runs");
    assert_eq!(report.released, 1);
    assert_eq!(w.status(&d).await, DeploymentStatus::Queued);
    assert_eq!(w.dispatch().await, [d.id]);
}

#[tokio::test]
async fn approvals_completed_inside_a_freeze_window_hold_the_deployment_until_the_window_ends() {
    let w = world(1).await;
    let d = w.request(&w.ann, &w.v1, w.prod.id).await.expect("the deployment is accepted");
    let frozen = freeze_now();
    w.set_policy(w.prod.id, Policy { required_approvals: 1, freeze_windows: vec![frozen.clone()], ..Policy::default() }).await;

    let approved = w.decide(&w.bob, &d, Decision::Approve).await.expect("Bob approves");
    assert_eq!((approved.status, approved.scheduled_at), (DeploymentStatus::Scheduled, Some(frozen.end)));
    assert!(w.dispatch().await.is_empty(), "no runtime is sent anything");
    assert!(w.berth.list_targets(&w.admin, d.id).await.expect("targets are listed").is_empty());
    let timeline = w.timeline(&d).await;
    let said = |line: &str| timeline.iter().filter(|l| *l == line).count();
    assert_eq!((said("Approvals complete: held until its scheduled time"), said("Approvals complete: queued")), (1, 0), "{timeline:?}");
}

#[tokio::test]
async fn approvals_completed_after_a_freeze_window_ended_queue_the_deployment() {
    let w = world(1).await;
    let d = w.request(&w.ann, &w.v1, w.prod.id).await.expect("the deployment is accepted");
    let now = Utc::now();
    w.set_policy(w.prod.id, Policy { required_approvals: 1, freeze_windows: vec![window(now - Duration::hours(2), now)], ..Policy::default() }).await;
    let approved = w.decide(&w.bob, &d, Decision::Approve).await.expect("Bob approves");
    assert_eq!((approved.status, approved.scheduled_at), (DeploymentStatus::Queued, None));
}
