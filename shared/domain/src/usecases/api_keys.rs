//! API keys: an admin makes one for a pipeline (shown once), anyone of the
//! tenant reads them, an admin revokes them; the portal API authenticates a
//! bearer `bak_…` here.

use super::Berth;
use crate::api_key::{ApiKey, NewApiKey};
use crate::audit::AuditDraft;
use crate::audit::summary::{ApiKeyCreated, ApiKeyRevoked};
use crate::context::{ActorKind, Permission, TenantCtx};
use crate::ids::{ApiKeyId, TenantId};
use crate::page::{Page, PageRequest};
use crate::refusal::{Entity, Refusal};
use crate::secret::ApiKeyToken;
use crate::values::Role;
use crate::{DomainError, Result};
use chrono::Utc;

/// A new key and its clear form, to show the caller once.
#[derive(Debug)]
pub struct CreatedApiKey {
    pub key: ApiKey,
    pub token: ApiKeyToken,
}

/// A request authenticated by an API key: it acts as `api-key:<id>` with the key's roles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyPrincipal {
    pub tenant: TenantId,
    pub id: ApiKeyId,
    pub roles: Vec<Role>,
}

/// The one answer to a key that does not open: unknown, revoked, expired or
/// a wrong secret all read the same, so a caller learns nothing from it.
fn invalid_key() -> DomainError {
    DomainError::unauthenticated("the bearer token is invalid or expired")
}

impl Berth {
    /// Makes a key with at most the caller's roles. Only a person may: a key
    /// that could mint keys would outlive its own expiry and revocation.
    #[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant, request_id = %ctx.request_id))]
    pub async fn create_api_key(&self, ctx: &TenantCtx, input: NewApiKey) -> Result<CreatedApiKey> {
        ctx.require(Permission::ManageApiKeys)?;
        if ctx.actor.kind != ActorKind::User {
            return Err(DomainError::forbidden("forbidden", "API keys are made by a person: an API key cannot make one"));
        }
        let token = ApiKeyToken::generate(ctx.tenant, ApiKeyId::new())?;
        let key = ApiKey::new(ctx, input, token.key, token.hash(), Utc::now())?;
        self.ports.api_keys.create_api_key(ctx.tenant, &key, AuditDraft::by(ctx, key.id, ApiKeyCreated::of(&key))).await?;
        tracing::info!(tenant_id = %ctx.tenant, api_key_id = %key.id, "API key created");
        Ok(CreatedApiKey { key, token })
    }

    #[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant, request_id = %ctx.request_id))]
    pub async fn list_api_keys(&self, ctx: &TenantCtx, page: &PageRequest) -> Result<Page<ApiKey>> {
        ctx.require(Permission::Read)?;
        self.ports.api_keys.list_api_keys(ctx.tenant, page).await
    }

    #[tracing::instrument(skip(self, ctx), fields(tenant_id = %ctx.tenant, request_id = %ctx.request_id))]
    pub async fn get_api_key(&self, ctx: &TenantCtx, id: ApiKeyId) -> Result<ApiKey> {
        ctx.require(Permission::Read)?;
        self.ports.api_keys.get_api_key(ctx.tenant, id).await?.ok_or(DomainError::not_found("API key"))
    }

    /// The key stops working at once; its record stays, marked revoked.
    /// Revoking a revoked key changes nothing (and records nothing).
    #[tracing::instrument(skip(self, ctx), fields(tenant_id = %ctx.tenant, request_id = %ctx.request_id))]
    pub async fn revoke_api_key(&self, ctx: &TenantCtx, id: ApiKeyId) -> Result<ApiKey> {
        ctx.require(Permission::ManageApiKeys)?;
        let mut key = self.ports.api_keys.get_api_key(ctx.tenant, id).await?.ok_or(DomainError::not_found("API key"))?;
        if key.revoked_at.is_some() {
            return Ok(key);
        }
        let now = Utc::now();
        match self.ports.api_keys.revoke_api_key(ctx.tenant, id, now, AuditDraft::by(ctx, id, ApiKeyRevoked { revoked_at: now })).await {
            Ok(()) => {
                key.revoked_at = Some(now);
                tracing::info!(tenant_id = %ctx.tenant, api_key_id = %id, "API key revoked");
                Ok(key)
            }
            // Revoked by a concurrent request: the outcome the caller asked for.
            Err(DomainError::Refused(Refusal::Stale(Entity::ApiKey))) => self.get_api_key(ctx, id).await,
            Err(other) => Err(other),
        }
    }

    /// Checks a bearer `bak_…`: 401 `unauthenticated`, the same for every
    /// reason, unless it is a live key of its tenant whose hash matches.
    /// Records the use (at most once a minute per key, unaudited).
    pub async fn authenticate_api_key(&self, raw: &str) -> Result<ApiKeyPrincipal> {
        let token = ApiKeyToken::parse(raw).ok_or_else(invalid_key)?;
        let presented = token.hash();
        let Some(key) = self.ports.api_keys.get_api_key(token.tenant, token.key).await? else {
            tracing::info!(tenant_id = %token.tenant, api_key_id = %token.key, "API key refused: unknown");
            return Err(invalid_key());
        };
        let now = Utc::now();
        if let Err(reason) = key.check(&presented, now) {
            tracing::info!(tenant_id = %token.tenant, api_key_id = %key.id, ?reason, "API key refused");
            return Err(invalid_key());
        }
        if key.use_worth_recording(now) {
            // Bookkeeping: a failure here must not refuse a valid key.
            if let Err(e) = self.ports.api_keys.record_api_key_use(token.tenant, key.id, now, ApiKey::last_use_replaceable_before(now)).await {
                tracing::warn!(tenant_id = %token.tenant, api_key_id = %key.id, error = %e, "could not record the API key's use");
            }
        }
        Ok(ApiKeyPrincipal { tenant: token.tenant, id: key.id, roles: key.roles })
    }
}
