use super::{DynamoStore, key_of, map_tx, n, s, to_item};
use crate::keys;
use crate::unexpected;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use berth_domain::Result;
use berth_domain::audit::AuditDraft;
use berth_domain::change_request::{ChangeRequest, ChangeStatus};
use berth_domain::ids::{ChangeRequestId, TenantId};
use berth_domain::page::{Page, PageRequest};
use berth_domain::policy::Approval;
use berth_domain::ports::ChangeRequestStore;
use berth_domain::refusal::{Decided, Entity, Refusal};
use berth_domain::values::Version;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct ChangeRequestRecord {
    pk: String,
    sk: String,
    /// Sparse approvers' inbox: only while submitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi1pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi1sk: Option<String>,
    #[serde(flatten)]
    cr: ChangeRequest,
}

impl ChangeRequestRecord {
    fn new(tenant: TenantId, cr: &ChangeRequest) -> Self {
        let (pk, sk) = keys::change_request(tenant, cr.id);
        let (gsi1pk, gsi1sk) = match cr.status {
            ChangeStatus::Submitted => {
                let (p, s) = keys::awaiting_change_request(tenant, cr.id, cr.created_at);
                (Some(p), Some(s))
            }
            _ => (None, None),
        };
        Self { pk, sk, gsi1pk, gsi1sk, cr: cr.clone() }
    }
}

#[derive(Serialize, Deserialize)]
struct ApprovalRecord {
    pk: String,
    sk: String,
    #[serde(flatten)]
    approval: Approval,
}

#[async_trait]
impl ChangeRequestStore for DynamoStore {
    async fn create_change_request(&self, tenant: TenantId, cr: &ChangeRequest, audit: AuditDraft) -> Result<()> {
        let put = self.put(to_item(&ChangeRequestRecord::new(tenant, cr))?, "attribute_not_exists(pk)")?;
        map_tx(self.write_with_audit(tenant, vec![put], audit).await, |_| Refusal::Exists(Entity::ChangeRequest).into())
    }

    async fn get_change_request(&self, tenant: TenantId, id: ChangeRequestId) -> Result<Option<ChangeRequest>> {
        Ok(self.get::<ChangeRequestRecord>(keys::change_request(tenant, id)).await?.map(|r| r.cr))
    }

    async fn list_change_requests(&self, tenant: TenantId, page: &PageRequest) -> Result<Page<ChangeRequest>> {
        let (records, next_cursor) = self.query_page_ordered::<ChangeRequestRecord>(&keys::change_requests(tenant), None, None, page, false).await?;
        Ok(Page { items: records.into_iter().map(|r| r.cr).collect(), next_cursor })
    }

    async fn update_change_request(&self, tenant: TenantId, cr: &ChangeRequest, expected: Version, audit: AuditDraft) -> Result<()> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(&ChangeRequestRecord::new(tenant, cr))?))
            .condition_expression("#version = :expected")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":expected", n(expected.0))
            .build()
            .map_err(unexpected)?;
        map_tx(self.write_with_audit(tenant, vec![TransactWriteItem::builder().put(put).build()], audit).await, |_| {
            Refusal::Stale(Entity::ChangeRequest).into()
        })
    }

    async fn add_change_approval(&self, tenant: TenantId, cr: ChangeRequestId, approval: &Approval, audit: AuditDraft) -> Result<()> {
        // A decision bumps the request's version, ordering it against any status change.
        let check = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_of(keys::change_request(tenant, cr))))
            .update_expression("SET #version = #version + :one")
            .condition_expression("#status = :submitted")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":submitted", s(ChangeStatus::Submitted.as_str()))
            .expression_attribute_values(":one", n(1))
            .build()
            .map_err(unexpected)?;
        let (pk, sk) = keys::change_approval(tenant, cr, &approval.approver, &approval.digests);
        let record = ApprovalRecord { pk, sk, approval: approval.clone() };
        let items = vec![TransactWriteItem::builder().update(check).build(), self.put(to_item(&record)?, "attribute_not_exists(pk)")?];
        map_tx(self.write_with_audit(tenant, items, audit).await, |i| match i {
            0 => Refusal::NotAwaitingApproval(Decided::ChangeRequest).into(),
            _ => Refusal::AlreadyDecided(Decided::ChangeRequest).into(),
        })
    }

    async fn change_approvals(&self, tenant: TenantId, cr: ChangeRequestId) -> Result<Vec<Approval>> {
        let mut all: Vec<Approval> = self.query_all::<ApprovalRecord>(&keys::change_approvals(tenant, cr)).await?.into_iter().map(|r| r.approval).collect();
        all.sort_by_key(|a| a.created_at);
        Ok(all)
    }
}
