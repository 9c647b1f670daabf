//! The tenant's plan: how many environments and runtimes it may have, and
//! how many distinct connections may be deployed at once per classification.

use crate::fixture::{World, bare_tenant, name, platform, refused};
use berth_domain::component::ComponentType;
use berth_domain::deployment::{DeploymentStatus, TargetState};
use berth_domain::environment::{Environment, NewEnvironment};
use berth_domain::package::Package;
use berth_domain::page::PageRequest;
use berth_domain::runtime::RuntimeKind;
use berth_domain::tenant::{PlanPatch, TenantPatch};
use berth_domain::values::{Classification, Description, Plan};

fn new_environment(raw: &str) -> NewEnvironment {
    NewEnvironment { name: name(raw), classification: Classification::Test, enabled: true, description: Description::default() }
}

async fn environment_count(w: &World) -> usize {
    w.berth.list_environments(&w.admin, &PageRequest::first(100)).await.expect("environments are listed").items.len()
}

#[tokio::test]
async fn a_tenant_on_a_plan_of_two_environments_may_not_create_a_third_until_it_deletes_one_or_its_plan_grows() {
    let w = World::with_plan(Plan::new(10, 10, 2).expect("a plan")).await;
    assert_eq!(refused(w.berth.create_environment(&w.admin, new_environment("Staging")).await).code(), "quota_exceeded");
    assert_eq!(environment_count(&w).await, 2, "a refused create writes nothing");

    w.berth.detach_runtime(&w.admin, w.test.id, w.atom.runtime).await.expect("atom leaves Test");
    w.berth.delete_environment(&w.admin, w.test.id).await.expect("Test is deleted");
    w.berth.create_environment(&w.admin, new_environment("Staging")).await.expect("there is room for one");
    assert_eq!(refused(w.berth.create_environment(&w.admin, new_environment("Again")).await).code(), "quota_exceeded");

    let patch = TenantPatch { plan: Some(PlanPatch { max_environments: Some(3), ..PlanPatch::default() }), ..TenantPatch::default() };
    w.berth.patch_tenant(&platform(), w.tenant, patch, None).await.expect("the plan grows");
    w.berth.create_environment(&w.admin, new_environment("Again")).await.expect("the larger plan makes room");
    assert_eq!(environment_count(&w).await, 3);
}

#[tokio::test]
async fn refused_creates_do_not_use_up_the_environment_quota() {
    let w = World::with_plan(Plan::new(10, 10, 3).expect("a plan")).await;
    for _ in 0..3 {
        assert_eq!(refused(w.berth.create_environment(&w.admin, new_environment("PRODUCTION")).await).code(), "name_exists");
    }
    w.berth.create_environment(&w.admin, new_environment("Staging")).await.expect("the third fits");
    assert_eq!(environment_count(&w).await, 3);
}

#[tokio::test]
async fn a_tenant_on_a_plan_of_two_runtimes_may_not_create_a_third_until_it_deletes_one() {
    let w = World::with_plan(Plan::new(10, 2, 10).expect("a plan")).await;
    let spare = w.berth.create_runtime(&w.admin, name("spare"), RuntimeKind::Cloud).await.expect("the second fits");
    assert_eq!(refused(w.berth.create_runtime(&w.admin, name("third"), RuntimeKind::Cloud).await).code(), "quota_exceeded");
    let runtimes = w.berth.list_runtimes(&w.admin, &PageRequest::first(100)).await.expect("runtimes are listed").items;
    let mut names: Vec<String> = runtimes.iter().map(|r| r.name.to_string()).collect();
    names.sort();
    assert_eq!(names, ["atom", "spare"]);

    w.berth.delete_runtime(&w.admin, spare.runtime.id).await.expect("spare is deleted");
    w.berth.create_runtime(&w.admin, name("third"), RuntimeKind::Cloud).await.expect("there is room again");
}

#[tokio::test]
async fn a_plan_of_zero_environments_and_zero_runtimes_allows_none() {
    let (berth, admin) = bare_tenant(Plan::new(10, 0, 0).expect("a plan")).await;
    assert_eq!(refused(berth.create_environment(&admin, new_environment("Test")).await).code(), "quota_exceeded");
    assert_eq!(refused(berth.create_runtime(&admin, name("atom"), RuntimeKind::Cloud).await).code(), "quota_exceeded");
    assert!(berth.list_environments(&admin, &PageRequest::first(10)).await.expect("listed").items.is_empty());
    assert!(berth.list_runtimes(&admin, &PageRequest::first(10)).await.expect("listed").items.is_empty());
}

/// A plan of one connection licence; Test B (test) beside Test and
/// Production; `Sales` bundles the connection `Sales DB`, `Sync` bundles another, `CRM`.
struct Licensed {
    w: World,
    test_b: Environment,
    sales: Package,
    sync: Package,
}

async fn licensed() -> Licensed {
    let w = World::with_plan(Plan::new(1, 10, 10).expect("a plan")).await;
    let test_b = w.environment("Test B", Classification::Test).await;
    w.berth.attach_runtime(&w.admin, test_b.id, w.atom.runtime).await.expect("atom is attached to Test B");
    let sales_db = w.component("Sales DB", ComponentType::Connection, b"jdbc:sales", &[]).await;
    let sales = w.component("Sales", ComponentType::Process, b"sales", &[sales_db.id]).await;
    let crm = w.component("CRM", ComponentType::Connection, b"https://crm", &[]).await;
    let sync = w.component("Sync", ComponentType::Process, b"sync", &[crm.id]).await;
    let sales = w.package(sales.id, "v1").await;
    let sync = w.package(sync.id, "v1").await;
    Licensed { w, test_b, sales, sync }
}

impl Licensed {
    async fn refused_for_licences(&self, package: &Package, env: &Environment) {
        let w = &self.w;
        let report = w.berth.validate_deployment(&w.admin, package.id, env.id).await.expect("the dry run answers");
        assert_eq!(report.errors.iter().map(|e| e.code).collect::<Vec<_>>(), ["connection_licenses_exceeded"], "{report:?}");
        let before = w.deployments().await;
        assert_eq!(refused(w.request(&w.admin, package, env.id).await).code(), "connection_licenses_exceeded");
        assert_eq!(w.deployments().await, before, "nothing was recorded");
    }

    async fn undeploy(&self, package: &Package, env: &Environment) {
        let w = &self.w;
        let d = w.berth.undeploy(&w.admin, env.id, package.component_id, false).await.expect("the undeploy is accepted");
        w.run(TargetState::Deployed).await;
        assert_eq!(w.status(&d).await, DeploymentStatus::Succeeded);
    }
}

#[tokio::test]
async fn connection_licences_are_counted_per_classification_and_per_distinct_connection() {
    let l = licensed().await;
    let w = &l.w;
    w.deploy_active(&l.sales, w.test.id).await;
    // A second connection in a test environment would need a second licence.
    l.refused_for_licences(&l.sync, &l.test_b).await;
    l.refused_for_licences(&l.sync, &w.test).await;
    // Production counts its own.
    w.deploy_active(&l.sync, w.prod.id).await;
    // The same connection in another test environment takes no new licence.
    w.deploy_active(&l.sales, l.test_b.id).await;
    l.refused_for_licences(&l.sync, &l.test_b).await;

    // Undeploying Sales from every test environment frees the licence.
    l.undeploy(&l.sales, &w.test).await;
    l.refused_for_licences(&l.sync, &l.test_b).await;
    l.undeploy(&l.sales, &l.test_b).await;
    w.deploy_active(&l.sync, l.test_b.id).await;
}

#[tokio::test]
async fn a_connection_licence_is_taken_by_a_deployment_still_in_flight() {
    let l = licensed().await;
    let w = &l.w;
    let first = w.request(&w.admin, &l.sales, w.test.id).await.expect("Sales is accepted");
    assert_eq!(first.status, DeploymentStatus::Queued);
    l.refused_for_licences(&l.sync, &l.test_b).await;
    assert_eq!(w.deployments().await.iter().map(|d| d.id).collect::<Vec<_>>(), [first.id]);
}

#[tokio::test]
async fn retrying_a_failed_deployment_cannot_exceed_the_connection_licences() {
    let l = licensed().await;
    let w = &l.w;
    // Sales fails in Test, so its connection never became active...
    let failed = w.deploy_and_fail(&l.sales, w.test.id).await;
    assert_eq!(failed.status, DeploymentStatus::Failed);
    // ...and Sync takes the one test licence in Test B.
    w.deploy_active(&l.sync, l.test_b.id).await;
    l.refused_for_licences(&l.sales, &w.test).await;

    let before = w.deployments().await;
    assert_eq!(refused(w.berth.retry_deployment(&w.admin, failed.id).await).code(), "connection_licenses_exceeded");
    assert_eq!(w.deployments().await, before, "the retry changed nothing");
}
