//! Delivery in fewer steps: deploying a component's latest revision, a change
//! request's dry run, scan and outdated gate, where its packages came from, the
//! plan's usage, and an approver's inbox.

use crate::fixture::{ANN, BOB, World, refused};
use berth_domain::audit::AuditEvent;
use berth_domain::component::ComponentType;
use berth_domain::context::TenantCtx;
use berth_domain::deployment::{Deployment, DeploymentStatus, TargetState};
use berth_domain::ids::ComponentId;
use berth_domain::page::PageRequest;
use berth_domain::policy::{Decision, Policy};
use berth_domain::usecases::{AuditFilter, Awaiting, LatestDeployment, NewLatestDeployment, RevisionInput};
use berth_domain::values::{Classification, Plan, Role};

fn latest(component: ComponentId, env: berth_domain::ids::EnvironmentId) -> NewLatestDeployment {
    NewLatestDeployment {
        component_id: component,
        environment_id: env,
        notes: "latest".into(),
        scheduled_at: None,
        hold_if_frozen: false,
        commit: None,
        override_quarantine: false,
        rollout: None,
    }
}

async fn deploy_latest(w: &World, component: ComponentId) -> LatestDeployment {
    let done = w.berth.deploy_latest_revision(&w.ann, latest(component, w.test.id)).await.expect("the latest revision is deployed");
    w.run(TargetState::Deployed).await;
    assert_eq!(w.status(&done.deployment).await, DeploymentStatus::Succeeded);
    done
}

async fn revise(w: &World, component: ComponentId, content: &str) {
    let input = RevisionInput { content: Some(content.as_bytes().to_vec()), references: None, extensions: None };
    w.berth.revise_component(&w.admin, component, input, None).await.expect("the component is revised");
}

async fn package_count(w: &World, component: ComponentId) -> usize {
    w.berth.list_packages(&w.admin, Some(component), &PageRequest::first(100)).await.expect("packages are listed").items.len()
}

#[tokio::test]
async fn deploying_the_latest_revision_packages_it_once_reuses_that_package_and_packages_again_after_a_revision_of_a_child() {
    let w = World::new().await;
    let mapping = w.component("Mapping", ComponentType::Map, b"map v1", &[]).await;
    let billing = w.component("Billing", ComponentType::Process, b"billing v1", &[mapping.id]).await;

    let first = deploy_latest(&w, billing.id).await;
    assert!(first.package_created, "Billing had no package");
    assert_eq!((first.deployment.package_id, first.package.version.to_string().as_str()), (first.package.id, "1"));
    assert_eq!(w.audit_actions(first.package.id).await, ["package.created"], "packaged as POST /v1/packages does");
    assert_eq!(first.package.created_by, ANN);

    let again = deploy_latest(&w, billing.id).await;
    assert!(!again.package_created, "the newest package holds the latest revision");
    assert_eq!(again.package.id, first.package.id);
    assert_eq!(package_count(&w, billing.id).await, 1);

    // A bundled child revised: the newest package is outdated, so the latest is packaged anew.
    revise(&w, mapping.id, "map v2").await;
    let revised = deploy_latest(&w, billing.id).await;
    assert!(revised.package_created);
    assert_eq!(revised.package.version.to_string(), "2");
    assert_eq!(package_count(&w, billing.id).await, 2);
    let active = w.berth.active_versions(&w.admin, w.test.id).await.expect("listed");
    let billing_active = active.iter().find(|a| a.active.component_id == billing.id).expect("Billing is active");
    assert_eq!((billing_active.active.package_id, billing_active.outdated_components.len()), (revised.package.id, 0));
}

#[tokio::test]
async fn a_latest_revision_deploy_passes_the_same_policy_and_packages_nothing_for_a_caller_it_refuses() {
    let w = World::new().await;
    w.set_policy(w.prod.id, Policy { required_approvals: 1, ..Policy::default() }).await;
    let billing = w.component("Billing", ComponentType::Process, b"billing v1", &[]).await;
    let viewer = w.user("vic@acme.example", &[Role::Developer]);
    assert_eq!(refused(w.berth.deploy_latest_revision(&viewer, latest(billing.id, w.prod.id)).await).code(), "forbidden");
    assert_eq!(package_count(&w, billing.id).await, 0, "nothing packaged for a refused request");

    let waiting = w.berth.deploy_latest_revision(&w.ann, latest(billing.id, w.prod.id)).await.expect("requested");
    assert_eq!(waiting.deployment.status, DeploymentStatus::PendingApproval, "the policy's approvals apply");
}

#[tokio::test]
async fn a_change_request_s_dry_run_reports_each_item_against_its_target_environment() {
    let w = World::new().await;
    let billing = w.component("Billing", ComponentType::Process, b"billing", &[]).await;
    let billing = w.package(billing.id, "v1").await;
    let cr = w.submitted_change(&w.ann, w.prod.id, &[&w.v1, &billing]).await;
    w.berth.delete_package(&w.admin, billing.id).await.expect("Billing v1 is deleted");
    revise(&w, w.orders.id, "orders v2").await;

    let reports = w.berth.validate_change_request(&w.ann, cr.id).await.expect("the dry run answers");
    assert_eq!(reports.iter().map(|r| (r.component_id, r.package_id)).collect::<Vec<_>>(), [(w.orders.id, w.v1.id), (billing.component_id, billing.id)]);
    assert!(reports[0].report.errors.is_empty(), "{:?}", reports[0]);
    assert!(reports[0].report.warnings.iter().any(|i| i.code == "outdated" && i.message.contains("Orders")), "{:?}", reports[0]);
    assert!(reports[1].report.warnings.iter().all(|i| i.code != "outdated"), "{:?}", reports[1]);
    assert_eq!(reports[1].report.errors.iter().map(|i| i.code).collect::<Vec<_>>(), ["package_deleted"]);
}

#[tokio::test]
async fn a_scan_names_what_was_revised_and_deploying_outdated_items_needs_accept_outdated_which_is_recorded() {
    let w = World::new().await;
    let mapping = w.component("Mapping", ComponentType::Map, b"map v1", &[]).await;
    let billing = w.component("Billing", ComponentType::Process, b"billing v1", &[mapping.id]).await;
    let billing = w.package(billing.id, "v1").await;
    let cr = w.submitted_change(&w.ann, w.prod.id, &[&w.v1, &billing]).await;
    let scan = w.berth.scan_change_request(&w.ann, cr.id).await.expect("scanned");
    assert!(scan.iter().all(|i| !i.outdated()), "nothing revised yet");

    revise(&w, mapping.id, "map v2").await;
    let scan = w.berth.scan_change_request(&w.ann, cr.id).await.expect("scanned");
    assert!(!scan[0].outdated());
    assert!(scan[1].outdated());
    let change = &scan[1].changes[0];
    assert_eq!((change.id, change.packaged_revision, change.current_revision), (mapping.id, 1, 2), "a bundled child counts");

    let err = refused(w.berth.deploy_change_request(&w.ann, cr.id, false).await);
    assert_eq!(err.code(), "outdated_items");
    for part in [billing.id.to_string(), "\"Mapping\" revision 1 -> 2".to_string()] {
        assert!(err.to_string().contains(&part), "{err} names {part}");
    }
    assert!(w.deployments().await.iter().all(|d| d.change_request_id.is_none()), "nothing was deployed");

    let deploying = w.berth.deploy_change_request_accepting(&w.ann, cr.id, false, true).await.expect("deployed as packaged");
    let deployments: Vec<Deployment> = deployments_of(&w, &deploying.deployments).await;
    assert_eq!(deployments.iter().map(|d| (d.package_id, d.accepted_outdated)).collect::<Vec<_>>(), [(w.v1.id, false), (billing.id, true)]);
    let deploying_event = audit_event(&w, cr.id.to_string(), "change_request.deploying").await;
    assert_eq!(deploying_event.summary["accepted_outdated"], serde_json::json!([billing.id]));
    let requested = audit_event(&w, deployments[1].id.to_string(), "deployment.requested").await;
    assert_eq!(requested.summary["accepted_outdated"], serde_json::json!(true));
    let up_to_date = audit_event(&w, deployments[0].id.to_string(), "deployment.requested").await;
    assert!(up_to_date.summary.get("accepted_outdated").is_none(), "{}", up_to_date.summary);
}

/// The audit event of `action` about `entity_id`.
async fn audit_event(w: &World, entity_id: String, action: &str) -> AuditEvent {
    let filter = AuditFilter { entity_id: Some(entity_id), action: Some(action.into()), ..AuditFilter::default() };
    let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
    loop {
        let batch = w.berth.list_audit(&w.admin, &filter, &page).await.expect("the audit trail is listed");
        if let Some(e) = batch.items.into_iter().next() {
            return e;
        }
        page.cursor = Some(batch.next_cursor.expect("the event is in the trail"));
    }
}

async fn deployments_of(w: &World, ids: &[berth_domain::ids::DeploymentId]) -> Vec<Deployment> {
    let mut all = vec![];
    for id in ids {
        all.push(w.deployment(*id).await);
    }
    all
}

#[tokio::test]
async fn a_change_request_s_deployment_names_the_environment_its_package_was_promoted_from() {
    let w = World::new().await;
    let staging = w.environment("Staging", Classification::Test).await;
    w.berth.attach_runtime(&w.admin, staging.id, w.atom.runtime).await.expect("atom is attached to Staging");
    w.set_policy(w.prod.id, Policy { require_success_in: vec![w.test.id, staging.id], ..Policy::default() }).await;
    w.deploy_active(&w.v1, w.test.id).await;
    w.deploy_active(&w.v1, staging.id).await;

    let cr = w.submitted_change(&w.ann, w.prod.id, &[&w.v1]).await;
    let deploying = w.berth.deploy_change_request(&w.ann, cr.id, false).await.expect("deploying");
    let d = w.deployment(deploying.deployments[0]).await;
    assert_eq!(d.source_environment_id, Some(staging.id), "where it last succeeded among the promotion sources");

    // Without promotion sources, nothing was promoted.
    let billing = w.component("Billing", ComponentType::Process, b"billing", &[]).await;
    let billing = w.package(billing.id, "v1").await;
    let cr = w.submitted_change(&w.ann, w.test.id, &[&billing]).await;
    let deploying = w.berth.deploy_change_request(&w.ann, cr.id, false).await.expect("deploying");
    assert_eq!(w.deployment(deploying.deployments[0]).await.source_environment_id, None);
}

#[tokio::test]
async fn usage_counts_each_connection_where_it_is_active_and_a_licence_refusal_names_what_to_free() {
    let w = World::with_plan(Plan::new(1, 5, 4).expect("a plan")).await;
    let staging = w.environment("Staging", Classification::Test).await;
    w.berth.attach_runtime(&w.admin, staging.id, w.atom.runtime).await.expect("atom is attached to Staging");
    let sales_db = w.component("Sales DB", ComponentType::Connection, b"jdbc:sales", &[]).await;
    let sales = w.component("Sales", ComponentType::Process, b"sales", &[sales_db.id]).await;
    let sales = w.package(sales.id, "v1").await;
    w.deploy_active(&sales, w.test.id).await;
    w.deploy_active(&sales, staging.id).await;

    let usage = w.berth.usage(&w.ann).await.expect("usage is read");
    let test = &usage.connection_licenses[0];
    assert_eq!((test.classification, test.allowance.used, test.allowance.limit), (Classification::Test, 1, 1));
    let mut where_active = vec![w.test.id, staging.id];
    where_active.sort();
    assert_eq!(test.connections.get(&sales_db.id).map(|e| e.iter().copied().collect::<Vec<_>>()), Some(where_active));
    let prod = &usage.connection_licenses[1];
    assert_eq!((prod.classification, prod.allowance.used, prod.connections.len()), (Classification::Production, 0, 0));
    assert_eq!((usage.runtimes.used, usage.runtimes.limit), (1, 5));
    assert_eq!((usage.environments.used, usage.environments.limit), (3, 4));

    // A second connection does not fit: the refusal names the one in use and where.
    let crm = w.component("CRM", ComponentType::Connection, b"https://crm", &[]).await;
    let sync = w.component("Sync", ComponentType::Process, b"sync", &[crm.id]).await;
    let sync = w.package(sync.id, "v1").await;
    let err = refused(w.request(&w.admin, &sync, staging.id).await);
    assert_eq!(err.code(), "connection_licenses_exceeded");
    for part in ["allows 1", "\"Sales DB\"", "Test, Staging"] {
        assert!(err.to_string().contains(part), "{err} names {part}");
    }
    // The figure and the check are the same count: in production, where none is used, it fits.
    w.deploy_active(&sync, w.prod.id).await;
    let usage = w.berth.usage(&w.ann).await.expect("usage is read");
    assert_eq!(usage.connection_licenses[1].connections.keys().copied().collect::<Vec<_>>(), [crm.id]);
}

fn inbox_ids(items: &[Awaiting]) -> Vec<String> {
    items
        .iter()
        .map(|a| match a {
            Awaiting::Deployment(d, _) => d.id.to_string(),
            Awaiting::ChangeRequest(cr, _) => cr.id.to_string(),
        })
        .collect()
}

async fn inbox(w: &World, ctx: &TenantCtx) -> Vec<String> {
    inbox_ids(&w.berth.approvals_inbox(ctx, &PageRequest::first(50)).await.expect("the inbox is read").items)
}

#[tokio::test]
async fn each_approver_s_inbox_holds_what_their_roles_may_decide_oldest_first_and_never_their_own_requests() {
    let w = World::new().await;
    // Production takes approvals from approvers, Test from admins only.
    w.set_policy(w.prod.id, Policy { required_approvals: 2, approver_roles: vec![Role::Approver], ..Policy::default() }).await;
    w.set_policy(w.test.id, Policy { required_approvals: 1, approver_roles: vec![Role::Admin], ..Policy::default() }).await;
    let billing = w.component("Billing", ComponentType::Process, b"billing", &[]).await;
    let billing = w.package(billing.id, "v1").await;

    let to_prod = w.request(&w.ann, &w.v1, w.prod.id).await.expect("requested");
    let to_test = w.request(&w.ann, &w.v1, w.test.id).await.expect("requested");
    let change = w.submitted_change(&w.ann, w.prod.id, &[&billing]).await;
    // Bob's own request to Production: his role could decide it, but he may not.
    let bob_deploying = w.user(BOB, &[Role::Approver, Role::Deployer]);
    let bobs_own = w.request(&bob_deploying, &billing, w.prod.id).await.expect("requested");
    assert_eq!(bobs_own.status, DeploymentStatus::PendingApproval);

    assert_eq!(inbox(&w, &w.bob).await, [to_prod.id.to_string(), change.id.to_string()], "Bob: Production's, oldest first, not his own");
    assert_eq!(inbox(&w, &w.carol).await, [to_prod.id.to_string(), change.id.to_string(), bobs_own.id.to_string()], "Carol: Production's");
    assert_eq!(inbox(&w, &w.admin).await, [to_test.id.to_string()], "the admin: Test's only");
    assert!(inbox(&w, &w.ann).await.is_empty(), "Ann approves nothing, and never her own requests");

    // Once Bob decided, it leaves his inbox and stays in Carol's until it is decided.
    w.decide(&w.bob, &to_prod, Decision::Approve).await.expect("Bob approves");
    assert_eq!(inbox(&w, &w.bob).await, [change.id.to_string()]);
    assert_eq!(inbox(&w, &w.carol).await[0], to_prod.id.to_string());
    w.decide(&w.carol, &to_prod, Decision::Approve).await.expect("Carol approves");
    assert_eq!(inbox(&w, &w.carol).await, [change.id.to_string(), bobs_own.id.to_string()], "a released deployment waits on no one");

    // Pages of one walk the same list.
    let mut walked = vec![];
    let mut page = PageRequest::first(1);
    loop {
        let batch = w.berth.approvals_inbox(&w.carol, &page).await.expect("a page");
        walked.extend(inbox_ids(&batch.items));
        match batch.next_cursor {
            Some(c) => page.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(walked, inbox(&w, &w.carol).await);
}
