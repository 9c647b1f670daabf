use crate::MemoryStore;
use crate::page::{Order, page_of};
use async_trait::async_trait;
use berth_domain::Result;
use berth_domain::audit::{AuditCheckpoint, AuditDraft, AuditEvent, AuditHead};
use berth_domain::ids::TenantId;
use berth_domain::page::{Page, PageRequest};
use berth_domain::ports::AuditStore;
use std::collections::BTreeMap;

/// A tenant's audit trail: its events, its head (stored apart from the
/// events, as the adapter's head item) and how far it was verified.
#[derive(Default)]
pub(crate) struct Chain {
    pub events: BTreeMap<u64, AuditEvent>,
    pub head: Option<AuditHead>,
    pub checkpoint: Option<AuditCheckpoint>,
}

impl Chain {
    pub(crate) fn head(&self) -> AuditHead {
        self.head.clone().unwrap_or_else(AuditHead::genesis)
    }

    /// Chains `draft` to the head and moves the head to it.
    pub(crate) fn append(&mut self, draft: AuditDraft) {
        let event = AuditEvent::chain(draft, &self.head(), chrono::Utc::now());
        self.head = Some(event.head());
        self.events.insert(event.seq, event);
    }
}

impl MemoryStore {
    /// Edits a stored audit event behind the store's back (as someone with
    /// access to the table could), to test that verification notices.
    pub fn tamper_audit_event(&self, tenant: TenantId, seq: u64, edit: impl FnOnce(&mut AuditEvent)) -> bool {
        match self.lock().t(tenant).audit.events.get_mut(&seq) {
            Some(event) => {
                edit(event);
                true
            }
            None => false,
        }
    }

    /// Removes a stored audit event behind the store's back (the head stays).
    pub fn remove_audit_event(&self, tenant: TenantId, seq: u64) -> Option<AuditEvent> {
        self.lock().t(tenant).audit.events.remove(&seq)
    }
}

#[async_trait]
impl AuditStore for MemoryStore {
    async fn list_audit(&self, tenant: TenantId, page: &PageRequest) -> Result<Page<AuditEvent>> {
        let mut s = self.lock();
        let items = s.t(tenant).audit.events.iter().map(|(seq, e)| (format!("{seq:020}"), e.clone())).collect();
        page_of(&format!("{tenant}/audit"), items, page, Order::OldestFirst)
    }

    async fn audit_head(&self, tenant: TenantId) -> Result<AuditHead> {
        Ok(self.lock().t(tenant).audit.head())
    }

    async fn audit_events_after(&self, tenant: TenantId, after: u64, max: usize) -> Result<Vec<AuditEvent>> {
        let mut s = self.lock();
        Ok(s.t(tenant).audit.events.range(after.saturating_add(1)..).take(max).map(|(_, e)| e.clone()).collect())
    }

    async fn audit_event(&self, tenant: TenantId, seq: u64) -> Result<Option<AuditEvent>> {
        Ok(self.lock().t(tenant).audit.events.get(&seq).cloned())
    }

    async fn audit_checkpoint(&self, tenant: TenantId) -> Result<Option<AuditCheckpoint>> {
        Ok(self.lock().t(tenant).audit.checkpoint.clone())
    }

    async fn advance_audit_checkpoint(&self, tenant: TenantId, checkpoint: &AuditCheckpoint) -> Result<bool> {
        let mut s = self.lock();
        let chain = &mut s.t(tenant).audit;
        if chain.checkpoint.as_ref().is_some_and(|stored| stored.seq >= checkpoint.seq) {
            return Ok(false);
        }
        chain.checkpoint = Some(checkpoint.clone());
        Ok(true)
    }
}
