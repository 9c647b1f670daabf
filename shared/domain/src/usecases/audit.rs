use super::Berth;
use crate::audit::{AuditCheckpoint, AuditEvent, AuditHead, BrokenLink, verify_links};
use crate::context::{Permission, TenantCtx};
use crate::ids::TenantId;
use crate::page::{Page, PageRequest};
use crate::values::Role;
use crate::{DomainError, Result};

/// What one call of `GET /v1/audit/verify` checked and found. `ok`,
/// `checked` and `first_broken` mean what they always did: no broken link
/// in what was checked, how many events were, and where the chain first breaks.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    pub ok: bool,
    /// Events this call checked, from `from_seq` to `to_seq` (the event it
    /// started after is re-checked, not counted).
    pub checked: u64,
    pub first_broken: Option<BrokenLink>,
    /// A full verification (`?full=true`): from the genesis or a cursor.
    pub full: bool,
    pub from_seq: u64,
    /// The last event found intact (`from_seq - 1` when none was).
    pub to_seq: u64,
    /// The tenant's head when the call began; later events wait for the next call.
    pub head_seq: u64,
    /// Events after `to_seq` up to `head_seq` that this call did not check.
    pub remaining: u64,
    /// Full verification: the `cursor` that continues after `to_seq`; null at the head or at a break.
    pub next_cursor: Option<String>,
    /// The tenant's checkpoint after this call (incremental calls move it forward).
    pub checkpoint: Option<AuditCheckpoint>,
}

/// What `verify_audit` checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VerifyScope {
    /// From the tenant's checkpoint (or the genesis) towards the head; moves the checkpoint.
    Incremental,
    /// From the genesis, or after a cursor a previous full call returned; admins only.
    /// Never moves the checkpoint: the cursor comes from the caller.
    Full { after: Option<VerifyCursor> },
}

/// Where a full verification continues: after event `seq`, which must still
/// hash to `hash`. Written `<seq>.<hash>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyCursor {
    seq: u64,
    hash: String,
}

impl VerifyCursor {
    pub fn parse(raw: &str) -> Result<Self> {
        let invalid = || DomainError::invalid("cursor", "must be a next_cursor returned by a full verification");
        let (seq, hash) = raw.split_once('.').ok_or_else(invalid)?;
        let seq = seq.parse::<u64>().ok().filter(|s| *s > 0).ok_or_else(invalid)?;
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(invalid());
        }
        Ok(Self { seq, hash: hash.to_string() })
    }

    fn head(&self) -> AuditHead {
        AuditHead { seq: self.seq, hash: self.hash.clone() }
    }
}

impl std::fmt::Display for VerifyCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.seq, self.hash)
    }
}

/// Events held in memory at once while verifying (one store read, at most).
const VERIFY_BATCH: u64 = 1000;

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
        let page = self.ports.audit.list_audit(ctx.tenant, page).await?;
        Ok(Page { items: page.items.into_iter().filter(|e| filter.matches(e)).collect(), next_cursor: page.next_cursor })
    }

    /// Verifies one bounded slice of the tenant's chain (at most
    /// `settings.audit_verify_max_events` events) and says where it stopped.
    ///
    /// Incremental (any reader): from the stored checkpoint, whose event is
    /// first re-checked against the hash recorded with it, towards the head;
    /// then the checkpoint moves forward to the last intact event, so each
    /// call checks only what was appended since (or continues where the last
    /// call stopped). Full (admins): from the genesis or a cursor, each call a
    /// slice, `next_cursor` continuing it.
    #[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant, full = matches!(scope, VerifyScope::Full { .. })))]
    pub async fn verify_audit(&self, ctx: &TenantCtx, scope: VerifyScope) -> Result<VerifyReport> {
        ctx.require(Permission::Read)?;
        let full = matches!(scope, VerifyScope::Full { .. });
        if full && !ctx.roles.contains(&Role::Admin) {
            return Err(DomainError::forbidden("forbidden", "a full verification of the audit chain is for admins"));
        }
        // The head first: events appended while this call runs lie past it, and are left for the next call.
        let head = self.ports.audit.audit_head(ctx.tenant).await?;
        let checkpoint = self.ports.audit.audit_checkpoint(ctx.tenant).await?;
        let start = match &scope {
            VerifyScope::Full { after: Some(cursor) } if cursor.seq > head.seq => return Err(DomainError::invalid("cursor", "is past the head of the chain")),
            VerifyScope::Full { after: Some(cursor) } => cursor.head(),
            VerifyScope::Full { after: None } => AuditHead::genesis(),
            VerifyScope::Incremental => checkpoint.as_ref().map(AuditCheckpoint::head).unwrap_or_else(AuditHead::genesis),
        };
        let mut report = VerifyReport {
            ok: true,
            checked: 0,
            first_broken: None,
            full,
            from_seq: start.seq + 1,
            to_seq: start.seq,
            head_seq: head.seq,
            remaining: head.seq.saturating_sub(start.seq),
            next_cursor: None,
            checkpoint,
        };
        if let Some(broken) = self.recheck_audit_event(ctx.tenant, &start).await? {
            return Ok(report.broken(broken));
        }
        if start.seq > head.seq {
            let reason = "the recorded head is behind an event verified before: events were removed";
            return Ok(report.broken(BrokenLink { id: Default::default(), seq: head.seq + 1, reason: reason.into() }));
        }

        let budget = self.settings.audit_verify_max_events.max(1).min(head.seq - start.seq);
        let mut reached = start.clone();
        let mut broken = None;
        while broken.is_none() && reached.seq - start.seq < budget {
            let want = VERIFY_BATCH.min(budget - (reached.seq - start.seq));
            let events = self.ports.audit.audit_events_after(ctx.tenant, reached.seq, usize::try_from(want).unwrap_or(usize::MAX)).await?;
            let read = events.len() as u64;
            (reached, broken) = verify_links(&reached, &events);
            if broken.is_none() && read < want {
                let reason = "the chain ends before the recorded head: events were removed";
                broken = Some(BrokenLink { id: Default::default(), seq: reached.seq + 1, reason: reason.into() });
            }
        }
        report.checked = reached.seq - start.seq;
        report.to_seq = reached.seq;
        report.remaining = head.seq - reached.seq;
        if full && broken.is_none() && reached.seq < head.seq {
            report.next_cursor = Some(VerifyCursor { seq: reached.seq, hash: reached.hash.clone() }.to_string());
        }
        if !full && reached.seq > start.seq {
            report.checkpoint = Some(self.advance_audit_checkpoint(ctx, &reached).await?);
        }
        Ok(match broken {
            Some(b) => report.broken(b),
            None => report,
        })
    }

    /// The event a verification starts after must still be the one verified
    /// before: present, with the hash recorded then, and hashing to it.
    async fn recheck_audit_event(&self, tenant: TenantId, start: &AuditHead) -> Result<Option<BrokenLink>> {
        if start.seq == 0 {
            return Ok(None);
        }
        let broken = |e: Option<&AuditEvent>, reason: &str| BrokenLink { id: e.map(|e| e.id).unwrap_or_default(), seq: start.seq, reason: reason.into() };
        Ok(match self.ports.audit.audit_event(tenant, start.seq).await? {
            None => Some(broken(None, "an event verified before is missing")),
            Some(e) if e.hash != start.hash => Some(broken(Some(&e), "an event verified before has another hash now")),
            Some(e) if e.compute_hash() != e.hash => Some(broken(Some(&e), "hash does not match the event's content")),
            Some(_) => None,
        })
    }

    /// Moves the checkpoint to `reached` unless another call got further; returns the stored one.
    async fn advance_audit_checkpoint(&self, ctx: &TenantCtx, reached: &AuditHead) -> Result<AuditCheckpoint> {
        let checkpoint = AuditCheckpoint { seq: reached.seq, hash: reached.hash.clone(), at: chrono::Utc::now(), by: ctx.actor.id.clone() };
        if self.ports.audit.advance_audit_checkpoint(ctx.tenant, &checkpoint).await? {
            return Ok(checkpoint);
        }
        Ok(self.ports.audit.audit_checkpoint(ctx.tenant).await?.unwrap_or(checkpoint))
    }
}

impl VerifyReport {
    fn broken(mut self, link: BrokenLink) -> Self {
        self.ok = false;
        self.first_broken = Some(link);
        self
    }
}
