use crate::fixtures::*;
use crate::stores::Stores;
use berth_domain::deployment::{Deployment, DeploymentStatus};
use berth_domain::ids::{ComponentId, DeploymentId, EnvironmentId, PackageId, TenantId};
use berth_domain::ports::Activation;
use berth_domain::quarantine::Quarantine;
use berth_domain::refusal::{Entity, Refusal};
use berth_domain::values::Plan;
use chrono::{DurationRound, TimeDelta, Utc};

/// `d`'s version quarantined in its environment by `cause`.
fn quarantine_of(d: &Deployment, cause: DeploymentId) -> Quarantine {
    Quarantine {
        environment_id: d.environment_id,
        package_id: d.package_id,
        component_id: d.component_id,
        version: d.version.clone(),
        deployment_id: cause,
        // Whole microseconds: what both stores keep of a time.
        quarantined_at: Utc::now().duration_trunc(TimeDelta::microseconds(1)).expect("a time"),
    }
}

impl Stores {
    /// Ends `d` as `status`, quarantining what `quarantine` says, with no activation.
    async fn finish_quarantining(&self, tenant: TenantId, d: &Deployment, status: DeploymentStatus, quarantine: &Quarantine) -> berth_domain::Result<()> {
        let after = moved(d, status);
        let audit = draft("deployment.finished", "deployment", d.id);
        self.deployments.finish_deployment(tenant, &after, d.status, &Activation::Unchanged, Some(quarantine), audit).await
    }

    async fn quarantined(&self, tenant: TenantId, env: EnvironmentId) -> Vec<Quarantine> {
        self.deployments.quarantined(tenant, env).await.expect("read")
    }
}

pub async fn a_finish_records_its_quarantine_once_per_environment_and_package_naming_the_latest_cause(s: Stores) {
    let (acme, env, orders) = (s.tenant(Plan::default()).await, EnvironmentId::new(), ComponentId::new());
    let first = s.in_progress(acme, env, orders, "2").await;
    let q = quarantine_of(&first, first.id);
    s.finish_quarantining(acme, &first, DeploymentStatus::RolledBack, &q).await.expect("finished");
    assert_eq!(s.deployments.get_quarantine(acme, env, first.package_id).await.expect("read"), Some(q.clone()));
    assert_eq!(s.quarantined(acme, env).await, [q.clone()]);
    assert_eq!(s.read_deployment(acme, &first).await.status, DeploymentStatus::RolledBack, "in the same write as the finish");

    // The same version rolled back again there (deployed over its quarantine): still one record, naming the latest deployment.
    let mut again = deployment(env, &package(orders, "2-again", &[]));
    again.package_id = first.package_id;
    s.create_deployment(acme, &again).await.expect("created");
    let again = s.transition(acme, &again, DeploymentStatus::InProgress).await;
    let latest = quarantine_of(&again, again.id);
    s.finish_quarantining(acme, &again, DeploymentStatus::RolledBack, &latest).await.expect("finished");
    assert_eq!(s.quarantined(acme, env).await, [latest], "one record per environment and package");

    let elsewhere = EnvironmentId::new();
    assert!(s.quarantined(acme, elsewhere).await.is_empty(), "quarantined in its environment only");
    assert_eq!(s.deployments.get_quarantine(acme, elsewhere, first.package_id).await.expect("read"), None);
    let other_tenant = s.tenant(Plan::default()).await;
    assert!(s.quarantined(other_tenant, env).await.is_empty(), "nor for another tenant");
}

pub async fn a_refused_finish_quarantines_nothing(s: Stores) {
    let (acme, env, orders) = (s.tenant(Plan::default()).await, EnvironmentId::new(), ComponentId::new());
    let d = s.in_progress(acme, env, orders, "1").await;
    let stale = moved(&d, DeploymentStatus::Queued);
    let refusal = refused(s.finish_quarantining(acme, &stale, DeploymentStatus::RolledBack, &quarantine_of(&d, d.id)).await);
    assert_eq!(refusal, Refusal::Stale(Entity::Deployment), "the deployment is not queued");
    assert!(s.quarantined(acme, env).await.is_empty());
    assert_eq!(s.deployments.get_quarantine(acme, env, d.package_id).await.expect("read"), None);
}

pub async fn a_lifted_quarantine_is_gone_audited_and_lifting_one_that_is_not_there_is_refused_as_missing(s: Stores) {
    let (acme, env, orders) = (s.tenant(Plan::default()).await, EnvironmentId::new(), ComponentId::new());
    let (v1, v2) = (s.in_progress(acme, env, orders, "1").await, s.in_progress(acme, env, ComponentId::new(), "2").await);
    s.finish_quarantining(acme, &v1, DeploymentStatus::RolledBack, &quarantine_of(&v1, v1.id)).await.expect("finished");
    s.finish_quarantining(acme, &v2, DeploymentStatus::RolledBack, &quarantine_of(&v2, v2.id)).await.expect("finished");
    assert_eq!(s.quarantined(acme, env).await.len(), 2);

    s.deployments.lift_quarantine(acme, env, v1.package_id, draft("quarantine.lifted", "environment", env)).await.expect("lifted");
    assert_eq!(s.deployments.get_quarantine(acme, env, v1.package_id).await.expect("read"), None);
    assert_eq!(s.quarantined(acme, env).await.iter().map(|q| q.package_id).collect::<Vec<_>>(), [v2.package_id], "the other stays");
    assert_eq!(s.actions(acme).await.last().map(String::as_str), Some("quarantine.lifted"));

    let head = s.audit.audit_head(acme).await.expect("the head");
    for (tenant, package) in [(acme, v1.package_id), (acme, PackageId::new()), (s.tenant(Plan::default()).await, v2.package_id)] {
        let refusal = refused(s.deployments.lift_quarantine(tenant, env, package, draft("quarantine.lifted", "environment", env)).await);
        assert_eq!(refusal, Refusal::Missing(Entity::Quarantine));
    }
    assert_eq!(s.audit.audit_head(acme).await.expect("the head"), head, "a refused lift records nothing");
    assert_eq!(s.quarantined(acme, env).await.len(), 1, "another tenant cannot lift it");
}
