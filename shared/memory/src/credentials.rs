use crate::MemoryStore;
use async_trait::async_trait;
use berth_domain::Result;
use berth_domain::ports::{AwsCredentials, CredentialVendor};
use std::time::Duration;

/// The region the memory store's queues are in.
pub(crate) const REGION: &str = "us-east-1";

/// One `assume_role` call, as STS would have seen it.
#[derive(Clone, Debug, PartialEq)]
pub struct VendedSession {
    pub session_name: String,
    pub policy: serde_json::Value,
    pub duration: Duration,
    pub access_key_id: String,
}

/// What tests look at.
impl MemoryStore {
    /// Every session vended, oldest first.
    pub fn vended_sessions(&self) -> Vec<VendedSession> {
        self.lock().sessions.clone()
    }
}

/// Fake credentials, fresh each time (as STS's are), that expire after `duration`.
#[async_trait]
impl CredentialVendor for MemoryStore {
    fn region(&self) -> String {
        REGION.to_string()
    }

    async fn assume_role(&self, session_name: &str, policy: &serde_json::Value, duration: Duration) -> Result<AwsCredentials> {
        let id = uuid::Uuid::new_v4().simple().to_string().to_uppercase();
        let credentials = AwsCredentials {
            access_key_id: format!("ASIA{}", &id[..16]),
            secret_access_key: format!("memory-secret-{id}"),
            session_token: format!("memory-session-{id}"),
            expiration: chrono::Utc::now() + chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::hours(1)),
        };
        self.lock().sessions.push(VendedSession {
            session_name: session_name.to_string(),
            policy: policy.clone(),
            duration,
            access_key_id: credentials.access_key_id.clone(),
        });
        Ok(credentials)
    }
}
