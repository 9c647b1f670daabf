//! One policy judges every change to an environment: who may make it
//! (deployer roles), whether a freeze window refuses it, and whether it waits
//! for approvals.

use crate::fixture::{ANN, Agent, World, freeze_now, refused};
use berth_domain::change_request::{ChangeRequest, ChangeStatus};
use berth_domain::component::ComponentType;
use berth_domain::deployment::{Deployment, DeploymentKind, DeploymentStatus};
use berth_domain::page::PageRequest;
use berth_domain::policy::Policy;
use berth_domain::usecases::NewDeployment;
use berth_domain::values::Role;
use chrono::{Duration, Utc};

/// Production runs Orders v2 (v1 before it); Orders v3 failed there;
/// Billing is scheduled there for tomorrow; an approved change request of
/// Reports waits to be deployed; the runtime `spare` is attached nowhere.
struct Estate {
    w: World,
    failed: Deployment,
    scheduled: Deployment,
    cr: ChangeRequest,
    spare: Agent,
}

async fn estate() -> Estate {
    let w = World::new().await;
    w.deploy_active(&w.v1, w.prod.id).await;
    let v2 = w.next_orders("v2").await;
    w.deploy_active(&v2, w.prod.id).await;
    let v3 = w.next_orders("v3").await;
    let failed = w.deploy_and_fail(&v3, w.prod.id).await;
    assert_eq!(failed.status, DeploymentStatus::Failed);

    let billing = w.component("Billing", ComponentType::Process, b"billing", &[]).await;
    let billing = w.package(billing.id, "v1").await;
    let tomorrow = NewDeployment { scheduled_at: Some(Utc::now() + Duration::days(1)), ..crate::fixture::deploy_input(&billing, w.prod.id) };
    let scheduled = w.berth.create_deployment(&w.ann, tomorrow).await.expect("Billing is scheduled");
    assert_eq!(scheduled.status, DeploymentStatus::Scheduled);

    let reports = w.component("Reports", ComponentType::Process, b"reports", &[]).await;
    let reports = w.package(reports.id, "v1").await;
    let cr = w.submitted_change(&w.ann, w.prod.id, &[&reports]).await;
    assert_eq!(cr.status, ChangeStatus::Approved, "the default policy requires no approvals");

    let spare = w.runtime("spare", &[]).await;
    Estate { w, failed, scheduled, cr, spare }
}

impl Estate {
    /// What a refused change must leave as it was.
    async fn ledger(&self) -> (Vec<Deployment>, Option<String>, ChangeRequest, usize) {
        let w = &self.w;
        let attached = w.berth.list_environment_runtimes(&w.admin, w.prod.id, &PageRequest::first(100)).await.expect("runtimes are listed").items.len();
        (w.deployments().await, w.active_orders(w.prod.id).await, w.change(&self.cr).await, attached)
    }
}

#[tokio::test]
async fn a_deployer_may_deploy_where_the_policy_names_deployers_and_not_where_it_names_only_admins() {
    let w = World::new().await;
    w.set_policy(w.prod.id, Policy { deployer_roles: vec![Role::Admin], ..Policy::default() }).await;

    assert_eq!(refused(w.request(&w.ann, &w.v1, w.prod.id).await).code(), "forbidden");
    let report = w.berth.validate_deployment(&w.ann, w.v1.id, w.prod.id).await.expect("the dry run answers");
    assert_eq!(report.errors.iter().map(|e| e.code).collect::<Vec<_>>(), ["forbidden"]);
    assert!(w.deployments().await.is_empty(), "nothing was recorded");

    let in_test = w.request(&w.ann, &w.v1, w.test.id).await.expect("Test keeps the default policy");
    assert_eq!(in_test.status, DeploymentStatus::Queued);
    let by_admin = w.request(&w.admin, &w.v1, w.prod.id).await.expect("the policy names admins");
    assert_eq!(by_admin.status, DeploymentStatus::Queued);
}

#[tokio::test]
async fn undeploy_rollback_retry_cancel_and_change_request_deploy_are_refused_to_a_deployer_the_policy_does_not_name() {
    let e = estate().await;
    let w = &e.w;
    w.set_policy(w.prod.id, Policy { deployer_roles: vec![Role::Admin], ..Policy::default() }).await;
    let before = e.ledger().await;

    assert_eq!(refused(w.berth.undeploy(&w.ann, w.prod.id, w.orders.id, false).await).code(), "forbidden");
    assert_eq!(refused(w.berth.roll_back(&w.ann, w.prod.id, w.orders.id, String::new(), false).await).code(), "forbidden");
    assert_eq!(refused(w.berth.retry_deployment(&w.ann, e.failed.id).await).code(), "forbidden");
    assert_eq!(refused(w.berth.cancel_deployment(&w.ann, e.scheduled.id).await).code(), "forbidden");
    assert_eq!(refused(w.berth.deploy_change_request(&w.ann, e.cr.id, false).await).code(), "forbidden");
    assert_eq!(e.ledger().await, before, "nothing changed");

    let cancelled = w.berth.cancel_deployment(&w.admin, e.scheduled.id).await.expect("the policy names admins");
    assert_eq!(cancelled.status, DeploymentStatus::Cancelled);
    let deploying = w.berth.deploy_change_request(&w.admin, e.cr.id, false).await.expect("an admin releases the change request");
    assert_eq!(deploying.status, ChangeStatus::Deploying);
}

#[tokio::test]
async fn attaching_detaching_or_deleting_a_runtime_is_refused_to_an_admin_the_policy_does_not_name() {
    let e = estate().await;
    let w = &e.w;
    w.set_policy(w.prod.id, Policy { deployer_roles: vec![Role::Deployer], ..Policy::default() }).await;
    let before = e.ledger().await;

    assert_eq!(refused(w.berth.attach_runtime(&w.admin, w.prod.id, e.spare.runtime).await).code(), "forbidden");
    assert_eq!(refused(w.berth.detach_runtime(&w.admin, w.prod.id, w.atom.runtime).await).code(), "forbidden");
    assert_eq!(refused(w.berth.delete_runtime(&w.admin, w.atom.runtime).await).code(), "forbidden");
    assert_eq!(e.ledger().await, before, "atom is still attached, spare is not");
    // Test keeps the default policy.
    assert!(w.berth.attach_runtime(&w.admin, w.test.id, e.spare.runtime).await.expect("attached to Test"));
}

#[tokio::test]
async fn every_change_to_what_runs_is_refused_inside_a_freeze_window() {
    let e = estate().await;
    let w = &e.w;
    w.set_policy(w.prod.id, Policy { freeze_windows: vec![freeze_now()], ..Policy::default() }).await;
    let before = e.ledger().await;

    let v4 = w.next_orders("v4").await;
    assert_eq!(refused(w.request(&w.ann, &v4, w.prod.id).await).code(), "freeze_window");
    assert_eq!(refused(w.berth.undeploy(&w.ann, w.prod.id, w.orders.id, false).await).code(), "freeze_window");
    assert_eq!(refused(w.berth.roll_back(&w.ann, w.prod.id, w.orders.id, String::new(), false).await).code(), "freeze_window");
    assert_eq!(refused(w.berth.retry_deployment(&w.ann, e.failed.id).await).code(), "freeze_window");
    assert_eq!(refused(w.berth.deploy_change_request(&w.ann, e.cr.id, false).await).code(), "freeze_window");
    assert_eq!(refused(w.berth.attach_runtime(&w.admin, w.prod.id, e.spare.runtime).await).code(), "freeze_window");
    assert_eq!(refused(w.berth.detach_runtime(&w.admin, w.prod.id, w.atom.runtime).await).code(), "freeze_window");
    assert_eq!(refused(w.berth.delete_runtime(&w.admin, w.atom.runtime).await).code(), "freeze_window");
    assert_eq!(e.ledger().await, before, "nothing changed");
}

#[tokio::test]
async fn a_cancel_inside_a_freeze_window_is_allowed_because_it_changes_nothing_that_runs() {
    let e = estate().await;
    let w = &e.w;
    w.set_policy(w.prod.id, Policy { freeze_windows: vec![freeze_now()], ..Policy::default() }).await;
    let cancelled = w.berth.cancel_deployment(&w.ann, e.scheduled.id).await.expect("a cancel is not frozen");
    assert_eq!(cancelled.status, DeploymentStatus::Cancelled);
    assert_eq!(w.status(&e.scheduled).await, DeploymentStatus::Cancelled);
}

#[tokio::test]
async fn deploy_undeploy_and_a_person_s_rollback_wait_for_approvals_but_retry_and_change_request_deploy_do_not() {
    let e = estate().await;
    let w = &e.w;
    w.set_policy(w.prod.id, Policy { required_approvals: 1, ..Policy::default() }).await;

    let undeploy = w.berth.undeploy(&w.ann, w.prod.id, w.orders.id, false).await.expect("the undeploy is accepted");
    assert_eq!((undeploy.kind, undeploy.status, undeploy.required_approvals), (DeploymentKind::Undeploy, DeploymentStatus::PendingApproval, 1));
    w.berth.cancel_deployment(&w.ann, undeploy.id).await.expect("cancelled");
    let rollback = w.berth.roll_back(&w.ann, w.prod.id, w.orders.id, String::new(), false).await.expect("the rollback is accepted");
    assert_eq!((rollback.kind, rollback.status, rollback.required_approvals), (DeploymentKind::Rollback, DeploymentStatus::PendingApproval, 1));
    w.berth.cancel_deployment(&w.ann, rollback.id).await.expect("cancelled");
    let v4 = w.next_orders("v4").await;
    let deploy = w.request(&w.ann, &v4, w.prod.id).await.expect("the deployment is accepted");
    assert_eq!((deploy.status, deploy.required_approvals), (DeploymentStatus::PendingApproval, 1));
    w.berth.cancel_deployment(&w.ann, deploy.id).await.expect("cancelled");
    assert_eq!(w.active_orders(w.prod.id).await.as_deref(), Some("v2"), "nothing ran before approval");

    // A retry acts on what ran already; a change request brings its own approvals.
    let retried = w.berth.retry_deployment(&w.ann, e.failed.id).await.expect("the retry is accepted");
    assert_eq!(retried.status, DeploymentStatus::InProgress);
    let deploying = w.berth.deploy_change_request(&w.ann, e.cr.id, false).await.expect("the change request deploys");
    let from_change = w.deployment(deploying.deployments[0]).await;
    assert_eq!((from_change.status, from_change.required_approvals), (DeploymentStatus::Queued, 0));
}

#[tokio::test]
async fn the_policy_s_deployer_roles_do_not_give_a_caller_the_deploy_permission() {
    let w = World::new().await;
    // A policy naming approvers as deployers does not make them deployers of the tenant.
    w.set_policy(w.prod.id, Policy { deployer_roles: vec![Role::Approver, Role::Admin], ..Policy::default() }).await;
    assert_eq!(refused(w.request(&w.bob, &w.v1, w.prod.id).await).code(), "forbidden");
    assert_eq!(refused(w.request(&w.user(ANN, &[Role::Viewer]), &w.v1, w.prod.id).await).code(), "forbidden");
    assert!(w.deployments().await.is_empty());
}

#[tokio::test]
async fn a_viewer_or_a_developer_reads_deployments_but_may_not_deploy_undeploy_roll_back_retry_or_cancel() {
    let e = estate().await;
    let w = &e.w;
    let before = e.ledger().await;
    for roles in [&[Role::Viewer][..], &[Role::Developer]] {
        let caller = w.user("reader@acme.example", roles);
        assert_eq!(w.berth.get_deployment(&caller, e.failed.id).await.expect("readable").id, e.failed.id);
        assert_eq!(refused(w.request(&caller, &w.v1, w.test.id).await).code(), "forbidden", "{roles:?}");
        let report = w.berth.validate_deployment(&caller, w.v1.id, w.test.id).await.expect("the dry run answers");
        assert_eq!(report.errors.iter().map(|e| e.code).collect::<Vec<_>>(), ["forbidden"], "the dry run says so once");
        assert_eq!(refused(w.berth.undeploy(&caller, w.prod.id, w.orders.id, false).await).code(), "forbidden");
        assert_eq!(refused(w.berth.roll_back(&caller, w.prod.id, w.orders.id, String::new(), false).await).code(), "forbidden");
        assert_eq!(refused(w.berth.retry_deployment(&caller, e.failed.id).await).code(), "forbidden");
        assert_eq!(refused(w.berth.cancel_deployment(&caller, e.scheduled.id).await).code(), "forbidden");
        assert_eq!(refused(w.berth.deploy_change_request(&caller, e.cr.id, false).await).code(), "forbidden");
    }
    assert_eq!(e.ledger().await, before, "nothing changed");
}
