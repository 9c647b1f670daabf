//! What only the DynamoDB adapter has, against LocalStack: its items edited
//! behind its back, and cursors crafted from its keys. Each test has its own
//! uniquely named table, so they run in parallel. The ports' contract, which
//! the in-memory store shares, is checked against both in `tests/contract`.

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use berth_aws::bootstrap::ensure_table;
use berth_aws::{AwsClients, DynamoStore, ResourceNames, keys};
use berth_domain::DomainError;
use berth_domain::audit::{AuditDraft, AuditEvent, AuditHead, verify_chain};
use berth_domain::context::Actor;
use berth_domain::environment::{Environment, NewEnvironment};
use berth_domain::ids::TenantId;
use berth_domain::page::PageRequest;
use berth_domain::ports::{AuditStore, EnvironmentStore, TenantStore};
use berth_domain::refusal::Refusal;
use berth_domain::tenant::Tenant;
use berth_domain::values::{Classification, Description, Name, Plan};
use chrono::Utc;
use serde_json::json;
use std::collections::HashMap;

struct Fixture {
    store: DynamoStore,
    dynamo: aws_sdk_dynamodb::Client,
}

/// A store on a fresh table of its own.
async fn fixture() -> Fixture {
    berth_aws::testing::require_localstack();
    let clients = AwsClients::from_env().await;
    let names = ResourceNames::unique("ad");
    ensure_table(&clients.dynamo, &names.table).await.expect("the table is created in LocalStack");
    Fixture { store: DynamoStore::new(clients.dynamo.clone(), names.table), dynamo: clients.dynamo }
}

fn draft(action: &str, entity_type: &'static str, id: impl ToString) -> AuditDraft {
    AuditDraft::new(&Actor::user("alice@acme.example"), "req-1", action, entity_type, id, json!({"note": action}))
}

fn name(raw: &str) -> Name {
    Name::parse(raw).expect("a valid name")
}

impl Fixture {
    async fn tenant(&self, plan: Plan) -> TenantId {
        let tenant = Tenant::new(name("Acme"), plan, Utc::now());
        self.store.create_tenant(&tenant, draft("tenant.created", "tenant", tenant.id)).await.expect("the tenant is created");
        tenant.id
    }

    async fn create_env(&self, tenant: TenantId, env_name: &str) -> Result<Environment, DomainError> {
        let env = Environment::new(
            NewEnvironment { name: name(env_name), classification: Classification::Test, enabled: true, description: Description::default() },
            Utc::now(),
        );
        self.store.create_environment(tenant, &env, draft("environment.created", "environment", env.id)).await.map(|()| env)
    }

    /// The tenant's whole audit trail, oldest first, read page by page.
    async fn audit(&self, tenant: TenantId) -> Vec<AuditEvent> {
        let mut events = vec![];
        let mut page = PageRequest::first(100);
        loop {
            let batch = self.store.list_audit(tenant, &page).await.expect("the audit trail is listed");
            events.extend(batch.items);
            match batch.next_cursor {
                Some(c) => page.cursor = Some(c),
                None => return events,
            }
        }
    }

    /// Sets `attribute` of the stored audit event `seq` behind the store's back.
    async fn tamper(&self, tenant: TenantId, seq: u64, attribute: &str, value: AttributeValue) {
        let (pk, sk) = keys::audit_event(tenant, seq);
        self.dynamo
            .update_item()
            .table_name(self.store.table())
            .key(keys::PK, AttributeValue::S(pk))
            .key(keys::SK, AttributeValue::S(sk))
            .update_expression("SET #a = :v")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#a", attribute)
            .expression_attribute_values(":v", value)
            .send()
            .await
            .expect("the stored event is edited");
    }
}

#[tokio::test]
async fn editing_an_audit_events_summary_in_dynamodb_breaks_the_chain_at_that_event() {
    let f = fixture().await;
    let acme = f.tenant(Plan::default()).await;
    for env in ["Test", "Staging", "Production"] {
        f.create_env(acme, env).await.expect("created");
    }
    assert_eq!(verify_chain(&AuditHead::genesis(), &f.audit(acme).await).expect("untouched, it verifies").seq, 4);

    let forged = AttributeValue::M(HashMap::from([("note".to_string(), AttributeValue::S("nothing happened".into()))]));
    f.tamper(acme, 3, "summary", forged).await;

    let events = f.audit(acme).await;
    assert_eq!(events[2].summary, json!({"note": "nothing happened"}), "the edit is what the store reads back");
    let broken = verify_chain(&AuditHead::genesis(), &events).expect_err("the edit is detected");
    assert_eq!(broken.seq, 3);
    assert_eq!(broken.id, events[2].id);
    assert!(broken.reason.contains("hash"), "{}", broken.reason);
}

#[tokio::test]
async fn editing_an_audit_events_action_in_dynamodb_breaks_the_chain_at_that_event() {
    let f = fixture().await;
    let acme = f.tenant(Plan::default()).await;
    for env in ["Test", "Staging"] {
        f.create_env(acme, env).await.expect("created");
    }

    f.tamper(acme, 2, "action", AttributeValue::S("environment.viewed".into())).await;

    let events = f.audit(acme).await;
    assert_eq!(events[1].action, "environment.viewed");
    let broken = verify_chain(&AuditHead::genesis(), &events).expect_err("the edit is detected");
    assert_eq!(broken.seq, 2);
    // The events before the edited one still verify on their own.
    assert_eq!(verify_chain(&AuditHead::genesis(), &events[..1]).expect("the prefix verifies").seq, 1);
}

#[tokio::test]
async fn a_crafted_cursor_for_the_right_partition_is_refused_as_invalid_input() {
    let f = fixture().await;
    let acme = f.tenant(Plan::default()).await;
    for i in 0..2 {
        f.create_env(acme, &format!("env-{i}")).await.expect("created");
    }
    let partition = keys::environments(acme);
    let encode = |v: serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let mut wrong = vec![];
    for crafted in [json!({"pk": partition}), json!({"pk": partition, "sk": "E#x", "name": "Production"}), json!({"pk": partition, "sk": 7})] {
        match f.store.list_environments(acme, &PageRequest { limit: 1, cursor: Some(encode(crafted.clone())) }).await {
            Err(DomainError::Refused(Refusal::InvalidCursor)) => {}
            other => wrong.push(format!("{crafted} gave {other:?}")),
        }
    }
    assert!(wrong.is_empty(), "a malformed cursor is the caller's mistake (422 on field cursor), never an unexpected error:\n{}", wrong.join("\n"));
}

#[tokio::test]
async fn a_delivery_claim_past_its_ttl_that_dynamodb_has_not_deleted_yet_is_free_again() {
    use berth_domain::ids::WebhookId;
    use berth_domain::ports::WebhookStore;
    use berth_domain::webhook::{Delivery, DeliveryId, DeliveryOutcome};
    let f = fixture().await;
    let acme = f.tenant(Plan::default()).await;
    let hook = WebhookId::new();
    let id = DeliveryId::parse("d-1").expect("a delivery id");
    let delivery = Delivery {
        webhook_id: hook,
        id: id.clone(),
        received_at: Utc::now(),
        outcome: DeliveryOutcome::Accepted,
        code: None,
        package_id: None,
        deployment_id: None,
        commit: None,
        authenticated: true,
    };
    assert!(f.store.claim_delivery(acme, hook, &id).await.expect("claim"));
    f.store.record_delivery(acme, &delivery).await.expect("recorded");
    assert_eq!(f.store.get_delivery(acme, hook, &id).await.expect("read"), Some(delivery));
    assert!(!f.store.claim_delivery(acme, hook, &id).await.expect("claim"));

    // DynamoDB's TTL deletes within days, not on the second: the item is still there, expired.
    let (pk, sk) = keys::delivery_claim(acme, hook, id.as_str());
    f.dynamo
        .update_item()
        .table_name(f.store.table())
        .key(keys::PK, AttributeValue::S(pk))
        .key(keys::SK, AttributeValue::S(sk))
        .update_expression("SET #ttl = :past")
        .expression_attribute_names("#ttl", keys::TTL_ATTRIBUTE)
        .expression_attribute_values(":past", AttributeValue::N((Utc::now().timestamp() - 1).to_string()))
        .send()
        .await
        .expect("the claim is aged behind the store's back");

    assert_eq!(f.store.get_delivery(acme, hook, &id).await.expect("read"), None, "an expired claim answers for no delivery");
    assert!(f.store.claim_delivery(acme, hook, &id).await.expect("claim"), "and the id may be claimed again");
    assert_eq!(f.store.get_delivery(acme, hook, &id).await.expect("read"), None, "the new claim starts without the old delivery");
}
