use super::Berth;
use super::agents::RuntimeCtx;
use crate::ports::AwsCredentials;
use crate::queue_access::{queue_arn, queue_session_policy};
use crate::{DomainError, Result};
use std::time::Duration;

/// How long vended queue credentials last: the agent renews them before
/// they expire, so a revoked runtime loses its queue within this.
pub const QUEUE_SESSION: Duration = Duration::from_secs(3600);

/// What an agent needs to long-poll its own queue in SQS.
#[derive(Clone, Debug)]
pub struct QueueCredentials {
    pub credentials: AwsCredentials,
    pub region: String,
    pub queue_url: String,
}

impl Berth {
    /// Vends the runtime credentials for its own queue only: an assumed-role
    /// session named after the runtime, narrowed to receiving, hiding and
    /// deleting messages of that one queue, for `QUEUE_SESSION`. (A suspended
    /// tenant's or a revoked runtime's agent never gets this far:
    /// `authenticate_runtime` refuses it.)
    #[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant, runtime_id = %ctx.runtime.id))]
    pub async fn vend_queue_credentials(&self, ctx: &RuntimeCtx) -> Result<QueueCredentials> {
        let region = self.ports.credentials.region();
        let arn = queue_arn(&ctx.runtime.queue_url, &region).map_err(DomainError::unexpected)?;
        let policy = queue_session_policy(&arn);
        let credentials = self.ports.credentials.assume_role(&ctx.runtime.id.to_string(), &policy, QUEUE_SESSION).await?;
        Ok(QueueCredentials { credentials, region, queue_url: ctx.runtime.queue_url.clone() })
    }
}
