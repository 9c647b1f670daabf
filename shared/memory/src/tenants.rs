use crate::page::{Order, page_of};
use crate::{MemoryStore, State};
use async_trait::async_trait;
use berth_domain::Result;
use berth_domain::audit::AuditDraft;
use berth_domain::ids::TenantId;
use berth_domain::page::{Page, PageRequest};
use berth_domain::ports::TenantStore;
use berth_domain::refusal::{Entity, Quota, Refusal};
use berth_domain::tenant::Tenant;
use berth_domain::values::Version;

/// The stored tenant and what counts against its plan.
pub(crate) struct TenantRow {
    pub tenant: Tenant,
    pub environment_count: u32,
    pub runtime_count: u32,
}

impl TenantRow {
    fn count(&mut self, quota: Quota) -> &mut u32 {
        match quota {
            Quota::Environments => &mut self.environment_count,
            Quota::Runtimes => &mut self.runtime_count,
        }
    }
}

impl State {
    /// One more fits in the plan (false when the tenant does not exist, as the adapter's condition).
    pub(crate) fn quota_allows(&self, tenant: TenantId, quota: Quota) -> bool {
        self.tenants.get(&tenant).is_some_and(|row| match quota {
            Quota::Environments => row.environment_count < row.tenant.plan.max_environments,
            Quota::Runtimes => row.runtime_count < row.tenant.plan.max_runtimes,
        })
    }

    /// Something counted against the plan exists (the condition of a decrement).
    pub(crate) fn counted(&self, tenant: TenantId, quota: Quota) -> bool {
        self.tenants.get(&tenant).is_some_and(|row| match quota {
            Quota::Environments => row.environment_count > 0,
            Quota::Runtimes => row.runtime_count > 0,
        })
    }

    /// Moves a counter; call only after `quota_allows` / `counted` held.
    pub(crate) fn count(&mut self, tenant: TenantId, quota: Quota, up: bool) {
        if let Some(row) = self.tenants.get_mut(&tenant) {
            let count = row.count(quota);
            *count = if up { count.saturating_add(1) } else { count.saturating_sub(1) };
        }
    }
}

#[async_trait]
impl TenantStore for MemoryStore {
    async fn create_tenant(&self, tenant: &Tenant, audit: AuditDraft) -> Result<()> {
        let mut s = self.lock();
        if s.tenants.contains_key(&tenant.id) {
            return Err(Refusal::Exists(Entity::Tenant).into());
        }
        s.tenants.insert(tenant.id, TenantRow { tenant: tenant.clone(), environment_count: 0, runtime_count: 0 });
        s.record(tenant.id, audit);
        Ok(())
    }

    async fn get_tenant(&self, id: TenantId) -> Result<Option<Tenant>> {
        Ok(self.lock().tenants.get(&id).map(|row| row.tenant.clone()))
    }

    /// Oldest first, by the adapter's index key (`<created_at>#<id>`).
    async fn list_tenants(&self, page: &PageRequest) -> Result<Page<Tenant>> {
        let s = self.lock();
        let items = s.tenants.values().map(|row| (format!("{}#{}", row.tenant.created_at.to_rfc3339(), row.tenant.id), row.tenant.clone())).collect();
        page_of("tenants", items, page, Order::OldestFirst)
    }

    async fn update_tenant(&self, tenant: &Tenant, expected: Version, audit: AuditDraft) -> Result<()> {
        let mut s = self.lock();
        let Some(row) = s.tenants.get_mut(&tenant.id).filter(|row| row.tenant.version == expected) else {
            return Err(Refusal::Stale(Entity::Tenant).into());
        };
        // The adapter sets these fields; the id and the creation time stay.
        let stored = &mut row.tenant;
        stored.name = tenant.name.clone();
        stored.plan = tenant.plan;
        stored.suspended = tenant.suspended;
        stored.version = tenant.version;
        stored.updated_at = tenant.updated_at;
        s.record(tenant.id, audit);
        Ok(())
    }
}
