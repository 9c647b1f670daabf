//! Creates Berth's resources, idempotently: the table (with its GSI and TTL),
//! the package bucket, and the deployments queue with its dead-letter queue.
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
}

pub async fn ensure_resources(clients: &AwsClients, names: &ResourceNames) -> Result<Resources> {
    ensure_table(&clients.dynamo, &names.table).await?;
    ensure_bucket(&clients.s3, &names.bucket).await?;
    let (deployments_queue_url, deployments_dlq_url) = ensure_queue_with_dlq(&clients.sqs, &names.deployments_queue, &[]).await?;
    Ok(Resources { deployments_queue_url, deployments_dlq_url })
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
