use crate::page::{Order, page_of};
use crate::{MemoryStore, Tenancy};
use async_trait::async_trait;
use berth_domain::audit::AuditDraft;
use berth_domain::environment::Environment;
use berth_domain::ids::{EnvironmentId, TenantId};
use berth_domain::page::{Page, PageRequest};
use berth_domain::ports::EnvironmentStore;
use berth_domain::refusal::{Entity, Quota, Refusal, Taken};
use berth_domain::{DomainError, Result};

/// The stored environment and how many runtimes are attached to it.
pub(crate) struct EnvironmentRow {
    pub env: Environment,
    pub runtime_count: u32,
}

fn list(tenant: TenantId) -> String {
    format!("{tenant}/environments")
}

impl Tenancy {
    pub(crate) fn environment(&self, id: EnvironmentId) -> Option<Environment> {
        self.environments.get(&id).map(|row| row.env.clone())
    }
}

#[async_trait]
impl EnvironmentStore for MemoryStore {
    async fn create_environment(&self, tenant: TenantId, env: &Environment, audit: AuditDraft) -> Result<()> {
        let mut s = self.lock();
        let t = s.t(tenant);
        if t.environments.contains_key(&env.id) {
            return Err(Refusal::Exists(Entity::Environment).into());
        }
        if t.environment_names.contains_key(&env.name.unique_key()) {
            return Err(Refusal::Taken(Taken::EnvironmentName).into());
        }
        if !s.quota_allows(tenant, Quota::Environments) {
            return Err(Refusal::QuotaExceeded(Quota::Environments).into());
        }
        let t = s.t(tenant);
        t.environments.insert(env.id, EnvironmentRow { env: env.clone(), runtime_count: 0 });
        t.environment_names.insert(env.name.unique_key(), env.id);
        s.count(tenant, Quota::Environments, true);
        s.record(tenant, audit);
        Ok(())
    }

    async fn get_environment(&self, tenant: TenantId, id: EnvironmentId) -> Result<Option<Environment>> {
        Ok(self.lock().t(tenant).environment(id))
    }

    async fn list_environments(&self, tenant: TenantId, page: &PageRequest) -> Result<Page<Environment>> {
        let mut s = self.lock();
        let items = s.t(tenant).environments.iter().map(|(id, row)| (id.to_string(), row.env.clone())).collect();
        page_of(&list(tenant), items, page, Order::OldestFirst)
    }

    async fn update_environment(&self, tenant: TenantId, before: &Environment, after: &Environment, audit: AuditDraft) -> Result<()> {
        let mut s = self.lock();
        let t = s.t(tenant);
        let as_read = t.environments.get(&before.id).is_some_and(|row| row.env.version == before.version);
        if !as_read {
            return Err(Refusal::Stale(Entity::Environment).into());
        }
        let renamed = before.name.unique_key() != after.name.unique_key();
        if renamed && t.environment_names.contains_key(&after.name.unique_key()) {
            return Err(Refusal::Taken(Taken::EnvironmentName).into());
        }
        if let Some(row) = t.environments.get_mut(&before.id) {
            // The adapter sets these fields; the classification never changes.
            row.env.name = after.name.clone();
            row.env.enabled = after.enabled;
            row.env.description = after.description.clone();
            row.env.version = after.version;
            row.env.updated_at = after.updated_at;
        }
        if renamed {
            t.environment_names.insert(after.name.unique_key(), after.id);
            t.environment_names.remove(&before.name.unique_key());
        }
        s.record(tenant, audit);
        Ok(())
    }

    async fn delete_environment(&self, tenant: TenantId, env: &Environment, audit: AuditDraft) -> Result<()> {
        let mut s = self.lock();
        match s.t(tenant).environments.get(&env.id) {
            None => return Err(Refusal::Missing(Entity::Environment).into()),
            Some(row) if row.runtime_count > 0 => return Err(Refusal::HasRuntimes.into()),
            Some(_) => {}
        }
        if !s.counted(tenant, Quota::Environments) {
            return Err(DomainError::unexpected("the tenant's environment count was already zero"));
        }
        let t = s.t(tenant);
        t.environments.remove(&env.id);
        t.environment_names.remove(&env.name.unique_key());
        // Its policy, extension values and connection tests go with it.
        t.policies.remove(&env.id);
        t.extensions.remove(&env.id);
        t.connection_tests.retain(|(e, _), _| *e != env.id);
        s.count(tenant, Quota::Environments, false);
        s.record(tenant, audit);
        Ok(())
    }
}
