//! Bearer secrets handed out once: runtime registration tokens, runtime
//! credentials and API keys. Only their SHA-256 is ever stored.
//!
//! A token names its tenant and the item it belongs to in clear (so the
//! server can find the one item to check it against, under the tenant's own
//! key) and carries 256 random bits; nothing in it is trusted until its hash
//! matches. All share one form: `<prefix>_<tenant>_<item>_<64 hex>`.

use crate::ids::{ApiKeyId, RuntimeId, TenantId};
use sha2::{Digest, Sha256};
use std::fmt;
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// What a token is for; the prefix keeps one kind from being used as the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// One-time: exchanged by an agent for a credential.
    Registration,
    /// The agent's long-lived credential.
    RuntimeCredential,
}

impl TokenKind {
    fn prefix(self) -> &'static str {
        match self {
            TokenKind::Registration => "brr",
            TokenKind::RuntimeCredential => "brc",
        }
    }
}

/// A runtime secret in clear. Its `Debug` never prints the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct RuntimeToken {
    pub kind: TokenKind,
    pub tenant: TenantId,
    pub runtime: RuntimeId,
    secret: String,
}

impl RuntimeToken {
    /// A new token with 256 bits from the OS's random source.
    pub fn generate(kind: TokenKind, tenant: TenantId, runtime: RuntimeId) -> Result<Self, crate::DomainError> {
        Ok(Self { kind, tenant, runtime, secret: random_secret()? })
    }

    /// Reads a token of the expected kind; `None` when it is not one.
    pub fn parse(kind: TokenKind, raw: &str) -> Option<Self> {
        let (tenant, runtime, secret) = parse_parts(kind.prefix(), raw)?;
        Some(Self { kind, tenant, runtime: RuntimeId::from_uuid(runtime), secret })
    }

    /// The clear form, to hand to the caller exactly once.
    pub fn reveal(&self) -> String {
        clear_form(self.kind.prefix(), self.tenant, self.runtime.simple(), &self.secret)
    }

    /// What is stored: the hex SHA-256 of the clear form.
    pub fn hash(&self) -> SecretHash {
        SecretHash::of(&self.reveal())
    }
}

/// 256 bits from the OS's random source, in hex.
fn random_secret() -> Result<String, crate::DomainError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| crate::DomainError::unexpected(e.to_string()))?;
    Ok(hex::encode(bytes))
}

/// Splits `<prefix>_<tenant>_<item>_<64 hex>`; `None` unless it is exactly that.
fn parse_parts(prefix: &str, raw: &str) -> Option<(TenantId, Uuid, String)> {
    let mut parts = raw.trim().split('_');
    let (given, tenant, item, secret) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || given != prefix {
        return None;
    }
    if secret.len() != 64 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some((TenantId::from_uuid(Uuid::try_parse(tenant).ok()?), Uuid::try_parse(item).ok()?, secret.to_string()))
}

fn clear_form(prefix: &str, tenant: TenantId, item: String, secret: &str) -> String {
    format!("{prefix}_{}_{item}_{secret}", tenant.simple())
}

/// An API key in clear (`bak_<tenant>_<key>_<64 hex>`): a pipeline's bearer
/// credential on the portal API. Its `Debug` never prints the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeyToken {
    pub tenant: TenantId,
    pub key: ApiKeyId,
    secret: String,
}

impl ApiKeyToken {
    const PREFIX: &'static str = "bak";

    /// A new key with 256 bits from the OS's random source.
    pub fn generate(tenant: TenantId, key: ApiKeyId) -> Result<Self, crate::DomainError> {
        Ok(Self { tenant, key, secret: random_secret()? })
    }

    /// Reads an API key; `None` when it is not one.
    pub fn parse(raw: &str) -> Option<Self> {
        let (tenant, key, secret) = parse_parts(Self::PREFIX, raw)?;
        Some(Self { tenant, key: ApiKeyId::from_uuid(key), secret })
    }

    /// Whether a bearer token is meant as an API key (it may still be a bad one).
    pub fn looks_like(raw: &str) -> bool {
        raw.trim_start().starts_with("bak_")
    }

    /// The clear form, to hand to the caller exactly once.
    pub fn reveal(&self) -> String {
        clear_form(Self::PREFIX, self.tenant, self.key.simple(), &self.secret)
    }

    /// What is stored: the hex SHA-256 of the clear form.
    pub fn hash(&self) -> SecretHash {
        SecretHash::of(&self.reveal())
    }
}

impl fmt::Debug for ApiKeyToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyToken").field("tenant", &self.tenant).field("key", &self.key).field("secret", &"<redacted>").finish()
    }
}

impl fmt::Debug for RuntimeToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeToken")
            .field("kind", &self.kind)
            .field("tenant", &self.tenant)
            .field("runtime", &self.runtime)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The stored hash of a secret.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct SecretHash(pub String);

impl SecretHash {
    /// The hex SHA-256 of a secret's clear form.
    fn of(clear: &str) -> Self {
        SecretHash(hex::encode(Sha256::digest(clear.as_bytes())))
    }

    /// Compares in constant time.
    pub fn matches(&self, other: &SecretHash) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

/// A value given in clear that may be secret (an environment's connection
/// field): its `Debug` never prints it, and only `reveal` hands it out.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Sensitive(String);

impl Sensitive {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The clear value: to seal, to compare, or to deliver where it is used.
    pub fn reveal(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sensitive(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_parses_back_to_the_same_tenant_runtime_and_hash() {
        let t = RuntimeToken::generate(TokenKind::Registration, TenantId::new(), RuntimeId::new()).unwrap();
        let parsed = RuntimeToken::parse(TokenKind::Registration, &t.reveal()).unwrap();
        assert_eq!(parsed.tenant, t.tenant);
        assert_eq!(parsed.runtime, t.runtime);
        assert!(parsed.hash().matches(&t.hash()));
    }

    #[test]
    fn a_registration_token_is_not_accepted_as_a_credential() {
        let t = RuntimeToken::generate(TokenKind::Registration, TenantId::new(), RuntimeId::new()).unwrap();
        assert!(RuntimeToken::parse(TokenKind::RuntimeCredential, &t.reveal()).is_none());
    }

    #[test]
    fn two_generated_tokens_differ() {
        let (tenant, runtime) = (TenantId::new(), RuntimeId::new());
        let a = RuntimeToken::generate(TokenKind::RuntimeCredential, tenant, runtime).unwrap();
        let b = RuntimeToken::generate(TokenKind::RuntimeCredential, tenant, runtime).unwrap();
        assert_ne!(a.reveal(), b.reveal());
        assert!(!a.hash().matches(&b.hash()));
    }

    #[test]
    fn garbage_is_not_a_token() {
        for raw in ["", "brr", "brr_x_y_z", "brr_00_00_00", "Bearer something"] {
            assert!(RuntimeToken::parse(TokenKind::Registration, raw).is_none(), "{raw}");
        }
    }

    #[test]
    fn an_api_key_parses_back_to_its_tenant_key_and_hash_and_is_no_runtime_token() {
        let key = ApiKeyToken::generate(TenantId::new(), ApiKeyId::new()).unwrap();
        let clear = key.reveal();
        assert!(clear.starts_with(&format!("bak_{}_{}_", key.tenant.simple(), key.key.simple())), "{clear:?}");
        assert_eq!(clear.rsplit('_').next().unwrap().len(), 64);
        let parsed = ApiKeyToken::parse(&clear).unwrap();
        assert_eq!((parsed.tenant, parsed.key), (key.tenant, key.key));
        assert!(parsed.hash().matches(&key.hash()));
        assert!(ApiKeyToken::looks_like(&clear));
        assert!(RuntimeToken::parse(TokenKind::RuntimeCredential, &clear).is_none());
        let credential = RuntimeToken::generate(TokenKind::RuntimeCredential, TenantId::new(), RuntimeId::new()).unwrap();
        assert!(ApiKeyToken::parse(&credential.reveal()).is_none());
        assert!(!format!("{key:?}").contains(clear.rsplit('_').next().unwrap()));
    }

    #[test]
    fn an_api_key_with_one_character_changed_hashes_differently() {
        let key = ApiKeyToken::generate(TenantId::new(), ApiKeyId::new()).unwrap();
        let mut clear = key.reveal();
        let last = if clear.ends_with('0') { "1" } else { "0" };
        clear.replace_range(clear.len() - 1.., last);
        assert!(!ApiKeyToken::parse(&clear).unwrap().hash().matches(&key.hash()));
    }

    #[test]
    fn a_sensitive_value_never_shows_in_debug_output() {
        let value = Sensitive::new("hunter2-password");
        assert!(!format!("{value:?}").contains("hunter2"));
        assert_eq!(value.reveal(), "hunter2-password");
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let t = RuntimeToken::generate(TokenKind::RuntimeCredential, TenantId::new(), RuntimeId::new()).unwrap();
        let secret = t.reveal().rsplit('_').next().unwrap().to_string();
        assert!(!format!("{t:?}").contains(&secret));
    }
}
