//! How the DynamoDB adapter maps SDK errors into `DomainError`, with a client
//! whose responses come from `aws-smithy-mocks` (no LocalStack needed).
//!
//! Creating an environment is one `GetItem` (the tenant's audit head) then one
//! `TransactWriteItems` of five items: the environment, its name reservation,
//! the tenant's quota counter, the audit event and the audit head.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::operation::get_item::{GetItemError, GetItemOutput};
use aws_sdk_dynamodb::operation::transact_write_items::{TransactWriteItemsError, TransactWriteItemsInput, TransactWriteItemsOutput};
use aws_sdk_dynamodb::types::error::{InternalServerError, TransactionCanceledException};
use aws_sdk_dynamodb::types::{CancellationReason, TransactWriteItem};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use berth_aws::DynamoStore;
use berth_domain::DomainError;
use berth_domain::audit::AuditDraft;
use berth_domain::context::Actor;
use berth_domain::environment::{Environment, NewEnvironment};
use berth_domain::ids::{EnvironmentId, TenantId};
use berth_domain::ports::EnvironmentStore;
use berth_domain::values::{Classification, Description, Name};
use serde_json::json;

const TABLE: &str = "berth-mocked";

/// A store whose client answers only from `rules` (the SDK's own retries off,
/// so every call the adapter makes is counted once).
fn store(rules: &[&Rule]) -> DynamoStore {
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, rules, |c| c.retry_config(RetryConfig::disabled()));
    DynamoStore::new(client, TABLE)
}

fn environment() -> Environment {
    let input = NewEnvironment {
        name: Name::parse("Production").expect("a name"),
        classification: Classification::Production,
        enabled: true,
        description: Description::default(),
    };
    Environment::new(input, chrono::Utc::now())
}

async fn create(store: &DynamoStore, tenant: TenantId) -> Result<(), DomainError> {
    let env = environment();
    let audit = AuditDraft::new(&Actor::user("alice@acme.example"), "req-1", "environment.created", "environment", env.id, json!({}));
    store.create_environment(tenant, &env, audit).await
}

/// The tenant has no audit event yet.
fn no_audit_head() -> Rule {
    mock!(Client::get_item).then_output(|| GetItemOutput::builder().build())
}

/// The partition key a transaction item writes.
fn pk_of(item: &TransactWriteItem) -> Option<&str> {
    let key = item.put().map(|p| p.item()).or_else(|| item.update().map(|u| u.key())).or_else(|| item.delete().map(|d| d.key()))?;
    key.get("pk")?.as_s().ok().map(String::as_str)
}

/// A create-environment transaction of `tenant` whose item `index` writes to
/// partition `pk`.
fn is_create(input: &TransactWriteItemsInput, index: usize, pk: &str) -> bool {
    let items = input.transact_items();
    items.len() == 5 && items.get(index).and_then(pk_of) == Some(pk)
}

/// The transaction was cancelled with `code` on item `index` of five.
fn cancelled(index: usize, code: &str) -> TransactWriteItemsError {
    let reasons = (0..5).map(|i| CancellationReason::builder().code(if i == index { code } else { "None" }).build()).collect();
    TransactWriteItemsError::TransactionCanceledException(
        TransactionCanceledException::builder()
            .message("Transaction cancelled, please refer cancellation reasons for specific reasons")
            .set_cancellation_reasons(Some(reasons))
            .build(),
    )
}

fn internal_server_error() -> InternalServerError {
    InternalServerError::builder().message("Internal server error").build()
}

#[tokio::test]
async fn a_failed_condition_on_the_name_reservation_is_a_name_exists_conflict() {
    let tenant = TenantId::new();
    let name_pk = format!("T#{tenant}#ENVNAME");
    let head = no_audit_head();
    let transaction =
        mock!(Client::transact_write_items).match_requests(move |input| is_create(input, 1, &name_pk)).then_error(|| cancelled(1, "ConditionalCheckFailed"));
    let store = store(&[&head, &transaction]);

    let err = create(&store, tenant).await.expect_err("the name is taken");
    assert!(matches!(err, DomainError::Conflict { code: "name_exists", .. }), "{err:?}");
    assert_eq!(transaction.num_calls(), 1, "a taken name is not retried");
}

#[tokio::test]
async fn a_failed_condition_on_the_tenants_counter_is_quota_exceeded() {
    let tenant = TenantId::new();
    let tenant_pk = format!("T#{tenant}");
    let head = no_audit_head();
    let transaction =
        mock!(Client::transact_write_items).match_requests(move |input| is_create(input, 2, &tenant_pk)).then_error(|| cancelled(2, "ConditionalCheckFailed"));
    let store = store(&[&head, &transaction]);

    let err = create(&store, tenant).await.expect_err("the plan is full");
    assert!(matches!(err, DomainError::QuotaExceeded { .. }), "{err:?}");
    assert_eq!(err.code(), "quota_exceeded");
    assert_eq!(transaction.num_calls(), 1);
}

#[tokio::test]
async fn losing_the_race_for_the_audit_head_is_retried_with_a_fresh_head() {
    let tenant = TenantId::new();
    let audit_pk = format!("T#{tenant}#AUDIT");
    let head = no_audit_head();
    let transaction = mock!(Client::transact_write_items)
        .match_requests(move |input| is_create(input, 4, &audit_pk))
        .sequence()
        .error(|| cancelled(4, "ConditionalCheckFailed"))
        .error(|| cancelled(3, "TransactionConflict"))
        .output(|| TransactWriteItemsOutput::builder().build())
        .build();
    let store = store(&[&head, &transaction]);

    create(&store, tenant).await.expect("the third attempt commits");
    assert_eq!(transaction.num_calls(), 3);
    assert_eq!(head.num_calls(), 3, "each attempt re-reads the audit head");
}

#[tokio::test]
async fn an_internal_server_error_on_the_transaction_is_unexpected() {
    let head = no_audit_head();
    let transaction = mock!(Client::transact_write_items).then_error(|| TransactWriteItemsError::InternalServerError(internal_server_error()));
    let store = store(&[&head, &transaction]);

    let err = create(&store, TenantId::new()).await.expect_err("the service failed");
    assert!(matches!(err, DomainError::Unexpected(_)), "{err:?}");
    assert_eq!(err.code(), "internal_error");
    assert_eq!(transaction.num_calls(), 1, "the adapter does not retry a service failure itself");
}

#[tokio::test]
async fn a_cancellation_for_any_other_reason_is_unexpected() {
    let head = no_audit_head();
    let transaction = mock!(Client::transact_write_items).then_error(|| cancelled(0, "ValidationError"));
    let store = store(&[&head, &transaction]);

    let err = create(&store, TenantId::new()).await.expect_err("the transaction was invalid");
    assert!(matches!(err, DomainError::Unexpected(_)), "{err:?}");
    assert_eq!(transaction.num_calls(), 1);
}

#[tokio::test]
async fn a_get_item_service_failure_is_unexpected_and_nothing_is_written() {
    let failing = mock!(Client::get_item).then_error(|| GetItemError::InternalServerError(internal_server_error()));
    let transaction = mock!(Client::transact_write_items).then_output(|| TransactWriteItemsOutput::builder().build());
    let store = store(&[&failing, &transaction]);

    let err = store.get_environment(TenantId::new(), EnvironmentId::new()).await.expect_err("the read failed");
    assert!(matches!(err, DomainError::Unexpected(_)), "a failed read is not a NotFound: {err:?}");

    let err = create(&store, TenantId::new()).await.expect_err("the audit head could not be read");
    assert!(matches!(err, DomainError::Unexpected(_)), "{err:?}");
    assert_eq!(transaction.num_calls(), 0, "no write without the audit head");
}
