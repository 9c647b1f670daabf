//! Creates Berth's resources, idempotently: the table (with its GSI and TTL),
//! the package bucket, the deployments and package-builds queues with their dead-letter queues, and
//! the KMS key that seals webhook secrets (found by its alias).
//! Used by `make run`, by the tests (on uniquely named resources) and, in
//! AWS, mirrored by `infra/template.yaml`.

use crate::config::{AwsClients, ResourceNames};
use crate::keys;
use anyhow::{Context, Result};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;

/// After this many receives a message moves to its queue's dead-letter queue.
pub const MAX_RECEIVES: u32 = 5;

/// URLs of what was created (or found).
#[derive(Clone, Debug)]
pub struct Resources {
    pub deployments_queue_url: String,
    pub deployments_dlq_url: String,
    pub package_builds_queue_url: String,
    pub package_builds_dlq_url: String,
    /// The id of the KMS key `ResourceNames::kms_key_id` names.
    pub kms_key_id: String,
}

pub async fn ensure_resources(clients: &AwsClients, names: &ResourceNames) -> Result<Resources> {
    ensure_table(&clients.dynamo, &names.table).await?;
    ensure_bucket(&clients.s3, &names.bucket).await?;
    let (deployments_queue_url, deployments_dlq_url) = ensure_queue_with_dlq(&clients.sqs, &names.deployments_queue, &[]).await?;
    let (package_builds_queue_url, package_builds_dlq_url) = ensure_queue_with_dlq(&clients.sqs, &names.package_builds_queue, &[]).await?;
    let kms_key_id = ensure_kms_key(&clients.kms, &names.kms_key_id).await?;
    Ok(Resources { deployments_queue_url, deployments_dlq_url, package_builds_queue_url, package_builds_dlq_url, kms_key_id })
}

/// The id of the symmetric key `key` names. An alias (`alias/...`) that
/// names no key yet gets a new key; a key id or ARN must exist. Many
/// processes may race to create the same alias: one key wins it, and the
/// losers' keys are scheduled for deletion.
pub async fn ensure_kms_key(kms: &aws_sdk_kms::Client, key: &str) -> Result<String> {
    let described = kms.describe_key().key_id(key).send().await;
    match described {
        Ok(out) => return out.key_metadata.map(|m| m.key_id).context("DescribeKey answered no key"),
        Err(err) => {
            let service = err.into_service_error();
            if !(key.starts_with("alias/") && service.is_not_found_exception()) {
                return Err(service).with_context(|| format!("looking up the KMS key {key}"));
            }
        }
    }
    let created = kms.create_key().description("Berth: seals webhook signing secrets").send().await.context("creating a KMS key")?;
    let key_id = created.key_metadata.map(|m| m.key_id).context("CreateKey answered no key")?;
    match kms.create_alias().alias_name(key).target_key_id(&key_id).send().await {
        Ok(_) => Ok(key_id),
        Err(err) => {
            let service = err.into_service_error();
            if !service.is_already_exists_exception() {
                return Err(service).with_context(|| format!("creating the KMS alias {key}"));
            }
            // Another process created it first: use its key, and retire ours.
            let _ = kms.schedule_key_deletion().key_id(&key_id).pending_window_in_days(7).send().await;
            let out = kms.describe_key().key_id(key).send().await.with_context(|| format!("looking up the KMS key {key}"))?;
            out.key_metadata.map(|m| m.key_id).context("DescribeKey answered no key")
        }
    }
}

fn key(name: &str, kind: KeyType) -> Result<KeySchemaElement> {
    Ok(KeySchemaElement::builder().attribute_name(name).key_type(kind).build()?)
}

fn string_attribute(name: &str) -> Result<AttributeDefinition> {
    Ok(AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build()?)
}

pub async fn ensure_table(dynamo: &aws_sdk_dynamodb::Client, table: &str) -> Result<()> {
    let exists = dynamo.describe_table().table_name(table).send().await;
    if exists.is_err() {
        let created = dynamo
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(string_attribute(keys::PK)?)
            .attribute_definitions(string_attribute(keys::SK)?)
            .attribute_definitions(string_attribute(keys::GSI1_PK)?)
            .attribute_definitions(string_attribute(keys::GSI1_SK)?)
            .key_schema(key(keys::PK, KeyType::Hash)?)
            .key_schema(key(keys::SK, KeyType::Range)?)
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(keys::GSI1)
                    .key_schema(key(keys::GSI1_PK, KeyType::Hash)?)
                    .key_schema(key(keys::GSI1_SK, KeyType::Range)?)
                    .projection(Projection::builder().projection_type(ProjectionType::All).build())
                    .build()?,
            )
            .send()
            .await;
        if let Err(err) = created {
            let service = err.into_service_error();
            if !service.is_resource_in_use_exception() {
                return Err(service).with_context(|| format!("creating table {table}"));
            }
        }
        wait_for_table(dynamo, table).await?;
        dynamo
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(TimeToLiveSpecification::builder().attribute_name(keys::TTL_ATTRIBUTE).enabled(true).build()?)
            .send()
            .await
            .with_context(|| format!("enabling TTL on {table}"))?;
    }
    Ok(())
}

async fn wait_for_table(dynamo: &aws_sdk_dynamodb::Client, table: &str) -> Result<()> {
    for _ in 0..120 {
        let out = dynamo.describe_table().table_name(table).send().await?;
        if out.table().and_then(|t| t.table_status()).map(|s| s.as_str() == "ACTIVE").unwrap_or(false) {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    anyhow::bail!("table {table} did not become ACTIVE")
}

pub async fn ensure_bucket(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<()> {
    if s3.head_bucket().bucket(bucket).send().await.is_ok() {
        return Ok(());
    }
    match s3.create_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(()),
        Err(err) => {
            let service = err.into_service_error();
            if service.is_bucket_already_owned_by_you() { Ok(()) } else { Err(service).with_context(|| format!("creating bucket {bucket}")) }
        }
    }
}

/// Creates `name` and `<name>-dlq` (redrive after `MAX_RECEIVES`); returns both URLs.
pub async fn ensure_queue_with_dlq(sqs: &aws_sdk_sqs::Client, name: &str, tags: &[(&str, String)]) -> Result<(String, String)> {
    let dlq_name = format!("{name}-dlq");
    let mut dlq_request = sqs.create_queue().queue_name(&dlq_name).attributes(QueueAttributeName::MessageRetentionPeriod, (14 * 24 * 3600).to_string());
    for (k, v) in tags {
        dlq_request = dlq_request.tags(*k, v);
    }
    let dlq_url = dlq_request.send().await.with_context(|| format!("creating queue {dlq_name}"))?.queue_url.unwrap_or_default();
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .with_context(|| format!("reading the ARN of {dlq_name}"))?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .context("the dead-letter queue has no ARN")?;
    let redrive = serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVES.to_string()}).to_string();
    let mut request =
        sqs.create_queue().queue_name(name).attributes(QueueAttributeName::RedrivePolicy, redrive).attributes(QueueAttributeName::VisibilityTimeout, "60");
    for (k, v) in tags {
        request = request.tags(*k, v);
    }
    let url = request.send().await.with_context(|| format!("creating queue {name}"))?.queue_url.unwrap_or_default();
    Ok((url, dlq_url))
}
