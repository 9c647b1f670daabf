//! Vends agents short-lived credentials for their own runtime queue: STS
//! `AssumeRole` on the agents' queue role, narrowed by the session policy
//! the domain writes (`berth_domain::queue_access`).

use crate::sdk_error;
use async_trait::async_trait;
use berth_domain::ports::{AwsCredentials, CredentialVendor};
use berth_domain::{DomainError, Result};
use std::time::Duration;

/// LocalStack accepts any well-formed role ARN (it does not enforce IAM):
/// the local runner and the tests assume this one.
pub const LOCALSTACK_QUEUE_ROLE_ARN: &str = "arn:aws:iam::000000000000:role/berth-agent-queue";

pub struct StsCredentialVendor {
    client: aws_sdk_sts::Client,
    /// `BERTH_AGENT_QUEUE_ROLE_ARN`; without it nothing is vended.
    role_arn: Option<String>,
}

impl StsCredentialVendor {
    pub fn new(client: aws_sdk_sts::Client, role_arn: Option<String>) -> Self {
        Self { client, role_arn }
    }
}

#[async_trait]
impl CredentialVendor for StsCredentialVendor {
    fn region(&self) -> String {
        self.client.config().region().map(|r| r.as_ref().to_string()).unwrap_or_else(|| "us-east-1".to_string())
    }

    #[tracing::instrument(skip(self, policy, duration))]
    async fn assume_role(&self, session_name: &str, policy: &serde_json::Value, duration: Duration) -> Result<AwsCredentials> {
        let role_arn =
            self.role_arn.as_deref().ok_or_else(|| DomainError::unexpected("BERTH_AGENT_QUEUE_ROLE_ARN is not set: no queue credentials can be vended"))?;
        let out = self
            .client
            .assume_role()
            .role_arn(role_arn)
            .role_session_name(session_name)
            .policy(policy.to_string())
            .duration_seconds(i32::try_from(duration.as_secs()).unwrap_or(3600))
            .send()
            .await
            .map_err(sdk_error)?;
        let c = out.credentials.ok_or_else(|| DomainError::unexpected("AssumeRole answered no credentials"))?;
        let expiration = chrono::DateTime::from_timestamp(c.expiration.secs(), c.expiration.subsec_nanos())
            .ok_or_else(|| DomainError::unexpected("AssumeRole answered an expiration out of range"))?;
        Ok(AwsCredentials { access_key_id: c.access_key_id, secret_access_key: c.secret_access_key, session_token: c.session_token, expiration })
    }
}
