//! How the adapters map SDK errors into `DomainError`, with clients whose
//! responses come from `aws-smithy-mocks` (no LocalStack needed). The SDK's
//! own retries are off, so what the adapters see is what they would see once
//! those retries are spent: throttling, 5xx, timeouts and lost connections
//! become `Unavailable` (503 with `Retry-After`); anything else `Unexpected`.
//!
//! Creating an environment is one `GetItem` (the tenant's audit head) then one
//! `TransactWriteItems` of five items: the environment, its name reservation,
//! the tenant's quota counter, the audit event and the audit head.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
use aws_sdk_dynamodb::operation::transact_write_items::{TransactWriteItemsError, TransactWriteItemsInput, TransactWriteItemsOutput};
use aws_sdk_dynamodb::types::error::TransactionCanceledException;
use aws_sdk_dynamodb::types::{CancellationReason, TransactWriteItem};
use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, create_mock_http_client, mock, mock_client};
use base64::Engine;
use berth_aws::{DynamoStore, KmsSealer, S3BlobStore, SqsRuntimeQueues};
use berth_domain::DomainError;
use berth_domain::audit::AuditDraft;
use berth_domain::context::Actor;
use berth_domain::deployment::{JobMessage, Target, TargetState};
use berth_domain::environment::{Environment, NewEnvironment};
use berth_domain::ids::{DeploymentId, EnvironmentId, JobId, RuntimeId, TenantId};
use berth_domain::ports::{BlobStore, DeploymentStore, EnvironmentStore, JobQueues, SecretSealer};
use berth_domain::refusal::{Quota, Refusal, Taken};
use berth_domain::values::{Classification, Description, Name};
use berth_domain::webhook::SealedSecret;
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
    cancelled_of(5, index, code)
}

/// The transaction of `items` items was cancelled with `code` on item `index`.
fn cancelled_of(items: usize, index: usize, code: &str) -> TransactWriteItemsError {
    let reasons = (0..items).map(|i| CancellationReason::builder().code(if i == index { code } else { "None" }).build()).collect();
    TransactWriteItemsError::TransactionCanceledException(
        TransactionCanceledException::builder()
            .message("Transaction cancelled, please refer cancellation reasons for specific reasons")
            .set_cancellation_reasons(Some(reasons))
            .build(),
    )
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
    assert!(matches!(err, DomainError::Refused(Refusal::Taken(Taken::EnvironmentName))), "{err:?}");
    assert_eq!(err.code(), "name_exists");
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
    assert!(matches!(err, DomainError::Refused(Refusal::QuotaExceeded(Quota::Environments))), "{err:?}");
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

/// DynamoDB's JSON error body for `code`, as it comes over the wire (LocalStack
/// answers a throttled call with exactly this, status 400).
fn wire_error(code: &str) -> Option<String> {
    Some(json!({"__type": format!("com.amazonaws.dynamodb.v20120810#{code}"), "message": "from the wire"}).to_string())
}

fn assert_unavailable(err: &DomainError) {
    assert!(matches!(err, DomainError::Unavailable(_)), "{err:?}");
    assert_eq!(err.code(), "service_unavailable");
}

#[tokio::test]
async fn an_internal_server_error_on_the_transaction_is_unavailable_so_the_client_retries() {
    let head = no_audit_head();
    let transaction = mock!(Client::transact_write_items).sequence().http_status(500, wire_error("InternalServerError")).build();
    let store = store(&[&head, &transaction]);

    let err = create(&store, TenantId::new()).await.expect_err("the service failed");
    assert_unavailable(&err);
    assert_eq!(transaction.num_calls(), 1, "the adapter leaves retrying a service failure to the SDK and the client");
}

#[tokio::test]
async fn a_throttled_transaction_is_unavailable() {
    let head = no_audit_head();
    let transaction = mock!(Client::transact_write_items).sequence().http_status(400, wire_error("ProvisionedThroughputExceededException")).build();
    let store = store(&[&head, &transaction]);

    let err = create(&store, TenantId::new()).await.expect_err("the table is throttled");
    assert_unavailable(&err);
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
async fn a_transaction_cancelled_by_throttling_is_tried_again_and_commits() {
    let head = no_audit_head();
    let transaction = mock!(Client::transact_write_items)
        .sequence()
        .error(|| cancelled(0, "ThrottlingError"))
        .error(|| cancelled(1, "ProvisionedThroughputExceeded"))
        .output(|| TransactWriteItemsOutput::builder().build())
        .build();
    let store = store(&[&head, &transaction]);

    create(&store, TenantId::new()).await.expect("the third attempt commits");
    assert_eq!(transaction.num_calls(), 3);
}

#[tokio::test]
async fn a_transaction_conflict_that_outlasts_every_attempt_is_unavailable() {
    let head = no_audit_head();
    let transaction = mock!(Client::transact_write_items).sequence().error(|| cancelled(3, "TransactionConflict")).repeatedly().build();
    let store = store(&[&head, &transaction]);

    let err = create(&store, TenantId::new()).await.expect_err("the audit chain stays contended");
    assert_unavailable(&err);
    assert!(transaction.num_calls() > 1, "a conflict is tried again before giving up");
}

#[tokio::test]
async fn a_throttled_transaction_without_an_audit_event_is_unavailable() {
    let transaction = mock!(Client::transact_write_items).then_error(|| cancelled_of(2, 0, "ThrottlingError"));
    let store = store(&[&transaction]);
    let target = Target {
        deployment_id: DeploymentId::new(),
        runtime_id: RuntimeId::new(),
        job_id: JobId::new(),
        state: TargetState::Pending,
        message: String::new(),
        deadline: None,
        updated_at: chrono::Utc::now(),
        batch: 1,
        attempt: 1,
        retry_at: None,
    };

    let err = store.put_target_if_absent(TenantId::new(), &target).await.expect_err("the table is throttled");
    assert_unavailable(&err);
}

#[tokio::test]
async fn a_throttled_read_is_unavailable_never_a_not_found_and_nothing_is_written() {
    let failing = mock!(Client::get_item).sequence().http_status(400, wire_error("ProvisionedThroughputExceededException")).repeatedly().build();
    let transaction = mock!(Client::transact_write_items).then_output(|| TransactWriteItemsOutput::builder().build());
    let store = store(&[&failing, &transaction]);

    let err = store.get_environment(TenantId::new(), EnvironmentId::new()).await.expect_err("the read failed");
    assert_unavailable(&err);

    let err = create(&store, TenantId::new()).await.expect_err("the audit head could not be read");
    assert_unavailable(&err);
    assert_eq!(transaction.num_calls(), 0, "no write without the audit head");
}

#[tokio::test]
async fn a_5xx_answer_without_a_known_code_is_unavailable() {
    let failing = mock!(Client::get_item).sequence().http_status(503, None).build();
    let store = store(&[&failing]);

    let err = store.get_environment(TenantId::new(), EnvironmentId::new()).await.expect_err("the service answered 503");
    assert_unavailable(&err);
}

#[tokio::test]
async fn an_error_the_caller_cannot_retry_away_is_unexpected() {
    let failing = mock!(Client::get_item).sequence().http_status(400, wire_error("ValidationException")).build();
    let store = store(&[&failing]);

    let err = store.get_environment(TenantId::new(), EnvironmentId::new()).await.expect_err("the request was invalid");
    assert!(matches!(err, DomainError::Unexpected(_)), "{err:?}");
    assert_eq!(err.code(), "internal_error");
}

#[tokio::test]
async fn an_unreachable_endpoint_is_unavailable() {
    // Nothing listens on port 9 (discard) here: the connection is refused.
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version_latest()
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "test"))
        .endpoint_url("http://127.0.0.1:9")
        .retry_config(RetryConfig::disabled())
        .build();
    let store = DynamoStore::new(Client::from_conf(config), TABLE);

    let err = store.get_environment(TenantId::new(), EnvironmentId::new()).await.expect_err("nothing answers");
    assert_unavailable(&err);
}

/// The parts every SDK client needs, answering only from `rules`, retries off.
macro_rules! mocked {
    ($sdk:ident, $rules:expr) => {{
        let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
        for rule in $rules {
            interceptor = interceptor.with_rule(rule);
        }
        let config = $sdk::Config::builder()
            .behavior_version_latest()
            .region($sdk::config::Region::new("us-east-1"))
            .credentials_provider($sdk::config::Credentials::new("test", "test", None, None, "test"))
            .http_client(create_mock_http_client())
            .interceptor(interceptor)
            .retry_config($sdk::config::retry::RetryConfig::disabled())
            .build();
        $sdk::Client::from_conf(config)
    }};
}

#[tokio::test]
async fn an_s3_slow_down_is_unavailable() {
    use aws_sdk_s3::operation::put_object::PutObjectError;
    let put = mock!(aws_sdk_s3::Client::put_object).then_error(|| {
        PutObjectError::generic(aws_sdk_s3::error::ErrorMetadata::builder().code("SlowDown").message("Please reduce your request rate.").build())
    });
    let blobs = S3BlobStore::new(mocked!(aws_sdk_s3, [&put]), "berth-mocked");

    let err = blobs.put_content(TenantId::new(), b"content".to_vec()).await.expect_err("S3 asks to slow down");
    assert_unavailable(&err);
}

#[tokio::test]
async fn an_sqs_throttle_is_unavailable_and_a_missing_queue_is_unexpected() {
    use aws_sdk_sqs::operation::send_message::SendMessageError;
    let throttled = mock!(aws_sdk_sqs::Client::send_message)
        .match_requests(|input| input.queue_url() == Some("http://sqs.local/throttled"))
        .then_error(|| SendMessageError::generic(aws_sdk_sqs::error::ErrorMetadata::builder().code("RequestThrottled").build()));
    let missing = mock!(aws_sdk_sqs::Client::send_message)
        .match_requests(|input| input.queue_url() == Some("http://sqs.local/missing"))
        .then_error(|| SendMessageError::generic(aws_sdk_sqs::error::ErrorMetadata::builder().code("AWS.SimpleQueueService.NonExistentQueue").build()));
    let queues = SqsRuntimeQueues::new(mocked!(aws_sdk_sqs, [&throttled, &missing]), "berth-", "berth-deployments", None);
    let job = JobMessage { tenant_id: TenantId::new(), deployment_id: DeploymentId::new(), runtime_id: RuntimeId::new(), job_id: JobId::new() };

    let err = queues.send_job("http://sqs.local/throttled", &job).await.expect_err("SQS throttles");
    assert_unavailable(&err);
    let err = queues.send_job("http://sqs.local/missing", &job).await.expect_err("no such queue");
    assert!(matches!(err, DomainError::Unexpected(_)), "{err:?}");
}

#[tokio::test]
async fn a_kms_throttle_is_unavailable_and_a_refused_decrypt_is_unexpected() {
    use aws_sdk_kms::operation::decrypt::DecryptError;
    let throttled = mock!(aws_sdk_kms::Client::decrypt)
        .match_requests(|input| input.ciphertext_blob().map(|b| b.as_ref()) == Some(b"busy".as_slice()))
        .then_error(|| DecryptError::generic(aws_sdk_kms::error::ErrorMetadata::builder().code("ThrottlingException").build()));
    let refused = mock!(aws_sdk_kms::Client::decrypt)
        .match_requests(|input| input.ciphertext_blob().map(|b| b.as_ref()) == Some(b"other".as_slice()))
        .then_error(|| DecryptError::generic(aws_sdk_kms::error::ErrorMetadata::builder().code("InvalidCiphertextException").build()));
    let sealer = KmsSealer::new(mocked!(aws_sdk_kms, [&throttled, &refused]), "alias/berth-mocked");
    let sealed = |raw: &[u8]| SealedSecret(base64::engine::general_purpose::STANDARD.encode(raw));

    let err = sealer.open(TenantId::new(), &sealed(b"busy")).await.expect_err("KMS throttles");
    assert_unavailable(&err);
    let err = sealer.open(TenantId::new(), &sealed(b"other")).await.expect_err("another tenant's context");
    assert!(matches!(err, DomainError::Unexpected(_)), "{err:?}");
}

#[tokio::test]
async fn an_opened_secret_is_reused_for_its_tenant_without_asking_kms_again() {
    use aws_sdk_kms::operation::decrypt::DecryptOutput;
    let decrypt = mock!(aws_sdk_kms::Client::decrypt).then_output(|| DecryptOutput::builder().plaintext(aws_sdk_kms::primitives::Blob::new("whsec_x")).build());
    let sealer = KmsSealer::new(mocked!(aws_sdk_kms, [&decrypt]), "alias/berth-mocked");
    let (acme, globex) = (TenantId::new(), TenantId::new());
    let sealed = SealedSecret(base64::engine::general_purpose::STANDARD.encode(b"ciphertext"));

    for _ in 0..3 {
        assert_eq!(sealer.open(acme, &sealed).await.expect("opened"), b"whsec_x");
    }
    assert_eq!(decrypt.num_calls(), 1, "a burst of deliveries costs one Decrypt");
    sealer.open(globex, &sealed).await.expect("KMS answers the mock");
    assert_eq!(decrypt.num_calls(), 2, "another tenant is never served from the cache: KMS checks its context");
}
