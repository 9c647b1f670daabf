//! Fault injection: a storm of deploys, approvals and agent events while
//! LocalStack's DynamoDB refuses a share of calls with
//! `ProvisionedThroughputExceededException` (its `DYNAMODB_ERROR_PROBABILITY`).
//! Clients and simulated agents behave as documented: they retry a 503 after
//! its `Retry-After`. At the end, with faults off, nothing may be stuck or
//! half-written, and the audit chain must verify.
//!
//! The error probability is global to a LocalStack instance, so this suite
//! runs against its own (`tests/faults/run.sh`, from `make test`), started
//! with `ENABLE_CONFIG_UPDATES=1` so the probability can be switched at
//! runtime: off for the set-up, on for the storm, off again for the checks.

use aws_sdk_dynamodb::types::AttributeValue;
use berth_domain::usecases::Settings;
use berth_tests::{TestApp, TestTenant, expect_status};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Share of DynamoDB calls that fail during the storm (each after the SDK's
/// own three attempts, so a request of a dozen calls fails now and then).
const DEFAULT_PROBABILITY: f64 = 0.15;
const COMPONENTS: usize = 4;
const RUNTIMES: usize = 3;
/// How long a deployment may take, faults and redeliveries included (a failed
/// dispatch comes back after the deployments queue's 60 s visibility timeout).
const SETTLE_WITHIN: Duration = Duration::from_secs(100);

/// LocalStack's runtime configuration endpoint of the instance under test.
struct Faults {
    endpoint: String,
    http: reqwest::Client,
}

impl Faults {
    fn new() -> Self {
        let endpoint = berth_aws::testing::require_localstack();
        Self { endpoint: endpoint.trim_end_matches('/').to_string(), http: reqwest::Client::new() }
    }

    async fn set(&self, probability: f64) {
        let response = self
            .http
            .post(format!("{}/_localstack/config", self.endpoint))
            .json(&json!({"variable": "DYNAMODB_ERROR_PROBABILITY", "value": probability}))
            .send()
            .await
            .expect("LocalStack answers");
        let status = response.status();
        let body: Value = response.json().await.unwrap_or_default();
        assert!(
            status.is_success() && body["value"].as_f64() == Some(probability),
            "{} does not take runtime configuration ({status}: {body}): run this suite with tests/faults/run.sh, \
             which starts its own LocalStack with ENABLE_CONFIG_UPDATES=1",
            self.endpoint
        );
    }
}

/// What the clients saw over the whole storm.
#[derive(Default)]
struct Seen {
    unavailable: AtomicUsize,
    requests: AtomicUsize,
    /// Every 5xx other than a well-formed 503: none is allowed.
    server_errors: Mutex<Vec<String>>,
}

/// A client that behaves as the README asks: a 503 is retried after its
/// `Retry-After`, and so is a key still in progress.
#[derive(Clone)]
struct Client {
    base: String,
    http: reqwest::Client,
    seen: Arc<Seen>,
}

impl Client {
    async fn send(&self, method: Method, path: &str, token: &str, body: Option<&Value>, idempotency_key: Option<&str>) -> (StatusCode, Value) {
        for _ in 0..60 {
            self.seen.requests.fetch_add(1, Ordering::Relaxed);
            let mut request = self.http.request(method.clone(), format!("{}{path}", self.base)).bearer_auth(token);
            if let Some(b) = body {
                request = request.json(b);
            }
            if let Some(k) = idempotency_key {
                request = request.header("idempotency-key", k);
            }
            let response = match request.send().await {
                Ok(r) => r,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            let status = response.status();
            let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
            let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
            let text = response.text().await.unwrap_or_default();
            let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
            if status == StatusCode::SERVICE_UNAVAILABLE {
                let well_formed = content_type == "application/problem+json" && value["code"] == "service_unavailable" && retry_after.is_some();
                if !well_formed {
                    self.seen.server_errors.lock().expect("the log").push(format!("{method} {path}: a 503 without problem or Retry-After: {text}"));
                }
                self.seen.unavailable.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_secs(retry_after.unwrap_or(1))).await;
                continue;
            }
            if status.is_server_error() {
                self.seen.server_errors.lock().expect("the log").push(format!("{method} {path}: {status} {text}"));
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            if status == StatusCode::CONFLICT && value["code"] == "idempotency_in_progress" {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            return (status, value);
        }
        panic!("{method} {path} did not get an answer in 60 tries");
    }

    async fn get(&self, path: &str, token: &str) -> Value {
        let (status, value) = self.send(Method::GET, path, token, None, None).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {value}");
        value
    }
}

/// A simulated agent over the agent API: heartbeats, long polls, and reports
/// every phase of each job (some end failed and restored; some reports are
/// sent twice, as after a lost answer). Unlike the reference agent it runs
/// its jobs side by side, so that events of one runtime race too.
async fn agent(client: Client, credential: String, stop: Arc<AtomicBool>, jobs_done: Arc<AtomicUsize>) {
    let mut last_beat: Option<Instant> = None;
    let mut running = vec![];
    while !stop.load(Ordering::Relaxed) {
        if last_beat.is_none_or(|t| t.elapsed() > Duration::from_secs(2)) {
            let beat = json!({"agent_version": "1.0.0", "status": "ok", "running": []});
            let (status, body) = client.send(Method::POST, "/agent/v1/heartbeat", &credential, Some(&beat), None).await;
            assert!(status.is_success(), "heartbeat: {status} {body}");
            last_beat = Some(Instant::now());
        }
        let (status, job) = client.send(Method::GET, "/agent/v1/jobs/next?wait=1", &credential, None, None).await;
        if status == StatusCode::NO_CONTENT {
            continue;
        }
        assert_eq!(status, StatusCode::OK, "jobs/next: {job}");
        running.push(tokio::spawn(run_job(client.clone(), credential.clone(), job, jobs_done.clone())));
    }
    for job in running {
        job.await.expect("a job runs to its end");
    }
}

async fn run_job(client: Client, credential: String, job: Value, jobs_done: Arc<AtomicUsize>) {
    let job_id = job["job_id"].as_str().expect("a job id").to_string();
    // One job in eight fails and is restored; one in five repeats its last report.
    let seed = job_id.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    let ending: &[&str] = if seed % 8 == 0 { &["failed", "restored"] } else { &["deployed"] };
    let phases = ["delivered", "downloading", "backing_up", "applying"].iter().chain(ending);
    let path = format!("/agent/v1/jobs/{job_id}/events");
    for phase in phases {
        let event = json!({"phase": phase, "message": if *phase == "failed" { "the apply command failed" } else { "" }});
        let times = if seed % 5 == 0 && ending.last() == Some(phase) { 2 } else { 1 };
        let mut proceed = true;
        for _ in 0..times {
            let (status, answer) = client.send(Method::POST, &path, &credential, Some(&event), None).await;
            assert_eq!(status, StatusCode::OK, "{phase}: {answer}");
            proceed = answer["proceed"].as_bool().unwrap_or(false);
        }
        // A failed job is restored all the same; anything else stops when told.
        if !proceed && *phase != "failed" {
            break;
        }
    }
    jobs_done.fetch_add(1, Ordering::Relaxed);
}

const TERMINAL: &[&str] = &["succeeded", "failed", "partially_failed", "rolled_back", "superseded", "cancelled", "rejected"];
const RETRYABLE: &[&str] = &["failed", "partially_failed", "rolled_back"];

/// Polls until the deployment is terminal; `None` if it is not within `SETTLE_WITHIN`.
async fn settled(client: &Client, token: &str, id: &str) -> Option<String> {
    let deadline = Instant::now() + SETTLE_WITHIN;
    loop {
        let d = client.get(&format!("/v1/deployments/{id}"), token).await;
        let status = d["status"].as_str().expect("a status").to_string();
        if TERMINAL.contains(&status.as_str()) {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Requests a deployment (with an `Idempotency-Key`, as a careful client
/// does); `None` while an earlier one of the component is still in flight.
async fn deploy(client: &Client, t: &TestTenant, package: &Value, env: &Value) -> Option<Value> {
    let body = json!({"package_id": package["id"], "environment_id": env["id"], "notes": "storm"});
    let key = uuid::Uuid::new_v4().to_string();
    let (status, d) = client.send(Method::POST, "/v1/deployments", &t.admin, Some(&body), Some(&key)).await;
    if status == StatusCode::CONFLICT && d["code"] == "deployment_in_progress" {
        return None;
    }
    assert_eq!(status, StatusCode::CREATED, "deploy: {d}");
    Some(d)
}

/// One component's life: v1 to Test, v1 to Production (approved by someone
/// else), v2 to Test; a failed deployment is retried once. Returns the
/// deployments that did not settle in time (the story stops at the first).
async fn component_story(client: Client, t: TestTenant, approver: String, packages: (Value, Value), test: Value, prod: Value) -> Vec<String> {
    let mut stuck = vec![];
    for (package, env) in [(&packages.0, &test), (&packages.0, &prod), (&packages.1, &test)] {
        let Some(d) = deploy(&client, &t, package, env).await else {
            assert!(!stuck.is_empty(), "a deployment was refused as in progress while its predecessor had settled");
            break;
        };
        let id = d["id"].as_str().expect("a deployment id").to_string();
        if d["status"] == "pending_approval" {
            let decision = json!({"decision": "approve", "comment": "looks good"});
            let (status, answer) = client.send(Method::POST, &format!("/v1/deployments/{id}/approvals"), &approver, Some(&decision), None).await;
            // 409 already_decided: a retry of an approval stored before its 503.
            let retried_decision = status == StatusCode::CONFLICT && answer["code"] == "already_decided";
            assert!(status == StatusCode::CREATED || retried_decision, "approve: {status} {answer}");
        }
        let mut outcome = settled(&client, &t.admin, &id).await;
        if outcome.as_deref().is_some_and(|s| RETRYABLE.contains(&s)) {
            let (status, answer) = client.send(Method::POST, &format!("/v1/deployments/{id}/retry"), &t.admin, Some(&json!({})), None).await;
            assert!(status == StatusCode::OK || status == StatusCode::CONFLICT, "retry: {status} {answer}");
            outcome = settled(&client, &t.admin, &id).await;
        }
        if outcome.is_none() {
            stuck.push(id);
            break;
        }
    }
    stuck
}

/// Every item of the table, read directly (faults off).
async fn scan(app: &TestApp) -> Vec<HashMap<String, AttributeValue>> {
    let mut items = vec![];
    let mut start = None;
    loop {
        let out = app.clients.dynamo.scan().table_name(&app.names.table).set_exclusive_start_key(start).send().await.expect("a scan");
        items.extend(out.items.unwrap_or_default());
        start = out.last_evaluated_key;
        if start.is_none() {
            return items;
        }
    }
}

fn text<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> &'a str {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str).unwrap_or_else(|| panic!("an item without {name}: {item:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_storm_of_deploys_approvals_and_agent_events_under_dynamodb_faults_leaves_nothing_stuck_or_half_written() {
    let probability = std::env::var("BERTH_FAULT_PROBABILITY").ok().and_then(|p| p.parse().ok()).unwrap_or(DEFAULT_PROBABILITY);
    let faults = Faults::new();
    faults.set(0.0).await;
    let started = Instant::now();

    // Set-up, faults off.
    let settings = Settings { job_deadline: chrono::Duration::seconds(60), ..Settings::default() };
    let app = TestApp::spawn_with(settings).await;
    let acme = app.tenant("Storm").await;
    let approver = app.user_token(&acme.id, "approver@storm.example", &["approver"]);
    let test = app.environment(&acme, "Test", "test").await;
    let prod = app.environment(&acme, "Production", "production").await;
    let policy_path = format!("/v1/environments/{}/policy", prod["id"].as_str().expect("an id"));
    let etag = app.get(&policy_path, &acme.admin).await.headers().get("etag").and_then(|v| v.to_str().ok()).expect("an etag").to_string();
    let put = app.request(Method::PUT, &policy_path, Some(&acme.admin)).header("if-match", etag).json(&json!({"required_approvals": 1})).send().await;
    expect_status(put.expect("the request is sent"), StatusCode::OK).await;
    let mut credentials = vec![];
    for i in 0..RUNTIMES {
        let runtime = app.runtime(&acme, &format!("atom-{i}")).await;
        app.attach(&acme, &test, &runtime).await;
        app.attach(&acme, &prod, &runtime).await;
        credentials.push(app.register_agent(&runtime).await);
    }
    let mut packages = vec![];
    for i in 0..COMPONENTS {
        let component = app.component(&acme, &format!("Process {i}"), "process", format!("v1 of {i}").as_bytes(), &[]).await;
        let v1 = app.package(&acme, &component, Some("1.0.0")).await;
        app.revise(&acme, &component, format!("v2 of {i}").as_bytes()).await;
        let v2 = app.package(&acme, &component, Some("2.0.0")).await;
        packages.push((v1, v2));
    }
    let seen = Arc::new(Seen::default());
    let client =
        Client { base: app.base.clone(), http: reqwest::Client::builder().timeout(Duration::from_secs(60)).build().expect("a client"), seen: seen.clone() };

    // The storm.
    faults.set(probability).await;
    let stop = Arc::new(AtomicBool::new(false));
    let jobs_done = Arc::new(AtomicUsize::new(0));
    let agents: Vec<_> = credentials.into_iter().map(|c| tokio::spawn(agent(client.clone(), c, stop.clone(), jobs_done.clone()))).collect();
    let stories: Vec<_> =
        packages.into_iter().map(|p| tokio::spawn(component_story(client.clone(), acme.clone(), approver.clone(), p, test.clone(), prod.clone()))).collect();
    let mut stuck = vec![];
    for story in stories {
        stuck.extend(story.await.expect("a component's story runs to its end"));
    }
    let storm_took = started.elapsed();

    // Faults off: what is still moving may finish; then nothing may be left in flight.
    faults.set(0.0).await;
    let mut still_stuck = vec![];
    for id in &stuck {
        if settled(&client, &acme.admin, id).await.is_none() {
            still_stuck.push(id.clone());
        }
    }
    stop.store(true, Ordering::Relaxed);
    for a in agents {
        a.await.expect("an agent runs to its end");
    }

    let mut problems = vec![];
    for id in &still_stuck {
        let d = client.get(&format!("/v1/deployments/{id}"), &acme.admin).await;
        let targets = client.get(&format!("/v1/deployments/{id}/targets"), &acme.admin).await;
        let events = client.get(&format!("/v1/deployments/{id}/events?limit=100"), &acme.admin).await;
        problems.push(format!("deployment {id} is stuck {}: targets {targets}, events {events}", d["status"]));
    }

    // No half-written item: every record is whole and consistent with the others.
    let items = scan(&app).await;
    let mut deployments: HashMap<String, (String, String, String, bool)> = HashMap::new();
    let mut waits = vec![];
    for item in items.iter().filter(|i| text(i, "pk").ends_with("#DEP") && text(i, "sk").starts_with("D#")) {
        for field in ["id", "kind", "status", "environment_id", "component_id", "package_id", "version", "digest", "created_at"] {
            if !item.contains_key(field) {
                problems.push(format!("deployment item without {field}: {item:?}"));
            }
        }
        let status = text(item, "status").to_string();
        if !TERMINAL.contains(&status.as_str()) {
            problems.push(format!("deployment {} is still {status}", text(item, "id")));
        }
        let only_runtime = item.contains_key("only_runtime");
        let at = |f: &str| item.get(f).and_then(|v| v.as_s().ok()).and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
        if let (Some(created), Some(started), Some(finished)) = (at("created_at"), at("started_at"), at("finished_at")) {
            waits.push(((started - created).num_milliseconds() as f64 / 1000.0, (finished - started).num_milliseconds() as f64 / 1000.0));
        }
        deployments
            .insert(text(item, "id").to_string(), (status, text(item, "environment_id").to_string(), text(item, "component_id").to_string(), only_runtime));
    }
    let mut targets_of: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for item in &items {
        let pk = text(item, "pk");
        if pk.ends_with("#INFLIGHT") {
            let holder = text(item, "deployment_id");
            match deployments.get(holder) {
                Some((status, ..)) if !TERMINAL.contains(&status.as_str()) => {}
                Some((status, ..)) => problems.push(format!("the lock on component {} is held by deployment {holder}, which is {status}", text(item, "sk"))),
                None => problems.push(format!("the lock on component {} names a deployment that does not exist: {holder}", text(item, "sk"))),
            }
        } else if pk.ends_with("#TGT") {
            let d = text(item, "deployment_id").to_string();
            if !deployments.contains_key(&d) {
                problems.push(format!("a target of a deployment that does not exist: {item:?}"));
            }
            targets_of.entry(d).or_default().push((text(item, "sk").to_string(), text(item, "state").to_string()));
        } else if pk.ends_with("#JOB") && !deployments.contains_key(text(item, "deployment_id")) {
            problems.push(format!("a job of a deployment that does not exist: {item:?}"));
        } else if pk.ends_with("#ACTIVE") {
            let d = text(item, "deployment_id");
            match deployments.get(d) {
                Some((status, ..)) if status == "succeeded" => {}
                other => problems.push(format!("an active version from deployment {d}, which is {other:?}")),
            }
        }
    }
    // Every deployment still holding the environment's lock would show above; every
    // finished one has only settled targets, and a succeeded one only deployed targets.
    let settled_states: HashSet<&str> = ["deployed", "failed", "restored"].into();
    for (id, (status, ..)) in &deployments {
        for (runtime, state) in targets_of.get(id).map(Vec::as_slice).unwrap_or_default() {
            if !settled_states.contains(state.as_str()) || (status == "succeeded" && state != "deployed") {
                problems.push(format!("deployment {id} is {status} but its target on runtime {runtime} is {state}"));
            }
        }
    }

    let verify = client.get("/v1/audit/verify", &acme.admin).await;
    if verify["ok"] != true {
        problems.push(format!("the audit chain does not verify: {verify}"));
    }
    let server_errors = seen.server_errors.lock().expect("the log").clone();
    let by_status = deployments.values().fold(HashMap::<&str, usize>::new(), |mut m, (s, ..)| {
        *m.entry(s.as_str()).or_default() += 1;
        m
    });
    waits.sort_by(|a, b| (b.0 + b.1).total_cmp(&(a.0 + a.1)));
    println!("seconds to dispatch and to run, slowest first: {waits:?}");
    println!(
        "fault probability {probability}: {} deployments {by_status:?}, {} jobs run by {RUNTIMES} agents, {} requests, {} answered 503 and retried, \
         {} other 5xx; the storm took {storm_took:?}, all of it {:?}; audit: {verify}",
        deployments.len(),
        jobs_done.load(Ordering::Relaxed),
        seen.requests.load(Ordering::Relaxed),
        seen.unavailable.load(Ordering::Relaxed),
        server_errors.len(),
        started.elapsed(),
    );
    assert!(server_errors.is_empty(), "only well-formed 503s may be 5xx:\n{}", server_errors.join("\n"));
    assert!(problems.is_empty(), "{} problem(s):\n{}", problems.len(), problems.join("\n"));
    assert_eq!(deployments.len(), 3 * COMPONENTS, "every requested deployment was recorded once");
    assert!(seen.unavailable.load(Ordering::Relaxed) > 0, "the faults reached the clients as 503s (else this test proved nothing)");
}
