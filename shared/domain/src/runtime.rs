use crate::ids::{EnvironmentId, RuntimeId};
use crate::secret::SecretHash;
use crate::values::Name;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuntimeKind {
    OnPremise,
    Cloud,
}

/// Derived from heartbeats, never stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuntimeStatus {
    Online,
    Offline,
    Unknown,
}

/// What an agent says of its own health in a heartbeat.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentHealth {
    Ok,
    Degraded,
}

/// A package version an agent reports it runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningPackage {
    pub component_id: uuid::Uuid,
    pub package_id: uuid::Uuid,
    pub digest: Digest,
}

/// A content digest, `sha256:<64 lowercase hex>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

impl Digest {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let hex = raw.strip_prefix("sha256:").ok_or("must start with \"sha256:\"")?;
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err("must be \"sha256:\" followed by 64 lowercase hex digits".into());
        }
        Ok(Self(raw.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for Digest {
    type Error = String;
    fn try_from(v: String) -> Result<Self, String> {
        Self::parse(&v)
    }
}
impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.0
    }
}

/// A tenant machine that runs deployed packages through the Berth agent.
#[derive(Clone, Debug, PartialEq)]
pub struct Runtime {
    pub id: RuntimeId,
    pub name: Name,
    pub kind: RuntimeKind,
    /// Set until the agent registers; the token itself is never stored.
    pub registration_hash: Option<SecretHash>,
    pub credential_hash: Option<SecretHash>,
    pub last_seen_at: Option<DateTime<Utc>>,
    pub agent_version: Option<String>,
    pub health: Option<AgentHealth>,
    pub running: Vec<RunningPackage>,
    pub environments: Vec<EnvironmentId>,
    /// The runtime's own job queue.
    pub queue_url: String,
    pub created_at: DateTime<Utc>,
}

impl Runtime {
    /// `online` while heartbeats arrive within `offline_after`, `offline`
    /// once they stop, `unknown` before the first.
    pub fn status(&self, now: DateTime<Utc>, offline_after: Duration) -> RuntimeStatus {
        match self.last_seen_at {
            None => RuntimeStatus::Unknown,
            Some(seen) if now - seen <= offline_after => RuntimeStatus::Online,
            Some(_) => RuntimeStatus::Offline,
        }
    }
}

/// What an agent reports in a heartbeat.
#[derive(Clone, Debug)]
pub struct Heartbeat {
    pub agent_version: String,
    pub health: AgentHealth,
    pub running: Vec<RunningPackage>,
    pub at: DateTime<Utc>,
}

/// Agent-reported versions are free text but bounded.
pub fn parse_agent_version(raw: &str) -> Result<String, String> {
    let v = raw.trim();
    if v.is_empty() || v.len() > 64 || v.chars().any(char::is_control) {
        return Err("must be 1 to 64 printable characters".into());
    }
    Ok(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime(last_seen_at: Option<DateTime<Utc>>) -> Runtime {
        Runtime {
            id: RuntimeId::new(),
            name: Name::parse("atom-1").unwrap(),
            kind: RuntimeKind::OnPremise,
            registration_hash: None,
            credential_hash: None,
            last_seen_at,
            agent_version: None,
            health: None,
            running: vec![],
            environments: vec![],
            queue_url: String::new(),
            created_at: Utc::now(),
        }
    }

    #[test]
    fn a_runtime_never_seen_is_unknown() {
        assert_eq!(runtime(None).status(Utc::now(), Duration::seconds(60)), RuntimeStatus::Unknown);
    }

    #[test]
    fn a_runtime_seen_within_the_interval_is_online() {
        let now = Utc::now();
        let r = runtime(Some(now - Duration::seconds(59)));
        assert_eq!(r.status(now, Duration::seconds(60)), RuntimeStatus::Online);
    }

    #[test]
    fn a_runtime_silent_past_the_interval_is_offline() {
        let now = Utc::now();
        let r = runtime(Some(now - Duration::seconds(61)));
        assert_eq!(r.status(now, Duration::seconds(60)), RuntimeStatus::Offline);
    }

    #[test]
    fn a_digest_must_be_sha256_lowercase_hex() {
        assert!(Digest::parse(&format!("sha256:{}", "a".repeat(64))).is_ok());
        assert!(Digest::parse(&format!("sha256:{}", "A".repeat(64))).is_err());
        assert!(Digest::parse(&format!("md5:{}", "a".repeat(64))).is_err());
        assert!(Digest::parse("sha256:abc").is_err());
    }

    #[test]
    fn an_agent_version_is_bounded() {
        assert_eq!(parse_agent_version(" 1.2.3 ").unwrap(), "1.2.3");
        assert!(parse_agent_version("").is_err());
        assert!(parse_agent_version(&"x".repeat(65)).is_err());
    }
}
