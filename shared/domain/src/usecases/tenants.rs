use super::Berth;
use crate::audit::AuditDraft;
use crate::audit::summary::{TenantChanged, TenantCreated};
use crate::context::PlatformCtx;
use crate::ids::TenantId;
use crate::page::{Page, PageRequest};
use crate::tenant::{Tenant, TenantPatch};
use crate::values::{Name, Plan, Version};
use crate::{DomainError, Result};
use chrono::Utc;

impl Berth {
    #[tracing::instrument(skip(self, ctx), fields(request_id = %ctx.request_id))]
    pub async fn create_tenant(&self, ctx: &PlatformCtx, name: Name, plan: Plan) -> Result<Tenant> {
        let tenant = Tenant::new(name, plan, Utc::now());
        let audit = AuditDraft::by(ctx, tenant.id, TenantCreated::of(&tenant));
        self.ports.tenants.create_tenant(&tenant, audit).await?;
        Ok(tenant)
    }

    pub async fn get_tenant(&self, _ctx: &PlatformCtx, id: TenantId) -> Result<Tenant> {
        self.ports.tenants.get_tenant(id).await?.ok_or(DomainError::not_found("tenant"))
    }

    pub async fn list_tenants(&self, _ctx: &PlatformCtx, page: &PageRequest) -> Result<Page<Tenant>> {
        self.ports.tenants.list_tenants(page).await
    }

    #[tracing::instrument(skip(self, ctx, patch), fields(request_id = %ctx.request_id))]
    pub async fn patch_tenant(&self, ctx: &PlatformCtx, id: TenantId, patch: TenantPatch, if_match: Option<Version>) -> Result<Tenant> {
        let before = self.get_tenant(ctx, id).await?;
        check_if_match(before.version, if_match)?;
        let after = before.patched(patch, Utc::now())?;
        let audit = AuditDraft::by(ctx, id, TenantChanged::of(&before, &after));
        self.ports.tenants.update_tenant(&after, before.version, audit).await?;
        self.tenant_cache.forget(id);
        Ok(after)
    }

    /// The tenant a verified token (or runtime credential) names, read at most
    /// `TENANT_CACHE_TTL` ago by this instance. A token for a tenant that does
    /// not exist (any more) is refused: 403 `unknown_tenant`.
    pub async fn tenant_of_token(&self, id: TenantId) -> Result<Tenant> {
        if let Some(tenant) = self.tenant_cache.get(id) {
            return Ok(tenant);
        }
        let tenant =
            self.ports.tenants.get_tenant(id).await?.ok_or_else(|| DomainError::forbidden("unknown_tenant", "the token names a tenant that does not exist"))?;
        self.tenant_cache.put(tenant.clone());
        Ok(tenant)
    }
}

/// How long an instance trusts a tenant item it read: a suspension (or a plan
/// change) made elsewhere takes effect within this; on the instance that made
/// it, at once.
pub const TENANT_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(5);

/// Tenant items read for authorisation, per instance; saves a read per request.
#[derive(Debug, Default)]
pub struct TenantCache {
    entries: std::sync::Mutex<std::collections::HashMap<TenantId, (std::time::Instant, Tenant)>>,
}

impl TenantCache {
    fn entries(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<TenantId, (std::time::Instant, Tenant)>> {
        // A panic elsewhere while holding the lock leaves the map usable.
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self, id: TenantId) -> Option<Tenant> {
        self.entries().get(&id).filter(|(at, _)| at.elapsed() < TENANT_CACHE_TTL).map(|(_, t)| t.clone())
    }

    fn put(&self, tenant: Tenant) {
        let mut entries = self.entries();
        if entries.len() >= 10_000 {
            entries.retain(|_, (at, _)| at.elapsed() < TENANT_CACHE_TTL);
        }
        entries.insert(tenant.id, (std::time::Instant::now(), tenant));
    }

    fn forget(&self, id: TenantId) {
        self.entries().remove(&id);
    }
}

/// `If-Match` is optional; when given it must name the current version.
pub(crate) fn check_if_match(current: Version, if_match: Option<Version>) -> Result<()> {
    match if_match {
        Some(v) if v != current => Err(DomainError::PreconditionFailed),
        _ => Ok(()),
    }
}
