//! Test harness: every test spawns its own Berth (the local runner's router)
//! on a free port, on its own uniquely named table, bucket and queues in
//! LocalStack, and talks to it over HTTP like any client.

use berth_aws::{AwsClients, ResourceNames};
use berth_domain::usecases::Settings;
use berth_local::LocalBerth;
use berth_web::auth::{Claims, KeySource, claims_for, issue_hs256};
use berth_web::{AuthConfig, CorsOrigins};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

pub const ISSUER: &str = "berth-test";
pub const AUDIENCE: &str = "berth-test-api";

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub secret: String,
    pub clients: AwsClients,
    pub names: ResourceNames,
    pub local: LocalBerth,
    _workers: berth_local::Workers,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

/// A tenant made for a test, with an admin token.
#[derive(Clone, Debug)]
pub struct TestTenant {
    pub id: String,
    pub admin: String,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(Settings::default()).await
    }

    pub async fn spawn_with(settings: Settings) -> TestApp {
        let secret = format!("test-secret-{}", uuid::Uuid::new_v4());
        let auth = AuthConfig { issuer: ISSUER.into(), audience: AUDIENCE.into(), keys: KeySource::Hs256Secret(secret.clone()), claims: Default::default() };
        Self::spawn_with_auth(auth, secret, settings).await
    }

    /// An app verifying tokens with `auth` (e.g. an RS256 public key);
    /// `secret` is what `sign` uses (meaningful only for HS256 configs).
    pub async fn spawn_with_auth(auth: AuthConfig, secret: String, settings: Settings) -> TestApp {
        Self::spawn_with_edge(auth, secret, settings, CorsOrigins::none()).await
    }

    /// An app allowing browsers from `origins` (CORS), as `BERTH_CORS_ORIGINS` would.
    pub async fn spawn_with_cors(origins: &str) -> TestApp {
        let secret = format!("test-secret-{}", uuid::Uuid::new_v4());
        let auth = AuthConfig { issuer: ISSUER.into(), audience: AUDIENCE.into(), keys: KeySource::Hs256Secret(secret.clone()), claims: Default::default() };
        let cors = CorsOrigins::parse(origins).expect("valid CORS origins");
        Self::spawn_with_edge(auth, secret, Settings::default(), cors).await
    }

    /// [`TestApp::spawn_with_auth`], allowing `cors` origins.
    pub async fn spawn_with_edge(auth: AuthConfig, secret: String, settings: Settings, cors: CorsOrigins) -> TestApp {
        Self::spawn_local(auth, secret, settings, |local| local.with_cors(cors)).await
    }

    /// An app whose functions write their EMF metrics into the returned capture (as they do to stdout in Lambda).
    pub async fn spawn_with_metrics() -> (TestApp, CapturedLogs) {
        let secret = format!("test-secret-{}", uuid::Uuid::new_v4());
        let auth = AuthConfig { issuer: ISSUER.into(), audience: AUDIENCE.into(), keys: KeySource::Hs256Secret(secret.clone()), claims: Default::default() };
        let metrics = CapturedLogs::default();
        let sink = berth_telemetry::EmfSink::writer(metrics.clone());
        (Self::spawn_local(auth, secret, Settings::default(), |local| local.with_metrics(sink)).await, metrics)
    }

    /// An app on a local Berth that `configure` finishes.
    async fn spawn_local(auth: AuthConfig, secret: String, settings: Settings, configure: impl FnOnce(LocalBerth) -> LocalBerth) -> TestApp {
        berth_aws::testing::require_localstack();
        let clients = AwsClients::from_env().await;
        let names = ResourceNames::unique("bt");
        let local = configure(LocalBerth::start(&clients, &names, &auth, settings).await.expect("Berth starts against LocalStack"));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (addr, _server) = local
            .serve("127.0.0.1:0".parse().expect("a socket address"), async {
                let _ = rx.await;
            })
            .await
            .expect("Berth binds a port");
        let workers = local.spawn_workers(clients.sqs.clone(), Duration::from_millis(500));
        TestApp {
            base: format!("http://{addr}"),
            http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("an HTTP client"),
            secret,
            clients,
            names,
            local,
            _workers: workers,
            _shutdown: tx,
        }
    }

    /// A token signed with this app's secret.
    pub fn sign(&self, claims: &Claims) -> String {
        issue_hs256(&self.secret, claims).expect("a signed token")
    }

    /// A one-hour token for `tenant` with `roles`.
    pub fn token(&self, tenant: &str, roles: &[&str]) -> String {
        self.sign(&claims_for(
            ISSUER,
            AUDIENCE,
            &format!("user-{}@example.com", &uuid::Uuid::new_v4().simple().to_string()[..8]),
            Some(tenant.into()),
            roles,
            Duration::from_secs(3600),
        ))
    }

    /// A token for a named user of `tenant`.
    pub fn user_token(&self, tenant: &str, sub: &str, roles: &[&str]) -> String {
        self.sign(&claims_for(ISSUER, AUDIENCE, sub, Some(tenant.into()), roles, Duration::from_secs(3600)))
    }

    pub fn platform_token(&self) -> String {
        self.sign(&claims_for(ISSUER, AUDIENCE, "operator@berth.example", None, &["platform_admin"], Duration::from_secs(3600)))
    }

    pub fn request(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let r = self.http.request(method, format!("{}{}", self.base, path));
        match token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.request(Method::GET, path, Some(token)).send().await.expect("the request is sent")
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Response {
        self.request(Method::POST, path, Some(token)).json(&body).send().await.expect("the request is sent")
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Response {
        self.request(Method::PATCH, path, Some(token)).json(&body).send().await.expect("the request is sent")
    }

    pub async fn put(&self, path: &str, token: &str) -> Response {
        self.request(Method::PUT, path, Some(token)).send().await.expect("the request is sent")
    }

    pub async fn delete(&self, path: &str, token: &str) -> Response {
        self.request(Method::DELETE, path, Some(token)).send().await.expect("the request is sent")
    }

    /// Onboards a tenant through the platform API; returns it with an admin token.
    pub async fn tenant(&self, name: &str) -> TestTenant {
        self.tenant_with_plan(name, json!({})).await
    }

    pub async fn tenant_with_plan(&self, name: &str, plan: Value) -> TestTenant {
        let body = json!({"name": name, "plan": plan});
        let created = expect_status(self.post("/platform/v1/tenants", &self.platform_token(), body).await, StatusCode::CREATED).await;
        let id = created["id"].as_str().expect("a tenant id").to_string();
        let admin = self.token(&id, &["admin"]);
        TestTenant { id, admin }
    }

    pub async fn environment(&self, t: &TestTenant, name: &str, classification: &str) -> Value {
        expect_status(self.post("/v1/environments", &t.admin, json!({"name": name, "classification": classification})).await, StatusCode::CREATED).await
    }

    pub async fn runtime(&self, t: &TestTenant, name: &str) -> Value {
        expect_status(self.post("/v1/runtimes", &t.admin, json!({"name": name})).await, StatusCode::CREATED).await
    }

    /// Registers an agent for `runtime` (as returned by POST /v1/runtimes); returns its credential.
    pub async fn register_agent(&self, runtime: &Value) -> String {
        let body = json!({"registration_token": runtime["registration_token"], "agent_version": "1.0.0"});
        let registered =
            expect_status(self.request(Method::POST, "/agent/v1/register", None).json(&body).send().await.expect("the request is sent"), StatusCode::CREATED)
                .await;
        registered["credential"].as_str().expect("a credential").to_string()
    }

    pub async fn heartbeat(&self, credential: &str) -> Response {
        self.request(Method::POST, "/agent/v1/heartbeat", Some(credential))
            .json(&json!({"agent_version": "1.0.0", "status": "ok", "running": []}))
            .send()
            .await
            .expect("the request is sent")
    }

    /// Creates a component with `content` (raw bytes; sent base64) referencing `references`.
    pub async fn component(&self, t: &TestTenant, name: &str, kind: &str, content: &[u8], references: &[&Value]) -> Value {
        let refs: Vec<&Value> = references.iter().map(|c| &c["id"]).collect();
        let body = json!({"name": name, "type": kind, "content": b64(content), "references": refs});
        expect_status(self.post("/v1/components", &t.admin, body).await, StatusCode::CREATED).await
    }

    /// Adds a revision with new content (references unchanged).
    pub async fn revise(&self, t: &TestTenant, component: &Value, content: &[u8]) -> Value {
        let path = format!("/v1/components/{}/revisions", component["id"].as_str().expect("a component id"));
        expect_status(self.post(&path, &t.admin, json!({"content": b64(content)})).await, StatusCode::CREATED).await
    }

    /// Packages `component`, with an explicit version when given.
    pub async fn package(&self, t: &TestTenant, component: &Value, version: Option<&str>) -> Value {
        let mut body = json!({"component_id": component["id"], "notes": "packaged by a test"});
        if let Some(v) = version {
            body["version"] = json!(v);
        }
        expect_status(self.post("/v1/packages", &t.admin, body).await, StatusCode::CREATED).await
    }

    /// Downloads a package archive through its presigned URL.
    /// Holds packages `building`: the packager takes no build until `resume_package_builds`.
    pub async fn pause_package_builds(&self) {
        self._workers.pause_package_builds().await;
    }

    pub fn resume_package_builds(&self) {
        self._workers.resume_package_builds();
    }

    /// Polls the package until its status is `status` (`ready` or `failed`); returns it then.
    pub async fn wait_for_package(&self, t: &TestTenant, package: &Value, status: &str) -> Value {
        let path = format!("/v1/packages/{}", package["id"].as_str().expect("a package id"));
        eventually(&format!("package {path} is {status}"), || async {
            let now = expect_status(self.get(&path, &t.admin).await, StatusCode::OK).await;
            if now["status"] == status { Ok(now) } else { Err(now.to_string()) }
        })
        .await
    }

    pub async fn download(&self, t: &TestTenant, package: &Value) -> Vec<u8> {
        let path = format!("/v1/packages/{}/download", package["id"].as_str().expect("a package id"));
        let link = expect_status(self.get(&path, &t.admin).await, StatusCode::OK).await;
        let url = link["url"].as_str().expect("a url");
        let response = self.http.get(url).send().await.expect("the download is sent");
        assert_eq!(response.status(), StatusCode::OK, "the presigned URL works");
        response.bytes().await.expect("archive bytes").to_vec()
    }

    /// Requests a deployment; returns it (201 expected).
    pub async fn deploy(&self, t: &TestTenant, package: &Value, env: &Value, notes: &str) -> Value {
        let body = json!({"package_id": package["id"], "environment_id": env["id"], "notes": notes});
        expect_status(self.post("/v1/deployments", &t.admin, body).await, StatusCode::CREATED).await
    }

    /// Waits (up to 60 s) until the deployment reaches `status`; shows its timeline if it does not.
    pub async fn wait_for_status(&self, t: &TestTenant, deployment: &Value, status: &str) -> Value {
        let id = deployment["id"].as_str().expect("a deployment id");
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let now = expect_status(self.get(&format!("/v1/deployments/{id}"), &t.admin).await, StatusCode::OK).await;
            if now["status"] == status {
                return now;
            }
            if std::time::Instant::now() > deadline {
                let events = self.get(&format!("/v1/deployments/{id}/events"), &t.admin).await.text().await.unwrap_or_default();
                let targets = self.get(&format!("/v1/deployments/{id}/targets"), &t.admin).await.text().await.unwrap_or_default();
                panic!("deployment {id} is {} after 60 s, not {status}\ntargets: {targets}\nevents: {events}", now["status"]);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The environment's active versions.
    pub async fn active(&self, t: &TestTenant, env: &Value) -> Vec<Value> {
        let path = format!("/v1/environments/{}/active", env["id"].as_str().expect("an environment id"));
        let list = expect_status(self.get(&path, &t.admin).await, StatusCode::OK).await;
        list["items"].as_array().expect("items").clone()
    }

    pub async fn attach(&self, t: &TestTenant, env: &Value, runtime: &Value) {
        let path = format!("/v1/environments/{}/runtimes/{}", env["id"].as_str().expect("an env id"), runtime["id"].as_str().expect("a runtime id"));
        let status = self.put(&path, &t.admin).await.status();
        assert!(status == StatusCode::CREATED || status == StatusCode::OK, "attach: {status}");
    }

    /// `Test` and `Production`, with the runtime `atom` attached to both.
    pub async fn test_and_production(&self, t: &TestTenant) -> (Value, Value, Value) {
        let test = self.environment(t, "Test", "test").await;
        let prod = self.environment(t, "Production", "production").await;
        let atom = self.runtime(t, "atom").await;
        self.attach(t, &test, &atom).await;
        self.attach(t, &prod, &atom).await;
        (test, prod, atom)
    }

    /// The URL of `runtime`'s job queue (as returned by POST /v1/runtimes).
    pub async fn runtime_queue_url(&self, runtime: &Value) -> String {
        let id = runtime["id"].as_str().expect("a runtime id").parse().expect("a runtime id");
        let (queue, _) = berth_aws::keys::runtime_queue_names(&self.names.queue_prefix, id);
        let found = self.clients.sqs.get_queue_url().queue_name(&queue).send().await.expect("the runtime's queue exists");
        found.queue_url().expect("a queue url").to_string()
    }

    /// How many messages the queue at `url` holds: (visible, in flight).
    pub async fn queue_depth(&self, url: &str) -> (u64, u64) {
        let (visible, in_flight) = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible");
        let out = self.clients.sqs.get_queue_attributes().queue_url(url).attribute_names(visible.into()).attribute_names(in_flight.into()).send().await;
        let attributes = out.expect("the queue's attributes are read").attributes.unwrap_or_default();
        let count = |name: &str| attributes.get(&name.into()).and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{name} of {url}: {attributes:?}"));
        (count(visible), count(in_flight))
    }

    /// Replaces `env`'s policy (as the admin, with the current ETag).
    pub async fn set_policy(&self, t: &TestTenant, env: &Value, policy: Value) -> Value {
        let path = format!("/v1/environments/{}/policy", id_of(env));
        let current = self.get(&path, &t.admin).await;
        let etag = current.headers().get("etag").and_then(|v| v.to_str().ok()).expect("an ETag").to_string();
        let response = self.request(Method::PUT, &path, Some(&t.admin)).header("if-match", etag).json(&policy).send().await.expect("the request is sent");
        expect_status(response, StatusCode::OK).await
    }

    /// Creates a webhook on `component` in `env` doing `action` (as the
    /// admin); returns it with its `secret`, shown this once.
    pub async fn webhook(&self, t: &TestTenant, env: &Value, component: &Value, action: &str) -> Value {
        let body = json!({"name": format!("{action} to {}", env["name"].as_str().unwrap_or("env")), "action": action,
            "environment_id": env["id"], "component_id": component["id"]});
        expect_status(self.post("/v1/webhooks", &t.admin, body).await, StatusCode::CREATED).await
    }

    /// Sends `body` to `hook`'s delivery URL as delivery `delivery_id`, signed now with `secret`.
    pub async fn deliver(&self, hook: &Value, secret: &str, delivery_id: &str, body: &str) -> Response {
        let signature = berth_signature(secret, unix_now(), body.as_bytes());
        self.deliver_signed(hook, delivery_id, &signature, body.as_bytes().to_vec()).await
    }

    /// Sends `body` to `hook`'s delivery URL with this `Berth-Signature`.
    pub async fn deliver_signed(&self, hook: &Value, delivery_id: &str, signature: &str, body: Vec<u8>) -> Response {
        let path = format!("/hooks/v1/{}", id_of(hook));
        let request = self.request(Method::POST, &path, None).header("content-type", "application/json");
        request.header("berth-delivery", delivery_id).header("berth-signature", signature).body(body).send().await.expect("the request is sent")
    }

    /// The signed status call of a delivery (signed now, over `"<t>.<delivery id>"`).
    pub async fn delivery_status(&self, hook: &Value, secret: &str, delivery_id: &str) -> Response {
        let path = format!("/hooks/v1/{}/deliveries/{delivery_id}", id_of(hook));
        let signature = berth_signature(secret, unix_now(), delivery_id.as_bytes());
        self.request(Method::GET, &path, None).header("berth-signature", signature).send().await.expect("the request is sent")
    }

    /// A webhook's delivery history (newest first), as its admin reads it.
    pub async fn deliveries(&self, t: &TestTenant, hook: &Value) -> Vec<Value> {
        let list = expect_status(self.get(&format!("/v1/webhooks/{}/deliveries?limit=100", id_of(hook)), &t.admin).await, StatusCode::OK).await;
        list["items"].as_array().expect("items").clone()
    }

    /// Every audit event of the tenant, oldest first.
    pub async fn audit(&self, t: &TestTenant) -> Vec<Value> {
        let mut events = vec![];
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/v1/audit?limit=100&cursor={c}"),
                None => "/v1/audit?limit=100".to_string(),
            };
            let page = expect_status(self.get(&path, &t.admin).await, StatusCode::OK).await;
            events.extend(page["items"].as_array().expect("items").iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return events,
            }
        }
    }
}

/// The clock in unix seconds, as a sender stamps a signature.
pub fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The hex HMAC-SHA256 of `message` keyed by `key`.
pub fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

/// A `Berth-Signature` as docs/webhooks.md tells a sender to make it (and
/// computed here, not with Berth's code): `t=<t>,v1=<hex HMAC-SHA256, keyed
/// by the whole secret, of "<t>.<payload>">`.
pub fn berth_signature(secret: &str, t: i64, payload: &[u8]) -> String {
    let signed = [t.to_string().as_bytes(), b".", payload].concat();
    format!("t={t},v1={}", hmac_sha256_hex(secret.as_bytes(), &signed))
}

/// Polls `check` every 200 ms until it answers `Ok`, for at most 60 s; then
/// panics with `what` and the last `Err` (what was seen instead).
pub async fn eventually<T, F: std::future::Future<Output = Result<T, String>>>(what: &str, mut check: impl FnMut() -> F) -> T {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        match check().await {
            Ok(done) => return done,
            Err(seen) if std::time::Instant::now() > deadline => panic!("not so after 60 s: {what}; last seen: {seen}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Asserts the status (showing the body when it differs) and returns the JSON body.
pub async fn expect_status(response: Response, status: StatusCode) -> Value {
    let actual = response.status();
    let text = response.text().await.expect("a body");
    assert_eq!(actual, status, "unexpected status; body: {text}");
    if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) }
}

/// Asserts a problem+json response with `status` and `code`; returns the problem.
pub async fn expect_problem(response: Response, status: StatusCode, code: &str) -> Value {
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let problem = expect_status(response, status).await;
    assert_eq!(content_type, "application/problem+json", "problem content type; body: {problem}");
    assert_eq!(problem["code"], code, "problem code; body: {problem}");
    assert_eq!(problem["status"], status.as_u16(), "problem status; body: {problem}");
    for field in ["type", "title", "detail"] {
        assert!(problem[field].is_string(), "problem has {field}: {problem}");
    }
    assert!(problem["errors"].is_array(), "problem has errors: {problem}");
    problem
}

/// Asserts a 422 `validation_failed` whose first error names `field` and says what is wrong; returns the problem.
pub async fn expect_invalid_field(response: Response, field: &str) -> Value {
    let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], field, "the first error names {field}: {problem}");
    assert!(problem["errors"][0]["message"].as_str().is_some_and(|m| !m.is_empty()), "the error says what is wrong: {problem}");
    problem
}

/// The id of a JSON resource.
pub fn id_of(resource: &Value) -> String {
    resource["id"].as_str().unwrap_or_else(|| panic!("a resource with an id: {resource}")).to_string()
}

pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// The entries of a tar.gz archive: path -> bytes.
pub fn unpack(archive: &[u8]) -> std::collections::BTreeMap<String, Vec<u8>> {
    use std::io::Read;
    let mut entries = std::collections::BTreeMap::new();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    for entry in tar.entries().expect("a tar archive") {
        let mut entry = entry.expect("a tar entry");
        let path = entry.path().expect("a path").to_string_lossy().to_string();
        let mut bytes = vec![];
        entry.read_to_end(&mut bytes).expect("entry bytes");
        entries.insert(path, bytes);
    }
    entries
}

/// A real `berth-agent` process, with its own state directory.
pub struct Agent {
    pub state: tempfile::TempDir,
    api: String,
    registration_token: String,
    apply_command: Option<String>,
    /// More environment variables for the process (settings a test needs).
    env: Vec<(String, String)>,
    child: Option<tokio::process::Child>,
}

/// The agent binary `make test` builds next to the test binaries (in
/// `target/<profile>`, above their `deps`), or `make bench` beside the bench.
pub fn agent_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let beside = exe.parent().expect("target/<profile>");
    let dir = if beside.ends_with("deps") { beside.parent().expect("target/<profile>") } else { beside };
    let bin = dir.join("berth-agent");
    assert!(bin.exists(), "{} is missing: build it with `cargo build -p berth-agent` (make test does)", bin.display());
    bin
}

impl Agent {
    /// Starts an agent for `runtime` (as returned by POST /v1/runtimes).
    pub fn start(app: &TestApp, runtime: &Value, apply_command: Option<&str>) -> Agent {
        Self::start_with_env(app, runtime, apply_command, &[])
    }

    /// Starts an agent with more environment variables (e.g. `BERTH_AGENT_JOB_SOURCE`).
    pub fn start_with_env(app: &TestApp, runtime: &Value, apply_command: Option<&str>, env: &[(&str, &str)]) -> Agent {
        let mut agent = Agent {
            state: tempfile::tempdir().expect("a state dir"),
            api: app.base.clone(),
            registration_token: runtime["registration_token"].as_str().expect("a registration token").to_string(),
            apply_command: apply_command.map(str::to_string),
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            child: None,
        };
        agent.restart();
        agent
    }

    /// (Re)starts the process on the same state directory.
    pub fn restart(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.state.path().join("agent.log")).expect("a log file");
        let mut cmd = tokio::process::Command::new(agent_binary());
        cmd.arg("run")
            .env("BERTH_API_URL", &self.api)
            .env("BERTH_AGENT_STATE_DIR", self.state.path())
            .env("BERTH_REGISTRATION_TOKEN", &self.registration_token)
            .env("BERTH_POLL_WAIT", "1")
            .env("BERTH_HEARTBEAT_SECS", "1")
            .env("RUST_LOG", "info")
            .stdout(log.try_clone().expect("a log handle"))
            .stderr(log)
            .kill_on_drop(true);
        if let Some(c) = &self.apply_command {
            cmd.env("BERTH_APPLY_COMMAND", c);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        self.child = Some(cmd.spawn().expect("the agent starts"));
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// What the agent runs for `component` in `env`: its `.berth.json`, or
    /// `None` when there is none. A file that is there but cannot be read or
    /// parsed is not "not installed": it panics, naming the path and the cause.
    pub fn installed(&self, env: &Value, component: &Value) -> Option<Value> {
        let id = |v: &Value| v["id"].as_str().unwrap_or_else(|| panic!("an id in {v}")).to_string();
        let path = self.state.path().join("active").join(id(env)).join(id(component)).join(".berth.json");
        match std::fs::read(&path) {
            Ok(bytes) => Some(serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{} is not the agent's JSON: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => panic!("cannot read {}: {e}", path.display()),
        }
    }

    /// The content the agent unpacked for a bundled component.
    pub fn file(&self, env: &Value, root: &Value, bundled: &Value) -> Option<Vec<u8>> {
        let path = self
            .state
            .path()
            .join("active")
            .join(env["id"].as_str()?)
            .join(root["id"].as_str()?)
            .join("components")
            .join(bundled["id"].as_str()?)
            .join("content");
        std::fs::read(path).ok()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.state.path().join("agent.log")).unwrap_or_default()
    }
}

/// Log lines the server writes, kept for the tests that check no secret is
/// ever logged. Install `subscriber()` globally (`init`) or for one thread
/// (`set_default`), then read `text()`.
#[derive(Clone, Default)]
pub struct CapturedLogs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("the log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLogs {
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().expect("the log buffer").clone()).expect("UTF-8 logs")
    }

    /// A subscriber writing every line `filter` lets through into this capture.
    pub fn subscriber(&self, filter: &str) -> impl tracing::Subscriber + Send + Sync + 'static {
        let writer = self.clone();
        // Plain text: no colour codes between a field's name and its value.
        tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::new(filter)).with_ansi(false).with_writer(move || writer.clone()).finish()
    }
}
