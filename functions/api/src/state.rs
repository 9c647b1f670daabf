use axum::extract::FromRef;
use berth_domain::usecases::Berth;
use berth_web::idempotency::IdempotencyState;
use berth_web::{ApiKeys, JwtVerifier};
use std::sync::Arc;

/// Everything a handler may use, built once per cold start.
#[derive(Clone)]
pub struct AppState {
    pub berth: Arc<Berth>,
    pub verifier: Arc<JwtVerifier>,
}

impl FromRef<AppState> for Arc<JwtVerifier> {
    fn from_ref(s: &AppState) -> Self {
        s.verifier.clone()
    }
}

/// The portal API takes API keys (`bak_…`) as bearer tokens; the platform
/// API does not, as none is a platform admin's.
impl FromRef<AppState> for ApiKeys {
    fn from_ref(s: &AppState) -> Self {
        ApiKeys::accepted(s.berth.clone())
    }
}

impl AppState {
    pub fn idempotency(&self) -> IdempotencyState {
        IdempotencyState { verifier: self.verifier.clone(), api_keys: ApiKeys::from_ref(self), store: self.berth.idempotency_store() }
    }
}
