use axum::extract::FromRef;
use berth_domain::usecases::Berth;
use berth_web::JwtVerifier;
use berth_web::idempotency::IdempotencyState;
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

impl AppState {
    pub fn idempotency(&self) -> IdempotencyState {
        IdempotencyState { verifier: self.verifier.clone(), store: self.berth.idempotency_store() }
    }
}
