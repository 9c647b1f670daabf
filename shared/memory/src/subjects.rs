use crate::MemoryStore;
use async_trait::async_trait;
use berth_domain::Result;
use berth_domain::ids::{EnvironmentId, PackageId, TenantId};
use berth_domain::ports::{AuditStore, DeploySubject, DeploymentStore, EnvironmentStore, ExtensionStore, PackageStore, PolicyStore, SubjectReads};

/// Each item as its own store reads it (the adapter reads them in one request).
#[async_trait]
impl SubjectReads for MemoryStore {
    async fn deploy_subject(&self, tenant: TenantId, env: EnvironmentId, package: PackageId) -> Result<DeploySubject> {
        Ok(DeploySubject {
            environment: self.get_environment(tenant, env).await?,
            package: self.get_package(tenant, package).await?,
            policy: self.get_policy(tenant, env).await?,
            quarantine: self.get_quarantine(tenant, env, package).await?,
            extensions: self.get_extensions(tenant, env).await?,
            audit_head: Some(self.audit_head(tenant).await?),
        })
    }
}
