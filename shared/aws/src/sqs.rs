//! Per-runtime job queues.

use crate::bootstrap::ensure_queue_with_dlq;
use crate::keys::runtime_queue_names;
use crate::unexpected;
use async_trait::async_trait;
use berth_domain::ids::{RuntimeId, TenantId};
use berth_domain::ports::RuntimeQueues;
use berth_domain::{DomainError, Result};

#[derive(Clone, Debug)]
pub struct SqsRuntimeQueues {
    client: aws_sdk_sqs::Client,
    prefix: String,
}

impl SqsRuntimeQueues {
    pub fn new(client: aws_sdk_sqs::Client, prefix: impl Into<String>) -> Self {
        Self { client, prefix: prefix.into() }
    }

    async fn delete_if_exists(&self, url: &str) -> Result<()> {
        match self.client.delete_queue().queue_url(url).send().await {
            Ok(_) => Ok(()),
            Err(err) => {
                let service = err.into_service_error();
                if service.meta().code() == Some("AWS.SimpleQueueService.NonExistentQueue") || service.meta().code() == Some("QueueDoesNotExist") {
                    Ok(())
                } else {
                    Err(unexpected(service))
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
