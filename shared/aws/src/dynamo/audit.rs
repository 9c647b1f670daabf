use super::{DynamoStore, Item, from_item, n, s, to_item};
use crate::keys;
use crate::{sdk_error, service_error, unexpected};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use berth_domain::Result;
use berth_domain::audit::{AuditCheckpoint, AuditEvent, AuditHead};
use berth_domain::ids::TenantId;
use berth_domain::page::{Page, PageRequest};
use berth_domain::ports::AuditStore;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct EventRecord {
    pk: String,
    sk: String,
    #[serde(flatten)]
    event: AuditEvent,
}

#[derive(Serialize, Deserialize)]
struct HeadRecord {
    pk: String,
    sk: String,
    seq: u64,
    hash: String,
}

/// How far the tenant's chain was verified (`keys::audit_checkpoint`).
#[derive(Serialize, Deserialize)]
struct CheckpointRecord {
    pk: String,
    sk: String,
    #[serde(flatten)]
    checkpoint: AuditCheckpoint,
}

/// The most events one Query may return (DynamoDB also stops a page at 1 MB).
const QUERY_LIMIT: usize = 1000;

pub(crate) fn event_item(tenant: TenantId, event: &AuditEvent) -> Result<Item> {
    let (pk, sk) = keys::audit_event(tenant, event.seq);
    to_item(&EventRecord { pk, sk, event: event.clone() })
}

pub(crate) fn head_item(tenant: TenantId, head: &AuditHead) -> Result<Item> {
    let (pk, sk) = keys::audit_head(tenant);
    to_item(&HeadRecord { pk, sk, seq: head.seq, hash: head.hash.clone() })
}

impl DynamoStore {
    /// The head from its item as read (with others, in a BatchGetItem).
    pub(super) fn audit_head_of(item: super::Item) -> Result<AuditHead> {
        let h: HeadRecord = super::from_item(item)?;
        Ok(AuditHead { seq: h.seq, hash: h.hash })
    }

    pub(super) async fn read_audit_head(&self, tenant: TenantId) -> Result<AuditHead> {
        let head: Option<HeadRecord> = self.get(keys::audit_head(tenant)).await?;
        Ok(head.map(|h| AuditHead { seq: h.seq, hash: h.hash }).unwrap_or_else(AuditHead::genesis))
    }

    /// Moves the head from `from` to `event`, only if nobody moved it first.
    pub(super) fn audit_head_put(&self, tenant: TenantId, from: &AuditHead, event: &AuditEvent) -> Result<TransactWriteItem> {
        let (pk, sk) = keys::audit_head(tenant);
        let item = to_item(&HeadRecord { pk, sk, seq: event.seq, hash: event.hash.clone() })?;
        let put = Put::builder().table_name(&self.table).set_item(Some(item));
        let put = if from.seq == 0 {
            put.condition_expression("attribute_not_exists(pk)")
        } else {
            put.condition_expression("seq = :prev").expression_attribute_values(":prev", n(from.seq))
        };
        Ok(TransactWriteItem::builder().put(put.build().map_err(unexpected)?).build())
    }
}

#[async_trait]
impl AuditStore for DynamoStore {
    async fn list_audit(&self, tenant: TenantId, page: &PageRequest) -> Result<Page<AuditEvent>> {
        let (records, next_cursor) = self.query_page::<EventRecord>(&keys::audit_events(tenant), None, Some("E#"), page).await?;
        let items = records.into_iter().map(|r| r.event).collect();
        Ok(Page { items, next_cursor })
    }

    async fn audit_head(&self, tenant: TenantId) -> Result<AuditHead> {
        self.read_audit_head(tenant).await
    }

    async fn audit_events_after(&self, tenant: TenantId, after: u64, max: usize) -> Result<Vec<AuditEvent>> {
        let (pk, from) = keys::audit_event(tenant, after.saturating_add(1));
        let (_, to) = keys::audit_event(tenant, u64::MAX);
        let mut events = Vec::with_capacity(max.min(QUERY_LIMIT));
        let mut start = None;
        while events.len() < max {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
                .expression_attribute_values(":pk", s(&pk))
                .expression_attribute_values(":from", s(&from))
                .expression_attribute_values(":to", s(&to))
                .limit(i32::try_from((max - events.len()).min(QUERY_LIMIT)).unwrap_or(1000))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(sdk_error)?;
            for item in out.items.unwrap_or_default() {
                events.push(from_item::<EventRecord>(item)?.event);
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        Ok(events)
    }

    async fn audit_event(&self, tenant: TenantId, seq: u64) -> Result<Option<AuditEvent>> {
        Ok(self.get::<EventRecord>(keys::audit_event(tenant, seq)).await?.map(|r| r.event))
    }

    async fn audit_checkpoint(&self, tenant: TenantId) -> Result<Option<AuditCheckpoint>> {
        Ok(self.get::<CheckpointRecord>(keys::audit_checkpoint(tenant)).await?.map(|r| r.checkpoint))
    }

    async fn advance_audit_checkpoint(&self, tenant: TenantId, checkpoint: &AuditCheckpoint) -> Result<bool> {
        let (pk, sk) = keys::audit_checkpoint(tenant);
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&CheckpointRecord { pk, sk, checkpoint: checkpoint.clone() })?))
            .condition_expression("attribute_not_exists(pk) OR seq < :seq")
            .expression_attribute_values(":seq", n(checkpoint.seq))
            .send()
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(e) => match e.into_service_error() {
                e if e.is_conditional_check_failed_exception() => Ok(false),
                e => Err(service_error(e)),
            },
        }
    }
}
