//! The deployments queue (API → dispatcher), the package-builds queue (API →
//! package builder) and the per-runtime job queues.

use crate::bootstrap::ensure_queue_with_dlq;
use crate::keys::runtime_queue_names;
use crate::{sdk_error, service_error, unexpected};
use async_trait::async_trait;
use aws_sdk_sqs::error::ProvideErrorMetadata;
use berth_domain::deployment::JobMessage;
use berth_domain::ids::{DeploymentId, PackageId, RuntimeId, TenantId};
use berth_domain::ports::{JobQueues, NOT_A_RECEIPT, ReceivedJob, RuntimeQueues};
use berth_domain::{DomainError, Result};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;

#[derive(Clone, Debug)]
pub struct SqsRuntimeQueues {
    client: aws_sdk_sqs::Client,
    prefix: String,
    deployments_queue: String,
    /// The deployments queue's URL, looked up once by name.
    deployments_url: Arc<OnceCell<String>>,
    package_builds_queue: String,
    /// The package-builds queue's URL, looked up once by name.
    package_builds_url: Arc<OnceCell<String>>,
}

/// What the package-builds queue carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageBuildMessage {
    pub tenant_id: TenantId,
    pub package_id: PackageId,
}

/// What the deployments queue carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentMessage {
    pub tenant_id: TenantId,
    pub deployment_id: DeploymentId,
}

impl SqsRuntimeQueues {
    /// `deployments_url`, when known, saves looking the queue up by name.
    pub fn new(client: aws_sdk_sqs::Client, prefix: impl Into<String>, deployments_queue: impl Into<String>, deployments_url: Option<String>) -> Self {
        Self {
            client,
            prefix: prefix.into(),
            deployments_queue: deployments_queue.into(),
            deployments_url: Arc::new(OnceCell::new_with(deployments_url)),
            package_builds_queue: String::new(),
            package_builds_url: Arc::new(OnceCell::new()),
        }
    }

    /// These queues, sending package builds to `queue` (`url`, when known, saves looking it up by name).
    pub fn with_package_builds(self, queue: impl Into<String>, url: Option<String>) -> Self {
        Self { package_builds_queue: queue.into(), package_builds_url: Arc::new(OnceCell::new_with(url)), ..self }
    }

    async fn package_builds_url(&self) -> Result<String> {
        let url = self
            .package_builds_url
            .get_or_try_init(|| async {
                let out = self.client.get_queue_url().queue_name(&self.package_builds_queue).send().await.map_err(sdk_error)?;
                out.queue_url.ok_or_else(|| DomainError::unexpected("the package-builds queue has no URL"))
            })
            .await?;
        Ok(url.clone())
    }

    async fn deployments_url(&self) -> Result<String> {
        let url = self
            .deployments_url
            .get_or_try_init(|| async {
                let out = self.client.get_queue_url().queue_name(&self.deployments_queue).send().await.map_err(sdk_error)?;
                out.queue_url.ok_or_else(|| DomainError::unexpected("the deployments queue has no URL"))
            })
            .await?;
        Ok(url.clone())
    }

    async fn delete_if_exists(&self, url: &str) -> Result<()> {
        match self.client.delete_queue().queue_url(url).send().await {
            Ok(_) => Ok(()),
            Err(err) => {
                let service = err.into_service_error();
                if service.meta().code() == Some("AWS.SimpleQueueService.NonExistentQueue") || service.meta().code() == Some("QueueDoesNotExist") {
                    Ok(())
                } else {
                    Err(service_error(service))
                }
            }
        }
    }
}

#[async_trait]
impl RuntimeQueues for SqsRuntimeQueues {
    #[tracing::instrument(skip(self))]
    async fn create_runtime_queue(&self, tenant: TenantId, runtime: RuntimeId) -> Result<String> {
        let (name, _) = runtime_queue_names(&self.prefix, runtime);
        let tags = [("berth:tenant", tenant.to_string()), ("berth:runtime", runtime.to_string())];
        let (url, _) = ensure_queue_with_dlq(&self.client, &name, &tags)
            .await
            .map_err(|e| DomainError::unexpected(Box::<dyn std::error::Error + Send + Sync>::from(format!("{e:#}"))))?;
        Ok(url)
    }

    #[tracing::instrument(skip(self, queue_url))]
    async fn delete_runtime_queue(&self, _tenant: TenantId, runtime: RuntimeId, queue_url: &str) -> Result<()> {
        let (_, dlq_name) = runtime_queue_names(&self.prefix, runtime);
        self.delete_if_exists(queue_url).await?;
        if let Ok(out) = self.client.get_queue_url().queue_name(&dlq_name).send().await {
            if let Some(dlq_url) = out.queue_url() {
                self.delete_if_exists(dlq_url).await?;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl JobQueues for SqsRuntimeQueues {
    async fn enqueue_deployment(&self, tenant: TenantId, deployment: DeploymentId) -> Result<()> {
        let body = serde_json::to_string(&DeploymentMessage { tenant_id: tenant, deployment_id: deployment }).map_err(unexpected)?;
        self.client.send_message().queue_url(self.deployments_url().await?).message_body(body).send().await.map_err(sdk_error)?;
        Ok(())
    }

    async fn enqueue_package_build(&self, tenant: TenantId, package: PackageId) -> Result<()> {
        let body = serde_json::to_string(&PackageBuildMessage { tenant_id: tenant, package_id: package }).map_err(unexpected)?;
        self.client.send_message().queue_url(self.package_builds_url().await?).message_body(body).send().await.map_err(sdk_error)?;
        Ok(())
    }

    async fn send_job(&self, queue_url: &str, job: &JobMessage) -> Result<()> {
        let body = serde_json::to_string(job).map_err(unexpected)?;
        self.client.send_message().queue_url(queue_url).message_body(body).send().await.map_err(sdk_error)?;
        Ok(())
    }

    async fn receive_job(&self, queue_url: &str, wait: Duration, visibility: Duration) -> Result<Option<ReceivedJob>> {
        let out = self
            .client
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(1)
            .wait_time_seconds(i32::try_from(wait.as_secs().min(20)).unwrap_or(20))
            .visibility_timeout(i32::try_from(visibility.as_secs().min(43_200)).unwrap_or(900))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .next()
            .map(|m| ReceivedJob { job: m.body().and_then(|b| serde_json::from_str(b).ok()), receipt: m.receipt_handle.unwrap_or_default() }))
    }

    async fn hide_job(&self, queue_url: &str, receipt: &str, visibility: Duration) -> Result<()> {
        let out = self
            .client
            .change_message_visibility()
            .queue_url(queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(i32::try_from(visibility.as_secs().min(43_200)).unwrap_or(900))
            .send()
            .await;
        match out {
            Ok(_) => Ok(()),
            // An agent's claim names the receipt: one SQS does not know is the caller's
            // mistake. (`InvalidParameterValue` is how SQS refuses a receipt whose message
            // is gone or not in flight; the visibility sent is always within its range.)
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_receipt_handle_is_invalid() || se.is_message_not_inflight() || se.code() == Some("InvalidParameterValue")) =>
            {
                Err(DomainError::invalid("receipt_handle", NOT_A_RECEIPT))
            }
            Err(e) => Err(sdk_error(e)),
        }
    }

    async fn delete_job(&self, queue_url: &str, receipt: &str) -> Result<()> {
        self.client.delete_message().queue_url(queue_url).receipt_handle(receipt).send().await.map_err(sdk_error)?;
        Ok(())
    }
}

/// Deletes every runtime job queue and dead-letter queue named with `prefix`
/// (`<prefix>rt-...`): CloudFormation does not own them (the API creates one
/// per runtime), so tearing a stack down leaves them behind. Returns the
/// names deleted, sorted.
pub async fn delete_runtime_queues(client: &aws_sdk_sqs::Client, prefix: &str) -> Result<Vec<String>> {
    let name_prefix = format!("{prefix}rt-");
    let mut urls = vec![];
    let mut next = None;
    loop {
        let page = client.list_queues().queue_name_prefix(&name_prefix).max_results(1000).set_next_token(next).send().await.map_err(sdk_error)?;
        urls.extend(page.queue_urls.unwrap_or_default());
        next = page.next_token;
        if next.is_none() {
            break;
        }
    }
    let mut deleted = vec![];
    for url in urls {
        let name = url.rsplit('/').next().unwrap_or_default().to_string();
        // The listing matches a prefix; keep exactly ours (a queue URL ends with its name).
        if !name.starts_with(&name_prefix) {
            continue;
        }
        client.delete_queue().queue_url(&url).send().await.map_err(sdk_error)?;
        deleted.push(name);
    }
    deleted.sort();
    Ok(deleted)
}
