use super::{DynamoStore, map_tx, n, s, to_item};
use crate::keys;
use crate::unexpected;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use berth_domain::Result;
use berth_domain::audit::AuditDraft;
use berth_domain::ids::TenantId;
use berth_domain::page::{Page, PageRequest};
use berth_domain::ports::TenantStore;
use berth_domain::refusal::{Entity, Refusal};
use berth_domain::tenant::Tenant;
use berth_domain::values::{Name, Plan, Version};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The stored tenant. The plan's limits are top-level attributes so that
/// quota conditions can compare counters against them inside DynamoDB.
#[derive(Serialize, Deserialize)]
pub(super) struct TenantRecord {
    pk: String,
    sk: String,
    gsi1pk: String,
    gsi1sk: String,
    id: TenantId,
    name: Name,
    connection_licenses: u32,
    max_runtimes: u32,
    max_environments: u32,
    suspended: bool,
    version: Version,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    #[serde(default)]
    environment_count: u32,
    #[serde(default)]
    runtime_count: u32,
}

impl TenantRecord {
    fn from_tenant(t: &Tenant) -> Self {
        let (pk, sk) = keys::tenant(t.id);
        let (gsi1pk, gsi1sk) = keys::tenants_index(t.id, t.created_at);
        Self {
            pk,
            sk,
            gsi1pk,
            gsi1sk,
            id: t.id,
            name: t.name.clone(),
            connection_licenses: t.plan.connection_licenses,
            max_runtimes: t.plan.max_runtimes,
            max_environments: t.plan.max_environments,
            suspended: t.suspended,
            version: t.version,
            created_at: t.created_at,
            updated_at: t.updated_at,
            environment_count: 0,
            runtime_count: 0,
        }
    }

    fn into_tenant(self) -> Tenant {
        Tenant {
            id: self.id,
            name: self.name,
            plan: Plan { connection_licenses: self.connection_licenses, max_runtimes: self.max_runtimes, max_environments: self.max_environments },
            suspended: self.suspended,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// Which counter of the tenant item a create or delete moves.
#[derive(Clone, Copy)]
pub(super) enum Counter {
    Environments,
    Runtimes,
}

impl Counter {
    fn names(self) -> (&'static str, &'static str) {
        match self {
            Counter::Environments => ("environment_count", "max_environments"),
            Counter::Runtimes => ("runtime_count", "max_runtimes"),
        }
    }
}

impl DynamoStore {
    /// Counts one more against the plan limit, inside the same transaction
    /// as the create: the condition fails when the limit is reached.
    pub(super) fn quota_increment(&self, tenant: TenantId, counter: Counter) -> Result<TransactWriteItem> {
        let (count, max) = counter.names();
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(super::key_of(keys::tenant(tenant))))
            .update_expression("SET #count = if_not_exists(#count, :zero) + :one")
            .condition_expression("attribute_exists(pk) AND (attribute_not_exists(#count) OR #count < #max)")
            .expression_attribute_names("#count", count)
            .expression_attribute_names("#max", max)
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .build()
            .map_err(unexpected)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    pub(super) fn quota_decrement(&self, tenant: TenantId, counter: Counter) -> Result<TransactWriteItem> {
        let (count, _) = counter.names();
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(super::key_of(keys::tenant(tenant))))
            .update_expression("SET #count = #count - :one")
            .condition_expression("#count > :zero")
            .expression_attribute_names("#count", count)
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .build()
            .map_err(unexpected)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

#[async_trait]
impl TenantStore for DynamoStore {
    async fn create_tenant(&self, tenant: &Tenant, audit: AuditDraft) -> Result<()> {
        let put = self.put(to_item(&TenantRecord::from_tenant(tenant))?, "attribute_not_exists(pk)")?;
        map_tx(self.write_with_audit(tenant.id, vec![put], audit).await, |_| Refusal::Exists(Entity::Tenant).into())
    }

    async fn get_tenant(&self, id: TenantId) -> Result<Option<Tenant>> {
        Ok(self.get::<TenantRecord>(keys::tenant(id)).await?.map(TenantRecord::into_tenant))
    }

    async fn list_tenants(&self, page: &PageRequest) -> Result<Page<Tenant>> {
        let (records, next_cursor) = self.query_page::<TenantRecord>(keys::TENANTS_INDEX_PK, Some(keys::GSI1), None, page).await?;
        Ok(Page { items: records.into_iter().map(TenantRecord::into_tenant).collect(), next_cursor })
    }

    async fn update_tenant(&self, tenant: &Tenant, expected: Version, audit: AuditDraft) -> Result<()> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(super::key_of(keys::tenant(tenant.id))))
            .update_expression(
                "SET #name = :name, connection_licenses = :cl, max_runtimes = :mr, max_environments = :me, suspended = :s, #version = :v, updated_at = :u",
            )
            .condition_expression("#version = :expected")
            .expression_attribute_names("#name", "name")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":name", s(tenant.name.as_str()))
            .expression_attribute_values(":cl", n(tenant.plan.connection_licenses))
            .expression_attribute_values(":mr", n(tenant.plan.max_runtimes))
            .expression_attribute_values(":me", n(tenant.plan.max_environments))
            .expression_attribute_values(":s", aws_sdk_dynamodb::types::AttributeValue::Bool(tenant.suspended))
            .expression_attribute_values(":v", n(tenant.version.0))
            .expression_attribute_values(":u", s(tenant.updated_at.to_rfc3339()))
            .expression_attribute_values(":expected", n(expected.0))
            .build()
            .map_err(unexpected)?;
        let items = vec![TransactWriteItem::builder().update(update).build()];
        map_tx(self.write_with_audit(tenant.id, items, audit).await, |_| Refusal::Stale(Entity::Tenant).into())
    }
}
