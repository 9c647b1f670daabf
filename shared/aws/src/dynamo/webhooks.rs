use super::{DynamoStore, TxError, key_of, map_tx, n, to_item};
use crate::keys;
use crate::{sdk_error, service_error, unexpected};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, ReturnValue, TransactWriteItem};
use berth_domain::audit::AuditDraft;
use berth_domain::ids::{ComponentId, EnvironmentId, TenantId, WebhookId};
use berth_domain::page::{Page, PageRequest};
use berth_domain::ports::WebhookStore;
use berth_domain::refusal::{Entity, Refusal};
use berth_domain::values::{Name, Role, Version};
use berth_domain::webhook::{DELIVERY_DEDUPE_SECS, DELIVERY_HISTORY_SECS, Delivery, DeliveryId, StoredSecret, Webhook, WebhookAction};
use berth_domain::{DomainError, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How long an attempt counter outlives the start of its minute (its TTL).
const ATTEMPT_WINDOW_KEEP_SECS: i64 = 5 * 60;

#[derive(Serialize, Deserialize)]
struct WebhookRecord {
    pk: String,
    sk: String,
    id: WebhookId,
    name: Name,
    action: WebhookAction,
    environment_id: EnvironmentId,
    component_id: ComponentId,
    hold_if_frozen: bool,
    active: bool,
    roles: Vec<Role>,
    created_by: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: Version,
    /// Sealed only (`SecretSealer`): never the secret in clear.
    secrets: Vec<StoredSecret>,
}

impl WebhookRecord {
    fn of(tenant: TenantId, w: &Webhook) -> Self {
        let (pk, sk) = keys::webhook(tenant, w.id);
        Self {
            pk,
            sk,
            id: w.id,
            name: w.name.clone(),
            action: w.action,
            environment_id: w.environment_id,
            component_id: w.component_id,
            hold_if_frozen: w.hold_if_frozen,
            active: w.active,
            roles: w.roles.clone(),
            created_by: w.created_by.clone(),
            created_at: w.created_at,
            updated_at: w.updated_at,
            version: w.version,
            secrets: w.secrets.clone(),
        }
    }

    fn into_webhook(self) -> Webhook {
        Webhook {
            id: self.id,
            name: self.name,
            action: self.action,
            environment_id: self.environment_id,
            component_id: self.component_id,
            hold_if_frozen: self.hold_if_frozen,
            active: self.active,
            roles: self.roles,
            created_by: self.created_by,
            created_at: self.created_at,
            updated_at: self.updated_at,
            version: self.version,
            secrets: self.secrets,
        }
    }
}

/// The global entry that finds a webhook's tenant from its id alone.
#[derive(Serialize, Deserialize)]
struct TenantRecord {
    pk: String,
    sk: String,
    tenant_id: TenantId,
}

/// A claimed delivery id; `delivery` is the first authenticated delivery
/// recorded under the claim (what a status call reads).
#[derive(Serialize, Deserialize)]
struct ClaimRecord {
    pk: String,
    sk: String,
    expires_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delivery: Option<Delivery>,
}

#[derive(Serialize, Deserialize)]
struct DeliveryRecord {
    pk: String,
    sk: String,
    expires_at: i64,
    delivery: Delivery,
}

fn exists() -> DomainError {
    Refusal::Exists(Entity::Webhook).into()
}

fn missing() -> DomainError {
    Refusal::Missing(Entity::Webhook).into()
}

impl DynamoStore {
    fn delete_key(&self, key: (String, String), condition: Option<&str>) -> Result<TransactWriteItem> {
        let delete = Delete::builder().table_name(&self.table).set_key(Some(key_of(key))).set_condition_expression(condition.map(str::to_string));
        Ok(TransactWriteItem::builder().delete(delete.build().map_err(unexpected)?).build())
    }
}

#[async_trait]
impl WebhookStore for DynamoStore {
    async fn create_webhook(&self, tenant: TenantId, webhook: &Webhook, audit: AuditDraft) -> Result<()> {
        let (pk, sk) = keys::webhook_tenant(webhook.id);
        let items = vec![
            self.put(to_item(&WebhookRecord::of(tenant, webhook))?, "attribute_not_exists(pk)")?,
            self.put(to_item(&TenantRecord { pk, sk, tenant_id: tenant })?, "attribute_not_exists(pk)")?,
        ];
        map_tx(self.write_with_audit(tenant, items, audit).await, |_| exists())
    }

    async fn get_webhook(&self, tenant: TenantId, id: WebhookId) -> Result<Option<Webhook>> {
        Ok(self.get::<WebhookRecord>(keys::webhook(tenant, id)).await?.map(WebhookRecord::into_webhook))
    }

    async fn list_webhooks(&self, tenant: TenantId, page: &PageRequest) -> Result<Page<Webhook>> {
        let (records, next_cursor) = self.query_page::<WebhookRecord>(&keys::webhooks(tenant), None, None, page).await?;
        Ok(Page { items: records.into_iter().map(WebhookRecord::into_webhook).collect(), next_cursor })
    }

    async fn update_webhook(&self, tenant: TenantId, webhook: &Webhook, expected: Version, audit: AuditDraft) -> Result<()> {
        let put = aws_sdk_dynamodb::types::Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(&WebhookRecord::of(tenant, webhook))?))
            .condition_expression("attribute_exists(pk) AND #version = :expected")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":expected", n(expected.0))
            .build()
            .map_err(unexpected)?;
        match self.write_with_audit(tenant, vec![TransactWriteItem::builder().put(put).build()], audit).await {
            // The one condition fails for a missing webhook too: say which it was.
            Err(TxError::Condition(_)) => match self.get_webhook(tenant, webhook.id).await? {
                Some(_) => Err(Refusal::Stale(Entity::Webhook).into()),
                None => Err(missing()),
            },
            other => map_tx(other, |_| missing()),
        }
    }

    async fn delete_webhook(&self, tenant: TenantId, webhook: &Webhook, audit: AuditDraft) -> Result<()> {
        let items = vec![
            self.delete_key(keys::webhook(tenant, webhook.id), Some("attribute_exists(pk)"))?,
            // Its claims and history are left to their TTL.
            self.delete_key(keys::webhook_tenant(webhook.id), None)?,
        ];
        map_tx(self.write_with_audit(tenant, items, audit).await, |_| missing())
    }

    async fn webhook_tenant(&self, id: WebhookId) -> Result<Option<TenantId>> {
        Ok(self.get::<TenantRecord>(keys::webhook_tenant(id)).await?.map(|r| r.tenant_id))
    }

    async fn count_attempt(&self, tenant: TenantId, webhook: WebhookId, window_start: i64) -> Result<u32> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_of(keys::webhook_attempts(tenant, webhook, window_start))))
            .update_expression("ADD #count :one SET #ttl = if_not_exists(#ttl, :ttl)")
            .expression_attribute_names("#count", "count")
            .expression_attribute_names("#ttl", keys::TTL_ATTRIBUTE)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":ttl", n(window_start + ATTEMPT_WINDOW_KEEP_SECS))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(sdk_error)?;
        let count = out.attributes.as_ref().and_then(|a| a.get("count")).and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<u32>().ok());
        count.ok_or_else(|| DomainError::unexpected("the attempt counter answered no count"))
    }

    async fn claim_delivery(&self, tenant: TenantId, webhook: WebhookId, id: &DeliveryId) -> Result<bool> {
        let now = Utc::now().timestamp();
        let (pk, sk) = keys::delivery_claim(tenant, webhook, id.as_str());
        let record = ClaimRecord { pk, sk, expires_at: now + DELIVERY_DEDUPE_SECS, delivery: None };
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&record)?))
            // TTL deletes lazily: a claim past its time is free even while it is still there.
            .condition_expression("attribute_not_exists(pk) OR #ttl < :now")
            .expression_attribute_names("#ttl", keys::TTL_ATTRIBUTE)
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        super::applied(put)
    }

    async fn release_delivery(&self, tenant: TenantId, webhook: WebhookId, id: &DeliveryId) -> Result<()> {
        let key = key_of(keys::delivery_claim(tenant, webhook, id.as_str()));
        self.client.delete_item().table_name(&self.table).set_key(Some(key)).send().await.map_err(sdk_error)?;
        Ok(())
    }

    async fn record_delivery(&self, tenant: TenantId, delivery: &Delivery) -> Result<()> {
        let now = Utc::now().timestamp();
        let (pk, sk) = keys::delivery(tenant, delivery.webhook_id, delivery.received_at);
        let record = DeliveryRecord { pk, sk, expires_at: now + DELIVERY_HISTORY_SECS, delivery: delivery.clone() };
        self.client.put_item().table_name(&self.table).set_item(Some(to_item(&record)?)).send().await.map_err(sdk_error)?;
        if !delivery.authenticated {
            return Ok(());
        }
        // Findable by id only through a live claim, and only the first
        // delivery recorded for it: a later duplicate's refusal does not hide
        // the outcome of the delivery that claimed the id. Never creates a claim.
        let value: AttributeValue = serde_dynamo::to_attribute_value(delivery).map_err(unexpected)?;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_of(keys::delivery_claim(tenant, delivery.webhook_id, delivery.id.as_str()))))
            .update_expression("SET #delivery = :delivery")
            .condition_expression("attribute_exists(pk) AND #ttl >= :now AND attribute_not_exists(#delivery)")
            .expression_attribute_names("#delivery", "delivery")
            .expression_attribute_names("#ttl", keys::TTL_ATTRIBUTE)
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":delivery", value)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = e.into_service_error();
                if e.is_conditional_check_failed_exception() { Ok(()) } else { Err(service_error(e)) }
            }
        }
    }

    async fn get_delivery(&self, tenant: TenantId, webhook: WebhookId, id: &DeliveryId) -> Result<Option<Delivery>> {
        let now = Utc::now().timestamp();
        let claim = self.get::<ClaimRecord>(keys::delivery_claim(tenant, webhook, id.as_str())).await?;
        Ok(claim.filter(|c| c.expires_at >= now).and_then(|c| c.delivery))
    }

    async fn list_deliveries(&self, tenant: TenantId, webhook: WebhookId, page: &PageRequest) -> Result<Page<Delivery>> {
        let (records, next_cursor) = self.query_page_ordered::<DeliveryRecord>(&keys::deliveries(tenant, webhook), None, None, page, false).await?;
        Ok(Page { items: records.into_iter().map(|r| r.delivery).collect(), next_cursor })
    }
}
