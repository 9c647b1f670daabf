//! `make bench`: performance figures for Berth, run against LocalStack.
//!
//! Each figure comes from a fixed number of iterations (scaled by
//! `BERTH_BENCH_SCALE`, default 1) and every phase also stops at a time limit
//! (`BERTH_BENCH_PHASE_SECS`, default 120), so the run always ends by itself.
//! All HTTP traffic goes to the harness's Berth on 127.0.0.1, which talks to
//! LocalStack at `AWS_ENDPOINT_URL`. `BERTH_BENCH_PHASES` (comma-separated:
//! init, jwt, me, throughput, heartbeat, webhooks, idle, calls, fanout,
//! latency, audit, memory) runs only those.
//!
//! Every AWS request is recorded (shared/aws/src/calls.rs): the calls phase
//! counts each operation's against its design minimum; fan-out deploys to
//! 1..1000 runtimes whose agents are simulated in this process; latency puts
//! two handlers against the raw DynamoDB calls; throughput races writers for
//! one tenant's audit chain. Each judged figure is a row of the table printed
//! at the end and of target/bench/results.json; `plot.svg` beside it draws
//! the series.
//!
//! The audit phase seeds a chain of 100 000 events (scaled) straight into the
//! table and times a full verification of it through the API.
//!
//! The numbers measure this machine and LocalStack (a single Python process
//! emulating DynamoDB and SQS): compare them between commits, do not read
//! them as predictions of latency in AWS.

mod calls;
mod emulator;
mod fanout;
mod idle;
mod init;
mod latency;
mod memory;
mod plot;
mod report;
mod rss;
mod throughput;

use berth_tests::{AUDIENCE, ISSUER, TestApp, TestTenant, expect_status, id_of};
use berth_web::auth::{KeySource, claims_for, issue_hs256};
use berth_web::{AuthConfig, JwtVerifier};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use report::Report;
use reqwest::{Response, StatusCode};
use serde_json::json;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

const RS256_PRIVATE: &str = include_str!("../fixtures/rs256-private.pem");
const RS256_PUBLIC: &str = include_str!("../fixtures/rs256-public.pem");

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let bench = Bench::from_env()?;
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!("Berth benchmark: Berth on 127.0.0.1 against LocalStack on this machine ({cores} cores).");
    println!("Figures are for comparison between commits on the same machine, not predictions of AWS latency.");
    println!("scale {} (BERTH_BENCH_SCALE), each phase capped at {} s (BERTH_BENCH_PHASE_SECS)\n", bench.scale, bench.phase_limit.as_secs());
    let mut report = Report::default();
    report.machine.scale = bench.scale;

    // First, before the phases below start a local Berth on this machine.
    if bench.runs("init") {
        init::run(&bench, &mut report).await?;
    }

    if bench.runs("jwt") {
        jwt(&bench).await?;
    }

    // Before the clients are built: every AWS request is recorded, for the calls and fan-out phases.
    berth_aws::calls::start_recording();
    let app = Arc::new(TestApp::spawn().await);
    if bench.runs("me") {
        me(&bench, &app).await;
    }
    if bench.runs("throughput") {
        throughput::throughput(&bench, &app, &mut report).await?;
    }
    if bench.runs("heartbeat") {
        heartbeat(&bench, &app).await;
    }
    if bench.runs("webhooks") {
        webhooks(&bench, &app).await;
    }
    if bench.runs("idle") {
        idle::idle_agent_hour(&bench, &app, &mut report).await?;
    }
    if bench.runs("calls") {
        calls::calls(&bench, &app, &mut report).await?;
    }
    if bench.runs("fanout") {
        fanout::fanout(&bench, &app, &mut report).await?;
    }
    if bench.runs("latency") {
        latency::latency(&bench, &app, &mut report).await?;
    }
    if bench.runs("audit") {
        audit_chain(&bench, &app).await?;
    }
    if bench.runs("memory") {
        memory::run(&bench, &mut report).await?;
    }
    finish(&report)
}

/// Prints the table of every judged figure and writes `target/bench/results.json`.
fn finish(report: &Report) -> anyhow::Result<()> {
    print!("{}", report.table());
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".to_string());
    let path = std::path::Path::new(&target).join("bench").join("results.json");
    report.write_json(&path)?;
    println!("\nresults: {}", path.display());
    let svg = path.with_file_name("plot.svg");
    if plot::plot(report, &svg)? {
        println!("plot: {}", svg.display());
    }
    Ok(())
}

/// Iteration counts and the per-phase time limit.
struct Bench {
    scale: f64,
    phase_limit: Duration,
    /// The phases to run (`BERTH_BENCH_PHASES=fleet,idle`); all when unset.
    phases: Option<Vec<String>>,
}

impl Bench {
    fn from_env() -> anyhow::Result<Self> {
        let scale = match std::env::var("BERTH_BENCH_SCALE") {
            Ok(v) => v.parse::<f64>().map_err(|_| anyhow::anyhow!("BERTH_BENCH_SCALE must be a number, not {v:?}"))?,
            Err(_) => 1.0,
        };
        anyhow::ensure!(scale > 0.0 && scale <= 10.0, "BERTH_BENCH_SCALE must be in (0, 10]");
        let secs = match std::env::var("BERTH_BENCH_PHASE_SECS") {
            Ok(v) => v.parse::<u64>().map_err(|_| anyhow::anyhow!("BERTH_BENCH_PHASE_SECS must be whole seconds, not {v:?}"))?,
            Err(_) => 120,
        };
        anyhow::ensure!(secs > 0, "BERTH_BENCH_PHASE_SECS must be positive");
        let phases = std::env::var("BERTH_BENCH_PHASES").ok().map(|v| v.split(',').map(|p| p.trim().to_string()).collect());
        Ok(Self { scale, phase_limit: Duration::from_secs(secs), phases })
    }

    fn runs(&self, phase: &str) -> bool {
        self.phases.as_ref().is_none_or(|phases| phases.iter().any(|p| p == phase))
    }

    /// `n` scaled, at least 1.
    fn n(&self, n: usize) -> usize {
        ((n as f64 * self.scale).round() as usize).max(1)
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.phase_limit
    }
}

/// What one phase measured: a latency per completed request, the wall time,
/// and how many requests failed (wrong status or transport error).
#[derive(Default)]
struct Sample {
    latencies: Vec<Duration>,
    errors: usize,
    first_error: Option<String>,
    wall: Duration,
    planned: usize,
}

impl Sample {
    fn merge(&mut self, other: Sample) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    fn record(&mut self, started: Instant, outcome: Result<(), String>) {
        match outcome {
            Ok(()) => self.latencies.push(started.elapsed()),
            Err(e) => {
                self.errors += 1;
                self.first_error.get_or_insert(e);
            }
        }
    }

    fn done(&self) -> usize {
        self.latencies.len() + self.errors
    }

    fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        // Nearest rank.
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1]
    }

    fn per_second(&self) -> f64 {
        let secs = self.wall.as_secs_f64();
        if secs > 0.0 { self.latencies.len() as f64 / secs } else { 0.0 }
    }

    /// `label: 123.4 req/s, p50 1.2 ms, ...` with the percentiles asked for,
    /// then the count, and any failures or cut-short note.
    fn print(&self, label: &str, percentiles: &[f64], throughput: bool) {
        let mut parts = vec![];
        if throughput {
            parts.push(format!("{:.1} req/s", self.per_second()));
        }
        for p in percentiles {
            parts.push(format!("p{p} {}", ms(self.percentile(*p))));
        }
        parts.push(format!("{} requests", self.latencies.len()));
        println!("{label}: {}", parts.join(", "));
        if self.errors > 0 {
            println!("    {} failed; first: {}", self.errors, self.first_error.as_deref().unwrap_or("?"));
        }
        if self.done() < self.planned {
            println!("    stopped at the phase time limit after {} of {} requests", self.done(), self.planned);
        }
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// `Ok` when the response has `expected`, else the status and the start of the body.
async fn check(response: Result<Response, reqwest::Error>, expected: StatusCode) -> Result<(), String> {
    let response = response.map_err(|e| format!("transport: {e}"))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if status == expected { Ok(()) } else { Err(format!("{status}: {}", body.chars().take(200).collect::<String>())) }
}

/// Runs `requests` one after another (stopping at `deadline`).
async fn sequential<F, Fut>(requests: usize, deadline: Instant, mut request: F) -> Sample
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let mut sample = Sample { planned: requests, ..Sample::default() };
    let started = Instant::now();
    for i in 0..requests {
        if Instant::now() >= deadline {
            break;
        }
        let t = Instant::now();
        let outcome = request(i).await;
        sample.record(t, outcome);
    }
    sample.wall = started.elapsed();
    sample
}

/// Runs `workers` tasks of `each` sequential requests at once; the request
/// gets (worker, index). Throughput is over the wall time of the whole batch.
async fn concurrent<F, Fut>(workers: usize, each: usize, deadline: Instant, request: F) -> Sample
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let request = Arc::new(request);
    let started = Instant::now();
    let mut handles = Vec::with_capacity(workers);
    for w in 0..workers {
        let request = request.clone();
        handles.push(tokio::spawn(async move { sequential(each, deadline, |i| request(w, i)).await }));
    }
    let mut sample = Sample { planned: workers * each, ..Sample::default() };
    for handle in handles {
        match handle.await {
            Ok(part) => sample.merge(part),
            Err(e) => sample.record(Instant::now(), Err(format!("worker panicked: {e}"))),
        }
    }
    sample.wall = started.elapsed();
    sample
}

/// In-process token verification: HS256 (local runs, tests) and RS256 (what
/// production verifies, from a JWKS or PEM).
async fn jwt(bench: &Bench) -> anyhow::Result<()> {
    let iterations = bench.n(20_000);
    let claims = claims_for(ISSUER, AUDIENCE, "bench@example.com", Some(uuid::Uuid::new_v4().to_string()), &["admin"], Duration::from_secs(3600));

    let secret = format!("bench-secret-{}", uuid::Uuid::new_v4());
    let hs256 = JwtVerifier::new(&AuthConfig {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        keys: KeySource::Hs256Secret(secret.clone()),
        claims: Default::default(),
    })?;
    let token = issue_hs256(&secret, &claims)?;
    let per_op = time_verify(&hs256, &token, iterations, bench.deadline()).await?;
    println!("JWT verify HS256 (in-process): {per_op:.0} ns/op over {iterations} iterations");

    let rs256 = JwtVerifier::new(&AuthConfig {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        keys: KeySource::PublicKeyPem { algorithm: Algorithm::RS256, pem: RS256_PUBLIC.into() },
        claims: Default::default(),
    })?;
    let token = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &EncodingKey::from_rsa_pem(RS256_PRIVATE.as_bytes())?)?;
    let per_op = time_verify(&rs256, &token, iterations, bench.deadline()).await?;
    println!("JWT verify RS256 (in-process): {per_op:.0} ns/op over {iterations} iterations");
    Ok(())
}

/// Mean nanoseconds per `verify`, after a short warm-up.
async fn time_verify(verifier: &JwtVerifier, token: &str, iterations: usize, deadline: Instant) -> anyhow::Result<f64> {
    for _ in 0..100 {
        verifier.verify(token).await.map_err(|e| anyhow::anyhow!("the bench token does not verify: {e}"))?;
    }
    let started = Instant::now();
    let mut done = 0usize;
    while done < iterations && (!done.is_multiple_of(1024) || Instant::now() < deadline) {
        std::hint::black_box(verifier.verify(std::hint::black_box(token)).await.map_err(|e| anyhow::anyhow!("{e}"))?);
        done += 1;
    }
    Ok(started.elapsed().as_nanos() as f64 / done.max(1) as f64)
}

/// A tenant whose plan allows as many environments as the bench creates.
async fn roomy_tenant(app: &TestApp, name: &str) -> TestTenant {
    app.tenant_with_plan(name, json!({"max_environments": 100_000})).await
}

async fn me(bench: &Bench, app: &Arc<TestApp>) {
    let tenant = app.tenant("bench-me").await;
    let token: Arc<str> = app.token(&tenant.id, &["viewer"]).into();
    let get_me = {
        let app = app.clone();
        let token = token.clone();
        move || {
            let request = app.request(reqwest::Method::GET, "/v1/me", Some(&token));
            async move { check(request.send().await, StatusCode::OK).await }
        }
    };

    // Warm the connection pool and the server's first-request paths.
    sequential(bench.n(50), bench.deadline(), |_| get_me()).await;

    let s = sequential(bench.n(500), bench.deadline(), |_| get_me()).await;
    s.print("GET /v1/me (sequential)", &[50.0, 95.0, 99.0], true);

    let workers = 16;
    let each = bench.n(100);
    let s = concurrent(workers, each, bench.deadline(), move |_, _| get_me()).await;
    s.print(&format!("GET /v1/me ({workers} workers x {each})"), &[50.0, 95.0, 99.0], true);
}

/// The contended tenant's audit chain must still verify: the bench doubles as
/// a check that contention never forks it.
async fn verify_chain(app: &TestApp, tenant: &TestTenant) {
    let report = expect_status(app.get("/v1/audit/verify", &tenant.admin).await, StatusCode::OK).await;
    if report["ok"] != true {
        println!("    WARNING: the audit chain of the contended tenant does not verify: {report}");
    }
}

async fn heartbeat(bench: &Bench, app: &Arc<TestApp>) {
    let tenant = app.tenant("bench-agent").await;
    let runtime = app.runtime(&tenant, "bench-runtime").await;
    let credential = app.register_agent(&runtime).await;
    let body = json!({"agent_version": "1.0.0", "status": "ok", "running": []});
    let beat = || {
        let request = app.request(reqwest::Method::POST, "/agent/v1/heartbeat", Some(&credential)).json(&body);
        async move { check(request.send().await, StatusCode::OK).await }
    };
    sequential(bench.n(20), bench.deadline(), |_| beat()).await;
    let s = sequential(bench.n(300), bench.deadline(), |_| beat()).await;
    s.print("agent heartbeat (sequential)", &[50.0, 99.0], true);
}

/// A long audit chain: 100 000 events (scaled) chained with the domain's
/// `AuditEvent::chain` after the tenant's first event, written with
/// BatchWriteItem, then verified in full through `GET /v1/audit/verify?full=true`,
/// slice by slice (`next_cursor`), as an admin would.
async fn audit_chain(bench: &Bench, app: &Arc<TestApp>) -> anyhow::Result<()> {
    use berth_domain::audit::{AuditDraft, AuditEvent, AuditHead, verify_links};
    use berth_domain::context::Actor;

    let n = bench.n(100_000);
    let tenant = app.tenant("bench-audit").await;
    let tenant_id: berth_domain::ids::TenantId = tenant.id.parse()?;
    let first = app.audit(&tenant).await;
    anyhow::ensure!(first.len() == 1, "a new tenant has one audit event, not {}", first.len());
    let genesis = AuditHead { seq: 1, hash: first[0]["hash"].as_str().unwrap_or_default().to_string() };

    // Events shaped like real ones: an environment each, with a short summary.
    let actor = Actor::user("bench@example.com");
    let mut head = genesis.clone();
    let mut events = Vec::with_capacity(n);
    for i in 0..n {
        let env = uuid::Uuid::new_v4();
        let summary = json!({"after": {"name": format!("env-{i}"), "classification": "test", "enabled": true}});
        let draft = AuditDraft::new(&actor, &format!("req-{env}"), "environment.created", "environment", env, summary);
        let event = AuditEvent::chain(draft, &head, chrono::Utc::now());
        head = event.head();
        events.push(event);
    }

    // The CPU side alone: hashing and linking, in this process.
    let started = Instant::now();
    let (reached, broken) = verify_links(&genesis, &events);
    anyhow::ensure!(broken.is_none() && reached == head, "the synthetic chain verifies in process");
    let cpu = started.elapsed();
    println!("audit chain: hash and link {n} events in process: {:.0} events/s", n as f64 / cpu.as_secs_f64());

    let (items, _) = berth_aws::testing::audit_chain_items(tenant_id, &events, &head)?;
    let mean = items.iter().map(item_bytes).sum::<usize>() / items.len().max(1);
    println!("audit chain: an event item is about {mean} bytes (DynamoDB's size rules), so a 1 MB Query page holds {} events", 1_000_000 / mean.max(1));
    let started = Instant::now();
    let seeded = write_batches(app, items, bench.deadline()).await?;
    // The head goes last, at the end of what was written: the chain is whole either way.
    let head = if seeded == n { head } else { events.get(seeded.wrapping_sub(1)).map(AuditEvent::head).unwrap_or(genesis) };
    drop(events);
    let (_, head_item) = berth_aws::testing::audit_chain_items(tenant_id, &[], &head)?;
    app.clients.dynamo.put_item().table_name(&app.names.table).set_item(Some(head_item)).send().await?;
    let took = started.elapsed();
    println!("audit chain: seeded {seeded} events with BatchWriteItem in {:.1} s ({:.0} items/s)", took.as_secs_f64(), seeded as f64 / took.as_secs_f64());
    if seeded < n {
        println!("    stopped at the phase time limit after {seeded} of {n} events");
    }

    let deadline = bench.deadline();
    let started = Instant::now();
    let mut query = "/v1/audit/verify?full=true".to_string();
    let (mut calls, mut checked, mut slowest) = (0usize, 0u64, Duration::ZERO);
    loop {
        let call = Instant::now();
        let report = expect_status(app.get(&query, &tenant.admin).await, StatusCode::OK).await;
        slowest = slowest.max(call.elapsed());
        calls += 1;
        checked += report["checked"].as_u64().unwrap_or(0);
        anyhow::ensure!(report["ok"] == true, "the seeded chain verifies: {report}");
        match report["next_cursor"].as_str() {
            Some(cursor) if Instant::now() < deadline => query = format!("/v1/audit/verify?full=true&cursor={cursor}"),
            Some(_) => {
                println!("    stopped at the phase time limit after {calls} calls");
                break;
            }
            None => {
                anyhow::ensure!(checked == head.seq, "the full verification checked every event ({checked} of {})", head.seq);
                break;
            }
        }
    }
    let total = started.elapsed();
    println!(
        "audit verify full (HTTP, {calls} calls of at most {} events): {checked} events in {:.2} s, {:.0} events/s, slowest call {}",
        berth_domain::usecases::Settings::default().audit_verify_max_events,
        total.as_secs_f64(),
        checked as f64 / total.as_secs_f64(),
        ms(slowest)
    );
    Ok(())
}

/// Writes `items` in order, 25 per BatchWriteItem, 8 requests at a time,
/// retrying what DynamoDB leaves unprocessed; starts no request after
/// `deadline`. Returns how many items, from the first, were written.
async fn write_batches(app: &TestApp, items: Vec<berth_aws::testing::Item>, deadline: Instant) -> anyhow::Result<usize> {
    use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
    let requests = items
        .into_iter()
        .map(|item| Ok(WriteRequest::builder().put_request(PutRequest::builder().set_item(Some(item)).build()?).build()))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let chunks: Vec<Vec<WriteRequest>> = requests.chunks(25).map(<[WriteRequest]>::to_vec).collect();
    let mut pending = chunks.into_iter();
    let mut running = tokio::task::JoinSet::new();
    // Every chunk started is awaited, so what was written is a prefix.
    let mut started = 0usize;
    loop {
        while running.len() < 8 && Instant::now() < deadline {
            let Some(mut chunk) = pending.next() else { break };
            started += chunk.len();
            let (dynamo, table) = (app.clients.dynamo.clone(), app.names.table.clone());
            running.spawn(async move {
                while !chunk.is_empty() {
                    let out = dynamo.batch_write_item().request_items(&table, chunk).send().await?;
                    chunk = out.unprocessed_items.and_then(|mut u| u.remove(&table)).unwrap_or_default();
                }
                anyhow::Ok(())
            });
        }
        match running.join_next().await {
            Some(done) => done??,
            None => return Ok(started),
        }
    }
}
/// An item's size by DynamoDB's rules (names plus values; numbers about one byte per two digits).
fn item_bytes(item: &berth_aws::testing::Item) -> usize {
    use aws_sdk_dynamodb::types::AttributeValue;
    fn value(v: &AttributeValue) -> usize {
        match v {
            AttributeValue::S(s) => s.len(),
            AttributeValue::N(n) => n.len().div_ceil(2) + 1,
            AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
            AttributeValue::M(m) => 3 + m.iter().map(|(k, v)| k.len() + 1 + value(v)).sum::<usize>(),
            AttributeValue::L(l) => 3 + l.iter().map(|v| 1 + value(v)).sum::<usize>(),
            _ => 0,
        }
    }
    item.iter().map(|(k, v)| k.len() + value(v)).sum()
}

/// Signed CI deliveries (`/hooks/v1`), each on a webhook of its own component
/// so that none waits for another's deployment: an accepted
/// `package_and_deploy` (a package archive written to S3, a deployment
/// recorded and queued, the secret opened by KMS the first time), its signed
/// status call, and a refused one (bad signature). The issue asks for an
/// answer within a second.
async fn webhooks(bench: &Bench, app: &Arc<TestApp>) {
    use berth_domain::webhook::signature::berth_header;
    let n = bench.n(50);
    let tenant = app.tenant_with_plan("bench-hooks", json!({"max_environments": 100})).await;
    let env = app.environment(&tenant, "Test", "test").await;
    let runtime = app.runtime(&tenant, "atom").await;
    app.register_agent(&runtime).await;
    app.attach(&tenant, &env, &runtime).await;
    let mut hooks = vec![];
    for i in 0..n {
        let component = app.component(&tenant, &format!("flow-{i}"), "process", format!("<process {i}/>").as_bytes(), &[]).await;
        let body = json!({"name": format!("hook-{i}"), "action": "package_and_deploy", "environment_id": id_of(&env), "component_id": id_of(&component)});
        let hook = expect_status(app.post("/v1/webhooks", &tenant.admin, body).await, StatusCode::CREATED).await;
        hooks.push((id_of(&hook), hook["secret"].as_str().unwrap_or_default().to_string()));
    }
    let hooks = Arc::new(hooks);
    let deliver = |i: usize, secret: Option<&str>| {
        let (id, real) = &hooks[i];
        let body = format!(r#"{{"commit":"bench-{i}"}}"#);
        let signature = berth_header(secret.unwrap_or(real).as_bytes(), chrono::Utc::now().timestamp(), body.as_bytes());
        app.request(reqwest::Method::POST, &format!("/hooks/v1/{id}"), None)
            .header("berth-delivery", format!("bench-{i}-{}", secret.is_some()))
            .header("berth-signature", signature)
            .body(body)
            .send()
    };
    let s = sequential(n, bench.deadline(), |i| async move { check(deliver(i, None).await, StatusCode::ACCEPTED).await }).await;
    s.print("webhook delivery, package_and_deploy accepted (sequential)", &[50.0, 95.0, 99.0], false);
    let status = |i: usize| {
        let (id, secret) = &hooks[i];
        let delivery = format!("bench-{i}-false");
        let signature = berth_header(secret.as_bytes(), chrono::Utc::now().timestamp(), delivery.as_bytes());
        app.request(reqwest::Method::GET, &format!("/hooks/v1/{id}/deliveries/{delivery}"), None).header("berth-signature", signature).send()
    };
    let s = sequential(n, bench.deadline(), |i| async move { check(status(i).await, StatusCode::OK).await }).await;
    s.print("webhook delivery status (signed GET)", &[50.0, 95.0, 99.0], false);
    let s = sequential(n, bench.deadline(), |i| async move { check(deliver(i, Some("whsec_wrong")).await, StatusCode::UNAUTHORIZED).await }).await;
    s.print("webhook delivery refused (bad signature, recorded)", &[50.0, 95.0, 99.0], false);
}
