//! API keys (`bak_…`) as bearer tokens. A function whose routes accept them
//! lends its `Caller` extractor an authenticator through `ApiKeys`; one that
//! lends none refuses them like any token that is not a valid JWT.

use berth_domain::DomainError;
use berth_domain::usecases::{ApiKeyPrincipal, Berth};
use std::sync::Arc;

/// Checks a bearer API key and says whom it acts for.
#[async_trait::async_trait]
pub trait ApiKeyAuthenticator: Send + Sync {
    /// `Unauthenticated` for any key that does not open; other errors when the check could not be made.
    async fn authenticate(&self, raw: &str) -> Result<ApiKeyPrincipal, DomainError>;
}

#[async_trait::async_trait]
impl ApiKeyAuthenticator for Berth {
    async fn authenticate(&self, raw: &str) -> Result<ApiKeyPrincipal, DomainError> {
        self.authenticate_api_key(raw).await
    }
}

/// Whether (and how) a router's `Caller` accepts API keys.
#[derive(Clone, Default)]
pub struct ApiKeys(Option<Arc<dyn ApiKeyAuthenticator>>);

impl ApiKeys {
    /// Keys are accepted, checked by `authenticator`.
    pub fn accepted(authenticator: Arc<dyn ApiKeyAuthenticator>) -> Self {
        Self(Some(authenticator))
    }

    /// Keys are refused (401), as any token that is not a JWT.
    pub fn refused() -> Self {
        Self(None)
    }

    pub(crate) fn authenticator(&self) -> Option<&Arc<dyn ApiKeyAuthenticator>> {
        self.0.as_ref()
    }
}
