//! The DynamoDB adapter against LocalStack, through the domain's ports. Each
//! test has its own uniquely named table, so they run in parallel.

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use berth_aws::bootstrap::ensure_table;
use berth_aws::{AwsClients, DynamoStore, ResourceNames, keys};
use berth_domain::DomainError;
use berth_domain::audit::{AuditDraft, AuditEvent, AuditHead, verify_chain};
use berth_domain::context::Actor;
use berth_domain::environment::{Environment, EnvironmentPatch, NewEnvironment};
use berth_domain::ids::{EnvironmentId, RuntimeId, TenantId};
use berth_domain::page::PageRequest;
use berth_domain::ports::{AuditStore, EnvironmentStore, IdempotencyScope, IdempotencyStore, Reservation, RuntimeStore, StoredResponse, TenantStore};
use berth_domain::refusal::{Entity, Quota, Refusal, Taken};
use berth_domain::runtime::{Runtime, RuntimeKind};
use berth_domain::secret::{RuntimeToken, TokenKind};
use berth_domain::tenant::Tenant;
use berth_domain::values::{Classification, Description, Name, Plan};
use chrono::Utc;
use serde_json::json;
use std::collections::{BTreeSet, HashMap};

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

    async fn env_names(&self, tenant: TenantId) -> Vec<String> {
        let page = self.store.list_environments(tenant, &PageRequest::first(100)).await.expect("the environments are listed");
        let mut names: Vec<String> = page.items.iter().map(|e| e.name.to_string()).collect();
        names.sort();
        names
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

fn code(err: &DomainError) -> &'static str {
    err.code()
}

#[tokio::test]
async fn environment_names_are_unique_per_tenant_whatever_their_case_but_two_tenants_may_share_one() {
    let f = fixture().await;
    let (acme, globex) = (f.tenant(Plan::default()).await, f.tenant(Plan::default()).await);

    f.create_env(acme, "Production").await.expect("the first Production is created");
    for taken in ["Production", "PRODUCTION", "production"] {
        let err = f.create_env(acme, taken).await.expect_err("the name is taken");
        assert!(matches!(err, DomainError::Refused(Refusal::Taken(Taken::EnvironmentName))), "{taken}: {err:?}");
    }
    f.create_env(globex, "production").await.expect("another tenant may use the same name");

    assert_eq!(f.env_names(acme).await, ["Production"]);
    assert_eq!(f.env_names(globex).await, ["production"]);
    let actions: Vec<String> = f.audit(acme).await.into_iter().map(|e| e.action).collect();
    assert_eq!(actions, ["tenant.created", "environment.created"], "refused creates leave no audit event");
}

#[tokio::test]
async fn the_environment_quota_is_enforced_by_the_store_and_freed_on_delete() {
    let f = fixture().await;
    let acme = f.tenant(Plan::new(10, 10, 2).expect("a plan")).await;

    let test = f.create_env(acme, "Test").await.expect("1 of 2");
    f.create_env(acme, "Staging").await.expect("2 of 2");
    let err = f.create_env(acme, "Production").await.expect_err("3 of 2");
    assert!(matches!(err, DomainError::Refused(Refusal::QuotaExceeded(Quota::Environments))), "{err:?}");
    assert_eq!(f.env_names(acme).await, ["Staging", "Test"]);

    f.store.delete_environment(acme, &test, draft("environment.deleted", "environment", test.id)).await.expect("the environment is deleted");
    f.create_env(acme, "Production").await.expect("the deleted environment's slot is free again (and the refused name was never reserved)");
    let err = f.create_env(acme, "Test").await.expect_err("the plan is full again");
    assert_eq!(code(&err), "quota_exceeded");
    assert_eq!(f.env_names(acme).await, ["Production", "Staging"]);
}

#[tokio::test]
async fn twenty_concurrent_creates_leave_one_gapless_verifiable_audit_chain() {
    let f = fixture().await;
    let acme = f.tenant(Plan::new(10, 10, 100).expect("a plan")).await;

    let store = std::sync::Arc::new(f.store.clone());
    let mut creates = tokio::task::JoinSet::new();
    for i in 0..20 {
        let store = store.clone();
        creates.spawn(async move {
            let env = Environment::new(
                NewEnvironment { name: name(&format!("env-{i:02}")), classification: Classification::Test, enabled: true, description: Description::default() },
                Utc::now(),
            );
            store.create_environment(acme, &env, draft("environment.created", "environment", env.id)).await.map(|()| env.id)
        });
    }
    let mut created = BTreeSet::new();
    while let Some(joined) = creates.join_next().await {
        created.insert(joined.expect("the task ran").expect("every concurrent create succeeds").to_string());
    }
    assert_eq!(created.len(), 20);

    let events = f.audit(acme).await;
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=21).collect::<Vec<u64>>(), "seq runs 1..=21 without gaps");
    for pair in events.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash, "event {} links to event {}", pair[1].seq, pair[0].seq);
    }
    let logged: BTreeSet<String> = events.iter().filter(|e| e.action == "environment.created").map(|e| e.entity_id.clone()).collect();
    assert_eq!(logged, created, "each create is audited exactly once");
    let end = verify_chain(&AuditHead::genesis(), &events).expect("the chain verifies");
    let head = f.store.audit_head(acme).await.expect("the head is read");
    assert_eq!(head, end);
    assert_eq!(head, events.last().expect("events").head(), "the head is the last event");
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
async fn seven_environments_listed_three_at_a_time_come_back_each_exactly_once() {
    let f = fixture().await;
    let acme = f.tenant(Plan::default()).await;
    let mut created = vec![];
    for i in 0..7 {
        created.push(f.create_env(acme, &format!("env-{i}")).await.expect("created").id);
    }

    let mut sizes = vec![];
    let mut seen: Vec<EnvironmentId> = vec![];
    let mut page = PageRequest::first(3);
    loop {
        let batch = f.store.list_environments(acme, &page).await.expect("a page");
        sizes.push(batch.items.len());
        seen.extend(batch.items.iter().map(|e| e.id));
        match batch.next_cursor {
            Some(c) => page.cursor = Some(c),
            None => break,
        }
        assert!(sizes.len() <= 4, "pagination ends: {sizes:?}");
    }
    assert!(sizes == [3, 3, 1] || sizes == [3, 3, 1, 0], "page sizes {sizes:?}");
    let mut sorted_seen = seen.clone();
    sorted_seen.sort();
    sorted_seen.dedup();
    assert_eq!(sorted_seen.len(), seen.len(), "no environment is listed twice: {seen:?}");
    created.sort();
    assert_eq!(sorted_seen, created, "every environment is listed");
}

#[tokio::test]
async fn a_list_cursor_from_another_tenants_partition_is_refused() {
    let f = fixture().await;
    let (acme, globex) = (f.tenant(Plan::default()).await, f.tenant(Plan::default()).await);
    for i in 0..3 {
        f.create_env(acme, &format!("acme-{i}")).await.expect("created");
        f.create_env(globex, &format!("globex-{i}")).await.expect("created");
    }
    let acme_cursor = f.store.list_environments(acme, &PageRequest::first(1)).await.expect("a page").next_cursor.expect("a cursor");
    let globex_cursor = f.store.list_environments(globex, &PageRequest::first(1)).await.expect("a page").next_cursor.expect("a cursor");
    let audit_cursor = f.store.list_audit(acme, &PageRequest::first(1)).await.expect("a page").next_cursor.expect("a cursor");

    let own = f.store.list_environments(acme, &PageRequest { limit: 1, cursor: Some(acme_cursor.clone()) }).await.expect("a tenant's own cursor works");
    assert_eq!(own.items.len(), 1);

    for (what, cursor) in [("another tenant's", globex_cursor), ("another list's", audit_cursor), ("a made-up", "eyJwayI6IlQjeCJ9".into())] {
        let err = f.store.list_environments(acme, &PageRequest { limit: 1, cursor: Some(cursor) }).await.expect_err("the cursor is refused");
        assert!(matches!(err, DomainError::Refused(Refusal::InvalidCursor)), "{what} cursor is refused as invalid, not {err:?}");
    }
    let err = f.store.list_environments(globex, &PageRequest { limit: 1, cursor: Some(acme_cursor) }).await.expect_err("refused");
    assert_eq!(code(&err), "validation_failed");
}

#[tokio::test]
async fn an_update_from_a_stale_version_is_refused_and_a_rename_moves_the_name_reservation() {
    let f = fixture().await;
    let acme = f.tenant(Plan::default()).await;
    let v1 = f.create_env(acme, "Test").await.expect("created");

    let rename = EnvironmentPatch { name: Some(name("Staging")), ..Default::default() };
    let v2 = v1.patched(rename, Utc::now());
    f.store.update_environment(acme, &v1, &v2, draft("environment.updated", "environment", v1.id)).await.expect("renamed");
    let stored = f.store.get_environment(acme, v1.id).await.expect("read").expect("still there");
    assert_eq!(stored, v2);

    let stale = v1.patched(EnvironmentPatch { enabled: Some(false), ..Default::default() }, Utc::now());
    let err = f.store.update_environment(acme, &v1, &stale, draft("environment.updated", "environment", v1.id)).await.expect_err("v1 is stale");
    assert!(matches!(err, DomainError::Refused(Refusal::Stale(Entity::Environment))), "{err:?}");
    assert_eq!(f.store.get_environment(acme, v1.id).await.expect("read").expect("there"), v2, "the stale update changed nothing");

    let err = f.create_env(acme, "STAGING").await.expect_err("the new name is reserved");
    assert_eq!(code(&err), "name_exists");
    f.create_env(acme, "test").await.expect("the old name is free again");

    // Renaming onto a taken name is refused, and leaves both reservations as they were.
    let v3 = v2.patched(EnvironmentPatch { name: Some(name("TEST")), ..Default::default() }, Utc::now());
    let err = f.store.update_environment(acme, &v2, &v3, draft("environment.updated", "environment", v1.id)).await.expect_err("taken");
    assert_eq!(code(&err), "name_exists");
    assert_eq!(f.env_names(acme).await, ["Staging", "test"]);
    assert_eq!(code(&f.create_env(acme, "staging").await.expect_err("still reserved")), "name_exists");
}

#[tokio::test]
async fn an_idempotency_key_is_reserved_once_replayed_when_completed_and_free_again_when_released() {
    let f = fixture().await;
    let acme = f.tenant(Plan::default()).await;
    let scope = IdempotencyScope::Tenant(acme);
    let response = StoredResponse { status: 201, headers: vec![("location".into(), "/v1/environments/1".into())], body: br#"{"id":"1"}"#.to_vec() };

    assert_eq!(f.store.reserve(scope, "key-1", "fp-1").await.expect("reserve"), Reservation::Reserved);
    assert_eq!(f.store.reserve(scope, "key-1", "fp-1").await.expect("reserve"), Reservation::InProgress { fingerprint: "fp-1".into() });
    f.store.complete(scope, "key-1", "fp-1", &response).await.expect("complete");
    let replay = Reservation::Completed { fingerprint: "fp-1".into(), response: response.clone() };
    assert_eq!(f.store.reserve(scope, "key-1", "fp-1").await.expect("reserve"), replay);
    f.store.release(scope, "key-1").await.expect("releasing a completed key is a no-op");
    assert_eq!(f.store.reserve(scope, "key-1", "fp-1").await.expect("reserve"), replay, "a completed key stays completed");

    assert_eq!(f.store.reserve(scope, "key-2", "fp-2").await.expect("reserve"), Reservation::Reserved);
    f.store.release(scope, "key-2").await.expect("release");
    assert_eq!(f.store.reserve(scope, "key-2", "fp-2").await.expect("reserve"), Reservation::Reserved, "a released key can be retried");

    // Keys are per tenant: the same key elsewhere is new.
    let globex = f.tenant(Plan::default()).await;
    assert_eq!(f.store.reserve(IdempotencyScope::Tenant(globex), "key-1", "fp-1").await.expect("reserve"), Reservation::Reserved);
    assert_eq!(f.store.reserve(IdempotencyScope::Platform, "key-1", "fp-1").await.expect("reserve"), Reservation::Reserved);
}

#[tokio::test]
async fn a_runtime_registration_completes_once() {
    let f = fixture().await;
    let acme = f.tenant(Plan::default()).await;
    let id = RuntimeId::new();
    let registration = RuntimeToken::generate(TokenKind::Registration, acme, id).expect("a token").hash();
    let runtime = Runtime {
        id,
        name: name("atom-1"),
        kind: RuntimeKind::OnPremise,
        registration_hash: Some(registration.clone()),
        credential_hash: None,
        last_seen_at: None,
        agent_version: None,
        health: None,
        running: vec![],
        environments: vec![],
        queue_url: "http://queue.invalid/atom-1".into(),
        created_at: Utc::now(),
    };
    f.store.create_runtime(acme, &runtime, draft("runtime.created", "runtime", id)).await.expect("created");

    let first = RuntimeToken::generate(TokenKind::RuntimeCredential, acme, id).expect("a token").hash();
    f.store.complete_registration(acme, id, &registration, &first, None, "1.0.0", draft("runtime.registered", "runtime", id)).await.expect("registered");
    let second = RuntimeToken::generate(TokenKind::RuntimeCredential, acme, id).expect("a token").hash();
    let err = f
        .store
        .complete_registration(acme, id, &registration, &second, Some(&name("hijacked")), "6.6.6", draft("runtime.registered", "runtime", id))
        .await
        .expect_err("a registration completes once");
    assert!(matches!(err, DomainError::Refused(Refusal::RegistrationUsed)), "{err:?}");

    let stored = f.store.get_runtime(acme, id).await.expect("read").expect("there");
    assert_eq!(stored.credential_hash, Some(first), "the first credential stands");
    assert_eq!(stored.registration_hash, None, "the registration hash is gone");
    assert_eq!((stored.name.as_str(), stored.agent_version.as_deref()), ("atom-1", Some("1.0.0")));
    let registered = f.audit(acme).await.into_iter().filter(|e| e.action == "runtime.registered").count();
    assert_eq!(registered, 1, "only the registration that happened is audited");
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
