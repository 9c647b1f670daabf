use super::tenants::Counter;
use super::{DynamoStore, TxError, key_of, map_tx, n, s, to_item};
use crate::keys;
use crate::unexpected;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Delete, TransactWriteItem, Update};
use berth_domain::audit::AuditDraft;
use berth_domain::environment::Environment;
use berth_domain::ids::{EnvironmentId, TenantId};
use berth_domain::page::{Page, PageRequest};
use berth_domain::ports::EnvironmentStore;
use berth_domain::refusal::{Entity, Quota, Refusal, Taken};
use berth_domain::values::{Classification, Description, Name, Version};
use berth_domain::{DomainError, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct EnvironmentRecord {
    pk: String,
    sk: String,
    id: EnvironmentId,
    name: Name,
    classification: Classification,
    enabled: bool,
    description: Description,
    version: Version,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// How many runtimes are attached; an environment is deleted only at zero.
    #[serde(default)]
    runtime_count: u32,
}

#[derive(Serialize)]
struct NameRecord {
    pk: String,
    sk: String,
    environment_id: EnvironmentId,
}

impl EnvironmentRecord {
    fn into_environment(self) -> Environment {
        Environment {
            id: self.id,
            name: self.name,
            classification: self.classification,
            enabled: self.enabled,
            description: self.description,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

fn name_taken() -> DomainError {
    Refusal::Taken(Taken::EnvironmentName).into()
}

impl DynamoStore {
    fn name_put(&self, tenant: TenantId, env: &Environment) -> Result<TransactWriteItem> {
        let (pk, sk) = keys::environment_name(tenant, &env.name.unique_key());
        self.put(to_item(&NameRecord { pk, sk, environment_id: env.id })?, "attribute_not_exists(pk)")
    }

    fn name_delete(&self, tenant: TenantId, env: &Environment) -> Result<TransactWriteItem> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key_of(keys::environment_name(tenant, &env.name.unique_key()))))
            .build()
            .map_err(unexpected)?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }
}

/// An environment item as read.
pub(super) fn environment_of(item: super::Item) -> Result<Environment> {
    Ok(super::from_item::<EnvironmentRecord>(item)?.into_environment())
}

#[async_trait]
impl EnvironmentStore for DynamoStore {
    async fn create_environment(&self, tenant: TenantId, env: &Environment, audit: AuditDraft) -> Result<()> {
        let (pk, sk) = keys::environment(tenant, env.id);
        let record = EnvironmentRecord {
            pk,
            sk,
            id: env.id,
            name: env.name.clone(),
            classification: env.classification,
            enabled: env.enabled,
            description: env.description.clone(),
            version: env.version,
            created_at: env.created_at,
            updated_at: env.updated_at,
            runtime_count: 0,
        };
        let items =
            vec![self.put(to_item(&record)?, "attribute_not_exists(pk)")?, self.name_put(tenant, env)?, self.quota_increment(tenant, Counter::Environments)?];
        map_tx(self.write_with_audit(tenant, items, audit).await, |i| match i {
            1 => name_taken(),
            2 => Refusal::QuotaExceeded(Quota::Environments).into(),
            _ => Refusal::Exists(Entity::Environment).into(),
        })
    }

    async fn get_environment(&self, tenant: TenantId, id: EnvironmentId) -> Result<Option<Environment>> {
        Ok(self.get::<EnvironmentRecord>(keys::environment(tenant, id)).await?.map(EnvironmentRecord::into_environment))
    }

    async fn list_environments(&self, tenant: TenantId, page: &PageRequest) -> Result<Page<Environment>> {
        let (records, next_cursor) = self.query_page::<EnvironmentRecord>(&keys::environments(tenant), None, None, page).await?;
        Ok(Page { items: records.into_iter().map(EnvironmentRecord::into_environment).collect(), next_cursor })
    }

    async fn update_environment(&self, tenant: TenantId, before: &Environment, after: &Environment, audit: AuditDraft) -> Result<()> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_of(keys::environment(tenant, before.id))))
            .update_expression("SET #name = :name, enabled = :enabled, description = :d, #version = :v, updated_at = :u")
            .condition_expression("attribute_exists(pk) AND #version = :expected")
            .expression_attribute_names("#name", "name")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":name", s(after.name.as_str()))
            .expression_attribute_values(":enabled", aws_sdk_dynamodb::types::AttributeValue::Bool(after.enabled))
            .expression_attribute_values(":d", s(after.description.as_str()))
            .expression_attribute_values(":v", n(after.version.0))
            .expression_attribute_values(":u", s(after.updated_at.to_rfc3339()))
            .expression_attribute_values(":expected", n(before.version.0))
            .build()
            .map_err(unexpected)?;
        let mut items = vec![TransactWriteItem::builder().update(update).build()];
        let renamed = before.name.unique_key() != after.name.unique_key();
        if renamed {
            items.push(self.name_put(tenant, after)?);
            items.push(self.name_delete(tenant, before)?);
        }
        map_tx(self.write_with_audit(tenant, items, audit).await, |i| if i == 0 { Refusal::Stale(Entity::Environment).into() } else { name_taken() })
    }

    async fn delete_environment(&self, tenant: TenantId, env: &Environment, audit: AuditDraft) -> Result<()> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key_of(keys::environment(tenant, env.id))))
            .condition_expression("attribute_exists(pk) AND (attribute_not_exists(runtime_count) OR runtime_count = :zero)")
            .expression_attribute_values(":zero", n(0))
            .build()
            .map_err(unexpected)?;
        // Its policy and its extension values (secrets sealed for this environment only) go with it.
        let owned = |key| Delete::builder().table_name(&self.table).set_key(Some(key_of(key))).build().map_err(unexpected);
        let items = vec![
            TransactWriteItem::builder().delete(delete).build(),
            self.name_delete(tenant, env)?,
            self.quota_decrement(tenant, Counter::Environments)?,
            TransactWriteItem::builder().delete(owned(keys::policy(tenant, env.id))?).build(),
            TransactWriteItem::builder().delete(owned(keys::extensions(tenant, env.id))?).build(),
        ];
        let deleted = self.write_with_audit(tenant, items, audit).await;
        if deleted.is_ok() {
            self.forget_connection_tests(tenant, env.id).await;
        }
        match deleted {
            // The one condition fails for a missing environment too: say which it was.
            Err(TxError::Condition(0)) => match self.get_environment(tenant, env.id).await? {
                Some(_) => Err(Refusal::HasRuntimes.into()),
                None => Err(Refusal::Missing(Entity::Environment).into()),
            },
            other => map_tx(other, |_| DomainError::unexpected("the tenant's environment count was already zero")),
        }
    }
}
