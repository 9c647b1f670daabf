use crate::MemoryStore;
use async_trait::async_trait;
use berth_domain::Result;
use berth_domain::ids::TenantId;
use berth_domain::ports::{IdempotencyScope, IdempotencyStore, Reservation, StoredResponse};

use berth_domain::ports::{IDEMPOTENCY_KEEP_SECS as KEEP_FOR_SECS, IDEMPOTENCY_TAKEOVER_SECS as STALE_PENDING_SECS};

pub(crate) struct Record {
    fingerprint: String,
    created_at: i64,
    expires_at: i64,
    /// `None` while the request runs.
    response: Option<StoredResponse>,
}

fn key(scope: IdempotencyScope, key: &str) -> (Option<TenantId>, String) {
    let owner = match scope {
        IdempotencyScope::Tenant(t) => Some(t),
        IdempotencyScope::Platform => None,
    };
    (owner, key.to_string())
}

#[async_trait]
impl IdempotencyStore for MemoryStore {
    async fn reserve(&self, scope: IdempotencyScope, k: &str, fingerprint: &str) -> Result<Reservation> {
        let now = chrono::Utc::now().timestamp();
        let mut s = self.lock();
        let k = key(scope, k);
        match s.idempotency.get(&k) {
            // New, expired, or a pending reservation abandoned by a crashed request: taken.
            Some(existing) if existing.expires_at >= now && (existing.response.is_some() || existing.created_at >= now - STALE_PENDING_SECS) => {
                Ok(match &existing.response {
                    Some(response) => Reservation::Completed { fingerprint: existing.fingerprint.clone(), response: response.clone() },
                    None => Reservation::InProgress { fingerprint: existing.fingerprint.clone() },
                })
            }
            _ => {
                let record = Record { fingerprint: fingerprint.to_string(), created_at: now, expires_at: now + KEEP_FOR_SECS, response: None };
                s.idempotency.insert(k, record);
                Ok(Reservation::Reserved)
            }
        }
    }

    async fn complete(&self, scope: IdempotencyScope, k: &str, fingerprint: &str, response: &StoredResponse) -> Result<()> {
        let now = chrono::Utc::now().timestamp();
        let record = Record { fingerprint: fingerprint.to_string(), created_at: now, expires_at: now + KEEP_FOR_SECS, response: Some(response.clone()) };
        self.lock().idempotency.insert(key(scope, k), record);
        Ok(())
    }

    async fn release(&self, scope: IdempotencyScope, k: &str) -> Result<()> {
        let mut s = self.lock();
        let k = key(scope, k);
        if s.idempotency.get(&k).is_some_and(|r| r.response.is_none()) {
            s.idempotency.remove(&k);
        }
        Ok(())
    }
}
