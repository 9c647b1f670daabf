use crate::page::{Order, page_of};
use crate::{MemoryStore, Tenancy};
use async_trait::async_trait;
use berth_domain::audit::AuditDraft;
use berth_domain::ids::{EnvironmentId, RuntimeId, TenantId};
use berth_domain::page::{Page, PageRequest};
use berth_domain::ports::RuntimeStore;
use berth_domain::refusal::{Entity, Quota, Refusal};
use berth_domain::runtime::{Credentials, Heartbeat, Runtime};
use berth_domain::secret::SecretHash;
use berth_domain::values::Name;
use berth_domain::{DomainError, Result};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// The stored runtime; its environments are kept with the time each was attached.
pub(crate) struct RuntimeRow {
    pub runtime: Runtime,
    pub envs: BTreeMap<EnvironmentId, DateTime<Utc>>,
}

impl RuntimeRow {
    /// The runtime as read: its environments in the order they were attached.
    fn view(&self) -> Runtime {
        let mut environments: Vec<(EnvironmentId, DateTime<Utc>)> = self.envs.iter().map(|(id, at)| (*id, *at)).collect();
        environments.sort_by_key(|(id, at)| (*at, *id));
        Runtime { environments: environments.into_iter().map(|(id, _)| id).collect(), ..self.runtime.clone() }
    }
}

impl Tenancy {
    fn runtime(&self, id: RuntimeId) -> Option<Runtime> {
        self.runtimes.get(&id).map(RuntimeRow::view)
    }

    /// The runtime is attached to the environment on every item that says so
    /// (the conditions of the adapter's detach).
    fn attached(&self, env: EnvironmentId, runtime: RuntimeId, on_the_runtime_too: bool) -> bool {
        self.attachments.contains_key(&(env, runtime))
            && (!on_the_runtime_too || self.runtimes.get(&runtime).is_some_and(|r| r.envs.contains_key(&env)))
            && self.environments.get(&env).is_some_and(|e| e.runtime_count > 0)
    }

    fn detach(&mut self, env: EnvironmentId, runtime: RuntimeId) {
        self.attachments.remove(&(env, runtime));
        if let Some(r) = self.runtimes.get_mut(&runtime) {
            r.envs.remove(&env);
        }
        if let Some(e) = self.environments.get_mut(&env) {
            e.runtime_count = e.runtime_count.saturating_sub(1);
        }
    }
}

fn missing_attachment() -> DomainError {
    Refusal::Missing(Entity::Attachment).into()
}

#[async_trait]
impl RuntimeStore for MemoryStore {
    async fn create_runtime(&self, tenant: TenantId, runtime: &Runtime, audit: AuditDraft) -> Result<()> {
        let mut s = self.lock();
        if s.t(tenant).runtimes.contains_key(&runtime.id) {
            return Err(Refusal::Exists(Entity::Runtime).into());
        }
        if !s.quota_allows(tenant, Quota::Runtimes) {
            return Err(Refusal::QuotaExceeded(Quota::Runtimes).into());
        }
        // As the adapter writes it: never seen, attached nowhere.
        let stored = Runtime { last_seen_at: None, agent_version: None, health: None, running: vec![], environments: vec![], ..runtime.clone() };
        s.t(tenant).runtimes.insert(runtime.id, RuntimeRow { runtime: stored, envs: BTreeMap::new() });
        s.count(tenant, Quota::Runtimes, true);
        s.record(tenant, audit);
        Ok(())
    }

    async fn get_runtime(&self, tenant: TenantId, id: RuntimeId) -> Result<Option<Runtime>> {
        Ok(self.lock().t(tenant).runtime(id))
    }

    async fn list_runtimes(&self, tenant: TenantId, page: &PageRequest) -> Result<Page<Runtime>> {
        let mut s = self.lock();
        let items = s.t(tenant).runtimes.iter().map(|(id, row)| (id.to_string(), row.view())).collect();
        page_of(&format!("{tenant}/runtimes"), items, page, Order::OldestFirst)
    }

    /// Detaches it from the environments the caller read it attached to: as
    /// the adapter, refused when one of those attachments is gone.
    async fn delete_runtime(&self, tenant: TenantId, runtime: &Runtime, audit: AuditDraft) -> Result<()> {
        let mut s = self.lock();
        // Exactly the environments read (an attach since then refuses it).
        let attached_now = s.t(tenant).attachments.keys().filter(|(_, r)| *r == runtime.id).count();
        let stale = !s.t(tenant).runtimes.contains_key(&runtime.id)
            || attached_now != runtime.environments.len()
            || !s.counted(tenant, Quota::Runtimes)
            || !runtime.environments.iter().all(|env| s.t(tenant).attached(*env, runtime.id, false));
        if stale {
            return Err(Refusal::Stale(Entity::Runtime).into());
        }
        let t = s.t(tenant);
        t.runtimes.remove(&runtime.id);
        for env in &runtime.environments {
            t.detach(*env, runtime.id);
        }
        s.count(tenant, Quota::Runtimes, false);
        s.record(tenant, audit);
        Ok(())
    }

    async fn attach_runtime(&self, tenant: TenantId, env: EnvironmentId, runtime: RuntimeId, audit: AuditDraft) -> Result<bool> {
        let mut s = self.lock();
        let t = s.t(tenant);
        if t.attachments.contains_key(&(env, runtime)) {
            return Ok(false);
        }
        if !t.runtimes.contains_key(&runtime) {
            return Err(Refusal::Missing(Entity::Runtime).into());
        }
        if !t.environments.contains_key(&env) {
            return Err(Refusal::Missing(Entity::Environment).into());
        }
        let now = Utc::now();
        t.attachments.insert((env, runtime), now);
        if let Some(r) = t.runtimes.get_mut(&runtime) {
            r.envs.insert(env, now);
        }
        if let Some(e) = t.environments.get_mut(&env) {
            e.runtime_count += 1;
        }
        s.record(tenant, audit);
        Ok(true)
    }

    async fn detach_runtime(&self, tenant: TenantId, env: EnvironmentId, runtime: RuntimeId, audit: AuditDraft) -> Result<()> {
        let mut s = self.lock();
        let t = s.t(tenant);
        if !t.attached(env, runtime, true) {
            return Err(missing_attachment());
        }
        t.detach(env, runtime);
        s.record(tenant, audit);
        Ok(())
    }

    /// In the order of the runtimes' ids; a runtime gone meanwhile is left out of its page.
    async fn list_environment_runtimes(&self, tenant: TenantId, env: EnvironmentId, page: &PageRequest) -> Result<Page<Runtime>> {
        let mut s = self.lock();
        let t = s.t(tenant);
        let attached = t.attachments.keys().filter(|(e, _)| *e == env).map(|(_, r)| (r.to_string(), *r)).collect();
        let page = page_of(&format!("{tenant}/environments/{env}/runtimes"), attached, page, Order::OldestFirst)?;
        Ok(Page { items: page.items.iter().filter_map(|r| t.runtime(*r)).collect(), next_cursor: page.next_cursor })
    }

    async fn complete_registration(
        &self,
        tenant: TenantId,
        runtime: RuntimeId,
        registration: &SecretHash,
        credential: &SecretHash,
        name: Option<&Name>,
        agent_version: &str,
        audit: AuditDraft,
    ) -> Result<()> {
        let mut s = self.lock();
        let Some(row) = s.t(tenant).runtimes.get_mut(&runtime).filter(|r| r.runtime.registration_hash.as_ref() == Some(registration)) else {
            return Err(Refusal::RegistrationUsed.into());
        };
        let r = &mut row.runtime;
        r.set_credentials(Credentials::registered(credential.clone()));
        r.agent_version = Some(agent_version.to_string());
        if let Some(name) = name {
            r.name = name.clone();
        }
        s.record(tenant, audit);
        Ok(())
    }

    async fn record_heartbeat(&self, tenant: TenantId, runtime: RuntimeId, heartbeat: &Heartbeat) -> Result<()> {
        let mut s = self.lock();
        let Some(row) = s.t(tenant).runtimes.get_mut(&runtime) else {
            return Err(Refusal::Missing(Entity::Runtime).into());
        };
        let r = &mut row.runtime;
        r.last_seen_at = Some(heartbeat.at);
        r.agent_version = Some(heartbeat.agent_version.clone());
        r.health = Some(heartbeat.health);
        r.running = heartbeat.running.clone();
        Ok(())
    }

    async fn swap_credentials(&self, tenant: TenantId, runtime: RuntimeId, expected: &Credentials, new: &Credentials, audit: Option<AuditDraft>) -> Result<()> {
        let mut s = self.lock();
        let Some(row) = s.t(tenant).runtimes.get_mut(&runtime).filter(|r| r.runtime.credentials() == *expected) else {
            return Err(Refusal::Stale(Entity::Runtime).into());
        };
        row.runtime.set_credentials(new.clone());
        if let Some(audit) = audit {
            s.record(tenant, audit);
        }
        Ok(())
    }
}
