//! The HTTP edge every Berth function shares: JWT (and API key)
//! verification and the caller it yields, problem+json errors (the one place a `DomainError`
//! becomes a status), JSON bodies with field-level errors, `Idempotency-Key`
//! handling, pagination and `If-Match` extraction, and tracing set-up.

pub mod api_key;
pub mod auth;
pub mod extract;
pub mod idempotency;
pub mod problem;
pub mod telemetry;

pub use api_key::ApiKeys;
pub use auth::{AuthConfig, Claims, JwtVerifier};
pub use extract::{Caller, IfMatch, JsonBody, OptionalJsonBody, PageQuery, RequestId};
pub use problem::ApiError;

/// Largest request body of most endpoints (413 beyond).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Largest body of endpoints that carry component content (base64 in JSON).
/// It stays under Lambda's 6 MB synchronous payload limit.
pub const MAX_UPLOAD_BODY_BYTES: usize = 5_900_000;

/// Adds what every function's edge needs: a problem+json 404 for unknown
/// routes, the body limit, request ids and the request span.
pub fn finish_router(router: axum::Router) -> axum::Router {
    telemetry::layer_router(router.fallback(problem::not_found).method_not_allowed_fallback(problem::method_not_allowed))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
}
