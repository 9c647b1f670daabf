//! Change requests: draft → submitted → approved → deploying → completed (or
//! failed); their authors and item editors may not approve them; approvals
//! are bound to the items' digests; deploying creates one deployment per item.

use crate::fixture::{World, refused};
use berth_domain::change_request::{ChangeRequest, ChangeStatus};
use berth_domain::component::ComponentType;
use berth_domain::context::TenantCtx;
use berth_domain::deployment::{DeploymentKind, DeploymentStatus, TargetState};
use berth_domain::package::Package;
use berth_domain::policy::{Decision, Policy};
use berth_domain::usecases::ChangeRequestPatch;
use berth_domain::values::{Role, Version};

/// Production requires `required_approvals`; Billing is packaged beside Orders.
async fn world(required_approvals: u32) -> (World, Package) {
    let w = World::new().await;
    w.set_policy(w.prod.id, Policy { required_approvals, ..Policy::default() }).await;
    let billing = w.component("Billing", ComponentType::Process, b"billing", &[]).await;
    let billing = w.package(billing.id, "v1").await;
    (w, billing)
}

async fn decide(w: &World, ctx: &TenantCtx, cr: &ChangeRequest, decision: Decision) -> berth_domain::Result<ChangeRequest> {
    w.berth.decide_change_request(ctx, cr.id, decision, String::new()).await
}

async fn set_items(w: &World, ctx: &TenantCtx, cr: &ChangeRequest, items: &[&Package]) -> ChangeRequest {
    let patch = ChangeRequestPatch { items: Some(items.iter().map(|p| p.id).collect()), ..ChangeRequestPatch::default() };
    w.berth.patch_change_request(ctx, cr.id, patch, None).await.expect("the items change")
}

#[tokio::test]
async fn a_change_request_goes_from_draft_to_submitted_to_approved_to_deploying_to_completed() {
    let (w, billing) = world(1).await;
    let draft = w.berth.create_change_request(&w.ann, w.change_input(w.prod.id, &[&w.v1, &billing])).await.expect("drafted");
    assert_eq!((draft.status, draft.version), (ChangeStatus::Draft, Version::FIRST));
    assert_eq!(draft.digests, [w.v1.digest.clone().unwrap(), billing.digest.clone().unwrap()], "bound to the items' digests, in order");

    let submitted = w.berth.submit_change_request(&w.ann, draft.id).await.expect("submitted");
    assert_eq!((submitted.status, submitted.required_approvals), (ChangeStatus::Submitted, 1));
    let approved = decide(&w, &w.bob, &submitted, Decision::Approve).await.expect("Bob approves");
    assert_eq!(approved.status, ChangeStatus::Approved);

    let deploying = w.berth.deploy_change_request(&w.ann, draft.id, false).await.expect("deploying");
    assert_eq!(deploying.status, ChangeStatus::Deploying);
    assert_eq!(deploying.deployments.len(), 2, "one deployment per item");
    for (id, item) in deploying.deployments.iter().zip([&w.v1, &billing]) {
        let d = w.deployment(*id).await;
        assert_eq!((d.package_id, d.kind, d.status), (item.id, DeploymentKind::Deploy, DeploymentStatus::Queued));
        assert_eq!((d.change_request_id, d.required_approvals), (Some(draft.id), 0), "its approvals were the change request's");
    }
    assert_eq!(refused(w.berth.complete_change_request(&w.ann, draft.id).await).code(), "deployments_not_finished");

    w.run(TargetState::Deployed).await;
    for id in &deploying.deployments {
        assert_eq!(w.deployment(*id).await.status, DeploymentStatus::Succeeded);
    }
    assert_eq!(w.change(&draft).await.status, ChangeStatus::Completed, "completed once its deployments succeeded");
    let completed = w.berth.complete_change_request(&w.ann, draft.id).await.expect("completing again is harmless");
    assert_eq!(completed.status, ChangeStatus::Completed);
    let patch = ChangeRequestPatch { items: Some(vec![w.v1.id]), ..ChangeRequestPatch::default() };
    assert_eq!(refused(w.berth.patch_change_request(&w.ann, draft.id, patch, None).await).code(), "change_request_locked");
    assert_eq!(w.active_orders(w.prod.id).await.as_deref(), Some("v1"));
}

#[tokio::test]
async fn a_change_request_one_of_whose_deployments_fails_ends_failed() {
    let (w, billing) = world(0).await;
    let cr = w.submitted_change(&w.ann, w.prod.id, &[&w.v1, &billing]).await;
    let deploying = w.berth.deploy_change_request(&w.ann, cr.id, false).await.expect("deploying");
    w.dispatch().await;
    let first = w.atom.next_job(&w.berth).await.expect("a first job");
    w.atom.report(&w.berth, first.job_id, TargetState::Deployed).await.expect("reported");
    let second = w.atom.next_job(&w.berth).await.expect("a second job");
    w.atom.report(&w.berth, second.job_id, TargetState::Failed).await.expect("reported");

    let mut ran = [first.deployment_id, second.deployment_id];
    ran.sort();
    let mut created = deploying.deployments.clone();
    created.sort();
    assert_eq!(ran, created.as_slice(), "the agent ran the change request's two deployments");
    assert_eq!(w.deployment(first.deployment_id).await.status, DeploymentStatus::Succeeded);
    assert_eq!(w.deployment(second.deployment_id).await.status, DeploymentStatus::Failed);
    assert_eq!(w.change(&cr).await.status, ChangeStatus::Failed);
}

#[tokio::test]
async fn without_required_approvals_a_submitted_change_request_is_approved_at_once() {
    let (w, _) = world(0).await;
    let cr = w.submitted_change(&w.ann, w.prod.id, &[&w.v1]).await;
    assert_eq!((cr.status, cr.required_approvals), (ChangeStatus::Approved, 0));
}

#[tokio::test]
async fn its_author_may_not_approve_a_change_request_unless_the_policy_allows_self_approval() {
    let (w, _) = world(1).await;
    let alice = w.user("alice@acme.example", &[Role::Deployer, Role::Approver]);
    let cr = w.submitted_change(&alice, w.prod.id, &[&w.v1]).await;
    for decision in [Decision::Approve, Decision::Reject] {
        assert_eq!(refused(decide(&w, &alice, &cr, decision).await).code(), "self_approval_forbidden");
    }
    assert!(w.berth.change_request_approvals(&w.admin, cr.id).await.expect("listed").is_empty());

    w.set_policy(w.prod.id, Policy { required_approvals: 1, allow_self_approval: true, ..Policy::default() }).await;
    assert_eq!(decide(&w, &alice, &cr, Decision::Approve).await.expect("self-approval is allowed now").status, ChangeStatus::Approved);
}

#[tokio::test]
async fn whoever_changed_its_items_may_not_approve_it_but_whoever_changed_only_its_wording_may() {
    let (w, billing) = world(1).await;
    let cr = w.submitted_change(&w.ann, w.prod.id, &[&w.v1]).await;
    let dan = w.user("dan@acme.example", &[Role::Deployer, Role::Approver]);
    let erin = w.user("erin@acme.example", &[Role::Deployer, Role::Approver]);

    let swapped = set_items(&w, &dan, &cr, &[&billing]).await;
    assert_eq!(swapped.item_editors, ["dan@acme.example"]);
    assert_eq!(refused(decide(&w, &dan, &cr, Decision::Approve).await).code(), "self_approval_forbidden");
    let renamed = ChangeRequestPatch { name: Some(crate::fixture::name("Billing release")), ..ChangeRequestPatch::default() };
    w.berth.patch_change_request(&erin, cr.id, renamed, None).await.expect("Erin renames it");
    assert_eq!(w.change(&cr).await.item_editors, ["dan@acme.example"], "a new name is not a new item");
    assert_eq!(decide(&w, &erin, &cr, Decision::Approve).await.expect("Erin approves").status, ChangeStatus::Approved);
}

#[tokio::test]
async fn with_self_approval_allowed_an_item_editor_may_approve() {
    let (w, billing) = world(1).await;
    let cr = w.submitted_change(&w.ann, w.prod.id, &[&w.v1]).await;
    let dan = w.user("dan@acme.example", &[Role::Deployer, Role::Approver]);
    set_items(&w, &dan, &cr, &[&w.v1, &billing]).await;
    w.set_policy(w.prod.id, Policy { required_approvals: 1, allow_self_approval: true, ..Policy::default() }).await;
    assert_eq!(decide(&w, &dan, &cr, Decision::Approve).await.expect("with self-approval allowed, an editor may approve").status, ChangeStatus::Approved);
}

#[tokio::test]
async fn approvals_are_bound_to_the_items_digests_so_new_items_need_new_approvals() {
    let (w, _) = world(2).await;
    let cr = w.submitted_change(&w.ann, w.prod.id, &[&w.v1]).await;
    decide(&w, &w.bob, &cr, Decision::Approve).await.expect("Bob approves v1");
    let v2 = w.next_orders("v2").await;
    let changed = set_items(&w, &w.ann, &cr, &[&v2]).await;
    assert_eq!((changed.status, changed.digests.clone()), (ChangeStatus::Submitted, vec![v2.digest.clone().unwrap()]));

    let once = decide(&w, &w.carol, &cr, Decision::Approve).await.expect("Carol approves v2");
    assert_eq!(once.status, ChangeStatus::Submitted, "Bob's approval of v1 does not count for v2");
    let twice = decide(&w, &w.bob, &cr, Decision::Approve).await.expect("Bob approves v2");
    assert_eq!(twice.status, ChangeStatus::Approved);
    assert_eq!(refused(decide(&w, &w.bob, &cr, Decision::Approve).await).code(), "not_submitted");
}

#[tokio::test]
async fn changing_the_items_of_an_approved_change_request_sends_it_back_for_approval() {
    let (w, billing) = world(1).await;
    let cr = w.submitted_change(&w.ann, w.prod.id, &[&w.v1]).await;
    assert_eq!(decide(&w, &w.bob, &cr, Decision::Approve).await.expect("Bob approves").status, ChangeStatus::Approved);

    let changed = set_items(&w, &w.ann, &cr, &[&w.v1, &billing]).await;
    assert_eq!(changed.status, ChangeStatus::Submitted);
    assert_eq!(refused(w.berth.deploy_change_request(&w.ann, cr.id, false).await).code(), "not_approved");
    assert!(w.deployments().await.is_empty());
    assert_eq!(decide(&w, &w.bob, &cr, Decision::Approve).await.expect("Bob approves the new items").status, ChangeStatus::Approved);
}

#[tokio::test]
async fn one_rejection_closes_a_change_request() {
    let (w, _) = world(2).await;
    let cr = w.submitted_change(&w.ann, w.prod.id, &[&w.v1]).await;
    decide(&w, &w.bob, &cr, Decision::Approve).await.expect("Bob approves");
    assert_eq!(decide(&w, &w.carol, &cr, Decision::Reject).await.expect("Carol rejects").status, ChangeStatus::Rejected);

    let dave = w.user("dave@acme.example", &[Role::Approver]);
    assert_eq!(refused(decide(&w, &dave, &cr, Decision::Approve).await).code(), "not_submitted");
    assert_eq!(refused(w.berth.deploy_change_request(&w.ann, cr.id, false).await).code(), "not_approved");
    let rename = ChangeRequestPatch { name: Some(crate::fixture::name("Again")), ..ChangeRequestPatch::default() };
    assert_eq!(refused(w.berth.patch_change_request(&w.ann, cr.id, rename, None).await).code(), "change_request_locked");
    assert_eq!(w.change(&cr).await.status, ChangeStatus::Rejected);
}

#[tokio::test]
async fn change_request_steps_taken_out_of_turn_are_refused_and_change_nothing() {
    let (w, billing) = world(1).await;
    let cr = w.berth.create_change_request(&w.ann, w.change_input(w.prod.id, &[&w.v1, &billing])).await.expect("drafted");
    assert_eq!(refused(w.berth.deploy_change_request(&w.ann, cr.id, false).await).code(), "not_approved");
    assert_eq!(refused(decide(&w, &w.bob, &cr, Decision::Approve).await).code(), "not_submitted");
    assert_eq!(refused(w.berth.complete_change_request(&w.ann, cr.id).await).code(), "not_deploying");
    assert_eq!(w.change(&cr).await, cr, "still the same draft");

    w.berth.submit_change_request(&w.ann, cr.id).await.expect("submitted");
    assert_eq!(refused(w.berth.submit_change_request(&w.ann, cr.id).await).code(), "not_draft");
    decide(&w, &w.bob, &cr, Decision::Approve).await.expect("Bob approves");
    let deploying = w.berth.deploy_change_request(&w.ann, cr.id, false).await.expect("deploying");

    let rename = ChangeRequestPatch { name: Some(crate::fixture::name("Renamed")), ..ChangeRequestPatch::default() };
    assert_eq!(refused(w.berth.patch_change_request(&w.ann, cr.id, rename, None).await).code(), "change_request_locked");
    assert_eq!(refused(w.berth.submit_change_request(&w.ann, cr.id).await).code(), "not_draft");
    assert_eq!(refused(w.berth.deploy_change_request(&w.ann, cr.id, false).await).code(), "not_approved");
    assert_eq!(refused(decide(&w, &w.carol, &cr, Decision::Reject).await).code(), "not_submitted");
    assert_eq!(w.change(&cr).await, deploying, "still deploying, unchanged");
    assert_eq!(w.deployments().await.len(), 2, "deploying twice created nothing more");
}

#[tokio::test]
async fn a_change_request_with_an_item_that_cannot_go_creates_no_deployment() {
    let (w, billing) = world(0).await;
    let v2 = w.next_orders("v2").await;
    let direct = w.request(&w.ann, &v2, w.prod.id).await.expect("Orders v2 is on its way");
    let cr = w.submitted_change(&w.ann, w.prod.id, &[&billing, &w.v1]).await;

    let err = refused(w.berth.deploy_change_request(&w.ann, cr.id, false).await);
    assert_eq!(err.code(), "deployment_in_progress");
    assert_eq!(w.change(&cr).await.status, ChangeStatus::Approved, "it may be deployed later");
    assert_eq!(w.deployments().await.iter().map(|d| d.id).collect::<Vec<_>>(), [direct.id], "not even Billing was deployed");
}
