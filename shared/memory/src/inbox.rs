use crate::page::{Order, page_of};
use crate::{MemoryStore, time_key};
use async_trait::async_trait;
use berth_domain::Result;
use berth_domain::change_request::ChangeStatus;
use berth_domain::ids::TenantId;
use berth_domain::page::{Page, PageRequest};
use berth_domain::ports::{AwaitingDecision, DecisionInbox};

#[async_trait]
impl DecisionInbox for MemoryStore {
    /// Sorted as the adapter's index: `<created_at>#D#<id>` / `<created_at>#C#<id>`.
    async fn awaiting_decision(&self, tenant: TenantId, page: &PageRequest) -> Result<Page<AwaitingDecision>> {
        let mut s = self.lock();
        let t = s.t(tenant);
        let mut items: Vec<(String, AwaitingDecision)> =
            t.deployments.pending_approval().map(|d| (format!("{}#D#{}", time_key(d.created_at), d.id), AwaitingDecision::Deployment(d.id))).collect();
        items.extend(
            t.change_requests
                .values()
                .filter(|cr| cr.status == ChangeStatus::Submitted)
                .map(|cr| (format!("{}#C#{}", time_key(cr.created_at), cr.id), AwaitingDecision::ChangeRequest(cr.id))),
        );
        page_of(&format!("{tenant}/awaiting-decision"), items, page, Order::OldestFirst)
    }
}
