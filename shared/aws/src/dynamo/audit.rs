use super::{DynamoStore, Item, n, to_item};
use crate::keys;
use crate::unexpected;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use berth_domain::Result;
use berth_domain::audit::{AuditEvent, AuditHead};
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

pub(super) fn event_item(tenant: TenantId, event: &AuditEvent) -> Result<Item> {
    let (pk, sk) = keys::audit_event(tenant, event.seq);
    to_item(&EventRecord { pk, sk, event: event.clone() })
}

impl DynamoStore {
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
}
