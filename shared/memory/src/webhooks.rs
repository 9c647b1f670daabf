use crate::page::{Order, page_of};
use crate::{MemoryStore, time_key};
use async_trait::async_trait;
use base64::Engine;
use berth_domain::audit::AuditDraft;
use berth_domain::ids::{TenantId, WebhookId};
use berth_domain::page::{Page, PageRequest};
use berth_domain::ports::{SecretSealer, WebhookStore};
use berth_domain::refusal::{Entity, Refusal};
use berth_domain::values::Version;
use berth_domain::webhook::{DELIVERY_DEDUPE_SECS, DELIVERY_HISTORY_SECS, Delivery, DeliveryId, SealedSecret, Webhook};
use berth_domain::{DomainError, Result};
use chrono::Utc;
use std::collections::{BTreeMap, HashMap};

/// How long an attempt window is kept after it starts (the DynamoDB item's TTL).
const ATTEMPT_WINDOW_KEEP_SECS: i64 = 5 * 60;

/// One tenant's webhooks and what their deliveries leave behind.
#[derive(Default)]
pub(crate) struct Webhooks {
    hooks: BTreeMap<WebhookId, Webhook>,
    /// (webhook, window start) -> attempts counted in that minute.
    attempts: HashMap<(WebhookId, i64), u32>,
    claims: HashMap<(WebhookId, DeliveryId), Claim>,
    /// Each webhook's history by sort key (`<time>#<uuid>`, as the DynamoDB items sort).
    history: HashMap<WebhookId, BTreeMap<String, Delivery>>,
}

/// A claimed delivery id, and the authenticated delivery recorded for it.
struct Claim {
    expires_at: i64,
    delivery: Option<Delivery>,
}

impl Claim {
    fn live(&self, now: i64) -> bool {
        self.expires_at >= now
    }
}

#[async_trait]
impl WebhookStore for MemoryStore {
    async fn create_webhook(&self, tenant: TenantId, webhook: &Webhook, audit: AuditDraft) -> Result<()> {
        let mut s = self.lock();
        if s.t(tenant).webhooks.hooks.contains_key(&webhook.id) || s.webhook_tenants.contains_key(&webhook.id) {
            return Err(Refusal::Exists(Entity::Webhook).into());
        }
        s.t(tenant).webhooks.hooks.insert(webhook.id, webhook.clone());
        s.webhook_tenants.insert(webhook.id, tenant);
        s.record(tenant, audit);
        Ok(())
    }

    async fn get_webhook(&self, tenant: TenantId, id: WebhookId) -> Result<Option<Webhook>> {
        Ok(self.lock().t(tenant).webhooks.hooks.get(&id).cloned())
    }

    async fn list_webhooks(&self, tenant: TenantId, page: &PageRequest) -> Result<Page<Webhook>> {
        let mut s = self.lock();
        // Ids are UUIDv7: their order is creation order, as the DynamoDB sort keys are.
        let items = s.t(tenant).webhooks.hooks.iter().map(|(id, w)| (id.to_string(), w.clone())).collect();
        page_of(&format!("{tenant}/webhooks"), items, page, Order::OldestFirst)
    }

    async fn update_webhook(&self, tenant: TenantId, webhook: &Webhook, expected: Version, audit: AuditDraft) -> Result<()> {
        let mut s = self.lock();
        match s.t(tenant).webhooks.hooks.get_mut(&webhook.id) {
            None => return Err(Refusal::Missing(Entity::Webhook).into()),
            Some(stored) if stored.version != expected => return Err(Refusal::Stale(Entity::Webhook).into()),
            Some(stored) => *stored = webhook.clone(),
        }
        s.record(tenant, audit);
        Ok(())
    }

    async fn delete_webhook(&self, tenant: TenantId, webhook: &Webhook, audit: AuditDraft) -> Result<()> {
        let mut s = self.lock();
        if s.t(tenant).webhooks.hooks.remove(&webhook.id).is_none() {
            return Err(Refusal::Missing(Entity::Webhook).into());
        }
        s.webhook_tenants.remove(&webhook.id);
        s.record(tenant, audit);
        Ok(())
    }

    async fn webhook_tenant(&self, id: WebhookId) -> Result<Option<TenantId>> {
        Ok(self.lock().webhook_tenants.get(&id).copied())
    }

    async fn count_attempt(&self, tenant: TenantId, webhook: WebhookId, window_start: i64) -> Result<u32> {
        let mut s = self.lock();
        let attempts = &mut s.t(tenant).webhooks.attempts;
        // Windows expire: keep this webhook's recent ones only.
        attempts.retain(|(w, start), _| *w != webhook || *start > window_start - ATTEMPT_WINDOW_KEEP_SECS);
        let count = attempts.entry((webhook, window_start)).or_default();
        *count = count.saturating_add(1);
        Ok(*count)
    }

    async fn claim_delivery(&self, tenant: TenantId, webhook: WebhookId, id: &DeliveryId) -> Result<bool> {
        let now = Utc::now().timestamp();
        let mut s = self.lock();
        let claims = &mut s.t(tenant).webhooks.claims;
        if claims.get(&(webhook, id.clone())).is_some_and(|c| c.live(now)) {
            return Ok(false);
        }
        claims.insert((webhook, id.clone()), Claim { expires_at: now + DELIVERY_DEDUPE_SECS, delivery: None });
        Ok(true)
    }

    async fn release_delivery(&self, tenant: TenantId, webhook: WebhookId, id: &DeliveryId) -> Result<()> {
        self.lock().t(tenant).webhooks.claims.remove(&(webhook, id.clone()));
        Ok(())
    }

    async fn record_delivery(&self, tenant: TenantId, delivery: &Delivery) -> Result<()> {
        let now = Utc::now();
        let mut s = self.lock();
        let hooks = &mut s.t(tenant).webhooks;
        let history = hooks.history.entry(delivery.webhook_id).or_default();
        let oldest_kept = time_key(now - chrono::Duration::seconds(DELIVERY_HISTORY_SECS));
        history.retain(|key, _| *key >= oldest_kept);
        history.insert(format!("{}#{}", time_key(delivery.received_at), uuid::Uuid::new_v4()), delivery.clone());
        if delivery.authenticated {
            // Findable by id only through a live claim, and only the first
            // delivery recorded for it: a later duplicate's refusal does not
            // hide the outcome of the delivery that claimed the id.
            if let Some(claim) = hooks.claims.get_mut(&(delivery.webhook_id, delivery.id.clone())) {
                if claim.live(now.timestamp()) && claim.delivery.is_none() {
                    claim.delivery = Some(delivery.clone());
                }
            }
        }
        Ok(())
    }

    async fn get_delivery(&self, tenant: TenantId, webhook: WebhookId, id: &DeliveryId) -> Result<Option<Delivery>> {
        let now = Utc::now().timestamp();
        let mut s = self.lock();
        let claim = s.t(tenant).webhooks.claims.get(&(webhook, id.clone()));
        Ok(claim.filter(|c| c.live(now)).and_then(|c| c.delivery.clone()))
    }

    async fn list_deliveries(&self, tenant: TenantId, webhook: WebhookId, page: &PageRequest) -> Result<Page<Delivery>> {
        let mut s = self.lock();
        let items = s.t(tenant).webhooks.history.get(&webhook).map(|h| h.iter().map(|(k, d)| (k.clone(), d.clone())).collect()).unwrap_or_default();
        page_of(&format!("{tenant}/webhooks/{webhook}/deliveries"), items, page, Order::NewestFirst)
    }
}

/// The memory store's sealing: reversible, not the clear text, and bound to
/// the tenant (its id is part of the sealed form and of the keystream). It
/// keeps nothing secret: test use only; AWS seals with KMS.
const SEALED_PREFIX: &str = "memory-sealed";

fn keystream(tenant: TenantId) -> impl Iterator<Item = u8> {
    let seed = *tenant.as_uuid().as_bytes();
    seed.into_iter().map(|b| b ^ 0xA5).cycle()
}

#[async_trait]
impl SecretSealer for MemoryStore {
    async fn seal(&self, tenant: TenantId, plaintext: &[u8]) -> Result<SealedSecret> {
        let masked: Vec<u8> = plaintext.iter().zip(keystream(tenant)).map(|(p, k)| p ^ k).collect();
        Ok(SealedSecret(format!("{SEALED_PREFIX}:{tenant}:{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(masked))))
    }

    async fn open(&self, tenant: TenantId, sealed: &SealedSecret) -> Result<Vec<u8>> {
        let unreadable = || DomainError::unexpected("a sealed secret does not open for this tenant");
        let mut parts = sealed.0.splitn(3, ':');
        let (Some(SEALED_PREFIX), Some(owner), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(unreadable());
        };
        if owner != tenant.to_string() {
            return Err(unreadable());
        }
        let masked = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(body).map_err(|_| unreadable())?;
        Ok(masked.iter().zip(keystream(tenant)).map(|(m, k)| m ^ k).collect())
    }
}
