//! The HTTP edge every Berth function shares: JWT (and API key)
//! verification and the caller it yields, problem+json errors (the one place a `DomainError`
//! becomes a status), JSON bodies with field-level errors, `Idempotency-Key`
//! handling, pagination and `If-Match` extraction, CORS, and tracing set-up.

pub mod api_key;
pub mod auth;
pub mod cors;
pub mod extract;
pub mod idempotency;
pub mod problem;
pub mod schema;
pub mod telemetry;

pub use api_key::ApiKeys;
pub use auth::{AuthConfig, Claims, JwtVerifier};
pub use cors::CorsOrigins;
pub use extract::{Caller, IfMatch, JsonBody, OptionalJsonBody, PageQuery, RequestId};
pub use problem::ApiError;

/// Largest request body of most endpoints (413 beyond).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Largest body of endpoints that carry component content (base64 in JSON).
/// It stays under Lambda's 6 MB synchronous payload limit.
pub const MAX_UPLOAD_BODY_BYTES: usize = 5_900_000;

/// Adds what every function's edge needs: a problem+json 404 for unknown
/// routes, CORS for the allowed origins, the body limit, request ids and the request span.
///
/// The CORS gate is layered after the fallbacks are set, and axum applies a
/// router's layer to every route, to each route's 405 fallback and to the 404
/// fallback: so a preflight for any path, known or not, reaches it and gets
/// 204 (never 405 or 404). Inside the request-id and trace layers, so
/// preflights are logged and carry a request id like any other request.
pub fn finish_router(router: axum::Router, cors: &CorsOrigins) -> axum::Router {
    let routed = router.fallback(problem::not_found).method_not_allowed_fallback(problem::method_not_allowed);
    let routed = match cors.layer() {
        Some(cors) => routed.layer(cors),
        None => routed,
    };
    telemetry::layer_router(routed).layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
}
