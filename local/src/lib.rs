//! Runs every Berth function on one machine against LocalStack: the portal
//! API, the agent API and the webhooks on one port, over the same routers the Lambdas serve.

use anyhow::Result;
use berth_aws::app::build_berth;
use berth_aws::bootstrap::{Resources, ensure_resources};
use berth_aws::{AwsClients, ResourceNames};
use berth_domain::usecases::{Berth, Settings};
use berth_telemetry::{EmfMetrics, EmfSink};
use berth_web::{AuthConfig, CorsOrigins, JwtVerifier};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Issuer, audience and dev secret `make run` uses unless they are set.
pub const DEFAULT_ISSUER: &str = "berth-local";
pub const DEFAULT_AUDIENCE: &str = "berth";
pub const DEFAULT_DEV_SECRET: &str = "berth-local-dev-secret-not-for-production-use";
/// Origins `make run` allows unless `BERTH_CORS_ORIGINS` is set: a portal's
/// dev server (Vite's default port) on this machine.
pub const DEFAULT_CORS_ORIGINS: &str = "http://localhost:5173,http://127.0.0.1:5173";

/// One local Berth: resources created, routers built.
pub struct LocalBerth {
    pub berth: Arc<Berth>,
    pub verifier: Arc<JwtVerifier>,
    pub resources: Resources,
    /// Browser origins allowed to call (CORS); none unless set with [`LocalBerth::with_cors`].
    pub cors: CorsOrigins,
    /// Where each function's EMF metrics go; none unless set with [`LocalBerth::with_metrics`].
    pub metrics: Option<EmfSink>,
}

impl LocalBerth {
    /// Creates the resources named by `names` (idempotently, retrying
    /// transient failures) and wires the app.
    pub async fn start(clients: &AwsClients, names: &ResourceNames, auth: &AuthConfig, settings: Settings) -> Result<Self> {
        let resources = with_retries("creating the table, bucket and queues", || ensure_resources(clients, names)).await?;
        // The deployments queue's URL is known now, as the template gives it to the Lambdas: no lookup by name.
        let names = ResourceNames {
            deployments_queue_url: Some(resources.deployments_queue_url.clone()),
            package_builds_queue_url: Some(resources.package_builds_queue_url.clone()),
            ..names.clone()
        };
        let berth = Arc::new(build_berth(clients, &names, settings));
        let verifier = Arc::new(JwtVerifier::new(auth)?);
        Ok(Self { berth, verifier, resources, cors: CorsOrigins::none(), metrics: None })
    }

    /// Allows `cors` origins to call from a browser.
    pub fn with_cors(self, cors: CorsOrigins) -> Self {
        Self { cors, ..self }
    }

    /// Writes every function's metrics to `sink` as EMF lines, each with its
    /// own `function` dimension, as the Lambdas write them to stdout.
    pub fn with_metrics(self, sink: EmfSink) -> Self {
        Self { metrics: Some(sink), ..self }
    }

    /// The app as the Lambda `function` runs it: the same ports and caches,
    /// counting into its own metrics.
    fn berth_of(&self, function: &str) -> Arc<Berth> {
        match &self.metrics {
            None => self.berth.clone(),
            Some(sink) => Arc::new(Berth::clone(&self.berth).with_metrics(Arc::new(EmfMetrics::new(function, sink.clone())))),
        }
    }

    /// The portal, platform, agent and webhook APIs on one router.
    pub fn router(&self) -> axum::Router {
        let api = berth_api::routes(berth_api::AppState { berth: self.berth_of("api"), verifier: self.verifier.clone() });
        let agent = berth_agent_gateway::routes(berth_agent_gateway::AgentState { berth: self.berth_of("agent-gateway") });
        let hooks = berth_webhooks::routes(berth_webhooks::HooksState { berth: self.berth_of("webhooks") });
        let (api, agent, hooks) = if berth_aws::calls::recording() {
            (serving("api", api), serving("agent-gateway", agent), serving("webhooks", hooks))
        } else {
            (api, agent, hooks)
        };
        berth_web::finish_router(api.merge(agent).merge(hooks), &self.cors)
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

/// `router` with each request's AWS calls recorded as `function`'s (tests/iam:
/// every function shares this one process, and so one set of clients).
fn serving(function: &'static str, router: axum::Router) -> axum::Router {
    router.layer(axum::middleware::from_fn(move |request: axum::extract::Request, next: axum::middleware::Next| {
        berth_aws::calls::serving(function, next.run(request))
    }))
}

/// How often a start-up step is tried before it gives up, and the first
/// pause between tries (doubling each time): about 15 s in all, enough for a
/// throttled or briefly unreachable LocalStack, short enough to fail visibly.
const START_ATTEMPTS: u32 = 7;
const FIRST_PAUSE: std::time::Duration = std::time::Duration::from_millis(250);

/// Runs a start-up step until it succeeds, pausing between tries. A step is
/// retried whatever failed: at start-up nothing is lost by asking again, and
/// the last error comes back with every cause.
pub async fn with_retries<T, E, F, Fut>(what: &str, mut step: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, E>>,
    E: Into<anyhow::Error>,
{
    let mut pause = FIRST_PAUSE;
    let mut attempt = 1;
    loop {
        match step().await.map_err(Into::into) {
            Ok(value) => return Ok(value),
            Err(e) if attempt < START_ATTEMPTS => {
                tracing::warn!(attempt, error = %causes(&e), "{what} failed; trying again in {pause:?}");
                tokio::time::sleep(pause).await;
                pause *= 2;
                attempt += 1;
            }
            Err(e) => return Err(e.context(format!("{what} failed {attempt} times"))),
        }
    }
}

/// Every cause of `err`, outermost first, on one line. A cause whose message
/// is empty shows its debug form instead, so no link of the chain is blank.
pub fn causes(err: &anyhow::Error) -> String {
    err.chain()
        .map(|cause| match cause.to_string() {
            text if text.trim().is_empty() => format!("{cause:?}"),
            text => text,
        })
        .collect::<Vec<_>>()
        .join(": ")
}

/// The background workers of a local Berth: the dispatcher polling the
/// deployments queue, the packager polling the package-builds queue, and the
/// sweeper on a timer. Stopped when dropped.
pub struct Workers {
    handles: Vec<tokio::task::JoinHandle<()>>,
    /// The packager holds it for each poll (and what it received); tests hold it to keep packages `building`.
    package_builds: Arc<tokio::sync::Mutex<()>>,
    paused: std::sync::Mutex<Option<tokio::sync::OwnedMutexGuard<()>>>,
}

impl Workers {
    /// Stops taking package builds once the poll under way (and any build it
    /// received) is done; new messages wait in the queue until `resume_package_builds`.
    pub async fn pause_package_builds(&self) {
        let guard = self.package_builds.clone().lock_owned().await;
        *self.paused.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(guard);
    }

    pub fn resume_package_builds(&self) {
        self.paused.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for h in &self.handles {
            h.abort();
        }
    }
}

impl LocalBerth {
    /// Starts the dispatcher and packager pollers (same handlers as the Lambdas) and the sweeper.
    pub fn spawn_workers(&self, sqs: aws_sdk_sqs::Client, sweep_every: std::time::Duration) -> Workers {
        let dispatcher = {
            let berth = self.berth_of("dispatcher");
            let queue_url = self.resources.deployments_queue_url.clone();
            let sqs = sqs.clone();
            tokio::spawn(async move {
                loop {
                    // The receive and delete stand for the Lambda event source mapping, which acts with the dispatcher's role.
                    if let Err(e) = berth_aws::calls::serving("dispatcher", poll_deployments(&berth, &sqs, &queue_url)).await {
                        tracing::warn!(error = %causes(&e), "dispatcher poll failed; retrying");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                }
            })
        };
        let package_builds = Arc::new(tokio::sync::Mutex::new(()));
        let packager = {
            let berth = self.berth_of("packager");
            let queue_url = self.resources.package_builds_queue_url.clone();
            let turn = package_builds.clone();
            tokio::spawn(async move {
                loop {
                    let _turn = turn.lock().await;
                    // As for the dispatcher: the receive and delete stand for the packager's event source mapping.
                    if let Err(e) = berth_aws::calls::serving("packager", poll_package_builds(&berth, &sqs, &queue_url)).await {
                        tracing::warn!(error = %causes(&e), "package-builds poll failed; retrying");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                }
            })
        };
        let sweeper = {
            let berth = self.berth_of("sweeper");
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(sweep_every);
                loop {
                    tick.tick().await;
                    if let Err(e) = berth_aws::calls::serving("sweeper", berth_sweeper::sweep_once(&berth)).await {
                        tracing::warn!(error = %causes(&anyhow::Error::from(e)), "sweep failed");
                    }
                }
            })
        };
        Workers { handles: vec![dispatcher, packager, sweeper], package_builds, paused: Default::default() }
    }
}

/// One long poll of the deployments queue, handled as the Lambda would be:
/// handled messages are deleted, failed ones come back after their visibility timeout.
async fn poll_deployments(berth: &berth_domain::usecases::Berth, sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Result<()> {
    poll_queue(sqs, queue_url, |batch| berth_dispatcher::handle_batch(berth, batch)).await
}

/// One long poll of the package-builds queue, handled as the packager Lambda would be.
async fn poll_package_builds(berth: &berth_domain::usecases::Berth, sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Result<()> {
    poll_queue(sqs, queue_url, |batch| berth_packager::handle_batch(berth, batch)).await
}

/// One long poll of `queue_url`, its messages handed to `handle` as an event
/// source mapping would: those it does not return are deleted.
async fn poll_queue<F, Fut>(sqs: &aws_sdk_sqs::Client, queue_url: &str, handle: F) -> Result<()>
where
    F: FnOnce(Vec<berth_dispatcher::QueueMessage>) -> Fut,
    Fut: std::future::Future<Output = Vec<String>>,
{
    use aws_sdk_sqs::types::MessageSystemAttributeName;
    let out = sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .wait_time_seconds(2)
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .send()
        .await?;
    let messages = out.messages.unwrap_or_default();
    if messages.is_empty() {
        return Ok(());
    }
    let batch = messages.iter().map(berth_dispatcher::QueueMessage::from_sdk_message).collect();
    let failed = handle(batch).await;
    for m in &messages {
        if !failed.iter().any(|id| Some(id.as_str()) == m.message_id()) {
            if let Some(receipt) = m.receipt_handle() {
                sqs.delete_message().queue_url(queue_url).receipt_handle(receipt).send().await?;
            }
        }
    }
    Ok(())
}

/// The local auth configuration: `BERTH_JWT_*` when set, else the defaults above.
/// The local runner is the one place an HS256 secret is accepted (the
/// Lambdas refuse one: `AuthConfig::for_lambda`); it signs the dev tokens.
/// With `BERTH_JWKS_URL` or `BERTH_JWT_PUBLIC_KEY` set it verifies an
/// identity provider's tokens instead, as a Lambda does, so every token
/// shape (and the claim settings) can be tried against `make run`.
pub fn local_auth_config() -> Result<AuthConfig> {
    local_auth_config_from(|k| std::env::var(k).ok())
}

/// [`local_auth_config`] from the variables `var` returns.
pub fn local_auth_config_from(var: impl Fn(&str) -> Option<String>) -> Result<AuthConfig> {
    let set = |k: &str| var(k).filter(|v| !v.trim().is_empty());
    let get = |k: &str, d: &str| set(k).unwrap_or_else(|| d.to_string());
    let claims = berth_web::auth::ClaimSettings::from_vars(&var)?;
    let keys = match (AuthConfig::public_keys(&var)?, set("BERTH_JWT_HS256_SECRET")) {
        (Some(_), Some(_)) => anyhow::bail!("set BERTH_JWT_HS256_SECRET or a public key (BERTH_JWKS_URL, BERTH_JWT_PUBLIC_KEY), not both"),
        (Some(public), None) => public,
        (None, secret) => berth_web::auth::KeySource::Hs256Secret(secret.unwrap_or_else(|| DEFAULT_DEV_SECRET.to_string())),
    };
    // With a client id to check, an audience is needed only when set.
    let audience = if claims.client_id.is_some() { set("BERTH_JWT_AUDIENCE").unwrap_or_default() } else { get("BERTH_JWT_AUDIENCE", DEFAULT_AUDIENCE) };
    Ok(AuthConfig { issuer: get("BERTH_JWT_ISSUER", DEFAULT_ISSUER), audience, keys, claims })
}

/// The origins the local runner allows: `BERTH_CORS_ORIGINS` when set (an
/// empty value turns CORS off), else [`DEFAULT_CORS_ORIGINS`].
pub fn local_cors_origins() -> Result<CorsOrigins, berth_web::cors::InvalidOrigin> {
    local_cors_origins_from(|k| std::env::var(k).ok())
}

/// [`local_cors_origins`] from the variables `var` returns.
pub fn local_cors_origins_from(var: impl Fn(&str) -> Option<String>) -> Result<CorsOrigins, berth_web::cors::InvalidOrigin> {
    CorsOrigins::parse(&var(berth_web::cors::ENV_VAR).unwrap_or_else(|| DEFAULT_CORS_ORIGINS.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_web::auth::KeySource;

    fn config(vars: &[(&str, &str)]) -> Result<AuthConfig> {
        let vars: std::collections::HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        local_auth_config_from(|k| vars.get(k).cloned())
    }

    #[test]
    fn the_local_runner_signs_with_the_hs256_secret_it_is_given_else_the_dev_secret() {
        let given = config(&[("BERTH_JWT_HS256_SECRET", "a-local-secret-of-at-least-32-characters")]).expect("a configuration");
        assert!(matches!(&given.keys, KeySource::Hs256Secret(s) if s == "a-local-secret-of-at-least-32-characters"));
        assert_eq!((given.issuer.as_str(), given.audience.as_str()), (DEFAULT_ISSUER, DEFAULT_AUDIENCE));
        let default = config(&[]).expect("a configuration");
        assert!(matches!(&default.keys, KeySource::Hs256Secret(s) if s == DEFAULT_DEV_SECRET));
        assert_eq!(default.claims, berth_web::auth::ClaimSettings::default());
    }

    #[test]
    fn the_local_runner_verifies_an_identity_providers_keys_and_claims_when_given_them() {
        let jwks = config(&[
            ("BERTH_JWKS_URL", "https://cognito-idp.eu-west-1.amazonaws.com/pool/.well-known/jwks.json"),
            ("BERTH_JWT_ISSUER", "https://cognito-idp.eu-west-1.amazonaws.com/pool"),
            ("BERTH_JWT_CLIENT_ID", "app-client"),
            ("BERTH_JWT_TENANT_CLAIM", "custom:tenant_id"),
            ("BERTH_JWT_ROLES_CLAIM", "cognito:groups"),
            ("BERTH_JWT_ROLE_MAP", "berth-admins=admin"),
        ])
        .expect("a JWKS configuration");
        assert!(matches!(&jwks.keys, KeySource::Jwks { url, .. } if url.ends_with("/jwks.json")));
        assert_eq!((jwks.claims.tenant.to_string(), jwks.claims.roles.to_string()), ("custom:tenant_id".into(), "cognito:groups".into()));
        assert_eq!((jwks.claims.client_id.as_deref(), jwks.audience.as_str()), (Some("app-client"), ""), "client_id is checked, not a default audience");

        let pem = config(&[("BERTH_JWT_PUBLIC_KEY", "-----BEGIN PUBLIC KEY-----\\nMIIB\\n-----END PUBLIC KEY-----")]).expect("a PEM configuration");
        assert!(matches!(&pem.keys, KeySource::PublicKeyPem { .. }));
        assert_eq!(pem.audience, DEFAULT_AUDIENCE);

        let both = config(&[("BERTH_JWKS_URL", "https://idp.example/jwks.json"), ("BERTH_JWT_HS256_SECRET", "a-local-secret-of-at-least-32-characters")]);
        assert!(both.is_err_and(|e| e.to_string().contains("not both")), "a secret beside a public key is ambiguous");
    }

    #[test]
    fn the_local_runner_allows_a_portal_dev_server_on_this_machine_unless_told_otherwise() {
        let default = local_cors_origins_from(|_| None).expect("the defaults parse");
        assert_eq!(default.iter().collect::<Vec<_>>(), ["http://localhost:5173", "http://127.0.0.1:5173"]);
        let given = local_cors_origins_from(|k| (k == "BERTH_CORS_ORIGINS").then(|| "https://portal.example.com".to_string())).expect("parses");
        assert_eq!(given.iter().collect::<Vec<_>>(), ["https://portal.example.com"]);
        assert!(local_cors_origins_from(|k| (k == "BERTH_CORS_ORIGINS").then(String::new)).expect("parses").is_empty(), "empty turns CORS off");
    }
}
