//! Packages above `sync_package_max_bytes`: reserved `building`, built by the
//! package builder (idempotently), refused `package_not_ready` until ready.

use crate::fixture::{World, deploy_input, refused};
use berth_domain::component::{Component, ComponentType};
use berth_domain::deployment::{DeploymentStatus, TargetState};
use berth_domain::ids::PackageId;
use berth_domain::package::{Package, PackageStatus, VersionLabel};
use berth_domain::ports::BlobStore;
use berth_domain::usecases::{LatestDeployment, NewLatestDeployment, NewPackage, Settings};
use berth_domain::values::Plan;
use berth_domain::{DomainError, Result};

/// "orders v1", the world's first package, is 9 bytes: built at once. Anything larger is built by the builder.
const THRESHOLD: u64 = 9;
const LARGE: &[u8] = b"a script larger than the threshold";

async fn world() -> World {
    World::with_settings(Plan::default(), Settings { sync_package_max_bytes: THRESHOLD, ..Settings::default() }).await
}

/// A process bundling more than the threshold (a script of `LARGE`).
async fn large_component(w: &World) -> Component {
    let lib = w.component("Big", ComponentType::Script, LARGE, &[]).await;
    w.component("Nightly", ComponentType::Process, b"nightly", &[lib.id]).await
}

/// A component bundling more than the threshold, packaged as `version`.
async fn large_package(w: &World, version: &str) -> Result<Package> {
    let root = large_component(w).await;
    let input =
        NewPackage { component_id: root.id, version: Some(VersionLabel::parse(version).unwrap()), notes: String::new(), shareable: false, commit: None };
    w.berth.create_package(&w.admin, input).await
}

async fn package(w: &World, id: PackageId) -> Package {
    w.berth.get_package(&w.admin, id).await.expect("the package exists").package
}

fn not_ready(e: DomainError) -> String {
    match e {
        DomainError::Conflict { code: "package_not_ready", message } => message,
        other => panic!("expected 409 package_not_ready, got {other:?}"),
    }
}

#[tokio::test]
async fn a_package_at_or_below_the_threshold_is_ready_at_once() {
    let w = world().await;
    assert_eq!(w.v1.status, PackageStatus::Ready);
    assert!(w.v1.digest.is_some());
    assert!(w.store.take_enqueued_package_builds().is_empty(), "nothing is left for the builder");
}

#[tokio::test]
async fn a_package_above_the_threshold_is_reserved_building_then_built_ready_with_the_digest_a_synchronous_build_gives() {
    let w = world().await;
    let p = large_package(&w, "1.0").await.expect("the package is accepted");
    assert_eq!((p.status, p.digest.as_ref(), p.size), (PackageStatus::Building, None, 0));
    assert_eq!(package(&w, p.id).await.version.as_str(), "1.0", "its version is taken at once");
    assert_eq!(w.audit_actions(p.id).await, ["package.created"]);

    w.berth.build_package(w.tenant, p.id).await.expect("the builder builds it");
    let built = package(&w, p.id).await;
    assert_eq!(built.status, PackageStatus::Ready);
    // The archive a synchronous build writes for the same manifest.
    let sync = w.store.write_package_archive(w.tenant, PackageId::new(), &built.manifest).await.expect("an archive is written");
    assert_eq!((built.digest.as_ref(), built.size), (Some(&sync.digest), sync.size));
    assert_eq!(w.audit_actions(p.id).await, ["package.created"], "building it records nothing more");
}

#[tokio::test]
async fn the_builder_is_told_of_the_package_and_a_second_copy_of_its_message_changes_nothing() {
    let w = world().await;
    let p = large_package(&w, "1.0").await.unwrap();
    assert_eq!(w.store.take_enqueued_package_builds(), [(w.tenant, p.id)]);
    w.berth.build_package(w.tenant, p.id).await.unwrap();
    let ready = package(&w, p.id).await;
    w.berth.build_package(w.tenant, p.id).await.expect("the duplicate is handled");
    assert_eq!(package(&w, p.id).await, ready);
    assert_eq!(w.store.package_archive(w.tenant, p.id).map(|a| a.len() as u64), Some(ready.size));
}

#[tokio::test]
async fn a_build_that_wrote_the_archive_but_died_before_marking_it_ready_is_finished_by_the_next_delivery() {
    let w = world().await;
    let p = large_package(&w, "1.0").await.unwrap();
    // The crashed delivery: archive written, package still building.
    let written = w.store.write_package_archive(w.tenant, p.id, &p.manifest).await.unwrap();
    assert_eq!(package(&w, p.id).await.status, PackageStatus::Building);
    w.berth.build_package(w.tenant, p.id).await.expect("the next delivery converges");
    let built = package(&w, p.id).await;
    assert_eq!((built.status, built.digest), (PackageStatus::Ready, Some(written.digest)));
}

#[tokio::test]
async fn a_package_still_building_is_not_deployed_downloaded_or_put_in_a_change_request_and_validation_says_why() {
    let w = world().await;
    let p = large_package(&w, "1.0").await.unwrap();
    let message = not_ready(refused(w.request(&w.admin, &p, w.test.id).await));
    assert!(message.contains("still building"), "{message}");
    not_ready(refused(w.berth.package_download(&w.admin, p.id).await));
    not_ready(refused(w.berth.create_change_request(&w.admin, w.change_input(w.prod.id, &[&p])).await));
    let report = w.berth.validate_deployment(&w.admin, p.id, w.test.id).await.unwrap();
    assert_eq!(report.errors.first().map(|e| e.code), Some("package_not_ready"));
    assert!(w.deployments().await.is_empty(), "no deployment was recorded");

    w.berth.build_package(w.tenant, p.id).await.unwrap();
    w.berth.create_deployment(&w.admin, deploy_input(&package(&w, p.id).await, w.test.id)).await.expect("a ready package deploys");
    w.berth.package_download(&w.admin, p.id).await.expect("and downloads");
}

#[tokio::test]
async fn a_package_whose_content_is_gone_fails_with_the_reason_and_an_audit_event_and_is_never_deployed() {
    let w = world().await;
    let p = large_package(&w, "1.0").await.unwrap();
    let missing = p.manifest.components.iter().find(|c| c.kind == ComponentType::Script).unwrap().sha256.clone();
    w.store.remove_content(w.tenant, &missing);
    w.berth.build_package(w.tenant, p.id).await.expect("a permanent failure is recorded, not retried");
    let failed = package(&w, p.id).await;
    assert_eq!(failed.status, PackageStatus::Failed);
    assert_eq!(failed.failure, Some(format!("bundled content {} is missing", missing.as_str())));
    assert_eq!(w.audit_actions(p.id).await, ["package.created", "package.build_failed"]);
    let message = not_ready(refused(w.request(&w.admin, &p, w.test.id).await));
    assert!(message.contains("failed to build"), "{message}");

    w.berth.build_package(w.tenant, p.id).await.expect("a later copy of the message is ignored");
    assert_eq!(package(&w, p.id).await.status, PackageStatus::Failed);
}

#[tokio::test]
async fn failing_a_build_that_ended_already_changes_nothing() {
    let w = world().await;
    let p = large_package(&w, "1.0").await.unwrap();
    w.berth.build_package(w.tenant, p.id).await.unwrap();
    w.berth.fail_package_build(w.tenant, p.id, "the last delivery gave up").await.unwrap();
    assert_eq!(package(&w, p.id).await.status, PackageStatus::Ready);
    assert_eq!(w.audit_actions(p.id).await, ["package.created"]);
}

async fn deploy_latest(w: &World, component: &Component) -> LatestDeployment {
    let input = NewLatestDeployment {
        component_id: component.id,
        environment_id: w.test.id,
        notes: String::new(),
        scheduled_at: None,
        hold_if_frozen: false,
        commit: None,
        override_quarantine: false,
        rollout: None,
    };
    w.berth.deploy_latest_revision(&w.admin, input).await.expect("the deployment is recorded")
}

#[tokio::test]
async fn a_latest_revision_deploy_whose_package_goes_to_the_builder_is_recorded_waiting_and_sent_out_once_the_package_is_built() {
    let w = world().await;
    let nightly = large_component(&w).await;
    let latest = deploy_latest(&w, &nightly).await;
    let d = latest.deployment;
    assert!(latest.package_created);
    assert_eq!(latest.package.status, PackageStatus::Building);
    assert_eq!((d.status, d.waiting_for_package), (DeploymentStatus::Queued, true));

    w.dispatch().await;
    assert!(w.atom.next_job(&w.berth).await.is_none(), "nothing is sent while the package is building");
    assert!(w.deployment(d.id).await.waiting_for_package);

    w.berth.build_package(w.tenant, latest.package.id).await.expect("built");
    w.run(TargetState::Deployed).await;
    let done = w.deployment(d.id).await;
    assert_eq!((done.status, done.waiting_for_package), (DeploymentStatus::Succeeded, false));
    assert_eq!(Some(done.digest.clone()), package(&w, latest.package.id).await.digest, "it deployed the built archive");
    let timeline = w.timeline(&done).await;
    assert!(timeline.iter().any(|l| l.starts_with("Waiting for package version")), "{timeline:?}");
    assert!(timeline.iter().any(|l| l.ends_with("is built")), "{timeline:?}");
}

#[tokio::test]
async fn a_deployment_waiting_for_a_package_whose_build_fails_fails_with_package_failed() {
    let w = world().await;
    let nightly = large_component(&w).await;
    let latest = deploy_latest(&w, &nightly).await;
    let lib = &latest.package.manifest.components[1];
    w.store.remove_content(w.tenant, &lib.sha256);
    w.berth.build_package(w.tenant, latest.package.id).await.expect("the failure is recorded");
    w.dispatch().await;
    let failed = w.deployment(latest.deployment.id).await;
    assert_eq!(failed.status, DeploymentStatus::Failed);
    let timeline = w.timeline(&failed).await;
    assert!(timeline.iter().any(|l| l.contains("package_failed: bundled content")), "{timeline:?}");
    assert!(w.atom.next_job(&w.berth).await.is_none(), "no runtime was sent anything");
}

#[tokio::test]
async fn a_plain_deploy_of_a_package_still_building_is_refused_not_recorded_waiting() {
    let w = world().await;
    let p = large_package(&w, "1.0").await.unwrap();
    not_ready(refused(w.berth.create_deployment(&w.admin, deploy_input(&p, w.test.id)).await));
    assert!(w.deployments().await.is_empty());
}
