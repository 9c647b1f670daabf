//! Runs every Berth function on one machine against LocalStack: the portal
//! API and the agent API on one port, over the same routers the Lambdas serve.

use anyhow::Result;
use berth_aws::app::build_berth;
use berth_aws::bootstrap::{ensure_resources, Resources};
use berth_aws::{AwsClients, ResourceNames};
use berth_domain::usecases::{Berth, Settings};
use berth_web::{AuthConfig, JwtVerifier};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Issuer, audience and dev secret `make run` uses unless they are set.
pub const DEFAULT_ISSUER: &str = "berth-local";
pub const DEFAULT_AUDIENCE: &str = "berth";
pub const DEFAULT_DEV_SECRET: &str = "berth-local-dev-secret-not-for-production-use";

/// One local Berth: resources created, routers built.
pub struct LocalBerth {
    pub berth: Arc<Berth>,
    pub verifier: Arc<JwtVerifier>,
    pub resources: Resources,
}

impl LocalBerth {
    /// Creates the resources named by `names` (idempotently) and wires the app.
    pub async fn start(clients: &AwsClients, names: &ResourceNames, auth: &AuthConfig, settings: Settings) -> Result<Self> {
        let resources = ensure_resources(clients, names).await?;
        let berth = Arc::new(build_berth(clients, names, settings));
        let verifier = Arc::new(JwtVerifier::new(auth)?);
        Ok(Self { berth, verifier, resources })
    }

    /// The portal, platform and agent APIs on one router.
    pub fn router(&self) -> axum::Router {
        let api = berth_api::routes(berth_api::AppState { berth: self.berth.clone(), verifier: self.verifier.clone() });
        let agent = berth_agent_gateway::routes(berth_agent_gateway::AgentState { berth: self.berth.clone() });
        berth_web::finish_router(api.merge(agent))
    }

    /// Serves on `bind` until `shutdown` resolves; returns the bound address at once.
    pub async fn serve(
        &self,
        bind: SocketAddr,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
        let listener = TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let app = self.router();
        let handle = tokio::spawn(async move { axum::serve(listener, app).with_graceful_shutdown(shutdown).await });
        Ok((addr, handle))
    }
}

/// The local auth configuration: `BERTH_JWT_*` when set, else the defaults above.
pub fn local_auth_config() -> AuthConfig {
    let get = |k: &str, d: &str| std::env::var(k).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| d.to_string());
    AuthConfig {
        issuer: get("BERTH_JWT_ISSUER", DEFAULT_ISSUER),
        audience: get("BERTH_JWT_AUDIENCE", DEFAULT_AUDIENCE),
        keys: berth_web::auth::KeySource::Hs256Secret(get("BERTH_JWT_HS256_SECRET", DEFAULT_DEV_SECRET)),
    }
}
