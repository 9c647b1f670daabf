//! Quarantine: a version that ended `rolled_back` in an environment (the
//! agent restored what ran before, or an automatic rollback followed its
//! failure), or that a person rolled back from, is refused there
//! (`quarantined`) unless the request overrides it, which the audit records,
//! until a deployer lifts it.

use crate::fixture::{ADMIN, World, deploy_input, refused};
use berth_domain::audit::AuditEvent;
use berth_domain::deployment::{Deployment, DeploymentKind, DeploymentStatus, TargetState};
use berth_domain::package::Package;
use berth_domain::page::PageRequest;
use berth_domain::policy::Policy;
use berth_domain::usecases::{AuditFilter, NewDeployment};
use berth_domain::values::{Plan, Role};

/// Dispatches what is queued and lets `atom` fail each job and restore the
/// version that ran before (what the agent does when an apply fails).
async fn run_restoring(w: &World) {
    w.dispatch().await;
    while let Some(job) = w.atom.next_job(&w.berth).await {
        for phase in [TargetState::Downloading, TargetState::Applying, TargetState::Failed, TargetState::Restored] {
            w.atom.report(&w.berth, job.job_id, phase).await.expect("the agent reports its progress");
        }
    }
}

/// Production runs Orders v1; v2 was deployed there, failed and was restored: rolled back.
async fn v2_rolled_back() -> (World, Package, Deployment) {
    let w = World::new().await;
    w.deploy_active(&w.v1, w.prod.id).await;
    let v2 = w.next_orders("v2").await;
    let d = w.request(&w.admin, &v2, w.prod.id).await.expect("v2 is accepted");
    run_restoring(&w).await;
    let d = w.deployment(d.id).await;
    assert_eq!(d.status, DeploymentStatus::RolledBack);
    (w, v2, d)
}

async fn overriding(w: &World, package: &Package) -> berth_domain::Result<Deployment> {
    w.berth.create_deployment(&w.admin, NewDeployment { override_quarantine: true, ..deploy_input(package, w.prod.id) }).await
}

/// The packages quarantined in Production.
async fn quarantined(w: &World) -> Vec<Package> {
    let ids: Vec<_> = w.berth.quarantined_versions(&w.admin, w.prod.id).await.expect("listed").into_iter().map(|q| q.package_id).collect();
    let mut packages = vec![];
    for id in ids {
        packages.push(w.berth.get_package(&w.admin, id).await.expect("the package").package);
    }
    packages
}

/// The audit events that `filter` keeps, every page of the trail read.
async fn audit(w: &World, filter: &AuditFilter) -> Vec<AuditEvent> {
    let mut events = vec![];
    let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
    loop {
        let batch = w.berth.list_audit(&w.admin, filter, &page).await.expect("the audit trail is listed");
        events.extend(batch.items);
        match batch.next_cursor {
            Some(c) => page.cursor = Some(c),
            None => return events,
        }
    }
}

/// The audit event recording the request of `d`.
async fn requested_event(w: &World, d: &Deployment) -> AuditEvent {
    let filter = AuditFilter { entity_id: Some(d.id.to_string()), action: Some("deployment.requested".into()), ..AuditFilter::default() };
    audit(w, &filter).await.into_iter().next().expect("the request is audited")
}

#[tokio::test]
async fn a_version_the_agent_rolled_back_is_quarantined_where_it_was_rolled_back_and_refused_there_naming_it() {
    let (w, v2, rolled_back) = v2_rolled_back().await;
    let [q] = w.berth.quarantined_versions(&w.admin, w.prod.id).await.expect("listed").try_into().expect("one quarantined version");
    assert_eq!((q.package_id, q.component_id, q.version.to_string()), (v2.id, w.orders.id, "v2".to_string()));
    assert_eq!((q.deployment_id, Some(q.quarantined_at)), (rolled_back.id, rolled_back.finished_at));

    let refusal = refused(w.request(&w.admin, &v2, w.prod.id).await);
    assert_eq!(refusal.code(), "quarantined");
    let message = refusal.to_string();
    for part in ["\"v2\"", "\"Production\"", "override_quarantine", &format!("DELETE /v1/environments/{}/quarantine/{}", w.prod.id, v2.id)] {
        assert!(message.contains(part), "{message} names {part}");
    }
    assert_eq!(w.deployments().await.len(), 2, "nothing was recorded");

    let report = w.berth.validate_deployment(&w.ann, v2.id, w.prod.id).await.expect("the dry run answers");
    assert_eq!(report.errors.iter().map(|e| e.code).collect::<Vec<_>>(), ["quarantined"], "the dry run reports it too");

    w.deploy_active(&v2, w.test.id).await;
    assert!(w.berth.quarantined_versions(&w.admin, w.test.id).await.expect("listed").is_empty(), "quarantined in Production only");
}

#[tokio::test]
async fn a_redeploy_of_a_quarantined_older_version_is_refused_too() {
    let (w, v2, _) = v2_rolled_back().await;
    let v3 = w.next_orders("v3").await;
    w.deploy_active(&v3, w.prod.id).await;
    assert_eq!(refused(w.request(&w.admin, &v2, w.prod.id).await).code(), "quarantined", "v2 would be a redeploy");
    w.deploy_active(&w.v1, w.prod.id).await;
    assert_eq!(w.deployments().await[0].kind, DeploymentKind::Redeploy, "v1, never rolled back, is redeployed");
}

#[tokio::test]
async fn with_auto_rollback_the_failed_version_is_quarantined_and_the_version_restored_is_not() {
    let w = World::new().await;
    w.set_policy(w.prod.id, Policy { auto_rollback: true, ..Policy::default() }).await;
    w.deploy_active(&w.v1, w.prod.id).await;
    let v2 = w.next_orders("v2").await;
    let failed = w.deploy_and_fail(&v2, w.prod.id).await;
    assert_eq!(failed.status, DeploymentStatus::RolledBack);
    w.run(TargetState::Deployed).await;
    assert_eq!(w.active_orders(w.prod.id).await.as_deref(), Some("v1"), "the automatic rollback ran");

    assert_eq!(quarantined(&w).await, [v2.clone()]);
    let [q] = w.berth.quarantined_versions(&w.admin, w.prod.id).await.expect("listed").try_into().expect("one");
    assert_eq!(q.deployment_id, failed.id);
    assert_eq!(refused(w.request(&w.ann, &v2, w.prod.id).await).code(), "quarantined");
}

#[tokio::test]
async fn a_persons_rollback_that_succeeded_quarantines_the_version_it_rolled_back_from() {
    let w = World::new().await;
    w.deploy_active(&w.v1, w.prod.id).await;
    let v2 = w.next_orders("v2").await;
    w.deploy_active(&v2, w.prod.id).await;
    let rollback = w.berth.roll_back(&w.ann, w.prod.id, w.orders.id, "v2 is slow".into(), false).await.expect("the rollback is accepted");
    assert!(quarantined(&w).await.is_empty(), "nothing before the rollback ends");
    w.run(TargetState::Deployed).await;
    assert_eq!(w.status(&rollback).await, DeploymentStatus::Succeeded);

    assert_eq!(quarantined(&w).await, [v2.clone()], "v1 runs again, v2 is held back");
    let [q] = w.berth.quarantined_versions(&w.admin, w.prod.id).await.expect("listed").try_into().expect("one");
    assert_eq!((q.deployment_id, q.version.to_string()), (rollback.id, "v2".to_string()));
    assert_eq!(refused(w.request(&w.admin, &v2, w.prod.id).await).code(), "quarantined");
}

#[tokio::test]
async fn a_failure_nothing_restored_quarantines_nothing() {
    let w = World::new().await;
    w.deploy_active(&w.v1, w.prod.id).await;
    let v2 = w.next_orders("v2").await;
    assert_eq!(w.deploy_and_fail(&v2, w.prod.id).await.status, DeploymentStatus::Failed);
    assert!(quarantined(&w).await.is_empty());
    w.request(&w.admin, &v2, w.prod.id).await.expect("a failed (not rolled back) version may be deployed again");
}

#[tokio::test]
async fn a_quarantined_version_is_deployed_with_the_override_and_the_audit_records_it() {
    let (w, v2, _) = v2_rolled_back().await;
    let report = w.berth.validate_deployment_overriding(&w.admin, v2.id, w.prod.id, true).await.expect("the dry run answers");
    assert!(report.errors.is_empty(), "{report:?}");
    assert!(report.warnings.iter().any(|i| i.code == "quarantine_overridden"), "{report:?}");

    let d = overriding(&w, &v2).await.expect("the override is accepted");
    let event = requested_event(&w, &d).await;
    assert_eq!((event.actor.id.as_str(), &event.summary["quarantine_overridden"]), (ADMIN, &serde_json::json!(true)));
    w.run(TargetState::Deployed).await;
    assert_eq!(w.active_orders(w.prod.id).await.as_deref(), Some("v2"));
    assert_eq!(quarantined(&w).await, [v2], "an override deploys once; the quarantine stays until lifted");
}

#[tokio::test]
async fn the_override_is_recorded_only_where_there_was_a_quarantine_to_override() {
    let w = World::new().await;
    let d = overriding(&w, &w.v1).await.expect("accepted");
    let event = requested_event(&w, &d).await;
    assert_eq!(event.summary.get("quarantine_overridden"), None, "{}", event.summary);
    let plain = w.berth.validate_deployment_overriding(&w.admin, w.v1.id, w.test.id, true).await.expect("the dry run answers");
    assert!(!plain.warnings.iter().any(|i| i.code == "quarantine_overridden"), "{plain:?}");
}

#[tokio::test]
async fn a_deployer_lifts_a_quarantine_audited_and_the_version_deploys_again() {
    let (w, v2, _) = v2_rolled_back().await;
    for caller in [w.user("vic@acme.example", &[Role::Viewer]), w.bob.clone(), w.user("dev@acme.example", &[Role::Developer])] {
        assert_eq!(refused(w.berth.lift_quarantine(&caller, w.prod.id, v2.id).await).code(), "forbidden");
    }
    assert_eq!(quarantined(&w).await.len(), 1, "still quarantined");

    w.berth.lift_quarantine(&w.ann, w.prod.id, v2.id).await.expect("a deployer lifts it");
    assert!(quarantined(&w).await.is_empty());
    let filter = AuditFilter { action: Some("quarantine.lifted".into()), ..AuditFilter::default() };
    let [event] = audit(&w, &filter).await.try_into().expect("one lift");
    assert_eq!((event.entity_type.as_str(), event.entity_id.clone(), event.actor.id.as_str()), ("environment", w.prod.id.to_string(), crate::fixture::ANN));
    assert_eq!((&event.summary["package_id"], &event.summary["version"]), (&serde_json::json!(v2.id), &serde_json::json!("v2")));

    let d = w.request(&w.ann, &v2, w.prod.id).await.expect("v2 deploys again without an override");
    assert_eq!(requested_event(&w, &d).await.summary.get("quarantine_overridden"), None);
    assert_eq!(refused(w.berth.lift_quarantine(&w.ann, w.prod.id, v2.id).await).code(), "not_found", "lifted already");
}

#[tokio::test]
async fn lifting_is_tenant_scoped_and_a_version_not_quarantined_there_is_not_found() {
    let (w, v2, _) = v2_rolled_back().await;
    assert_eq!(refused(w.berth.lift_quarantine(&w.ann, w.test.id, v2.id).await).code(), "not_found", "not quarantined in Test");
    assert_eq!(refused(w.berth.lift_quarantine(&w.ann, w.prod.id, w.v1.id).await).code(), "not_found", "v1 is not quarantined");

    let other = w.berth.create_tenant(&crate::fixture::platform(), crate::fixture::name("Globex"), Plan::default()).await.expect("another tenant");
    let intruder = crate::fixture::user(other.id, ADMIN, &[Role::Admin]);
    assert_eq!(refused(w.berth.lift_quarantine(&intruder, w.prod.id, v2.id).await).code(), "not_found");
    assert_eq!(refused(w.berth.quarantined_versions(&intruder, w.prod.id).await).code(), "not_found");
    assert_eq!(quarantined(&w).await, [v2]);
}

#[tokio::test]
async fn retrying_the_rolled_back_deployment_itself_is_not_held_back_by_its_own_quarantine() {
    let (w, v2, rolled_back) = v2_rolled_back().await;
    let retried = w.berth.retry_deployment(&w.ann, rolled_back.id).await.expect("the retry is accepted");
    assert_eq!(retried.status, DeploymentStatus::InProgress);
    assert_eq!(quarantined(&w).await, [v2], "the quarantine stays until lifted");
}
