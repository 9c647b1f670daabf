//! The Berth agent protocol over HTTPS (docs/agent-protocol.md).

use anyhow::{Result, bail};
pub use berth_protocol::Job;
use berth_protocol::{
    AgentHealth, AwsCredentialsResponse, ClaimBody, HeartbeatBody, JobEventBody, JobEventResponse, Phase, RegisterBody, RegisterResponse, RotateResponse,
    RunningPackage,
};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

pub struct Api {
    base: String,
    http: reqwest::Client,
    /// Replaced in place when the credential is rotated.
    credential: std::sync::RwLock<Option<String>>,
}

pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The server refused a report (a 4xx answer): sending it again cannot help.
#[derive(Debug)]
pub struct Refused {
    pub phase: Phase,
    pub status: reqwest::StatusCode,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} refused: {}", self.phase, self.status)
    }
}

impl std::error::Error for Refused {}

/// How often one call is sent while the server answers that it is busy (503
/// or 429), and the longest pause between two sends, whatever `Retry-After` asks.
const BUSY_ATTEMPTS: u32 = 8;
const MAX_PAUSE: Duration = Duration::from_secs(30);
const FIRST_PAUSE: Duration = Duration::from_millis(500);

/// The pause a busy answer asks for: its `Retry-After` in seconds (an HTTP
/// date is not worth a clock comparison here), else `fallback`; at most `MAX_PAUSE`.
fn pause_for(response: &reqwest::Response, fallback: Duration) -> Duration {
    let asked = response.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    asked.map(Duration::from_secs).unwrap_or(fallback).min(MAX_PAUSE)
}

/// Up to a quarter of a second, so agents told to wait the same time do not all come back at once.
fn jitter() -> Duration {
    Duration::from_millis(u64::from(uuid::Uuid::new_v4().as_bytes()[0]))
}

impl Api {
    pub fn new(base: &str) -> Result<Self> {
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            http: reqwest::Client::builder().connect_timeout(Duration::from_secs(10)).timeout(Duration::from_secs(60)).build()?,
            credential: std::sync::RwLock::new(None),
        })
    }

    pub fn with_credential(self, credential: String) -> Self {
        self.set_credential(Some(credential));
        self
    }

    fn current_credential(&self) -> Option<String> {
        self.credential.read().map(|c| c.clone()).unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    fn set_credential(&self, credential: Option<String>) {
        match self.credential.write() {
            Ok(mut c) => *c = credential,
            Err(poisoned) => *poisoned.into_inner() = credential,
        }
    }

    fn authed(&self, r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self.current_credential() {
            Some(c) => r.bearer_auth(c),
            None => r,
        }
    }

    /// Rotates the runtime credential: asks for a new one, stores it in the
    /// state directory before using it, then proves it with a heartbeat. The
    /// old one stays valid on the server until the new one is first used, so
    /// a lost answer or a crash at any step leaves a working credential on
    /// disk; if the new one is refused (401) the old one is put back. Any
    /// other failure keeps the new one: it may have been used already, which
    /// voided the old one.
    pub async fn rotate_credential(&self, state: &crate::state::StateDir, running: &[RunningPackage]) -> Result<()> {
        let old = self.current_credential();
        let response = self.send(|| self.authed(self.http.post(format!("{}/agent/v1/credentials/rotate", self.base)))).await?;
        let status = response.status();
        if !status.is_success() {
            bail!("credential rotation refused: {status}");
        }
        let rotated: RotateResponse = response.json().await.map_err(|e| anyhow::anyhow!("unexpected rotation answer: {e}"))?;
        state.write_credential(&rotated.credential)?;
        self.set_credential(Some(rotated.credential));
        let body = HeartbeatBody { agent_version: AGENT_VERSION.to_string(), status: AgentHealth::Ok, running: running.to_vec() };
        let proof = self.send(|| self.authed(self.http.post(format!("{}/agent/v1/heartbeat", self.base))).json(&body)).await?;
        if proof.status() == reqwest::StatusCode::UNAUTHORIZED {
            // Refused, so never used: the old one still works (unless revoked meanwhile).
            self.set_credential(old.clone());
            if let Some(old) = &old {
                state.write_credential(old)?;
            }
            bail!("the rotated credential was refused; kept the old one");
        }
        Ok(())
    }

    /// Sends the request `build` makes, and sends it again while the server
    /// answers 503 or 429, after the pause it asks for, a bounded number of
    /// times. Any other answer, the last busy one, or a network error is the caller's.
    async fn send(&self, build: impl Fn() -> reqwest::RequestBuilder) -> reqwest::Result<reqwest::Response> {
        let mut fallback = FIRST_PAUSE;
        let mut attempt = 1;
        loop {
            let response = build().send().await?;
            let status = response.status();
            if !matches!(status, reqwest::StatusCode::SERVICE_UNAVAILABLE | reqwest::StatusCode::TOO_MANY_REQUESTS) || attempt >= BUSY_ATTEMPTS {
                return Ok(response);
            }
            let pause = pause_for(&response, fallback) + jitter();
            tracing::info!(%status, attempt, ?pause, url = %response.url().path(), "the server is busy; trying again");
            tokio::time::sleep(pause).await;
            fallback = (fallback * 2).min(MAX_PAUSE);
            attempt += 1;
        }
    }

    /// Exchanges the one-time registration token for a runtime credential.
    pub async fn register(&self, token: &str, name: Option<&str>) -> Result<(String, String)> {
        let body = RegisterBody { registration_token: token.to_string(), name: name.map(str::to_string), agent_version: AGENT_VERSION.to_string() };
        let response = self.send(|| self.http.post(format!("{}/agent/v1/register", self.base)).json(&body)).await?;
        let status = response.status();
        let value: serde_json::Value = response.json().await.unwrap_or_default();
        if !status.is_success() {
            bail!("registration refused ({status}): {}", value["detail"].as_str().unwrap_or("no detail"));
        }
        let registered: RegisterResponse = serde_json::from_value(value).map_err(|e| anyhow::anyhow!("unexpected registration answer: {e}"))?;
        Ok((registered.runtime_id.to_string(), registered.credential))
    }

    /// Heartbeats; the answer names the connection tests waiting for this runtime (none from an older server).
    pub async fn heartbeat(&self, running: &[RunningPackage]) -> Result<Vec<berth_protocol::ConnectionTestJob>> {
        let body = HeartbeatBody { agent_version: AGENT_VERSION.to_string(), status: AgentHealth::Ok, running: running.to_vec() };
        let response = self.send(|| self.authed(self.http.post(format!("{}/agent/v1/heartbeat", self.base))).json(&body)).await?;
        if !response.status().is_success() {
            bail!("heartbeat refused: {}", response.status());
        }
        let answer: Option<berth_protocol::HeartbeatResponse> = response.json().await.ok();
        Ok(answer.map(|a| a.connection_tests).unwrap_or_default())
    }

    /// Long-polls for a job; `None` when there is none.
    pub async fn next_job(&self, wait: u64) -> Result<Option<Job>> {
        let response =
            self.send(|| self.authed(self.http.get(format!("{}/agent/v1/jobs/next?wait={wait}", self.base))).timeout(Duration::from_secs(wait + 30))).await?;
        match response.status() {
            reqwest::StatusCode::NO_CONTENT => Ok(None),
            s if s.is_success() => Ok(Some(response.json().await?)),
            s => bail!("jobs/next failed: {s}"),
        }
    }

    /// Asks for AWS credentials to receive from the runtime's queue; `None`
    /// when the server does not vend them (404: a server older than queue
    /// credentials), so the agent keeps to `jobs/next`.
    pub async fn aws_credentials(&self) -> Result<Option<AwsCredentialsResponse>> {
        let response = self.send(|| self.authed(self.http.post(format!("{}/agent/v1/credentials/aws", self.base)))).await?;
        match response.status() {
            reqwest::StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Ok(Some(response.json().await.map_err(|e| anyhow::anyhow!("unexpected queue credentials: {e}"))?)),
            s => bail!("queue credentials refused: {s}"),
        }
    }

    /// Claims a job whose message the agent received from its queue.
    pub async fn claim(&self, job: &uuid::Uuid, deployment: Option<&uuid::Uuid>, receipt_handle: &str) -> Result<Claim> {
        let body = ClaimBody { receipt_handle: receipt_handle.to_string(), deployment_id: deployment.copied() };
        let response = self.send(|| self.authed(self.http.post(format!("{}/agent/v1/jobs/{job}/claim", self.base))).json(&body)).await?;
        match response.status() {
            reqwest::StatusCode::CONFLICT | reqwest::StatusCode::NOT_FOUND => Ok(Claim::Gone),
            s if s.is_success() => Ok(Claim::Job(Box::new(response.json().await?))),
            s => bail!("claim failed: {s}"),
        }
    }

    /// The job's extension values as the server sent them (JSON, secrets in
    /// clear): kept as bytes, never parsed into an error message or logged.
    pub async fn job_extensions(&self, job: &uuid::Uuid) -> Result<Vec<u8>> {
        let response = self.send(|| self.authed(self.http.get(format!("{}/agent/v1/jobs/{job}/extensions", self.base)))).await?;
        match response.status() {
            s if s.is_success() => Ok(response.bytes().await?.to_vec()),
            s => bail!("the job's extension values were refused ({s})"),
        }
    }

    /// A connection test's values, as `job_extensions`.
    pub async fn connection_test_extensions(&self, test: &uuid::Uuid) -> Result<Vec<u8>> {
        let response = self.send(|| self.authed(self.http.get(format!("{}/agent/v1/connection-tests/{test}/extensions", self.base)))).await?;
        match response.status() {
            s if s.is_success() => Ok(response.bytes().await?.to_vec()),
            s => bail!("the connection test's values were refused ({s})"),
        }
    }

    /// Reports how a connection test went.
    pub async fn report_connection_test(&self, test: &uuid::Uuid, succeeded: bool, message: &str) -> Result<()> {
        let body = berth_protocol::ConnectionTestResultBody { succeeded, message: Some(without_query_strings(message)) };
        let response = self.send(|| self.authed(self.http.post(format!("{}/agent/v1/connection-tests/{test}/result", self.base))).json(&body)).await?;
        if !response.status().is_success() {
            bail!("the connection test's result was refused ({})", response.status());
        }
        Ok(())
    }

    /// Reports a phase, retrying a few times on network errors.
    /// URLs in `message` lose their query strings first: a presigned URL's
    /// signature must not end up in the server's timeline.
    pub async fn report(&self, job: &uuid::Uuid, deployment: &uuid::Uuid, phase: Phase, message: &str) -> Result<JobEventResponse> {
        let body = JobEventBody { phase, message: Some(without_query_strings(message)), deployment_id: Some(*deployment) };
        let mut last = None;
        for attempt in 0..5u64 {
            let sent = self.send(|| self.authed(self.http.post(format!("{}/agent/v1/jobs/{job}/events", self.base))).json(&body)).await;
            match sent {
                Ok(r) if r.status().is_success() => {
                    let answer: JobEventResponse = r.json().await?;
                    tracing::debug!(job_id = %job, %phase, job_status = ?answer.job_status, proceed = answer.proceed, "reported");
                    return Ok(answer);
                }
                Ok(r) if r.status().is_client_error() => return Err(Refused { phase, status: r.status() }.into()),
                Ok(r) => last = Some(anyhow::anyhow!("{phase}: {}", r.status())),
                Err(e) => last = Some(e.into()),
            }
            tokio::time::sleep(Duration::from_millis(500 * (attempt + 1))).await;
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("report failed")))
    }

    /// Streams the archive to `dest`, verifying its SHA-256 against `digest`.
    pub async fn download(&self, url: &str, dest: &Path, digest: &str) -> Result<()> {
        let partial = dest.with_extension("partial");
        // Errors leave the (presigned, secret-bearing) URL out.
        let mut response =
            self.send(|| self.http.get(url).timeout(Duration::from_secs(3600))).await.and_then(|r| r.error_for_status()).map_err(|e| e.without_url())?;
        let mut file = tokio::fs::File::create(&partial).await?;
        let mut hasher = Sha256::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| e.without_url())? {
            hasher.update(&chunk);
            file.write_all(&chunk).await?;
        }
        file.sync_all().await?;
        let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
        if actual != digest {
            let _ = tokio::fs::remove_file(&partial).await;
            bail!("digest mismatch: expected {digest}, downloaded {actual}");
        }
        tokio::fs::rename(&partial, dest).await?;
        Ok(())
    }
}

/// What a claim answered.
pub enum Claim {
    /// The job to run.
    Job(Box<Job>),
    /// 409 `job_settled` or 404: nothing to run; the message is to be deleted.
    Gone,
}

/// `text` with the query string of every URL in it removed.
pub fn without_query_strings(text: &str) -> String {
    text.split_inclusive(char::is_whitespace)
        .map(|word| match (word.find("://"), word.find('?')) {
            (Some(scheme), Some(query)) if query > scheme => {
                let tail = if word.ends_with(char::is_whitespace) { &word[word.len() - 1..] } else { "" };
                format!("{}?[redacted]{tail}", &word[..query])
            }
            _ => word.to_string(),
        })
        .collect()
}

/// When the agent rotates its credential: `every` after the credential file
/// was last written (at registration or the last rotation), so the schedule
/// survives restarts; after a failed attempt, not before `RETRY_AFTER`.
pub struct RotationSchedule {
    every: Option<Duration>,
    retry_at: std::sync::Mutex<Option<std::time::Instant>>,
}

impl RotationSchedule {
    const RETRY_AFTER: Duration = Duration::from_secs(300);

    /// `days` of 0 (or less) never rotates.
    pub fn every_days(days: f64) -> Self {
        let every = (days > 0.0).then(|| Duration::from_secs_f64((days * 86_400.0).min(1e9)));
        Self { every, retry_at: std::sync::Mutex::new(None) }
    }

    fn due(&self, state: &crate::state::StateDir) -> bool {
        let Some(every) = self.every else { return false };
        if self.retry_at.lock().map(|r| r.is_some_and(|at| std::time::Instant::now() < at)).unwrap_or(false) {
            return false;
        }
        let written = std::fs::metadata(state.credential_file()).and_then(|m| m.modified());
        written.map(|at| at.elapsed().unwrap_or_default() >= every).unwrap_or(false)
    }

    /// Rotates when due; a failure is logged and tried again later.
    pub async fn rotate_if_due(&self, api: &Api, state: &crate::state::StateDir, running: &[RunningPackage]) {
        if !self.due(state) {
            return;
        }
        match api.rotate_credential(state, running).await {
            Ok(()) => tracing::info!("runtime credential rotated"),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "credential rotation failed; will try again");
                if let Ok(mut r) = self.retry_at.lock() {
                    *r = Some(std::time::Instant::now() + Self::RETRY_AFTER);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_server::{Answer, Asked, serve};
    use std::sync::{Arc, Mutex};

    #[test]
    fn urls_lose_their_query_strings_and_other_text_stays() {
        assert_eq!(without_query_strings("GET http://s3/b/k.tar.gz?X-Amz-Signature=abc failed\nthen"), "GET http://s3/b/k.tar.gz?[redacted] failed\nthen");
        assert_eq!(without_query_strings("exit status 1: what? no"), "exit status 1: what? no");
    }

    /// The fake server answering `(status, extra header lines)` with no body.
    fn server(answers: Vec<(u16, &'static str)>) -> (String, Arc<Mutex<Vec<Asked>>>) {
        serve(answers.into_iter().map(|(status, headers)| Answer { status, headers, body: "" }).collect())
    }

    #[tokio::test]
    async fn a_busy_server_is_asked_again_after_the_pause_it_asks_for() {
        let (base, asked) = server(vec![(503, "retry-after: 0\r\n"), (429, "retry-after: 0\r\n"), (204, "")]);
        let api = Api::new(&base).expect("a client").with_credential("c".into());

        api.heartbeat(&[]).await.expect("the third try is accepted");
        assert_eq!(asked.lock().expect("the log").len(), 3);
    }

    #[tokio::test]
    async fn a_refusal_is_not_retried() {
        let (base, asked) = server(vec![(403, ""), (204, "")]);
        let api = Api::new(&base).expect("a client").with_credential("c".into());

        api.heartbeat(&[]).await.expect_err("a 403 is final");
        assert_eq!(asked.lock().expect("the log").len(), 1);
    }

    #[tokio::test]
    async fn a_server_that_stays_busy_is_given_up_on() {
        let (base, asked) = server(vec![(503, "retry-after: 0\r\n"); BUSY_ATTEMPTS as usize + 1]);
        let api = Api::new(&base).expect("a client").with_credential("c".into());

        let err = api.heartbeat(&[]).await.expect_err("still busy after every try");
        assert!(err.to_string().contains("503"), "{err}");
        assert_eq!(asked.lock().expect("the log").len(), BUSY_ATTEMPTS as usize);
    }
}

#[cfg(test)]
mod rotation_tests {
    use super::*;
    use crate::fake_server::{Answer, Asked, serve};
    use crate::state::StateDir;
    use std::sync::{Arc, Mutex};

    /// The fake server answering `(status, JSON body)`.
    fn server(answers: Vec<(u16, &'static str)>) -> (String, Arc<Mutex<Vec<Asked>>>) {
        serve(answers.into_iter().map(|(status, body)| Answer { status, headers: "", body }).collect())
    }

    /// The bearer credential of each request so far.
    fn bearers(asked: &Mutex<Vec<Asked>>) -> Vec<String> {
        asked.lock().expect("the log").iter().map(|a| a.bearer.clone()).collect()
    }

    fn state_with(credential: &str) -> (tempfile::TempDir, StateDir) {
        let dir = tempfile::tempdir().expect("a dir");
        let state = StateDir::open(dir.path()).expect("a state dir");
        state.write_credential(credential).expect("written");
        (dir, state)
    }

    #[tokio::test]
    async fn a_rotated_credential_is_stored_then_proven_with_a_heartbeat_and_used_from_then_on() {
        let (base, asked) = server(vec![(200, r#"{"credential":"new"}"#), (200, r#"{}"#), (200, r#"{}"#)]);
        let (_dir, state) = state_with("old");
        let api = Api::new(&base).expect("a client").with_credential("old".into());

        api.rotate_credential(&state, &[]).await.expect("rotated");
        assert_eq!(state.read_credential().expect("read").as_deref(), Some("new"));
        api.heartbeat(&[]).await.expect("a heartbeat");
        assert_eq!(bearers(&asked), ["old", "new", "new"], "rotated with the old one, then only the new one");
    }

    #[tokio::test]
    async fn a_rotated_credential_that_is_refused_puts_the_old_one_back() {
        let (base, asked) = server(vec![(200, r#"{"credential":"new"}"#), (401, r#"{}"#), (200, r#"{}"#)]);
        let (_dir, state) = state_with("old");
        let api = Api::new(&base).expect("a client").with_credential("old".into());

        api.rotate_credential(&state, &[]).await.expect_err("the new one was refused");
        assert_eq!(state.read_credential().expect("read").as_deref(), Some("old"));
        api.heartbeat(&[]).await.expect("a heartbeat");
        assert_eq!(bearers(&asked).last().map(String::as_str), Some("old"));
    }

    #[tokio::test]
    async fn a_rotated_credential_whose_proof_fails_otherwise_is_kept_as_it_may_have_voided_the_old_one() {
        let (base, _asked) = server(vec![(200, r#"{"credential":"new"}"#), (500, r#"{}"#)]);
        let (_dir, state) = state_with("old");
        let api = Api::new(&base).expect("a client").with_credential("old".into());

        api.rotate_credential(&state, &[]).await.expect("kept");
        assert_eq!(state.read_credential().expect("read").as_deref(), Some("new"));
    }

    #[tokio::test]
    async fn a_refused_rotation_changes_nothing() {
        let (base, _asked) = server(vec![(401, r#"{}"#)]);
        let (_dir, state) = state_with("old");
        let api = Api::new(&base).expect("a client").with_credential("old".into());

        api.rotate_credential(&state, &[]).await.expect_err("refused");
        assert_eq!(state.read_credential().expect("read").as_deref(), Some("old"));
    }

    #[test]
    fn rotation_is_due_once_the_credential_file_is_older_than_the_interval_and_never_at_zero_days() {
        let (_dir, state) = state_with("old");
        assert!(!RotationSchedule::every_days(30.0).due(&state), "just written");
        assert!(!RotationSchedule::every_days(0.0).due(&state));
        let file = std::fs::File::options().write(true).open(state.credential_file()).expect("the file");
        file.set_modified(std::time::SystemTime::now() - Duration::from_secs(31 * 86_400)).expect("backdated");
        assert!(RotationSchedule::every_days(30.0).due(&state));
        assert!(!RotationSchedule::every_days(0.0).due(&state), "0 never rotates");
    }
}
