use super::Berth;
use crate::Result;
use crate::audit::{AuditEvent, AuditHead, BrokenLink, verify_chain};
use crate::context::{Permission, TenantCtx};
use crate::page::{Page, PageRequest};

/// The outcome of walking a tenant's audit chain.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    pub ok: bool,
    pub checked: u64,
    pub first_broken: Option<BrokenLink>,
}

/// Filters of the audit list; every given one must match.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
    /// The actor's id (a user's `sub`, a runtime id, `auto-rollback`, ...).
    pub actor: Option<String>,
    pub action: Option<String>,
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    pub to: Option<chrono::DateTime<chrono::Utc>>,
}

impl AuditFilter {
    fn matches(&self, e: &AuditEvent) -> bool {
        self.entity_type.as_ref().is_none_or(|t| &e.entity_type == t)
            && self.entity_id.as_ref().is_none_or(|i| &e.entity_id == i)
            && self.actor.as_ref().is_none_or(|a| &e.actor.id == a)
            && self.action.as_ref().is_none_or(|a| &e.action == a)
            && self.from.is_none_or(|f| e.at >= f)
            && self.to.is_none_or(|t| e.at < t)
    }
}

impl Berth {
    /// Audit events, oldest first. Filters narrow each page after it is
    /// read: a page may hold fewer than `limit` events while `next_cursor` goes on.
    pub async fn list_audit(&self, ctx: &TenantCtx, filter: &AuditFilter, page: &PageRequest) -> Result<Page<AuditEvent>> {
        ctx.require(Permission::Read)?;
        let page = self.audit.list_audit(ctx.tenant, page).await?;
        Ok(Page { items: page.items.into_iter().filter(|e| filter.matches(e)).collect(), next_cursor: page.next_cursor })
    }

    /// Walks the whole chain from the genesis, then checks it ends at the head.
    #[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant))]
    pub async fn verify_audit(&self, ctx: &TenantCtx) -> Result<VerifyReport> {
        ctx.require(Permission::Read)?;
        let mut head = AuditHead::genesis();
        let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
        loop {
            let batch = self.audit.list_audit(ctx.tenant, &page).await?;
            match verify_chain(&head, &batch.items) {
                Ok(h) => head = h,
                Err(broken) => return Ok(VerifyReport { ok: false, checked: broken.seq.saturating_sub(1), first_broken: Some(broken) }),
            }
            match batch.next_cursor {
                Some(c) => page.cursor = Some(c),
                None => break,
            }
        }
        let stored_head = self.audit.audit_head(ctx.tenant).await?;
        if stored_head != head {
            let broken =
                BrokenLink { id: Default::default(), seq: head.seq + 1, reason: "the chain ends before the recorded head: events were removed".into() };
            return Ok(VerifyReport { ok: false, checked: head.seq, first_broken: Some(broken) });
        }
        Ok(VerifyReport { ok: true, checked: head.seq, first_broken: None })
    }
}
