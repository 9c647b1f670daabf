//! `Idempotency-Key` on creating `POST`s: the same key with the same body
//! gets the first response again; the same key with another body is refused
//! (422); a retry while the first is still running gets 409. A secret a
//! response showed once (marked with `SecretFields`) is never replayed.

use crate::api_key::ApiKeys;
use crate::auth::JwtVerifier;
use crate::extract::Caller;
use crate::problem::ApiError;
use axum::body::Body;
use axum::extract::{FromRef, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use berth_domain::DomainError;
use berth_domain::ports::{IdempotencyScope, IdempotencyStore, Reservation, StoredResponse};
use sha2::{Digest, Sha256};
use std::sync::Arc;

pub const HEADER: &str = "idempotency-key";

/// Marks a response whose body carries secrets shown once (top-level JSON
/// fields): an idempotent replay returns the resource without them.
#[derive(Clone, Copy, Debug)]
pub struct SecretFields(pub &'static [&'static str]);

impl SecretFields {
    /// Puts the mark on `response`.
    pub fn mark(self, mut response: Response) -> Response {
        response.extensions_mut().insert(self);
        response
    }

    /// The body without the secret fields; a body that is not a JSON object is not kept at all.
    fn strip(self, body: &[u8]) -> Vec<u8> {
        match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(serde_json::Value::Object(mut fields)) => {
                for name in self.0 {
                    fields.remove(*name);
                }
                serde_json::to_vec(&fields).unwrap_or_default()
            }
            _ => Vec::new(),
        }
    }
}
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// Responses larger than this are not kept (creates answer with small bodies).
const MAX_STORED_RESPONSE: usize = 256 * 1024;

/// What the middleware needs: the verifier and the API keys its router
/// accepts (to know whose key it is), and the store.
#[derive(Clone)]
pub struct IdempotencyState {
    pub verifier: Arc<JwtVerifier>,
    pub api_keys: ApiKeys,
    pub store: Arc<dyn IdempotencyStore>,
}

impl FromRef<IdempotencyState> for Arc<JwtVerifier> {
    fn from_ref(s: &IdempotencyState) -> Self {
        s.verifier.clone()
    }
}

impl FromRef<IdempotencyState> for ApiKeys {
    fn from_ref(s: &IdempotencyState) -> Self {
        s.api_keys.clone()
    }
}

fn valid_key(key: &str) -> bool {
    (1..=200).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
}

pub async fn middleware(State(state): State<IdempotencyState>, req: Request, next: Next) -> Response {
    match run(state, req, next).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn run(state: IdempotencyState, req: Request, next: Next) -> Result<Response, ApiError> {
    if req.method() != Method::POST {
        return Ok(next.run(req).await);
    }
    let Some(key) = req.headers().get(HEADER) else {
        return Ok(next.run(req).await);
    };
    let key = key
        .to_str()
        .ok()
        .filter(|k| valid_key(k))
        .ok_or_else(|| ApiError::bad_request("invalid_idempotency_key", "Idempotency-Key must be 1 to 200 visible ASCII characters"))?
        .to_string();

    let (mut parts, body) = req.into_parts();
    let caller = <Caller as axum::extract::FromRequestParts<IdempotencyState>>::from_request_parts(&mut parts, &state).await?;
    let scope = match caller.tenant {
        Some(t) => IdempotencyScope::Tenant(t),
        None => IdempotencyScope::Platform,
    };
    // Keys belong to the caller who used them, not to everyone of the tenant:
    // a replay hands back the first response without re-running the
    // handler's permission checks, so only its original caller may get it.
    // An API key's are its own (under its tenant), apart from any person's.
    let key = match caller.api_key {
        Some(api_key) => format!("key:{}:{key}", api_key.simple()),
        None => {
            let mut h = Sha256::new();
            h.update(caller.sub.as_bytes());
            format!("{}:{key}", &hex::encode(h.finalize())[..32])
        }
    };
    let bytes = axum::body::to_bytes(body, crate::MAX_UPLOAD_BODY_BYTES).await.map_err(|_| ApiError::PayloadTooLarge)?;
    let fingerprint = {
        let mut h = Sha256::new();
        h.update(parts.method.as_str());
        h.update([0]);
        h.update(parts.uri.path());
        h.update([0]);
        h.update(&bytes);
        hex::encode(h.finalize())
    };

    match state.store.reserve(scope, &key, &fingerprint).await? {
        Reservation::Completed { fingerprint: stored, response } => {
            if stored != fingerprint {
                return Err(reused());
            }
            Ok(replay(response))
        }
        Reservation::InProgress { fingerprint: stored } => {
            if stored != fingerprint {
                return Err(reused());
            }
            Err(ApiError::Domain(DomainError::conflict("idempotency_in_progress", "a request with this Idempotency-Key is still being processed")))
        }
        Reservation::Reserved => {
            let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
            let (parts, body) = response.into_parts();
            let Ok(bytes) = axum::body::to_bytes(body, MAX_STORED_RESPONSE).await else {
                state.store.release(scope, &key).await?;
                return Err(ApiError::Domain(DomainError::unexpected("response too large to keep for idempotency")));
            };
            if parts.status.is_server_error() {
                // Nothing was created: let the client retry with the same key.
                keep_books("releasing the key of a failed request", || state.store.release(scope, &key)).await;
            } else {
                let headers = parts
                    .headers
                    .iter()
                    .filter(|(name, _)| matches!(name.as_str(), "content-type" | "location" | "etag"))
                    .filter_map(|(name, value)| value.to_str().ok().map(|v| (name.to_string(), v.to_string())))
                    .collect();
                // A secret is shown once: the kept copy never holds it.
                let kept = match parts.extensions.get::<SecretFields>() {
                    Some(secrets) => secrets.strip(&bytes),
                    None => bytes.to_vec(),
                };
                let stored = StoredResponse { status: parts.status.as_u16(), headers, body: kept };
                keep_books("keeping the response of a completed request", || state.store.complete(scope, &key, &fingerprint, &stored)).await;
            }
            Ok(Response::from_parts(parts, Body::from(bytes)))
        }
    }
}

/// Writes the middleware's own record once the request has run, trying a few
/// times. A failure here must not change the answer: a 5xx after the handler
/// created something would make the client create it again, and the handler's
/// own 5xx is truer than the bookkeeping's. Left pending, a key refuses
/// retries (409 `idempotency_in_progress`) until it goes stale.
async fn keep_books<F, Fut>(what: &str, write: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), DomainError>>,
{
    const ATTEMPTS: u64 = 3;
    for attempt in 1..=ATTEMPTS {
        match write().await {
            Ok(()) => return,
            Err(e) if attempt < ATTEMPTS => {
                tracing::info!(error = %e, attempt, "{what} failed; trying again");
                tokio::time::sleep(std::time::Duration::from_millis(100 * attempt)).await;
            }
            Err(e) => tracing::warn!(error = %e, "{what} failed; answering with the request's own response"),
        }
    }
}

fn reused() -> ApiError {
    ApiError::Domain(DomainError::Validation {
        code: "idempotency_key_reused",
        errors: vec![berth_domain::FieldError::new("Idempotency-Key", "was used before with a different request")],
    })
}

fn replay(stored: StoredResponse) -> Response {
    let mut response = Response::new(Body::from(stored.body));
    *response.status_mut() = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    for (name, value) in stored.headers {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            response.headers_mut().insert(n, v);
        }
    }
    response.headers_mut().insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{AuthConfig, KeySource, claims_for, issue_hs256};
    use axum::routing::post;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A store whose bookkeeping writes fail `failures` times (storage throttled).
    struct Flaky {
        failures: usize,
        completes: AtomicUsize,
        releases: AtomicUsize,
    }

    impl Flaky {
        fn attempt(&self, counter: &AtomicUsize) -> Result<(), DomainError> {
            if counter.fetch_add(1, Ordering::SeqCst) < self.failures { Err(DomainError::unavailable("throttled")) } else { Ok(()) }
        }
    }

    #[async_trait::async_trait]
    impl IdempotencyStore for Flaky {
        async fn reserve(&self, _: IdempotencyScope, _: &str, _: &str) -> Result<Reservation, DomainError> {
            Ok(Reservation::Reserved)
        }
        async fn complete(&self, _: IdempotencyScope, _: &str, _: &str, _: &StoredResponse) -> Result<(), DomainError> {
            self.attempt(&self.completes)
        }
        async fn release(&self, _: IdempotencyScope, _: &str) -> Result<(), DomainError> {
            self.attempt(&self.releases)
        }
    }

    async fn send(store: Arc<Flaky>, answer: StatusCode) -> StatusCode {
        let auth = AuthConfig { issuer: "i".into(), audience: "a".into(), keys: KeySource::Hs256Secret("s".into()), claims: Default::default() };
        let state = IdempotencyState { verifier: Arc::new(JwtVerifier::new(&auth).expect("a verifier")), api_keys: ApiKeys::refused(), store };
        let app = axum::Router::new().route("/things", post(move || async move { answer })).layer(axum::middleware::from_fn_with_state(state, middleware));
        let claims = claims_for("i", "a", "alice", Some(berth_domain::ids::TenantId::new().to_string()), &["admin"], std::time::Duration::from_secs(60));
        let request = Request::post("/things")
            .header("authorization", format!("Bearer {}", issue_hs256("s", &claims).expect("a token")))
            .header(HEADER, "key-1")
            .body(Body::from("{}"))
            .expect("a request");
        tower::ServiceExt::oneshot(app, request).await.expect("an answer").status()
    }

    #[tokio::test]
    async fn a_creation_is_answered_as_created_even_when_its_record_cannot_be_kept() {
        let store = Arc::new(Flaky { failures: usize::MAX, completes: AtomicUsize::new(0), releases: AtomicUsize::new(0) });
        assert_eq!(send(store.clone(), StatusCode::CREATED).await, StatusCode::CREATED, "a 5xx now would make the client create it again");
        assert_eq!(store.completes.load(Ordering::SeqCst), 3, "the record was tried three times");
    }

    #[tokio::test]
    async fn a_briefly_throttled_release_is_tried_again_and_the_handlers_answer_stands() {
        let store = Arc::new(Flaky { failures: 1, completes: AtomicUsize::new(0), releases: AtomicUsize::new(0) });
        assert_eq!(send(store.clone(), StatusCode::SERVICE_UNAVAILABLE).await, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(store.releases.load(Ordering::SeqCst), 2, "released on the second try, so a retry with the key runs again");
    }
}
