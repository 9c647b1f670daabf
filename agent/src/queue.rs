//! Where the agent gets its jobs: its runtime's own queue in SQS, long-polled
//! with short-lived AWS credentials the gateway vends
//! (`POST /agent/v1/credentials/aws`), each message claimed from the gateway
//! (docs/agent-protocol.md, section 5). No gateway Lambda is held while the
//! agent waits. When the server vends no credentials (404: it predates them),
//! while vending or SQS fails, or when told to (`queue = "http"`), the agent
//! polls `GET /agent/v1/jobs/next` instead, as agents always did.

use crate::api::{Api, Claim, Job};
use crate::shutdown::Shutdown;
use crate::state::StateDir;
use anyhow::Result;
use aws_sdk_sqs::config::timeout::TimeoutConfig;
use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use berth_protocol::{AwsCredentialsResponse, JobMessage};
use chrono::{DateTime, Utc};
use std::time::{Duration, Instant};

/// How the agent receives its jobs (`queue` in the config file, `--queue`, `BERTH_AGENT_JOB_SOURCE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum JobSource {
    /// From the runtime's queue in SQS, falling back to `jobs/next` when that is not possible.
    Sqs,
    /// Only from `GET /agent/v1/jobs/next` (for hosts that may reach nothing but Berth).
    Http,
}

/// The longest `ReceiveMessage` wait SQS allows.
const MAX_WAIT_SECS: u64 = 20;
/// Long enough to claim a message (the claim then hides it until the job's
/// deadline), and short, because a receive the agent gives up on (a stop, a
/// crash, a kill) may still take a message on the server's side: it shows
/// again this soon. A claim slower than this gets 422 and the message comes back: no harm.
const VISIBILITY_SECS: i32 = 15;
/// After a failure to get credentials or to reach SQS, jobs come from `jobs/next` for this long before SQS is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(60);

struct Session {
    client: aws_sdk_sqs::Client,
    queue_url: String,
    expiration: DateTime<Utc>,
}

pub struct Queue<'a> {
    api: &'a Api,
    state: &'a StateDir,
    source: JobSource,
    margin: chrono::Duration,
    session: Option<Session>,
    retry_at: Option<Instant>,
}

impl<'a> Queue<'a> {
    pub fn new(api: &'a Api, state: &'a StateDir, source: JobSource, renew_margin_secs: u64) -> Self {
        let margin = chrono::Duration::seconds(i64::try_from(renew_margin_secs).unwrap_or(i64::MAX / 1000).min(i64::MAX / 1000));
        Self { api, state, source, margin, session: None, retry_at: None }
    }

    /// The next job, or `None` when none came within about `budget` (at most
    /// 20 s; the caller keeps it under the time to its next heartbeat). A stop
    /// request ends a wait on SQS at once: a message received meanwhile is
    /// not lost, it shows again after its visibility timeout (15 s).
    pub async fn next(&mut self, budget: Duration, poll_wait: u64, shutdown: &Shutdown) -> Result<Option<Job>> {
        if !self.ready().await {
            return self.api.next_job(poll_wait.min(budget.as_secs())).await;
        }
        let Some(session) = &self.session else { return Ok(None) };
        let wait = budget.as_secs().clamp(1, MAX_WAIT_SECS) as i32;
        let receive = session
            .client
            .receive_message()
            .queue_url(&session.queue_url)
            .wait_time_seconds(wait)
            .max_number_of_messages(1)
            .visibility_timeout(VISIBILITY_SECS)
            .send();
        let received = tokio::select! {
            r = receive => r,
            _ = shutdown.stop_requested() => return Ok(None),
        };
        let messages = match received {
            Ok(out) => out.messages.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "receiving from the queue failed; polling jobs/next meanwhile");
                self.session = None;
                self.retry_at = Some(Instant::now() + RETRY_AFTER);
                return Ok(None);
            }
        };
        for message in messages {
            let Some(receipt) = message.receipt_handle else { continue };
            let parsed = message.body.as_deref().map(serde_json::from_str::<JobMessage>);
            let Some(Ok(job_message)) = parsed else {
                tracing::warn!("a queue message that is not a job; deleted");
                self.delete(&receipt).await;
                continue;
            };
            let job_id = job_message.job_id;
            match self.api.claim(&job_id, Some(&job_message.deployment_id), &receipt).await? {
                Claim::Gone => {
                    tracing::info!(%job_id, "the job is settled or not this runtime's; message deleted");
                    self.delete(&receipt).await;
                }
                Claim::Job(job) if self.already_ran(&job) => {
                    // The server deletes the message when the job settles.
                    tracing::info!(%job_id, "a second delivery of a job this agent ran already; ignored");
                }
                Claim::Job(job) => {
                    tracing::info!(%job_id, "job claimed from the queue");
                    return Ok(Some(*job));
                }
            }
        }
        Ok(None)
    }

    /// Whether `job` is the last one this agent finished (its outcome is
    /// recorded): a delivery SQS repeated before the server settled it.
    fn already_ran(&self, job: &Job) -> bool {
        self.state.last_job().ok().flatten().is_some_and(|last| last.job_id == job.job_id.to_string())
    }

    async fn delete(&self, receipt: &str) {
        let Some(session) = &self.session else { return };
        if let Err(e) = session.client.delete_message().queue_url(&session.queue_url).receipt_handle(receipt).send().await {
            tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "could not delete a queue message");
        }
    }

    /// Whether a session on the queue is usable now, getting or renewing its
    /// credentials when they are missing or within the margin of their expiration.
    async fn ready(&mut self) -> bool {
        if self.source == JobSource::Http {
            return false;
        }
        // A margin too large to subtract means: renew every time.
        let renew = self.session.as_ref().is_none_or(|s| s.expiration.checked_sub_signed(self.margin).is_none_or(|at| at <= Utc::now()));
        if !renew {
            return true;
        }
        if self.retry_at.is_some_and(|at| Instant::now() < at) {
            return self.session_still_valid();
        }
        match self.api.aws_credentials().await {
            Ok(Some(credentials)) => {
                let renewed = self.session.is_some();
                self.session = Some(session(credentials));
                self.retry_at = None;
                let expiration = self.session.as_ref().map(|s| s.expiration);
                if renewed {
                    tracing::info!(?expiration, "queue credentials renewed");
                } else {
                    tracing::info!(?expiration, "receiving jobs from the runtime's queue");
                }
                true
            }
            Ok(None) => {
                tracing::info!("the server vends no queue credentials; polling jobs/next");
                self.source = JobSource::Http;
                false
            }
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "could not get queue credentials; polling jobs/next meanwhile");
                self.retry_at = Some(Instant::now() + RETRY_AFTER);
                self.session_still_valid()
            }
        }
    }

    /// Credentials that failed to renew still serve until their expiration.
    fn session_still_valid(&mut self) -> bool {
        if self.session.as_ref().is_some_and(|s| s.expiration <= Utc::now()) {
            self.session = None;
        }
        self.session.is_some()
    }
}

/// An SQS client signing with the vended credentials for their region. The
/// endpoint is SQS's for the region unless `AWS_ENDPOINT_URL_SQS` or
/// `AWS_ENDPOINT_URL` name another (LocalStack, a VPC endpoint).
fn session(credentials: AwsCredentialsResponse) -> Session {
    let expires = std::time::SystemTime::from(credentials.expiration);
    let keys = Credentials::new(credentials.access_key_id, credentials.secret_access_key, Some(credentials.session_token), Some(expires), "berth-gateway");
    // A call that hangs must not stop the heartbeats: none lasts longer than the longest wait and some slack.
    let timeouts = TimeoutConfig::builder().operation_attempt_timeout(Duration::from_secs(MAX_WAIT_SECS + 15)).build();
    let mut config = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(credentials.region))
        .credentials_provider(keys)
        .timeout_config(timeouts);
    if let Some(endpoint) = endpoint_override() {
        config = config.endpoint_url(endpoint);
    }
    Session { client: aws_sdk_sqs::Client::from_conf(config.build()), queue_url: credentials.queue_url, expiration: credentials.expiration }
}

fn endpoint_override() -> Option<String> {
    ["AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL"].iter().find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_server::{Answer, Asked, serve};
    use std::sync::{Arc, Mutex};

    /// The fake server answering each request with the next status and an empty body.
    fn server(answers: Vec<u16>) -> (String, Arc<Mutex<Vec<Asked>>>) {
        serve(answers.into_iter().map(Answer::status).collect())
    }

    async fn two_rounds(answers: Vec<u16>, source: JobSource) -> Vec<String> {
        let (base, asked) = server(answers);
        let api = Api::new(&base).expect("a client").with_credential("c".into());
        let dir = tempfile::tempdir().expect("a dir");
        let state = StateDir::open(dir.path()).expect("a state dir");
        let shutdown = Shutdown::on_signals(Duration::from_secs(1)).expect("signals");
        let mut queue = Queue::new(&api, &state, source, 600);
        for _ in 0..2 {
            assert!(queue.next(Duration::from_secs(1), 0, &shutdown).await.expect("no job, no error").is_none());
        }
        asked.lock().expect("the log").iter().map(|a| a.path.split('?').next().unwrap_or_default().to_string()).collect()
    }

    #[tokio::test]
    async fn a_server_that_vends_no_queue_credentials_is_polled_with_jobs_next_from_then_on() {
        let asked = two_rounds(vec![404, 204, 204], JobSource::Sqs).await;
        assert_eq!(asked, ["/agent/v1/credentials/aws", "/agent/v1/jobs/next", "/agent/v1/jobs/next"]);
    }

    #[tokio::test]
    async fn a_failed_credentials_call_falls_back_to_jobs_next_and_is_not_repeated_at_once() {
        let asked = two_rounds(vec![500, 204, 204], JobSource::Sqs).await;
        assert_eq!(asked, ["/agent/v1/credentials/aws", "/agent/v1/jobs/next", "/agent/v1/jobs/next"]);
    }

    #[tokio::test]
    async fn an_agent_told_to_use_http_never_asks_for_queue_credentials() {
        let asked = two_rounds(vec![204, 204], JobSource::Http).await;
        assert_eq!(asked, ["/agent/v1/jobs/next", "/agent/v1/jobs/next"]);
    }
}
