use super::Berth;
use crate::audit::AuditDraft;
use crate::context::PlatformCtx;
use crate::ids::TenantId;
use crate::page::{Page, PageRequest};
use crate::tenant::{Tenant, TenantPatch};
use crate::values::{Name, Plan, Version};
use crate::{DomainError, Result};
use chrono::Utc;
use serde_json::json;

impl Berth {
    #[tracing::instrument(skip(self, ctx), fields(request_id = %ctx.request_id))]
    pub async fn create_tenant(&self, ctx: &PlatformCtx, name: Name, plan: Plan) -> Result<Tenant> {
        let tenant = Tenant::new(name, plan, Utc::now());
        let audit =
            AuditDraft::new(&ctx.actor, &ctx.request_id, "tenant.created", "tenant", tenant.id, json!({"after": {"name": tenant.name, "plan": tenant.plan}}));
        self.tenants.create_tenant(&tenant, audit).await?;
        Ok(tenant)
    }

    pub async fn get_tenant(&self, _ctx: &PlatformCtx, id: TenantId) -> Result<Tenant> {
        self.tenants.get_tenant(id).await?.ok_or(DomainError::not_found("tenant"))
    }

    pub async fn list_tenants(&self, _ctx: &PlatformCtx, page: &PageRequest) -> Result<Page<Tenant>> {
        self.tenants.list_tenants(page).await
    }

    #[tracing::instrument(skip(self, ctx, patch), fields(request_id = %ctx.request_id))]
    pub async fn patch_tenant(&self, ctx: &PlatformCtx, id: TenantId, patch: TenantPatch, if_match: Option<Version>) -> Result<Tenant> {
        let before = self.get_tenant(ctx, id).await?;
        check_if_match(before.version, if_match)?;
        let after = before.patched(patch, Utc::now())?;
        let audit = AuditDraft::new(
            &ctx.actor,
            &ctx.request_id,
            if after.suspended != before.suspended { if after.suspended { "tenant.suspended" } else { "tenant.reinstated" } } else { "tenant.updated" },
            "tenant",
            id,
            json!({
                "before": {"name": before.name, "plan": before.plan, "suspended": before.suspended},
                "after": {"name": after.name, "plan": after.plan, "suspended": after.suspended},
            }),
        );
        self.tenants.update_tenant(&after, before.version, audit).await?;
        Ok(after)
    }

    /// The tenant a verified token names. A token for a tenant that does not
    /// exist (any more) is refused: 403 `unknown_tenant`.
    pub async fn tenant_of_token(&self, id: TenantId) -> Result<Tenant> {
        self.tenants.get_tenant(id).await?.ok_or_else(|| DomainError::forbidden("unknown_tenant", "the token names a tenant that does not exist"))
    }
}

/// `If-Match` is optional; when given it must name the current version.
pub(crate) fn check_if_match(current: Version, if_match: Option<Version>) -> Result<()> {
    match if_match {
        Some(v) if v != current => Err(DomainError::PreconditionFailed),
        _ => Ok(()),
    }
}
