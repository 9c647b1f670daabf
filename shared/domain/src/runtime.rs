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
    /// The all-zero digest: stands for an archive not written yet (it matches none).
    pub fn unbuilt() -> Self {
        Self(format!("sha256:{}", "0".repeat(64)))
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
    /// When the registration token stops being accepted (`None`: never, for
    /// runtimes created before tokens expired).
    pub registration_expires_at: Option<DateTime<Utc>>,
    /// A rotated credential not used yet: accepted beside `credential_hash`
    /// until its first use, which makes it the only one.
    pub pending_credential_hash: Option<SecretHash>,
    /// Set by a revoke: no credential works until a re-issued registration
    /// token is used.
    pub revoked_at: Option<DateTime<Utc>>,
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

    pub fn credentials(&self) -> Credentials {
        Credentials {
            registration_hash: self.registration_hash.clone(),
            registration_expires_at: self.registration_expires_at,
            credential_hash: self.credential_hash.clone(),
            pending_credential_hash: self.pending_credential_hash.clone(),
            revoked_at: self.revoked_at,
        }
    }

    /// Takes on `c` (what a store writes).
    pub fn set_credentials(&mut self, c: Credentials) {
        self.registration_hash = c.registration_hash;
        self.registration_expires_at = c.registration_expires_at;
        self.credential_hash = c.credential_hash;
        self.pending_credential_hash = c.pending_credential_hash;
        self.revoked_at = c.revoked_at;
    }

    /// Accepts the registration token hashing to `presented` while it is the
    /// runtime's token and not past its expiry.
    pub fn check_registration(&self, presented: &SecretHash, now: DateTime<Utc>) -> Result<(), RegistrationRefusal> {
        match &self.registration_hash {
            Some(stored) if stored.matches(presented) => match self.registration_expires_at {
                Some(expires_at) if now >= expires_at => Err(RegistrationRefusal::Expired),
                _ => Ok(()),
            },
            _ => Err(RegistrationRefusal::Invalid),
        }
    }

    /// Which credential `presented` is, if any is accepted.
    pub fn credential_match(&self, presented: &SecretHash) -> Option<CredentialMatch> {
        if self.credential_hash.as_ref().is_some_and(|h| h.matches(presented)) {
            Some(CredentialMatch::Current)
        } else if self.pending_credential_hash.as_ref().is_some_and(|h| h.matches(presented)) {
            Some(CredentialMatch::Pending)
        } else {
            None
        }
    }
}

/// Which of a runtime's credentials a presented one is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialMatch {
    /// The credential in use.
    Current,
    /// The rotated one, used for the first time: it becomes the current one.
    Pending,
}

/// Why a registration token is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegistrationRefusal {
    /// Unknown, voided by a re-issue, or already used.
    Invalid,
    /// Right token, past its `registration_expires_at`.
    Expired,
}

/// Everything that decides which secrets of a runtime are accepted. Stores
/// replace it only if it is still as it was read, so a rotation, a revoke,
/// a re-issue or a registration is never lost to a concurrent one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    pub registration_hash: Option<SecretHash>,
    pub registration_expires_at: Option<DateTime<Utc>>,
    pub credential_hash: Option<SecretHash>,
    pub pending_credential_hash: Option<SecretHash>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl Credentials {
    /// A new pending credential; the current one keeps working until it is
    /// first used (a lost rotation response never locks the agent out). A
    /// pending one never used is replaced.
    pub fn rotated(&self, new: SecretHash) -> Self {
        Self { pending_credential_hash: Some(new), ..self.clone() }
    }

    /// The pending credential was used: it is the only one from now on.
    pub fn promoted(&self) -> Self {
        match &self.pending_credential_hash {
            Some(pending) => Self { credential_hash: Some(pending.clone()), pending_credential_hash: None, ..self.clone() },
            None => self.clone(),
        }
    }

    /// Nothing works any more: no credential, no registration token.
    pub fn revoked(&self, at: DateTime<Utc>) -> Self {
        Self { revoked_at: Some(at), ..Self::default() }
    }

    /// A new registration token voiding any earlier one. The current
    /// credential keeps working until the token is used (replacing a machine
    /// without downtime); revoke first to cut it off at once.
    pub fn reissued(&self, registration: SecretHash, expires_at: DateTime<Utc>) -> Self {
        Self { registration_hash: Some(registration), registration_expires_at: Some(expires_at), ..self.clone() }
    }

    /// What a registration leaves: one credential, nothing pending, no token.
    pub fn registered(credential: SecretHash) -> Self {
        Self { credential_hash: Some(credential), ..Self::default() }
    }
}

/// How long a registration token is accepted: `DEFAULT` unless the creator
/// asks for another duration within `MIN..=MAX`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegistrationTtl(Duration);

impl RegistrationTtl {
    pub const DEFAULT_SECONDS: i64 = 24 * 3600;
    pub const MIN_SECONDS: i64 = 60;
    pub const MAX_SECONDS: i64 = 30 * 24 * 3600;

    pub fn parse(seconds: Option<i64>) -> Result<Self, String> {
        match seconds {
            None => Ok(Self(Duration::seconds(Self::DEFAULT_SECONDS))),
            Some(s) if (Self::MIN_SECONDS..=Self::MAX_SECONDS).contains(&s) => Ok(Self(Duration::seconds(s))),
            Some(_) => Err(format!("must be from {} to {} seconds (30 days)", Self::MIN_SECONDS, Self::MAX_SECONDS)),
        }
    }

    pub fn expiry_from(self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + self.0
    }
}

impl Default for RegistrationTtl {
    fn default() -> Self {
        Self(Duration::seconds(Self::DEFAULT_SECONDS))
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

/// Agent-reported versions are free text but bounded: 1 to 64 printable
/// ASCII characters (spaces allowed, not only spaces) as sent, stored trimmed.
/// Measured as sent and kept to ASCII so that the OpenAPI document can state
/// the rule as a length and a pattern.
pub fn parse_agent_version(raw: &str) -> Result<String, String> {
    let v = raw.trim();
    if v.is_empty() || raw.len() > 64 || !raw.bytes().all(|b| (b' '..=b'~').contains(&b)) {
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
            registration_expires_at: None,
            pending_credential_hash: None,
            revoked_at: None,
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

    fn hash(c: char) -> SecretHash {
        SecretHash(c.to_string().repeat(64))
    }

    #[test]
    fn a_registration_token_is_refused_as_expired_only_when_it_is_the_right_one() {
        let now = Utc::now();
        let mut r = runtime(None);
        r.registration_hash = Some(hash('a'));
        r.registration_expires_at = Some(now + Duration::seconds(60));
        assert_eq!(r.check_registration(&hash('a'), now), Ok(()));
        assert_eq!(r.check_registration(&hash('a'), now + Duration::seconds(60)), Err(RegistrationRefusal::Expired));
        assert_eq!(r.check_registration(&hash('b'), now + Duration::seconds(60)), Err(RegistrationRefusal::Invalid));
        r.registration_hash = None;
        assert_eq!(r.check_registration(&hash('a'), now), Err(RegistrationRefusal::Invalid));
    }

    #[test]
    fn a_rotated_credential_is_pending_until_used_then_the_only_one() {
        let mut r = runtime(None);
        r.credential_hash = Some(hash('a'));
        let rotated = r.credentials().rotated(hash('b'));
        r.pending_credential_hash = rotated.pending_credential_hash.clone();
        assert_eq!(r.credential_match(&hash('a')), Some(CredentialMatch::Current));
        assert_eq!(r.credential_match(&hash('b')), Some(CredentialMatch::Pending));
        let promoted = rotated.promoted();
        assert_eq!((promoted.credential_hash, promoted.pending_credential_hash), (Some(hash('b')), None));
    }

    #[test]
    fn a_revoked_runtime_accepts_nothing_until_a_reissued_token_is_used() {
        let now = Utc::now();
        let before = Credentials { credential_hash: Some(hash('a')), pending_credential_hash: Some(hash('b')), ..Credentials::default() };
        let revoked = before.revoked(now);
        assert_eq!(revoked, Credentials { revoked_at: Some(now), ..Credentials::default() });
        let reissued = revoked.reissued(hash('c'), now + Duration::seconds(60));
        assert_eq!(reissued.registration_hash, Some(hash('c')));
        assert_eq!(reissued.revoked_at, Some(now), "still revoked until the token is used");
    }

    #[test]
    fn a_registration_ttl_is_a_day_unless_asked_within_a_minute_to_thirty_days() {
        let now = Utc::now();
        assert_eq!(RegistrationTtl::parse(None).unwrap().expiry_from(now), now + Duration::hours(24));
        assert_eq!(RegistrationTtl::parse(Some(60)).unwrap().expiry_from(now), now + Duration::seconds(60));
        assert!(RegistrationTtl::parse(Some(59)).is_err());
        assert!(RegistrationTtl::parse(Some(30 * 24 * 3600 + 1)).is_err());
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
