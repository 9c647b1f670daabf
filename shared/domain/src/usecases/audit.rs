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

impl Berth {
    pub async fn list_audit(&self, ctx: &TenantCtx, page: &PageRequest) -> Result<Page<AuditEvent>> {
        ctx.require(Permission::Read)?;
        self.audit.list_audit(ctx.tenant, page).await
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
