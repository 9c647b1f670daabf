use super::{DynamoStore, key_of, map_tx, s, to_item};
use crate::keys;
use crate::unexpected;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use berth_domain::Result;
use berth_domain::api_key::ApiKey;
use berth_domain::audit::AuditDraft;
use berth_domain::ids::{ApiKeyId, TenantId};
use berth_domain::page::{Page, PageRequest};
use berth_domain::ports::ApiKeyStore;
use berth_domain::refusal::{Entity, Refusal};
use berth_domain::secret::SecretHash;
use berth_domain::values::{Name, Role};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct ApiKeyRecord {
    pk: String,
    sk: String,
    id: ApiKeyId,
    name: Name,
    roles: Vec<Role>,
    hash: SecretHash,
    created_by: String,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    /// Written by `record_api_key_use` in `stamp` form, so that a condition
    /// can compare it as a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_used_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    revoked_at: Option<DateTime<Utc>>,
}

impl ApiKeyRecord {
    fn into_api_key(self) -> ApiKey {
        ApiKey {
            id: self.id,
            name: self.name,
            roles: self.roles,
            hash: self.hash,
            created_by: self.created_by,
            created_at: self.created_at,
            expires_at: self.expires_at,
            last_used_at: self.last_used_at,
            revoked_at: self.revoked_at,
        }
    }
}

/// A fixed-width time (nanoseconds, `Z`): two of them order as strings as they do in time.
fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

#[async_trait]
impl ApiKeyStore for DynamoStore {
    async fn create_api_key(&self, tenant: TenantId, key: &ApiKey, audit: AuditDraft) -> Result<()> {
        let (pk, sk) = keys::api_key(tenant, key.id);
        let record = ApiKeyRecord {
            pk,
            sk,
            id: key.id,
            name: key.name.clone(),
            roles: key.roles.clone(),
            hash: key.hash.clone(),
            created_by: key.created_by.clone(),
            created_at: key.created_at,
            expires_at: key.expires_at,
            last_used_at: None,
            revoked_at: None,
        };
        let put = self.put(to_item(&record)?, "attribute_not_exists(pk)")?;
        map_tx(self.write_with_audit(tenant, vec![put], audit).await, |_| Refusal::Exists(Entity::ApiKey).into())
    }

    async fn get_api_key(&self, tenant: TenantId, id: ApiKeyId) -> Result<Option<ApiKey>> {
        Ok(self.get::<ApiKeyRecord>(keys::api_key(tenant, id)).await?.map(ApiKeyRecord::into_api_key))
    }

    async fn list_api_keys(&self, tenant: TenantId, page: &PageRequest) -> Result<Page<ApiKey>> {
        let (records, next_cursor) = self.query_page::<ApiKeyRecord>(&keys::api_keys(tenant), None, None, page).await?;
        Ok(Page { items: records.into_iter().map(ApiKeyRecord::into_api_key).collect(), next_cursor })
    }

    async fn revoke_api_key(&self, tenant: TenantId, id: ApiKeyId, at: DateTime<Utc>, audit: AuditDraft) -> Result<()> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_of(keys::api_key(tenant, id))))
            .update_expression("SET revoked_at = :at")
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(revoked_at)")
            .expression_attribute_values(":at", s(at.to_rfc3339()))
            .build()
            .map_err(unexpected)?;
        let result = self.write_with_audit(tenant, vec![TransactWriteItem::builder().update(update).build()], audit).await;
        if let Err(super::TxError::Condition(_)) = result {
            // Which of the two conditions failed: the item says.
            return Err(match self.get_api_key(tenant, id).await? {
                None => Refusal::Missing(Entity::ApiKey).into(),
                Some(_) => Refusal::Stale(Entity::ApiKey).into(),
            });
        }
        map_tx(result, |_| Refusal::Stale(Entity::ApiKey).into())
    }

    async fn record_api_key_use(&self, tenant: TenantId, id: ApiKeyId, at: DateTime<Utc>, unless_since: DateTime<Utc>) -> Result<bool> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_of(keys::api_key(tenant, id))))
            .update_expression("SET last_used_at = :at")
            .condition_expression("attribute_exists(pk) AND (attribute_not_exists(last_used_at) OR last_used_at < :since)")
            .expression_attribute_values(":at", s(stamp(at)))
            .expression_attribute_values(":since", s(stamp(unless_since)))
            .send()
            .await;
        super::applied(result)
    }
}
