//! The credential lifecycle of a runtime: an admin re-issues its registration
//! token or revokes it; its agent rotates its credential.

use super::Berth;
use super::agents::{RuntimeCtx, invalid_credential};
use crate::audit::AuditDraft;
use crate::audit::summary::{RuntimeCredentialRotated, RuntimeRegistrationTokenIssued, RuntimeRevoked};
use crate::context::{Permission, TenantCtx};
use crate::ids::RuntimeId;
use crate::refusal::{Entity, Refusal};
use crate::runtime::{RegistrationTtl, Runtime};
use crate::secret::{RuntimeToken, TokenKind};
use crate::{DomainError, Result};
use chrono::{DateTime, Utc};

/// A re-issued registration token, shown to the caller once.
#[derive(Debug)]
pub struct IssuedRegistration {
    pub runtime: Runtime,
    pub registration_token: RuntimeToken,
    pub expires_at: DateTime<Utc>,
}

fn changed_meanwhile(e: DomainError) -> DomainError {
    match e {
        DomainError::Refused(Refusal::Stale(Entity::Runtime)) => {
            DomainError::conflict("runtime_changed", "the runtime's credentials changed meanwhile (a rotation, revoke or registration); try again")
        }
        other => other,
    }
}

impl Berth {
    /// A new registration token for the runtime, voiding any earlier one.
    /// Allowed whether or not the runtime is registered: for a registered
    /// one it is how its machine is replaced (the current credential keeps
    /// working until the new token is used, then the new registration
    /// replaces it); for a revoked one it is how it comes back.
    #[tracing::instrument(skip(self, ctx), fields(tenant_id = %ctx.tenant, request_id = %ctx.request_id))]
    pub async fn reissue_registration_token(&self, ctx: &TenantCtx, id: RuntimeId, ttl: RegistrationTtl) -> Result<IssuedRegistration> {
        let mut runtime = self.get_runtime(ctx, id).await?;
        ctx.require(Permission::ManageRuntimes)?;
        let token = RuntimeToken::generate(TokenKind::Registration, ctx.tenant, id)?;
        let expires_at = ttl.expiry_from(Utc::now());
        let (expected, new) = (runtime.credentials(), runtime.credentials().reissued(token.hash(), expires_at));
        let audit = AuditDraft::by(ctx, id, RuntimeRegistrationTokenIssued { expires_at, registered: runtime.credential_hash.is_some() });
        self.ports.runtimes.swap_credentials(ctx.tenant, id, &expected, &new, Some(audit)).await.map_err(changed_meanwhile)?;
        runtime.registration_hash = new.registration_hash;
        runtime.registration_expires_at = new.registration_expires_at;
        Ok(IssuedRegistration { runtime, registration_token: token, expires_at })
    }

    /// Every credential and registration token of the runtime stops working
    /// at once. It stays (attachments, history) with `revoked_at` set until
    /// a re-issued registration token is used. Revoking twice changes nothing more.
    #[tracing::instrument(skip(self, ctx), fields(tenant_id = %ctx.tenant, request_id = %ctx.request_id))]
    pub async fn revoke_runtime(&self, ctx: &TenantCtx, id: RuntimeId) -> Result<Runtime> {
        let mut runtime = self.get_runtime(ctx, id).await?;
        ctx.require(Permission::ManageRuntimes)?;
        let now = Utc::now();
        let (expected, new) = (runtime.credentials(), runtime.credentials().revoked(now));
        let audit = AuditDraft::by(ctx, id, RuntimeRevoked { revoked_at: now });
        self.ports.runtimes.swap_credentials(ctx.tenant, id, &expected, &new, Some(audit)).await.map_err(changed_meanwhile)?;
        runtime.registration_hash = None;
        runtime.registration_expires_at = None;
        runtime.credential_hash = None;
        runtime.pending_credential_hash = None;
        runtime.revoked_at = Some(now);
        tracing::info!(tenant_id = %ctx.tenant, runtime_id = %id, "runtime revoked");
        Ok(runtime)
    }

    /// A new credential for the calling agent. The one it called with keeps
    /// working until the new one is first used, so an agent that loses this
    /// response is not locked out (it rotates again; the unused one is voided).
    #[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant, runtime_id = %ctx.runtime.id))]
    pub async fn rotate_credential(&self, ctx: &RuntimeCtx) -> Result<RuntimeToken> {
        let runtime = &ctx.runtime;
        let credential = RuntimeToken::generate(TokenKind::RuntimeCredential, ctx.tenant, runtime.id)?;
        let (expected, new) = (runtime.credentials(), runtime.credentials().rotated(credential.hash()));
        let audit = AuditDraft::by(ctx, runtime.id, RuntimeCredentialRotated { replaced_pending: runtime.pending_credential_hash.is_some() });
        // Stale: revoked, re-registered or rotated meanwhile; the agent's
        // credential may be void now, so it must authenticate again.
        self.ports.runtimes.swap_credentials(ctx.tenant, runtime.id, &expected, &new, Some(audit)).await.map_err(|e| match e {
            DomainError::Refused(Refusal::Stale(Entity::Runtime)) => invalid_credential(),
            other => other,
        })?;
        Ok(credential)
    }
}
