use crate::fixtures::*;
use crate::stores::Stores;
use berth_domain::DomainError;
use berth_domain::ids::{ComponentId, DeploymentId, EnvironmentId, TenantId, WebhookId};
use berth_domain::page::PageRequest;
use berth_domain::refusal::{Entity, Refusal};
use berth_domain::values::{Plan, Role, Version};
use berth_domain::webhook::{Delivery, DeliveryId, DeliveryOutcome, SealedSecret, StoredSecret, Webhook, WebhookAction};
use chrono::{DateTime, Duration, Utc};

fn webhook(hook_name: &str) -> Webhook {
    let now = Utc::now();
    Webhook {
        id: WebhookId::new(),
        name: name(hook_name),
        action: WebhookAction::PackageAndDeploy,
        environment_id: EnvironmentId::new(),
        component_id: ComponentId::new(),
        hold_if_frozen: false,
        active: true,
        roles: vec![Role::Deployer, Role::Developer],
        created_by: "alice@acme.example".into(),
        created_at: now,
        updated_at: now,
        version: Version::FIRST,
        secrets: vec![StoredSecret { sealed: SealedSecret(format!("sealed-{hook_name}")), created_at: now, expires_at: None }],
    }
}

fn delivery_id(raw: &str) -> DeliveryId {
    DeliveryId::parse(raw).expect("a delivery id")
}

fn delivery(hook: WebhookId, id: &str, received_at: DateTime<Utc>, outcome: DeliveryOutcome, authenticated: bool) -> Delivery {
    let refused = outcome == DeliveryOutcome::Refused;
    Delivery {
        webhook_id: hook,
        id: delivery_id(id),
        received_at,
        outcome,
        code: refused.then(|| if authenticated { "quarantined".to_string() } else { "invalid_signature".to_string() }),
        package_id: None,
        deployment_id: (!refused).then(DeploymentId::new),
        commit: Some("0d1a26e".into()),
        authenticated,
    }
}

impl Stores {
    async fn create_webhook(&self, tenant: TenantId, hook_name: &str) -> Webhook {
        let w = webhook(hook_name);
        self.webhooks.create_webhook(tenant, &w, draft("webhook.created", "webhook", w.id)).await.expect("the webhook is created");
        w
    }

    async fn read_webhook(&self, tenant: TenantId, id: WebhookId) -> Option<Webhook> {
        self.webhooks.get_webhook(tenant, id).await.expect("read")
    }
}

pub async fn a_webhook_is_stored_once_per_id_and_its_tenant_is_found_from_its_id_alone(s: Stores) {
    let (acme, globex) = (s.tenant(Plan::default()).await, s.tenant(Plan::default()).await);
    let ci = s.create_webhook(acme, "ci").await;

    assert_eq!(s.read_webhook(acme, ci.id).await, Some(ci.clone()), "it reads back as written, sealed secret included");
    assert_eq!(s.webhooks.webhook_tenant(ci.id).await.expect("read"), Some(acme));
    assert_eq!(s.read_webhook(globex, ci.id).await, None, "another tenant does not see it under its own id");
    assert_eq!(s.webhooks.webhook_tenant(WebhookId::new()).await.expect("read"), None);

    let same_id = Webhook { name: name("other"), ..ci.clone() };
    for tenant in [acme, globex] {
        let refusal = refused(s.webhooks.create_webhook(tenant, &same_id, draft("webhook.created", "webhook", ci.id)).await);
        assert_eq!(refusal, Refusal::Exists(Entity::Webhook), "an id in use, even by another tenant, is refused");
    }
    assert_eq!(s.read_webhook(acme, ci.id).await, Some(ci.clone()), "the refused creates changed nothing");
    assert_eq!(s.read_webhook(globex, ci.id).await, None);
    assert_eq!(s.webhooks.webhook_tenant(ci.id).await.expect("read"), Some(acme));
    assert_eq!(s.actions(acme).await, ["tenant.created", "webhook.created"], "refused creates leave no audit event");
    assert_eq!(s.actions(globex).await, ["tenant.created"]);
}

pub async fn a_webhook_is_replaced_only_from_the_version_read_and_deleted_with_its_global_entry(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let v1 = s.create_webhook(acme, "ci").await;
    let now = Utc::now();

    let v2 = Webhook { active: false, hold_if_frozen: true, updated_at: now, version: v1.version.next(), ..v1.clone() };
    s.webhooks.update_webhook(acme, &v2, v1.version, draft("webhook.updated", "webhook", v1.id)).await.expect("updated from v1");
    assert_eq!(s.read_webhook(acme, v1.id).await, Some(v2.clone()));

    let rotated = v2.rotated(SealedSecret("sealed-two".into()), Duration::hours(1), now);
    let refusal = refused(s.webhooks.update_webhook(acme, &rotated, v1.version, draft("webhook.secret_rotated", "webhook", v1.id)).await);
    assert_eq!(refusal, Refusal::Stale(Entity::Webhook), "v1 is no longer what is stored");
    assert_eq!(s.read_webhook(acme, v1.id).await, Some(v2.clone()), "the stale update changed nothing");
    s.webhooks.update_webhook(acme, &rotated, v2.version, draft("webhook.secret_rotated", "webhook", v1.id)).await.expect("rotated from v2");
    let stored = s.read_webhook(acme, v1.id).await.expect("the webhook exists");
    assert_eq!(stored.secrets.iter().map(|x| x.sealed.0.as_str()).collect::<Vec<_>>(), ["sealed-two", "sealed-ci"], "both secrets, the new one first");
    assert_eq!(stored, rotated);

    s.webhooks.delete_webhook(acme, &rotated, draft("webhook.deleted", "webhook", v1.id)).await.expect("deleted");
    assert_eq!(s.read_webhook(acme, v1.id).await, None);
    assert_eq!(s.webhooks.webhook_tenant(v1.id).await.expect("read"), None, "the global entry went with it");
    let refusal = refused(s.webhooks.delete_webhook(acme, &rotated, draft("webhook.deleted", "webhook", v1.id)).await);
    assert_eq!(refusal, Refusal::Missing(Entity::Webhook));
    let refusal = refused(s.webhooks.update_webhook(acme, &rotated, rotated.version, draft("webhook.updated", "webhook", v1.id)).await);
    assert_eq!(refusal, Refusal::Missing(Entity::Webhook));
    assert_eq!(
        s.actions(acme).await,
        ["tenant.created", "webhook.created", "webhook.updated", "webhook.secret_rotated", "webhook.deleted"],
        "only the writes that happened are audited"
    );
}

pub async fn webhooks_are_listed_oldest_first_page_by_page_and_a_foreign_cursor_is_refused(s: Stores) {
    let (acme, globex) = (s.tenant(Plan::default()).await, s.tenant(Plan::default()).await);
    let mut created = vec![];
    for i in 0..5 {
        created.push(s.create_webhook(acme, &format!("hook-{i}")).await.id);
    }
    s.create_webhook(globex, "theirs").await;

    let pages = pages(2, async |page| s.webhooks.list_webhooks(acme, &page).await).await;
    let listed: Vec<WebhookId> = pages.iter().flatten().map(|w| w.id).collect();
    assert_eq!(listed, created, "each exactly once, in creation order");
    assert!(pages.len() >= 3);

    let cursor = s.webhooks.list_webhooks(acme, &PageRequest::first(2)).await.expect("a page").next_cursor;
    let foreign = s.webhooks.list_webhooks(globex, &PageRequest { limit: 2, cursor }).await;
    assert!(matches!(foreign, Err(DomainError::Refused(Refusal::InvalidCursor))), "{foreign:?}");
}

pub async fn attempts_are_counted_per_webhook_and_minute_and_start_again_in_the_next_minute(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let (one, two) = (WebhookId::new(), WebhookId::new());
    let minute = Utc::now().timestamp() / 60 * 60;

    for expected in 1..=3 {
        assert_eq!(s.webhooks.count_attempt(acme, one, minute).await.expect("counted"), expected);
    }
    assert_eq!(s.webhooks.count_attempt(acme, two, minute).await.expect("counted"), 1, "another webhook counts apart");
    assert_eq!(s.webhooks.count_attempt(acme, one, minute + 60).await.expect("counted"), 1, "the next minute starts again");
    assert_eq!(s.webhooks.count_attempt(acme, one, minute + 60).await.expect("counted"), 2);
}

pub async fn a_delivery_id_is_claimed_once_per_webhook_until_it_is_released(s: Stores) {
    let (acme, globex) = (s.tenant(Plan::default()).await, s.tenant(Plan::default()).await);
    let (hook, other) = (WebhookId::new(), WebhookId::new());
    let id = delivery_id("72d3162e-cc78-11e3-81ab-4c9367dc0958");

    assert!(s.webhooks.claim_delivery(acme, hook, &id).await.expect("claim"), "the first claim wins");
    assert!(!s.webhooks.claim_delivery(acme, hook, &id).await.expect("claim"), "a replay does not");
    assert!(s.webhooks.claim_delivery(acme, other, &id).await.expect("claim"), "ids are per webhook");
    assert!(s.webhooks.claim_delivery(globex, hook, &id).await.expect("claim"), "and per tenant");

    s.webhooks.release_delivery(acme, hook, &id).await.expect("released");
    assert!(s.webhooks.claim_delivery(acme, hook, &id).await.expect("claim"), "a released id can be retried");
    assert!(!s.webhooks.claim_delivery(acme, hook, &id).await.expect("claim"));
    s.webhooks.release_delivery(acme, hook, &delivery_id("never-claimed")).await.expect("releasing what was never claimed is a no-op");
}

pub async fn only_an_authenticated_delivery_under_its_claim_is_found_by_id_and_a_refused_forgery_claims_nothing(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let hook = WebhookId::new();
    let now = Utc::now();

    // Someone without the secret sends id "d-1" first: history only.
    let forged = delivery(hook, "d-1", now, DeliveryOutcome::Refused, false);
    s.webhooks.record_delivery(acme, &forged).await.expect("recorded");
    assert_eq!(s.webhooks.get_delivery(acme, hook, &forged.id).await.expect("read"), None, "a refused forgery is not findable by id");
    assert!(s.webhooks.claim_delivery(acme, hook, &forged.id).await.expect("claim"), "and did not take the id from its owner");

    let accepted = delivery(hook, "d-1", now + Duration::seconds(1), DeliveryOutcome::Accepted, true);
    s.webhooks.record_delivery(acme, &accepted).await.expect("recorded");
    assert_eq!(s.webhooks.get_delivery(acme, hook, &accepted.id).await.expect("read"), Some(accepted.clone()));

    // A replay that is refused later does not hide the outcome of the delivery that claimed the id.
    let replay = delivery(hook, "d-1", now + Duration::seconds(2), DeliveryOutcome::Refused, true);
    s.webhooks.record_delivery(acme, &replay).await.expect("recorded");
    assert_eq!(s.webhooks.get_delivery(acme, hook, &accepted.id).await.expect("read"), Some(accepted.clone()));

    // An authenticated delivery that never claimed its id is history only, and claims nothing.
    let unclaimed = delivery(hook, "d-2", now + Duration::seconds(3), DeliveryOutcome::Refused, true);
    s.webhooks.record_delivery(acme, &unclaimed).await.expect("recorded");
    assert_eq!(s.webhooks.get_delivery(acme, hook, &unclaimed.id).await.expect("read"), None);
    assert!(s.webhooks.claim_delivery(acme, hook, &unclaimed.id).await.expect("claim"));

    // A released claim takes its delivery with it: the retry records its own.
    s.webhooks.release_delivery(acme, hook, &accepted.id).await.expect("released");
    assert_eq!(s.webhooks.get_delivery(acme, hook, &accepted.id).await.expect("read"), None);

    let other = s.tenant(Plan::default()).await;
    assert_eq!(s.webhooks.get_delivery(other, hook, &unclaimed.id).await.expect("read"), None, "another tenant finds nothing");

    let history = all(10, async |page| s.webhooks.list_deliveries(acme, hook, &page).await).await;
    assert_eq!(history, [unclaimed, replay, accepted, forged], "every delivery is in the history, newest first");
}

pub async fn deliveries_are_listed_newest_first_page_by_page_per_webhook(s: Stores) {
    let (acme, globex) = (s.tenant(Plan::default()).await, s.tenant(Plan::default()).await);
    let (hook, other) = (WebhookId::new(), WebhookId::new());
    let start = Utc::now();
    let mut recorded = vec![];
    for i in 0..7 {
        let d = delivery(hook, &format!("d-{i}"), start + Duration::milliseconds(i), DeliveryOutcome::Accepted, true);
        s.webhooks.record_delivery(acme, &d).await.expect("recorded");
        recorded.push(d);
    }
    s.webhooks.record_delivery(acme, &delivery(other, "x", start, DeliveryOutcome::Accepted, true)).await.expect("recorded");
    s.webhooks.record_delivery(globex, &delivery(hook, "y", start, DeliveryOutcome::Accepted, true)).await.expect("recorded");

    let pages = pages(3, async |page| s.webhooks.list_deliveries(acme, hook, &page).await).await;
    assert!(pages.len() >= 3);
    let listed: Vec<String> = pages.into_iter().flatten().map(|d| d.id.to_string()).collect();
    recorded.reverse();
    assert_eq!(listed, recorded.iter().map(|d| d.id.to_string()).collect::<Vec<_>>(), "each once, newest first, this webhook's only");

    let cursor = s.webhooks.list_deliveries(acme, hook, &PageRequest::first(2)).await.expect("a page").next_cursor;
    for (tenant, webhook) in [(globex, hook), (acme, other)] {
        let foreign = s.webhooks.list_deliveries(tenant, webhook, &PageRequest { limit: 2, cursor: cursor.clone() }).await;
        assert!(matches!(foreign, Err(DomainError::Refused(Refusal::InvalidCursor))), "{foreign:?}");
    }
}

pub async fn a_sealed_secret_opens_for_its_tenant_only_and_does_not_show_the_clear_text(s: Stores) {
    let (acme, globex) = (s.tenant(Plan::default()).await, s.tenant(Plan::default()).await);
    let clear = b"whsec_Jx3bq0l2bWq9wYvNq4A8mZr0Xy7sT1uV5pE6dF2gH9k";

    let sealed = s.sealer.seal(acme, clear).await.expect("sealed");
    assert!(!sealed.0.contains("whsec_"), "the sealed form does not show the secret: {}", sealed.0);
    assert!(!sealed.0.contains("Jx3bq0l2bWq9wYvNq4A8mZr0Xy7sT1uV5pE6dF2gH9k"));
    assert_eq!(s.sealer.open(acme, &sealed).await.expect("opened"), clear);
    assert_eq!(s.sealer.open(acme, &sealed).await.expect("opened again"), clear);
    assert!(s.sealer.open(globex, &sealed).await.is_err(), "another tenant cannot open it");
    assert_ne!(s.sealer.seal(globex, clear).await.expect("sealed").0, sealed.0, "the same secret seals differently for another tenant");
}
