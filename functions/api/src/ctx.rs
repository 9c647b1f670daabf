//! Who is calling: a tenant user or API key, or a platform operator.

use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use berth_domain::DomainError;
use berth_domain::context::{Actor, PlatformCtx, TenantCtx};
use berth_domain::values::Role;
use berth_web::{ApiError, Caller};

/// A tenant caller: the tenant comes from the verified token (or the API
/// key's record) only, and must exist; a suspended tenant's keys read only,
/// as its people do.
pub struct Ctx(pub TenantCtx);

impl FromRequestParts<AppState> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let tenant_id = caller.tenant.ok_or_else(|| {
            ApiError::unauthenticated(format!(
                "this endpoint needs a token with a tenant: the token has no tenant claim `{}` (BERTH_JWT_TENANT_CLAIM)",
                state.verifier.tenant_claim()
            ))
        })?;
        let tenant = state.berth.tenant_of_token(tenant_id).await?;
        Ok(Ctx(TenantCtx {
            tenant: tenant.id,
            actor: match caller.api_key {
                Some(key) => Actor::api_key(key),
                None => Actor::user(caller.sub),
            },
            roles: caller.roles,
            request_id: caller.request_id,
            client_request_id: caller.client_request_id,
            tenant_suspended: tenant.suspended,
        }))
    }
}

/// A platform operator (`platform_admin`).
pub struct Platform(pub PlatformCtx);

impl FromRequestParts<AppState> for Platform {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if !caller.has_role(Role::PlatformAdmin) || caller.tenant.is_some() {
            return Err(DomainError::forbidden("forbidden", "only platform administrators may call the platform API").into());
        }
        Ok(Platform(PlatformCtx { actor: Actor::user(caller.sub), request_id: caller.request_id, client_request_id: caller.client_request_id }))
    }
}
