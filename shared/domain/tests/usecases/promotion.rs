//! Promotion: a policy's `require_success_in` refuses a package until that
//! exact package has succeeded in each environment it names.

use crate::fixture::{World, refused};
use berth_domain::deployment::{DeploymentStatus, TargetState};
use berth_domain::policy::Policy;
use berth_domain::values::Classification;

/// Production requires success in Test.
async fn promoted() -> World {
    let w = World::new().await;
    w.set_policy(w.prod.id, Policy { require_success_in: vec![w.test.id], ..Policy::default() }).await;
    w
}

fn codes(report: &berth_domain::validation::ValidationReport) -> Vec<&'static str> {
    report.errors.iter().map(|e| e.code).collect()
}

#[tokio::test]
async fn a_package_is_refused_in_production_until_it_succeeded_in_test() {
    let w = promoted().await;
    let err = refused(w.request(&w.ann, &w.v1, w.prod.id).await);
    assert_eq!(err.code(), "promotion_required");
    assert!(err.to_string().contains("\"Test\""), "the refusal names the environment: {err}");
    let report = w.berth.validate_deployment(&w.ann, w.v1.id, w.prod.id).await.expect("the dry run answers");
    assert_eq!(codes(&report), ["promotion_required"]);
    assert!(w.deployments().await.is_empty());

    w.deploy_active(&w.v1, w.test.id).await;
    let d = w.request(&w.ann, &w.v1, w.prod.id).await.expect("v1 succeeded in Test");
    assert_eq!(d.status, DeploymentStatus::Queued);
}

#[tokio::test]
async fn a_deployment_still_in_flight_or_failed_in_test_does_not_count() {
    let w = promoted().await;
    let in_test = w.request(&w.admin, &w.v1, w.test.id).await.expect("v1 goes to Test");
    w.dispatch().await;
    assert_eq!(w.status(&in_test).await, DeploymentStatus::InProgress);
    assert_eq!(refused(w.request(&w.ann, &w.v1, w.prod.id).await).code(), "promotion_required");

    w.atom.run_jobs(&w.berth, TargetState::Failed).await;
    assert_eq!(w.status(&in_test).await, DeploymentStatus::Failed);
    assert_eq!(refused(w.request(&w.ann, &w.v1, w.prod.id).await).code(), "promotion_required");
}

#[tokio::test]
async fn the_success_of_another_version_of_the_component_does_not_count() {
    let w = promoted().await;
    w.deploy_active(&w.v1, w.test.id).await;
    let v2 = w.next_orders("v2").await;
    assert_eq!(refused(w.request(&w.ann, &v2, w.prod.id).await).code(), "promotion_required");
    w.request(&w.ann, &w.v1, w.prod.id).await.expect("v1 itself may go");
}

#[tokio::test]
async fn every_named_environment_must_have_seen_the_package_succeed() {
    let w = World::new().await;
    let staging = w.environment("Staging", Classification::Test).await;
    let agent = w.runtime("stager", &[staging.id]).await;
    w.set_policy(w.prod.id, Policy { require_success_in: vec![w.test.id, staging.id], ..Policy::default() }).await;

    w.deploy_active(&w.v1, w.test.id).await;
    let err = refused(w.request(&w.ann, &w.v1, w.prod.id).await);
    assert_eq!(err.code(), "promotion_required");
    assert!(err.to_string().contains("\"Staging\""), "{err}");

    let d = w.request(&w.admin, &w.v1, staging.id).await.expect("v1 goes to Staging");
    w.dispatch().await;
    agent.run_jobs(&w.berth, TargetState::Deployed).await;
    assert_eq!(w.status(&d).await, DeploymentStatus::Succeeded);
    w.request(&w.ann, &w.v1, w.prod.id).await.expect("v1 succeeded in both");
}
