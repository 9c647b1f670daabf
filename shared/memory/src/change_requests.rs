use crate::MemoryStore;
use crate::page::{Order, page_of};
use async_trait::async_trait;
use berth_domain::Result;
use berth_domain::audit::AuditDraft;
use berth_domain::change_request::{ChangeRequest, ChangeStatus};
use berth_domain::ids::{ChangeRequestId, TenantId};
use berth_domain::page::{Page, PageRequest};
use berth_domain::policy::Approval;
use berth_domain::ports::ChangeRequestStore;
use berth_domain::refusal::{Decided, Entity, Refusal};
use berth_domain::runtime::Digest;
use berth_domain::values::Version;
use sha2::Digest as _;

/// One decision per approver and exact set of digests (the adapter's key):
/// when a change request's items change, its approvers decide anew.
fn decision_key(approver: &str, digests: &[Digest]) -> String {
    let mut h = sha2::Sha256::new();
    for d in digests {
        h.update(d.as_str());
    }
    format!("{approver}#{}", &hex::encode(h.finalize())[..16])
}

#[async_trait]
impl ChangeRequestStore for MemoryStore {
    async fn create_change_request(&self, tenant: TenantId, cr: &ChangeRequest, audit: AuditDraft) -> Result<()> {
        let mut s = self.lock();
        let t = s.t(tenant);
        if t.change_requests.contains_key(&cr.id) {
            return Err(Refusal::Exists(Entity::ChangeRequest).into());
        }
        t.change_requests.insert(cr.id, cr.clone());
        s.record(tenant, audit);
        Ok(())
    }

    async fn get_change_request(&self, tenant: TenantId, id: ChangeRequestId) -> Result<Option<ChangeRequest>> {
        Ok(self.lock().t(tenant).change_requests.get(&id).cloned())
    }

    async fn list_change_requests(&self, tenant: TenantId, page: &PageRequest) -> Result<Page<ChangeRequest>> {
        let mut s = self.lock();
        let items = s.t(tenant).change_requests.iter().map(|(id, cr)| (id.to_string(), cr.clone())).collect();
        page_of(&format!("{tenant}/change-requests"), items, page, Order::NewestFirst)
    }

    async fn update_change_request(&self, tenant: TenantId, cr: &ChangeRequest, expected: Version, audit: AuditDraft) -> Result<()> {
        let mut s = self.lock();
        let t = s.t(tenant);
        let as_read = t.change_requests.get(&cr.id).is_some_and(|stored| stored.version == expected);
        if !as_read {
            return Err(Refusal::Stale(Entity::ChangeRequest).into());
        }
        t.change_requests.insert(cr.id, cr.clone());
        s.record(tenant, audit);
        Ok(())
    }

    async fn add_change_approval(&self, tenant: TenantId, cr: ChangeRequestId, approval: &Approval, audit: AuditDraft) -> Result<()> {
        let mut s = self.lock();
        let t = s.t(tenant);
        let Some(stored) = t.change_requests.get_mut(&cr).filter(|stored| stored.status == ChangeStatus::Submitted) else {
            return Err(Refusal::NotAwaitingApproval(Decided::ChangeRequest).into());
        };
        let key = (cr, decision_key(&approval.approver, &approval.digests));
        if t.change_approvals.contains_key(&key) {
            return Err(Refusal::AlreadyDecided(Decided::ChangeRequest).into());
        }
        // A decision bumps the request's version, ordering it against any status change.
        stored.version = stored.version.next();
        t.change_approvals.insert(key, approval.clone());
        s.record(tenant, audit);
        Ok(())
    }

    async fn change_approvals(&self, tenant: TenantId, cr: ChangeRequestId) -> Result<Vec<Approval>> {
        let mut s = self.lock();
        let mut all: Vec<Approval> = s.t(tenant).change_approvals.iter().filter(|((c, _), _)| *c == cr).map(|(_, a)| a.clone()).collect();
        all.sort_by_key(|a| a.created_at);
        Ok(all)
    }
}
