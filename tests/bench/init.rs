//! Bench item 1, cold init: each function's release binary against a
//! hello-world `lambda_runtime` binary (tests/bench/hello), under the local
//! Runtime API emulator. Per start: process start to the first
//! `invocation/next`, the first invocation (a representative event whose
//! answer is checked), and the resident memory after init.
//!
//! The functions get the environment the SAM template gives them, pointed at
//! LocalStack, on resources made for this run; the starts of all functions
//! are interleaved so that a slow moment of the shared machine falls on all
//! of them alike.

use crate::Bench;
use crate::emulator::{ColdStart, Emulator};
use crate::report::Report;
use berth_tests::{AUDIENCE, ISSUER, TestApp, expect_status, id_of};
use berth_web::auth::claims_for;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const SECTION: &str = "cold init";
const HELLO: &str = "berth-bench-hello";
/// Published figures for Rust on `provided.al2023` (Init Duration in Lambda's REPORT line).
const PUBLISHED_HELLO_MS: f64 = 14.0;
const PUBLISHED_AXUM_MS: f64 = 19.0;

/// One binary under test and the event its first invocation gets.
struct Function {
    bin: &'static str,
    env: Vec<(String, String)>,
    /// A fresh event for each start, and the check of what the function answered.
    event: Box<dyn Fn(usize) -> Value + Send + Sync>,
    check: fn(&Value) -> Result<(), String>,
    starts: Vec<ColdStart>,
}

pub async fn run(bench: &Bench, report: &mut Report) -> anyhow::Result<()> {
    let dir = binaries_dir();
    let names = [HELLO, "berth-api", "berth-agent-gateway", "berth-webhooks", "berth-dispatcher", "berth-packager", "berth-sweeper"];
    let missing: Vec<String> = names.iter().map(|n| dir.join(n)).filter(|p| !p.is_file()).map(|p| p.display().to_string()).collect();
    anyhow::ensure!(
        missing.is_empty(),
        "cold init: missing release binaries {missing:?}: build them with `cargo build --release -p {}` (make bench does), or point BERTH_BENCH_BIN_DIR at them",
        names.join(" -p ")
    );
    if !dir.ends_with("release") {
        println!("cold init: WARNING: measuring the binaries in {} (not a release directory)", dir.display());
    }

    let mut functions = setup().await?;
    let starts = bench.n(20).max(5);
    let emulator = Emulator::start().await?;
    println!("cold init: {starts} starts of each of {} binaries in {}, interleaved, under the Runtime API emulator", functions.len(), dir.display());
    let logs = tempfile::tempdir()?;
    for i in 0..starts {
        for f in functions.iter_mut() {
            let log = logs.path().join(format!("{}-{i}.log", f.bin));
            let out = std::fs::File::create(&log)?;
            let mut command = Command::new(dir.join(f.bin));
            command.env_clear().envs(f.env.iter().map(|(k, v)| (k, v))).stdout(Stdio::from(out.try_clone()?)).stderr(Stdio::from(out));
            let event = (f.event)(i);
            let tail = |log: &Path| {
                std::fs::read_to_string(log).unwrap_or_default().lines().rev().take(10).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
            };
            let start = emulator.cold_start(command, f.bin, &event).await.map_err(|e| anyhow::anyhow!("cold init: {e}\n{} output:\n{}", f.bin, tail(&log)))?;
            let answer: Value = serde_json::from_slice(&start.response).map_err(|e| anyhow::anyhow!("cold init: {} answered no JSON: {e}", f.bin))?;
            (f.check)(&answer).map_err(|e| anyhow::anyhow!("cold init: {}'s first invocation failed: {e}\n{} output:\n{}", f.bin, f.bin, tail(&log)))?;
            f.starts.push(start);
        }
    }

    let hello = Figures::of(&functions[0], &dir);
    println!(
        "cold init: hello world median {:.2} ms, p90 {:.2} ms; binary {:.1} MiB; RSS after init {:.1} MiB",
        hello.init_p50, hello.init_p90, hello.size_mib, hello.rss_mib
    );
    add_rows(report, "hello world", &hello, None);
    for f in &functions[1..] {
        let figures = Figures::of(f, &dir);
        println!(
            "cold init: {} median {:.2} ms ({:.1}x hello), p90 {:.2} ms; first invocation median {:.2} ms; binary {:.1} MiB; RSS after init {:.1} MiB",
            f.bin,
            figures.init_p50,
            figures.init_p50 / hello.init_p50,
            figures.init_p90,
            figures.first_p50,
            figures.size_mib,
            figures.rss_mib
        );
        add_rows(report, f.bin, &figures, Some(&hello));
    }
    let api = Figures::of(&functions[1], &dir);
    let note = format!(
        "published for Rust on provided.al2023: about {PUBLISHED_HELLO_MS} ms hello world, {PUBLISHED_AXUM_MS} ms axum in lambda_http ({:.2}x); here hello {:.2} ms, berth-api (axum in lambda_http) {:.2} ms ({:.2}x). Lambda's figure includes its own sandbox work, so compare ratios, not milliseconds",
        PUBLISHED_AXUM_MS / PUBLISHED_HELLO_MS,
        hello.init_p50,
        api.init_p50,
        api.init_p50 / hello.init_p50
    );
    println!("cold init: {note}");
    report.row(SECTION, "published: axum in lambda_http / hello world", PUBLISHED_AXUM_MS / PUBLISHED_HELLO_MS, "x").note(note);
    println!();
    Ok(())
}

/// Where the function binaries are: `BERTH_BENCH_BIN_DIR`, else beside the
/// bench (target/release under `make bench`).
fn binaries_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("BERTH_BENCH_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    exe.parent().map(Path::to_path_buf).unwrap_or_default()
}

struct Figures {
    init_p50: f64,
    init_p90: f64,
    first_p50: f64,
    first_p90: f64,
    size_mib: f64,
    rss_mib: f64,
}

impl Figures {
    fn of(f: &Function, dir: &Path) -> Self {
        let ms = |d: fn(&ColdStart) -> Duration| f.starts.iter().map(|s| d(s).as_secs_f64() * 1000.0).collect::<Vec<_>>();
        let init = ms(|s| s.init);
        let first = ms(|s| s.first_invocation);
        let rss: Vec<f64> = f.starts.iter().map(|s| s.rss_after_init_kib as f64 / 1024.0).collect();
        let size = std::fs::metadata(dir.join(f.bin)).map(|m| m.len()).unwrap_or(0) as f64 / (1024.0 * 1024.0);
        Self {
            init_p50: percentile(init.clone(), 50.0),
            init_p90: percentile(init, 90.0),
            first_p50: percentile(first.clone(), 50.0),
            first_p90: percentile(first, 90.0),
            size_mib: size,
            rss_mib: percentile(rss, 50.0),
        }
    }
}

fn add_rows(report: &mut Report, name: &str, f: &Figures, hello: Option<&Figures>) {
    let reference = "hello world";
    match hello {
        None => {
            report.row(SECTION, &format!("{name} init median"), f.init_p50, "ms");
            report.row(SECTION, &format!("{name} init p90"), f.init_p90, "ms");
            report.row(SECTION, &format!("{name} first invocation median"), f.first_p50, "ms");
            report.row(SECTION, &format!("{name} binary size"), f.size_mib, "MiB");
            report.row(SECTION, &format!("{name} RSS after init"), f.rss_mib, "MiB");
        }
        Some(h) => {
            report.row(SECTION, &format!("{name} init median"), f.init_p50, "ms").against(&format!("{reference} init median"), h.init_p50).goal(1.5);
            report.row(SECTION, &format!("{name} init p90"), f.init_p90, "ms").against(&format!("{reference} init p90"), h.init_p90);
            report
                .row(SECTION, &format!("{name} first invocation median"), f.first_p50, "ms")
                .note(format!("p90 {:.2} ms; the event's whole handling, AWS calls to LocalStack included", f.first_p90));
            report.row(SECTION, &format!("{name} binary size"), f.size_mib, "MiB").against(&format!("{reference} binary size"), h.size_mib);
            report.row(SECTION, &format!("{name} RSS after init"), f.rss_mib, "MiB").against(&format!("{reference} RSS after init"), h.rss_mib);
        }
    }
}

/// Nearest rank.
fn percentile(mut values: Vec<f64>, p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    if values.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

/// Resources, a tenant, a runtime with an agent and a webhook, made through
/// a local Berth that is stopped again before the first start; then each
/// function with its environment and event.
async fn setup() -> anyhow::Result<Vec<Function>> {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("bench-init").await;
    let runtime = app.runtime(&tenant, "init-atom").await;
    let credential = app.register_agent(&runtime).await;
    let env = app.environment(&tenant, "Test", "test").await;
    let component = app.component(&tenant, "init-flow", "process", b"<process/>", &[]).await;
    let body = json!({"name": "init-hook", "action": "package_and_deploy", "environment_id": id_of(&env), "component_id": id_of(&component)});
    let hook = expect_status(app.post("/v1/webhooks", &tenant.admin, body).await, StatusCode::CREATED).await;
    let hook_id = id_of(&hook);
    let names = app.names.clone();
    let queue_url = app.local.resources.deployments_queue_url.clone();
    let builds_url = app.local.resources.package_builds_queue_url.clone();
    drop(app);

    let mut common: Vec<(String, String)> = vec![];
    for var in ["AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "BERTH_S3_FORCE_PATH_STYLE", "PATH"] {
        if let Ok(v) = std::env::var(var) {
            common.push((var.into(), v));
        }
    }
    let set = |k: &str, v: &str| (k.to_string(), v.to_string());
    let berth = [
        set("TZ", ":UTC"),
        set("BERTH_TABLE", &names.table),
        set("BERTH_BUCKET", &names.bucket),
        set("BERTH_DEPLOYMENTS_QUEUE", &names.deployments_queue),
        set("BERTH_DEPLOYMENTS_QUEUE_URL", &queue_url),
        set("BERTH_PACKAGE_BUILDS_QUEUE", &names.package_builds_queue),
        set("BERTH_PACKAGE_BUILDS_QUEUE_URL", &builds_url),
        set("BERTH_QUEUE_PREFIX", &names.queue_prefix),
        set("BERTH_RUNTIME_OFFLINE_AFTER_SECS", "90"),
        set("BERTH_KMS_KEY_ID", &names.kms_key_id),
        set("RUST_LOG", "info,aws_config=warn,aws_smithy_runtime=warn"),
    ];
    let with = |extra: &[(String, String)]| common.iter().chain(berth.iter()).chain(extra.iter()).cloned().collect::<Vec<_>>();

    let claims = claims_for(ISSUER, AUDIENCE, "init-bench@example.com", Some(tenant.id.clone()), &["viewer"], Duration::from_secs(3600));
    let token = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &EncodingKey::from_rsa_pem(crate::RS256_PRIVATE.as_bytes())?)?;
    let api_env = with(&[
        set("BERTH_JWT_ISSUER", ISSUER),
        set("BERTH_JWT_AUDIENCE", AUDIENCE),
        set("BERTH_JWT_PUBLIC_KEY", crate::RS256_PUBLIC),
        set("BERTH_JWT_ALGORITHM", "RS256"),
    ]);
    let gateway_env = with(&[set("BERTH_AGENT_QUEUE_ROLE_ARN", names.queue_role_arn.as_deref().unwrap_or_default())]);
    let tenant_id = tenant.id.clone();
    let packager_tenant = tenant.id.clone();

    Ok(vec![
        Function { bin: HELLO, env: common.clone(), event: Box::new(|i| json!({"hello": "world", "start": i})), check: echoed, starts: vec![] },
        Function {
            bin: "berth-api",
            env: api_env,
            event: Box::new(move |i| http_event("GET", "/v1/me", &[("authorization", &format!("Bearer {token}"))], "", i)),
            check: |answer| status(answer, 200),
            starts: vec![],
        },
        Function {
            bin: "berth-agent-gateway",
            env: gateway_env,
            event: Box::new(move |i| {
                let body = json!({"agent_version": "1.0.0", "status": "ok", "running": []}).to_string();
                http_event("POST", "/agent/v1/heartbeat", &[("authorization", &format!("Bearer {credential}")), ("content-type", "application/json")], &body, i)
            }),
            check: |answer| status(answer, 200),
            starts: vec![],
        },
        Function {
            bin: "berth-webhooks",
            env: with(&[]),
            event: Box::new(move |i| {
                // A delivery signed with the wrong secret: refused (and recorded) after the webhook's secret is opened.
                let body = format!(r#"{{"commit":"init-{i}"}}"#);
                let signature = berth_domain::webhook::signature::berth_header(b"whsec_wrong", chrono::Utc::now().timestamp(), body.as_bytes());
                let delivery = format!("init-{i}-{}", uuid::Uuid::new_v4().simple());
                http_event(
                    "POST",
                    &format!("/hooks/v1/{hook_id}"),
                    &[("berth-delivery", &delivery), ("berth-signature", &signature), ("content-type", "application/json")],
                    &body,
                    i,
                )
            }),
            check: |answer| status(answer, 401),
            starts: vec![],
        },
        Function {
            bin: "berth-dispatcher",
            env: with(&[]),
            event: Box::new(move |i| {
                // A deployment that is gone: read, found absent, and done, as many times as it is delivered.
                sqs_event(i, json!({"tenant_id": tenant_id, "deployment_id": uuid::Uuid::now_v7()}), "berth-deployments")
            }),
            check: batch_done,
            starts: vec![],
        },
        Function {
            bin: "berth-packager",
            env: with(&[]),
            event: Box::new(move |i| {
                // A package that is gone: read, found not building, and done.
                sqs_event(i, json!({"tenant_id": packager_tenant, "package_id": uuid::Uuid::now_v7()}), "berth-package-builds")
            }),
            check: batch_done,
            starts: vec![],
        },
        Function {
            bin: "berth-sweeper",
            env: with(&[]),
            event: Box::new(|i| {
                json!({"version": "0", "id": format!("init-{i}"), "detail-type": "Scheduled Event", "source": "aws.events", "account": "000000000000",
                       "time": chrono::Utc::now().to_rfc3339(), "region": "us-east-1", "resources": ["arn:aws:events:us-east-1:000000000000:rule/berth-sweeper"], "detail": {}})
            }),
            check: |answer| if answer.get("timed_out").is_some() { Ok(()) } else { Err(format!("not a sweep report: {answer}")) },
            starts: vec![],
        },
    ])
}

/// An SQS event of one message with `body`, from `queue`.
fn sqs_event(i: usize, body: Value, queue: &str) -> Value {
    json!({"Records": [{
        "messageId": format!("init-{i}-{}", uuid::Uuid::new_v4()),
        "receiptHandle": "init-bench",
        "body": body.to_string(),
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0", "SenderId": "bench", "ApproximateFirstReceiveTimestamp": "0"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": format!("arn:aws:sqs:us-east-1:000000000000:{queue}"),
        "awsRegion": "us-east-1"
    }]})
}

/// A partial batch response with no failure.
fn batch_done(answer: &Value) -> Result<(), String> {
    match answer["batchItemFailures"].as_array() {
        Some(failures) if failures.is_empty() => Ok(()),
        _ => Err(format!("the message was not done: {answer}")),
    }
}

fn echoed(answer: &Value) -> Result<(), String> {
    if answer["hello"] == "world" { Ok(()) } else { Err(format!("the event was not echoed: {answer}")) }
}

fn status(answer: &Value, expected: u64) -> Result<(), String> {
    match answer["statusCode"].as_u64() {
        Some(s) if s == expected => Ok(()),
        _ => Err(format!("expected status {expected}, got {}", answer.to_string().chars().take(500).collect::<String>())),
    }
}

/// An API Gateway HTTP API (payload format 2.0) event.
fn http_event(method: &str, path: &str, headers: &[(&str, &str)], body: &str, i: usize) -> Value {
    let mut h = serde_json::Map::new();
    h.insert("host".into(), json!("api.berth.example"));
    h.insert("user-agent".into(), json!("berth-bench"));
    for (k, v) in headers {
        h.insert((*k).into(), json!(v));
    }
    let now = chrono::Utc::now();
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": h,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "bench",
            "domainName": "api.berth.example",
            "domainPrefix": "api",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "berth-bench"},
            "requestId": format!("init-bench-{i}"),
            "routeKey": "$default",
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S +0000").to_string(),
            "timeEpoch": now.timestamp_millis()
        },
        "body": body,
        "isBase64Encoded": false
    })
}
