//! A local Lambda Runtime API (the `2018-06-01` interface a custom runtime
//! polls), serving one cold start at a time: it spawns the function's
//! binary with `AWS_LAMBDA_RUNTIME_API` pointing here, times process start
//! (just before the spawn) to the first `GET invocation/next`, reads the
//! process's resident memory while that request waits on us, hands out one
//! event, times it until the response is posted, then kills the process.
//!
//! Times are taken on this side of the socket, the way Lambda's own Init
//! Duration is: the process cannot make its init look shorter.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

const NEXT: &str = "/2018-06-01/runtime/invocation/next";

/// What one cold start measured.
#[derive(Debug)]
pub struct ColdStart {
    /// Process start (just before the spawn) to its first `invocation/next`.
    pub init: Duration,
    /// `VmRSS` when the first `invocation/next` arrived (the process is then
    /// waiting for us), in KiB.
    pub rss_after_init_kib: u64,
    /// The event handed out to its response posted.
    pub first_invocation: Duration,
    /// The body of the posted response.
    pub response: Vec<u8>,
}

/// What the function posted back, or its init error.
enum Posted {
    Response(Instant, Bytes),
    Error(Bytes),
    InitError(Bytes),
}

/// The one start under way.
struct Run {
    request_id: String,
    function_name: String,
    event: Option<Vec<u8>>,
    /// Told when the first `next` arrives; answered when the event may go.
    first_next: Option<oneshot::Sender<(Instant, oneshot::Sender<()>)>>,
    handed_out: Option<Instant>,
    posted: Option<oneshot::Sender<Posted>>,
}

#[derive(Clone, Default)]
struct Shared {
    run: Arc<Mutex<Option<Run>>>,
}

impl Shared {
    fn with_run<T>(&self, f: impl FnOnce(&mut Run) -> T) -> Option<T> {
        self.run.lock().ok().and_then(|mut run| run.as_mut().map(f))
    }
}

pub struct Emulator {
    addr: SocketAddr,
    shared: Shared,
    server: tokio::task::JoinHandle<()>,
    /// How long a start may take before it is called failed.
    pub timeout: Duration,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Emulator {
    /// Serves the Runtime API on 127.0.0.1 (a free port).
    pub async fn start() -> anyhow::Result<Self> {
        let shared = Shared::default();
        let app = axum::Router::new()
            .route(NEXT, get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, shared, server, timeout: Duration::from_secs(30) })
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn runtime_api(&self) -> String {
        self.addr.to_string()
    }

    /// Starts `command` (its environment gets `AWS_LAMBDA_RUNTIME_API` and
    /// the `AWS_LAMBDA_FUNCTION_*` variables Lambda sets), hands it `event`
    /// as its first invocation, and kills it once the response is posted.
    /// An init error, an invocation error, an exit or a timeout is an error.
    pub async fn cold_start(&self, mut command: Command, function_name: &str, event: &serde_json::Value) -> anyhow::Result<ColdStart> {
        let (first_tx, first_rx) = oneshot::channel();
        let (posted_tx, mut posted_rx) = oneshot::channel();
        let run = Run {
            request_id: uuid::Uuid::new_v4().to_string(),
            function_name: function_name.to_string(),
            event: Some(serde_json::to_vec(event)?),
            first_next: Some(first_tx),
            handed_out: None,
            posted: Some(posted_tx),
        };
        *self.shared.run.lock().map_err(|_| anyhow::anyhow!("the emulator's state is poisoned"))? = Some(run);
        command
            .env("AWS_LAMBDA_RUNTIME_API", self.runtime_api())
            .env("AWS_LAMBDA_FUNCTION_NAME", function_name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{function_name}"))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
            .stdin(Stdio::null());

        let spawned = Instant::now();
        let child = command.spawn().map_err(|e| anyhow::anyhow!("{function_name}: cannot start {:?}: {e}", command.get_program()))?;
        let mut child = Killed(child);
        let outcome = tokio::time::timeout(self.timeout, async {
            // Until the first `next`: the process may also fail its init or exit.
            let mut tick = tokio::time::interval(Duration::from_millis(5));
            tokio::pin!(first_rx);
            let (first_at, go) = loop {
                tokio::select! {
                    first = &mut first_rx => break first.map_err(|_| anyhow::anyhow!("the emulator stopped"))?,
                    posted = &mut posted_rx => return Err(failure(function_name, posted.ok())),
                    _ = tick.tick() => {
                        if let Some(status) = child.0.try_wait()? {
                            anyhow::bail!("{function_name} exited ({status}) before asking for its first event");
                        }
                    }
                }
            };
            let rss = crate::rss::read(child.0.id())?;
            let _ = go.send(());
            let (posted_at, body) = loop {
                tokio::select! {
                    posted = &mut posted_rx => match posted {
                        Ok(Posted::Response(at, body)) => break (at, body),
                        other => return Err(failure(function_name, other.ok())),
                    },
                    _ = tick.tick() => {
                        if let Some(status) = child.0.try_wait()? {
                            anyhow::bail!("{function_name} exited ({status}) during its first invocation");
                        }
                    }
                }
            };
            let handed_out = self.shared.with_run(|r| r.handed_out).flatten().ok_or_else(|| anyhow::anyhow!("a response came for no event"))?;
            Ok(ColdStart {
                init: first_at - spawned,
                rss_after_init_kib: rss.rss_kib,
                first_invocation: posted_at.saturating_duration_since(handed_out),
                response: body.to_vec(),
            })
        })
        .await
        .map_err(|_| anyhow::anyhow!("{function_name} did not finish its cold start and first invocation within {:?}", self.timeout))?;
        if let Ok(mut run) = self.shared.run.lock() {
            *run = None;
        }
        drop(child);
        outcome
    }
}

/// Kills (and reaps) the process when dropped, whatever happened.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn failure(function_name: &str, posted: Option<Posted>) -> anyhow::Error {
    let text = |b: &Bytes| String::from_utf8_lossy(b).chars().take(500).collect::<String>();
    match posted {
        Some(Posted::InitError(body)) => anyhow::anyhow!("{function_name} reported an init error: {}", text(&body)),
        Some(Posted::Error(body)) => anyhow::anyhow!("{function_name} reported an invocation error: {}", text(&body)),
        Some(Posted::Response(..)) => anyhow::anyhow!("{function_name} posted a response before it was given an event"),
        None => anyhow::anyhow!("the emulator stopped"),
    }
}

/// The first call gets the event (once the driver has read the process's
/// memory); later calls wait until the process is killed.
async fn next(State(shared): State<Shared>) -> axum::response::Response {
    let arrived = Instant::now();
    let Some(first) = shared.with_run(|r| r.first_next.take()).flatten() else {
        return std::future::pending().await;
    };
    let (go_tx, go_rx) = oneshot::channel();
    if first.send((arrived, go_tx)).is_err() || go_rx.await.is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let handed = shared.with_run(|r| {
        r.handed_out = Some(Instant::now());
        (r.request_id.clone(), r.function_name.clone(), r.event.take().unwrap_or_default())
    });
    let Some((request_id, function_name, event)) = handed else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let deadline = chrono::Utc::now().timestamp_millis() + 900_000;
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    set("content-type", "application/json".into());
    set("lambda-runtime-aws-request-id", request_id);
    set("lambda-runtime-deadline-ms", deadline.to_string());
    set("lambda-runtime-invoked-function-arn", format!("arn:aws:lambda:us-east-1:000000000000:function:{function_name}"));
    set("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0".into());
    (StatusCode::OK, headers, event).into_response()
}

fn post_once(shared: &Shared, id: &str, posted: impl FnOnce() -> Posted) -> StatusCode {
    let sender = shared.with_run(|r| if r.request_id == id { r.posted.take() } else { None }).flatten();
    match sender {
        Some(tx) => {
            let _ = tx.send(posted());
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

async fn response(State(shared): State<Shared>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    let at = Instant::now();
    post_once(&shared, &id, || Posted::Response(at, body))
}

async fn error(State(shared): State<Shared>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    post_once(&shared, &id, || Posted::Error(body))
}

async fn init_error(State(shared): State<Shared>, body: Bytes) -> StatusCode {
    match shared.with_run(|r| r.posted.take()).flatten() {
        Some(tx) => {
            let _ = tx.send(Posted::InitError(body));
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A "function" in python3 that sleeps `sleep` seconds, asks for one
    /// event, and posts it back with a field added.
    fn python_function(sleep: f64) -> Command {
        let code = format!(
            r#"
import json, os, time, urllib.request
time.sleep({sleep})
api = os.environ["AWS_LAMBDA_RUNTIME_API"]
with urllib.request.urlopen(f"http://{{api}}/2018-06-01/runtime/invocation/next") as r:
    rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
    assert r.headers["Lambda-Runtime-Deadline-Ms"] and r.headers["Lambda-Runtime-Invoked-Function-Arn"] and r.headers["Lambda-Runtime-Trace-Id"]
    event = json.loads(r.read())
event["echoed_by"] = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
req = urllib.request.Request(f"http://{{api}}/2018-06-01/runtime/invocation/{{rid}}/response", data=json.dumps(event).encode(), method="POST")
urllib.request.urlopen(req).read()
time.sleep(30)
"#
        );
        let mut command = Command::new("python3");
        command.args(["-c", &code]);
        command
    }

    #[tokio::test]
    async fn a_function_that_sleeps_200_ms_before_polling_shows_an_init_of_at_least_200_ms() {
        let emulator = Emulator::start().await.expect("the emulator serves");
        let start = emulator.cold_start(python_function(0.2), "sleepy", &serde_json::json!({})).await.expect("the cold start completes");
        assert!(start.init >= Duration::from_millis(200), "init measured {:?}", start.init);
        assert!(start.init < Duration::from_secs(10), "init measured {:?}", start.init);
        assert!(start.rss_after_init_kib > 0, "the memory of the waiting process is read");
    }

    #[tokio::test]
    async fn the_emulator_hands_out_the_event_and_records_the_posted_response() {
        let emulator = Emulator::start().await.expect("the emulator serves");
        let event = serde_json::json!({"hello": "world", "n": 7});
        let start = emulator.cold_start(python_function(0.0), "echo", &event).await.expect("the cold start completes");
        let response: serde_json::Value = serde_json::from_slice(&start.response).expect("a JSON response");
        assert_eq!(response, serde_json::json!({"hello": "world", "n": 7, "echoed_by": "echo"}));

        // The same emulator serves the next start.
        let again = emulator.cold_start(python_function(0.0), "echo-2", &event).await.expect("a second cold start completes");
        assert_eq!(serde_json::from_slice::<serde_json::Value>(&again.response).expect("JSON")["echoed_by"], "echo-2");
    }

    #[tokio::test]
    async fn a_function_that_reports_an_init_error_or_exits_fails_the_start_with_its_message() {
        let emulator = Emulator::start().await.expect("the emulator serves");
        let mut init_error = Command::new("python3");
        init_error.args([
            "-c",
            r#"import os, urllib.request
urllib.request.urlopen(urllib.request.Request(f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/2018-06-01/runtime/init/error", data=b'{"errorMessage":"no table"}', method="POST")).read()
import time; time.sleep(30)"#,
        ]);
        let err = emulator.cold_start(init_error, "broken", &serde_json::json!({})).await.expect_err("an init error fails the start");
        assert!(err.to_string().contains("no table"), "{err}");

        let mut exits = Command::new("python3");
        exits.args(["-c", "raise SystemExit(3)"]);
        let err = emulator.cold_start(exits, "exits", &serde_json::json!({})).await.expect_err("an exit fails the start");
        assert!(err.to_string().contains("exited"), "{err}");

        let missing = Command::new("/nonexistent/berth-function");
        let err = emulator.cold_start(missing, "missing", &serde_json::json!({})).await.expect_err("a missing binary fails the start");
        assert!(err.to_string().contains("cannot start"), "{err}");
    }
}
