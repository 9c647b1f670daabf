use super::Berth;
use crate::audit::AuditDraft;
use crate::audit::summary::QuarantineLifted;
use crate::context::{Permission, TenantCtx};
use crate::ids::{EnvironmentId, PackageId};
use crate::quarantine::Quarantine;
use crate::{DomainError, Result};

impl Berth {
    /// The versions quarantined in the environment (see `Deployment::quarantines`).
    pub async fn quarantined_versions(&self, ctx: &TenantCtx, env: EnvironmentId) -> Result<Vec<Quarantine>> {
        self.get_environment(ctx, env).await?;
        self.ports.deployments.quarantined(ctx.tenant, env).await
    }

    /// Lifts the package's quarantine in the environment, audited
    /// (`quarantine.lifted`): it may be deployed there again without an override.
    #[tracing::instrument(skip(self, ctx), fields(tenant_id = %ctx.tenant, request_id = %ctx.request_id))]
    pub async fn lift_quarantine(&self, ctx: &TenantCtx, env: EnvironmentId, package: PackageId) -> Result<()> {
        self.get_environment(ctx, env).await?;
        ctx.require(Permission::Deploy)?;
        let quarantine = self.ports.deployments.get_quarantine(ctx.tenant, env, package).await?.ok_or(DomainError::not_found("quarantine"))?;
        let audit = AuditDraft::by(ctx, env, QuarantineLifted::of(&quarantine));
        self.ports.deployments.lift_quarantine(ctx.tenant, env, package, audit).await
    }
}
