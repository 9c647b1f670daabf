//! Bearer secrets handed out once: runtime registration tokens and runtime
//! credentials. Only their SHA-256 is ever stored.
//!
//! A token names its tenant and runtime in clear (so the agent gateway can
//! find the one item to check it against, under the tenant's own key) and
//! carries 256 random bits; nothing in it is trusted until its hash matches.

use crate::ids::{RuntimeId, TenantId};
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
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| crate::DomainError::unexpected(e.to_string()))?;
        Ok(Self { kind, tenant, runtime, secret: hex::encode(bytes) })
    }

    /// Reads a token of the expected kind; `None` when it is not one.
    pub fn parse(kind: TokenKind, raw: &str) -> Option<Self> {
        let mut parts = raw.trim().split('_');
        let (prefix, tenant, runtime, secret) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || prefix != kind.prefix() {
            return None;
        }
        if secret.len() != 64 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        Some(Self {
            kind,
            tenant: TenantId::from_uuid(Uuid::try_parse(tenant).ok()?),
            runtime: RuntimeId::from_uuid(Uuid::try_parse(runtime).ok()?),
            secret: secret.to_string(),
        })
    }

    /// The clear form, to hand to the caller exactly once.
    pub fn reveal(&self) -> String {
        format!("{}_{}_{}_{}", self.kind.prefix(), self.tenant.simple(), self.runtime.simple(), self.secret)
    }

    /// What is stored: the hex SHA-256 of the clear form.
    pub fn hash(&self) -> SecretHash {
        SecretHash(hex::encode(Sha256::digest(self.reveal().as_bytes())))
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
    /// Compares in constant time.
    pub fn matches(&self, other: &SecretHash) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
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
    fn debug_output_never_shows_the_secret() {
        let t = RuntimeToken::generate(TokenKind::RuntimeCredential, TenantId::new(), RuntimeId::new()).unwrap();
        let secret = t.reveal().rsplit('_').next().unwrap().to_string();
        assert!(!format!("{t:?}").contains(&secret));
    }
}
