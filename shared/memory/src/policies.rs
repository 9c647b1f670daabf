use crate::MemoryStore;
use async_trait::async_trait;
use berth_domain::Result;
use berth_domain::audit::AuditDraft;
use berth_domain::ids::{EnvironmentId, TenantId};
use berth_domain::policy::Policy;
use berth_domain::ports::PolicyStore;
use berth_domain::refusal::{Entity, Refusal};
use berth_domain::values::Version;

#[async_trait]
impl PolicyStore for MemoryStore {
    async fn get_policy(&self, tenant: TenantId, env: EnvironmentId) -> Result<Option<Policy>> {
        Ok(self.lock().t(tenant).policies.get(&env).cloned())
    }

    async fn put_policy(&self, tenant: TenantId, env: EnvironmentId, policy: &Policy, expected: Version, audit: AuditDraft) -> Result<()> {
        let mut s = self.lock();
        let t = s.t(tenant);
        let current = t.policies.get(&env).map(|p| p.version);
        let as_read = if expected.0 == 0 { current.is_none() } else { current == Some(expected) };
        if !as_read {
            return Err(Refusal::Stale(Entity::Policy).into());
        }
        t.policies.insert(env, policy.clone());
        s.record(tenant, audit);
        Ok(())
    }
}
