use crate::MemoryStore;
use crate::page::{Order, page_of};
use async_trait::async_trait;
use berth_domain::Result;
use berth_domain::api_key::ApiKey;
use berth_domain::audit::AuditDraft;
use berth_domain::ids::{ApiKeyId, TenantId};
use berth_domain::page::{Page, PageRequest};
use berth_domain::ports::ApiKeyStore;
use berth_domain::refusal::{Entity, Refusal};
use chrono::{DateTime, Utc};

#[async_trait]
impl ApiKeyStore for MemoryStore {
    async fn create_api_key(&self, tenant: TenantId, key: &ApiKey, audit: AuditDraft) -> Result<()> {
        let mut s = self.lock();
        if s.t(tenant).api_keys.contains_key(&key.id) {
            return Err(Refusal::Exists(Entity::ApiKey).into());
        }
        // As the adapter writes it: never used, not revoked.
        s.t(tenant).api_keys.insert(key.id, ApiKey { last_used_at: None, revoked_at: None, ..key.clone() });
        s.record(tenant, audit);
        Ok(())
    }

    async fn get_api_key(&self, tenant: TenantId, id: ApiKeyId) -> Result<Option<ApiKey>> {
        Ok(self.lock().t(tenant).api_keys.get(&id).cloned())
    }

    async fn list_api_keys(&self, tenant: TenantId, page: &PageRequest) -> Result<Page<ApiKey>> {
        let mut s = self.lock();
        let items = s.t(tenant).api_keys.iter().map(|(id, key)| (id.to_string(), key.clone())).collect();
        page_of(&format!("{tenant}/api-keys"), items, page, Order::OldestFirst)
    }

    async fn revoke_api_key(&self, tenant: TenantId, id: ApiKeyId, at: DateTime<Utc>, audit: AuditDraft) -> Result<()> {
        let mut s = self.lock();
        let Some(key) = s.t(tenant).api_keys.get_mut(&id) else {
            return Err(Refusal::Missing(Entity::ApiKey).into());
        };
        if key.revoked_at.is_some() {
            return Err(Refusal::Stale(Entity::ApiKey).into());
        }
        key.revoked_at = Some(at);
        s.record(tenant, audit);
        Ok(())
    }

    async fn record_api_key_use(&self, tenant: TenantId, id: ApiKeyId, at: DateTime<Utc>, unless_since: DateTime<Utc>) -> Result<bool> {
        let mut s = self.lock();
        match s.t(tenant).api_keys.get_mut(&id) {
            Some(key) if key.last_used_at.is_none_or(|last| last < unless_since) => {
                key.last_used_at = Some(at);
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}
