//! Quarantine: a version that ended `rolled_back` in an environment is not
//! deployed there again by accident. Deploying it is refused (`quarantined`)
//! unless the request overrides the quarantine (audited), until someone
//! lifts it.

use crate::deployment::{ActiveVersion, Deployment, DeploymentKind, DeploymentStatus};
use crate::ids::{ComponentId, DeploymentId, EnvironmentId, PackageId};
use crate::package::VersionLabel;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A version quarantined in one environment; one per (environment, package).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Quarantine {
    pub environment_id: EnvironmentId,
    pub package_id: PackageId,
    pub component_id: ComponentId,
    pub version: VersionLabel,
    /// The deployment whose end quarantined it: one that ended `rolled_back`,
    /// or a rollback away from it. Quarantined again, it names the latest.
    pub deployment_id: DeploymentId,
    pub quarantined_at: DateTime<Utc>,
}

impl Deployment {
    /// What this deployment, as it ends, quarantines in its environment
    /// (`replaced`: the active version its activation replaces, if any):
    /// - a deploy, redeploy or rollback that ended `rolled_back` (the agent
    ///   restored what ran before) quarantines its own version;
    /// - a rollback that succeeded quarantines the version it rolled back
    ///   from (`previous_package_id`, the version it replaced). An automatic
    ///   rollback replaces the version it restores (the failed one never
    ///   became active): the failed deployment quarantined its version itself.
    ///
    /// Undeploys remove a version and syncs bring one runtime to what the
    /// environment already runs: neither says anything about the version.
    pub fn quarantines(&self, replaced: Option<&ActiveVersion>) -> Option<Quarantine> {
        let at = self.finished_at?;
        if self.only_runtime.is_some() {
            return None;
        }
        match (self.status, self.kind) {
            (DeploymentStatus::RolledBack, DeploymentKind::Deploy | DeploymentKind::Redeploy | DeploymentKind::Rollback) => Some(Quarantine {
                environment_id: self.environment_id,
                package_id: self.package_id,
                component_id: self.component_id,
                version: self.version.clone(),
                deployment_id: self.id,
                quarantined_at: at,
            }),
            (DeploymentStatus::Succeeded, DeploymentKind::Rollback) => {
                let from = replaced.filter(|r| Some(r.package_id) == self.previous_package_id && r.package_id != self.package_id)?;
                Some(Quarantine {
                    environment_id: self.environment_id,
                    package_id: from.package_id,
                    component_id: from.component_id,
                    version: from.version.clone(),
                    deployment_id: self.id,
                    quarantined_at: at,
                })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deployment::DeploymentStep;
    use crate::ids::RuntimeId;
    use crate::package::{Manifest, Package};
    use crate::runtime::Digest;

    fn package(component: ComponentId, version: u64) -> Package {
        Package {
            id: PackageId::new(),
            component_id: component,
            version: VersionLabel::number(version),
            notes: String::new(),
            shareable: false,
            deleted: false,
            status: crate::package::PackageStatus::Ready,
            failure: None,
            digest: Some(Digest::parse(&format!("sha256:{}", "a".repeat(64))).unwrap()),
            size: 1,
            manifest: Manifest { root: component, components: vec![] },
            requirements: vec![],
            commit: None,
            created_by: "alice".into(),
            created_at: Utc::now(),
        }
    }

    fn active(p: &Package, env: EnvironmentId) -> ActiveVersion {
        ActiveVersion {
            environment_id: env,
            component_id: p.component_id,
            package_id: p.id,
            version: p.version.clone(),
            digest: p.digest.clone().unwrap(),
            deployment_id: DeploymentId::new(),
            activated_at: Utc::now(),
            components: vec![],
            extensions_version: None,
        }
    }

    /// `d` started and settled as `outcome`.
    fn ended(d: Deployment, outcome: DeploymentStatus) -> Deployment {
        let now = Utc::now();
        d.step(DeploymentStep::Start, now).unwrap().step(DeploymentStep::Settle(outcome), now).unwrap()
    }

    #[test]
    fn a_deploy_redeploy_or_rollback_that_ended_rolled_back_quarantines_its_own_version() {
        let env = EnvironmentId::new();
        let component = ComponentId::new();
        let (v1, v2) = (package(component, 1), package(component, 2));
        let running_v1 = active(&v1, env);
        let running_v2 = active(&v2, env);
        for d in [
            Deployment::new_deploy(env, &v2, "alice", String::new(), Some(&running_v1)),
            Deployment::new_redeploy(&v1, "alice", String::new(), &running_v2),
            Deployment::new_rollback(&v1, "alice", String::new(), &running_v2),
        ] {
            let d = ended(d, DeploymentStatus::RolledBack);
            let q = d.quarantines(None).unwrap_or_else(|| panic!("{:?} quarantines", d.kind));
            assert_eq!((q.environment_id, q.package_id, q.component_id, &q.version), (env, d.package_id, component, &d.version));
            assert_eq!((q.deployment_id, Some(q.quarantined_at)), (d.id, d.finished_at));
        }
    }

    #[test]
    fn a_rollback_that_succeeded_quarantines_the_version_it_rolled_back_from() {
        let env = EnvironmentId::new();
        let component = ComponentId::new();
        let (v1, v2) = (package(component, 1), package(component, 2));
        let running_v2 = active(&v2, env);
        let rollback = ended(Deployment::new_rollback(&v1, "alice", String::new(), &running_v2), DeploymentStatus::Succeeded);
        let q = rollback.quarantines(Some(&running_v2)).expect("v2 is quarantined");
        assert_eq!((q.package_id, q.version.to_string(), q.deployment_id), (v2.id, "2".to_string(), rollback.id));
    }

    #[test]
    fn an_automatic_rollback_quarantines_nothing_more_as_it_replaces_the_version_it_restores() {
        let env = EnvironmentId::new();
        let v1 = package(ComponentId::new(), 1);
        let running_v1 = active(&v1, env);
        let rollback = ended(Deployment::new_rollback(&v1, "system:auto-rollback", String::new(), &running_v1), DeploymentStatus::Succeeded);
        assert_eq!(rollback.quarantines(Some(&running_v1)), None);
    }

    #[test]
    fn successes_failures_undeploys_syncs_and_unfinished_deployments_quarantine_nothing() {
        let env = EnvironmentId::new();
        let component = ComponentId::new();
        let (v1, v2) = (package(component, 1), package(component, 2));
        let running_v1 = active(&v1, env);
        let deploy = || Deployment::new_deploy(env, &v2, "alice", String::new(), Some(&running_v1));
        for outcome in [DeploymentStatus::Succeeded, DeploymentStatus::Failed, DeploymentStatus::PartiallyFailed] {
            assert_eq!(ended(deploy(), outcome).quarantines(Some(&running_v1)), None, "{outcome:?}");
        }
        let mut in_progress = deploy();
        in_progress.status = DeploymentStatus::RolledBack;
        assert_eq!(in_progress.quarantines(None), None, "a deployment that has not ended");
        let undeploy = ended(Deployment::new_undeploy(&running_v1, "alice", None), DeploymentStatus::RolledBack);
        assert_eq!(undeploy.quarantines(None), None);
        let sync = ended(Deployment::new_sync(&running_v1, &v1, "alice", RuntimeId::new()), DeploymentStatus::RolledBack);
        assert_eq!(sync.quarantines(None), None);
    }
}
