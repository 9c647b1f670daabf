//! The items a deployment request names by key, in one BatchGetItem.

use super::{DynamoStore, Item, key_of};
use crate::keys;
use async_trait::async_trait;
use berth_domain::Result;
use berth_domain::audit::AuditHead;
use berth_domain::ids::{EnvironmentId, PackageId, TenantId};
use berth_domain::ports::{DeploySubject, SubjectReads};

#[async_trait]
impl SubjectReads for DynamoStore {
    async fn deploy_subject(&self, tenant: TenantId, env: EnvironmentId, package: PackageId) -> Result<DeploySubject> {
        let (environment, package_key, policy, quarantine, extensions, head) = (
            keys::environment(tenant, env),
            keys::package(tenant, package),
            keys::policy(tenant, env),
            keys::quarantine(tenant, env, package),
            keys::extensions(tenant, env),
            keys::audit_head(tenant),
        );
        let wanted = [&environment, &package_key, &policy, &quarantine, &extensions, &head].map(|k| key_of(k.clone()));
        // No head item yet: the chain starts at its genesis.
        let mut subject = DeploySubject { audit_head: Some(AuditHead::genesis()), ..DeploySubject::default() };
        for item in self.batch_get_items(wanted.to_vec()).await? {
            let key = key_pair(&item);
            if key == environment {
                subject.environment = Some(super::environments::environment_of(item)?);
            } else if key == package_key {
                subject.package = Some(super::packages::package_of(item)?);
            } else if key == policy {
                subject.policy = Some(super::policies::policy_of(item)?);
            } else if key == quarantine {
                subject.quarantine = Some(super::deployments::quarantine_of(item)?);
            } else if key == extensions {
                subject.extensions = super::extensions::extensions_of(item)?;
            } else if key == head {
                subject.audit_head = Some(DynamoStore::audit_head_of(item)?);
            }
        }
        Ok(subject)
    }
}

fn key_pair(item: &Item) -> (String, String) {
    let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
    (text(keys::PK), text(keys::SK))
}
