//! The Berth agent protocol (`/agent/v1`) on the wire: one type per message,
//! shared by the gateway (which serves it) and `berth-agent` (which speaks it),
//! so the two cannot drift apart. docs/agent-protocol.md describes the protocol.
//!
//! Serde only. The `openapi` feature adds `utoipa::ToSchema` for the gateway's
//! OpenAPI document. Values are checked by the server, not here: a request body
//! carries plain strings (a name, a digest, a version) that the gateway
//! validates, so an agent built against this crate can still send what it likes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// `POST /agent/v1/register`: exchanges the one-time registration token for the runtime's credential.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"registration_token": "brr_0b5e2c1a9f8e4d7c8b6a5f4e3d2c1b0a_5d0c8a521f0e4c539a436c1d2f0e7b31_4f1c4f1c4f1c4f1c4f1c4f1c4f1c4f1c4f1c4f1c4f1c4f1c4f1c4f1c4f1c4f1c", "name": "atom-prod-1", "agent_version": "1.4.2"})))]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    /// The one-time `registration_token` of `POST /v1/runtimes`.
    pub registration_token: String,
    /// Renames the runtime: 1 to 100 characters, no control characters, not only white space.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 100,
            pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x1f\x7f-\x9f \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$"
        )
    )]
    pub name: Option<String>,
    /// Semantic version of the agent: 1 to 64 printable ASCII characters.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64, pattern = "^[ -~]*[!-~][ -~]*$"))]
    pub agent_version: String,
}

/// The answer to a registration (201).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct RegisterResponse {
    pub runtime_id: Uuid,
    /// Shown once: the agent keeps it; Berth keeps only its hash.
    pub credential: String,
}

/// The answer to `POST /agent/v1/credentials/rotate` (200): the runtime's new
/// credential. The one the request was made with keeps working until this
/// one is first used; from then on only this one works.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct RotateResponse {
    /// Shown once: store it before using it; Berth keeps only its hash.
    pub credential: String,
}

/// What an agent says of its own health in a heartbeat.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AgentHealth {
    Ok,
    Degraded,
}

/// A package version the agent runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct RunningPackage {
    pub component_id: Uuid,
    pub package_id: Uuid,
    /// `sha256:<64 lowercase hex>` of the package archive.
    pub digest: String,
}

/// `POST /agent/v1/heartbeat`: the agent's health and what it runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"agent_version": "1.4.2", "status": "ok", "running": [{
    "component_id": "5d0c8a52-1f0e-4c53-9a43-6c1d2f0e7b31",
    "package_id": "8f3b2a10-6c4d-4e8f-b1a2-3c4d5e6f7a8b",
    "digest": "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}]})))]
#[serde(deny_unknown_fields)]
pub struct HeartbeatBody {
    /// 1 to 64 printable ASCII characters.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64, pattern = "^[ -~]*[!-~][ -~]*$"))]
    pub agent_version: String,
    pub status: AgentHealth,
    /// What the runtime runs (at most 1000 entries).
    #[serde(default)]
    pub running: Vec<RunningPackage>,
}

/// A runtime's status as the server derives it from heartbeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RuntimeStatus {
    Online,
    Offline,
    Unknown,
}

/// The answer to a heartbeat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct HeartbeatResponse {
    pub runtime_id: Uuid,
    pub status: RuntimeStatus,
    /// Connection tests waiting for this runtime (left out when none): run
    /// each, then report it with `POST /agent/v1/connection-tests/{id}/result`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connection_tests: Vec<ConnectionTestJob>,
}

/// A connection test for the runtime: test the component's connection in the
/// environment with the values of `GET /agent/v1/connection-tests/{id}/extensions`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ConnectionTestJob {
    pub test_id: Uuid,
    pub environment_id: Uuid,
    pub component_id: Uuid,
}

/// `POST /agent/v1/connection-tests/{id}/result`: how the test went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"succeeded": false, "message": "connection refused"})))]
#[serde(deny_unknown_fields)]
pub struct ConnectionTestResultBody {
    pub succeeded: bool,
    /// Shown to the tenant's users: never a secret (it is redacted as a job message is). At most 2000 characters are kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// What a job does to the component.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Also what a runtime newly attached to an environment is sent for each
    /// version the environment runs (a sync, in the portal).
    Deploy,
    /// An earlier version than the active one, again.
    Redeploy,
    /// Automatic, after a failure.
    Rollback,
    /// Removes the component; a job of this kind has nothing to download.
    Undeploy,
}

impl JobKind {
    /// The spelling on the wire (also what `berth-agent` hands its apply command as `BERTH_KIND`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deploy => "deploy",
            Self::Redeploy => "redeploy",
            Self::Rollback => "rollback",
            Self::Undeploy => "undeploy",
        }
    }
}

impl std::fmt::Display for JobKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `GET /agent/v1/jobs/next` (200): which package to install where, how to download it, and by when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Job {
    pub job_id: Uuid,
    pub deployment_id: Uuid,
    pub kind: JobKind,
    pub environment_id: Uuid,
    pub component_id: Uuid,
    pub package_id: Uuid,
    pub version: String,
    /// `sha256:<64 lowercase hex>` of the package archive.
    pub digest: String,
    pub size: u64,
    /// Presigned: a secret until it expires.
    pub download_url: String,
    pub deadline: DateTime<Utc>,
}

/// `POST /agent/v1/jobs/{id}/claim`: the agent received this job's message from
/// its queue in SQS and starts it; answered with the `Job` (200), or 409
/// `job_settled` when the job ended or was withdrawn (the agent deletes the message).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"receipt_handle": "AQEBzbVf...Rx2w=="})))]
#[serde(deny_unknown_fields)]
pub struct ClaimBody {
    /// The `ReceiptHandle` SQS gave with the message.
    pub receipt_handle: String,
    /// The job's deployment, as its message said: saves the server looking
    /// the job up (optional; a wrong one is ignored, the job looked up instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<Uuid>,
}

/// The body of a job message in a runtime's queue: no secret, no URL. The
/// agent claims the job (`POST /agent/v1/jobs/{job_id}/claim`) to get the rest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct JobMessage {
    pub tenant_id: Uuid,
    pub deployment_id: Uuid,
    pub runtime_id: Uuid,
    pub job_id: Uuid,
}

/// `POST /agent/v1/credentials/aws` (200): short-lived AWS credentials that
/// allow only `sqs:ReceiveMessage`, `sqs:DeleteMessage` and
/// `sqs:ChangeMessageVisibility` on the runtime's own queue. A secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct AwsCredentialsResponse {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    /// The credentials stop working then (one hour after they were vended): renew before.
    pub expiration: DateTime<Utc>,
    /// The queue's region: where to send `ReceiveMessage`.
    pub region: String,
    /// The runtime's own queue.
    pub queue_url: String,
}

impl std::fmt::Debug for AwsCredentialsResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCredentialsResponse")
            .field("access_key_id", &self.access_key_id)
            .field("expiration", &self.expiration)
            .field("region", &self.region)
            .field("queue_url", &self.queue_url)
            .finish_non_exhaustive()
    }
}

/// The phases an agent reports, in the order a job goes through them
/// (`failed` then `restored` when it goes wrong).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Delivered,
    Downloading,
    BackingUp,
    Applying,
    Deployed,
    Failed,
    Restored,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Downloading => "downloading",
            Self::BackingUp => "backing_up",
            Self::Applying => "applying",
            Self::Deployed => "deployed",
            Self::Failed => "failed",
            Self::Restored => "restored",
        }
    }

    /// Reported once the work is over: there is nothing left to stop, whatever `proceed` says.
    pub fn ends_the_work(self) -> bool {
        matches!(self, Self::Deployed | Self::Failed | Self::Restored)
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `POST /agent/v1/jobs/{id}/events`: progress on a job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"phase": "applying", "message": "Stopping the old version"})))]
#[serde(deny_unknown_fields)]
pub struct JobEventBody {
    pub phase: Phase,
    /// Kept up to 2000 characters, control characters removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The job's deployment, as the job said: saves the server looking the
    /// job up (optional; a wrong one is ignored, the job looked up instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<Uuid>,
}

/// A job's state on its runtime, as the server reports it: the phases an
/// agent reports, plus `pending` (not yet delivered) and `skipped` (withdrawn
/// before it ran).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Pending,
    Delivered,
    Downloading,
    BackingUp,
    Applying,
    Deployed,
    Failed,
    Restored,
    Skipped,
}

/// The answer to a job event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct JobEventResponse {
    /// The job's state after the event.
    pub job_status: JobStatus,
    /// False once the job ended, was replaced by a retry, or its deployment was cancelled: the agent stops.
    pub proceed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::DeserializeOwned;
    use serde_json::{Value, json};

    /// `sample` parses into `expected` and `expected` serialises back to exactly `sample`.
    fn round_trips<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(sample: Value, expected: T) {
        let parsed: T = serde_json::from_value(sample.clone()).expect("the sample parses");
        assert_eq!(parsed, expected);
        assert_eq!(serde_json::to_value(&expected).expect("it serialises"), sample);
    }

    const ID: &str = "5d0c8a52-1f0e-4c53-9a43-6c1d2f0e7b31";
    const DIGEST: &str = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn id() -> Uuid {
        Uuid::parse_str(ID).expect("a uuid")
    }

    #[test]
    fn a_registration_reads_and_writes_the_documented_fields_and_leaves_out_an_absent_name() {
        round_trips(
            json!({"registration_token": "brr_x", "name": "atom-1", "agent_version": "1.4.2"}),
            RegisterBody { registration_token: "brr_x".into(), name: Some("atom-1".into()), agent_version: "1.4.2".into() },
        );
        round_trips(
            json!({"registration_token": "brr_x", "agent_version": "1.4.2"}),
            RegisterBody { registration_token: "brr_x".into(), name: None, agent_version: "1.4.2".into() },
        );
        let unknown = serde_json::from_value::<RegisterBody>(json!({"registration_token": "t", "agent_version": "1", "colour": "blue"}));
        assert!(unknown.is_err(), "an unknown field is refused");
    }

    #[test]
    fn a_registration_answer_carries_the_runtime_id_and_credential() {
        round_trips(json!({"runtime_id": ID, "credential": "brc_secret"}), RegisterResponse { runtime_id: id(), credential: "brc_secret".into() });
    }

    #[test]
    fn a_rotation_answer_carries_the_new_credential() {
        round_trips(json!({"credential": "brc_new"}), RotateResponse { credential: "brc_new".into() });
    }

    #[test]
    fn a_heartbeat_reads_and_writes_health_and_running_packages() {
        round_trips(
            json!({"agent_version": "1.4.2", "status": "degraded", "running": [{"component_id": ID, "package_id": ID, "digest": DIGEST}]}),
            HeartbeatBody {
                agent_version: "1.4.2".into(),
                status: AgentHealth::Degraded,
                running: vec![RunningPackage { component_id: id(), package_id: id(), digest: DIGEST.into() }],
            },
        );
        let without_running: HeartbeatBody = serde_json::from_value(json!({"agent_version": "1", "status": "ok"})).expect("running may be left out");
        assert_eq!(without_running.running, vec![]);
        assert_eq!(without_running.status, AgentHealth::Ok);
    }

    #[test]
    fn a_heartbeat_answer_carries_the_runtime_status() {
        for (status, spelled) in [(RuntimeStatus::Online, "online"), (RuntimeStatus::Offline, "offline"), (RuntimeStatus::Unknown, "unknown")] {
            round_trips(json!({"runtime_id": ID, "status": spelled}), HeartbeatResponse { runtime_id: id(), status, connection_tests: vec![] });
        }
    }

    #[test]
    fn a_job_reads_and_writes_every_field_and_each_kind() {
        for (kind, spelled) in [(JobKind::Deploy, "deploy"), (JobKind::Redeploy, "redeploy"), (JobKind::Rollback, "rollback"), (JobKind::Undeploy, "undeploy")]
        {
            let sample = json!({
                "job_id": ID, "deployment_id": ID, "kind": spelled, "environment_id": ID, "component_id": ID, "package_id": ID,
                "version": "1.2.3", "digest": DIGEST, "size": 1234, "download_url": "https://s3/b/k?X-Amz-Signature=s",
                "deadline": "2026-12-02T00:22:12.123456789Z"
            });
            let deadline = DateTime::parse_from_rfc3339("2026-12-02T00:22:12.123456789Z").expect("a date").with_timezone(&Utc);
            round_trips(
                sample,
                Job {
                    job_id: id(),
                    deployment_id: id(),
                    kind,
                    environment_id: id(),
                    component_id: id(),
                    package_id: id(),
                    version: "1.2.3".into(),
                    digest: DIGEST.into(),
                    size: 1234,
                    download_url: "https://s3/b/k?X-Amz-Signature=s".into(),
                    deadline,
                },
            );
            assert_eq!(kind.to_string(), spelled);
        }
    }

    #[test]
    fn a_claim_names_the_receipt_handle_and_nothing_else() {
        round_trips(json!({"receipt_handle": "AQEB=="}), ClaimBody { receipt_handle: "AQEB==".into(), deployment_id: None });
        assert!(serde_json::from_value::<ClaimBody>(json!({"receipt_handle": "r", "job_id": ID})).is_err(), "an unknown field is refused");
    }

    #[test]
    fn a_job_message_carries_four_ids_and_no_secret_or_url() {
        round_trips(
            json!({"tenant_id": ID, "deployment_id": ID, "runtime_id": ID, "job_id": ID}),
            JobMessage { tenant_id: id(), deployment_id: id(), runtime_id: id(), job_id: id() },
        );
    }

    #[test]
    fn queue_credentials_read_and_write_every_field_and_debug_hides_the_secrets() {
        let sample = json!({
            "access_key_id": "ASIAEXAMPLE", "secret_access_key": "wJalrXUtnFEMI", "session_token": "FwoGZXIvYXdz",
            "expiration": "2026-12-02T01:00:00Z", "region": "eu-west-1", "queue_url": "https://sqs.eu-west-1.amazonaws.com/123456789012/berth-rt-1"
        });
        let expiration = DateTime::parse_from_rfc3339("2026-12-02T01:00:00Z").expect("a date").with_timezone(&Utc);
        let credentials = AwsCredentialsResponse {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI".into(),
            session_token: "FwoGZXIvYXdz".into(),
            expiration,
            region: "eu-west-1".into(),
            queue_url: "https://sqs.eu-west-1.amazonaws.com/123456789012/berth-rt-1".into(),
        };
        round_trips(sample, credentials.clone());
        let shown = format!("{credentials:?}");
        assert!(!shown.contains("wJalrXUtnFEMI") && !shown.contains("FwoGZXIvYXdz"), "{shown}");
    }

    #[test]
    fn a_job_event_reads_and_writes_each_phase_and_leaves_out_an_absent_message() {
        let phases = [
            (Phase::Delivered, "delivered"),
            (Phase::Downloading, "downloading"),
            (Phase::BackingUp, "backing_up"),
            (Phase::Applying, "applying"),
            (Phase::Deployed, "deployed"),
            (Phase::Failed, "failed"),
            (Phase::Restored, "restored"),
        ];
        for (phase, spelled) in phases {
            round_trips(json!({"phase": spelled, "message": "m"}), JobEventBody { phase, message: Some("m".into()), deployment_id: None });
            assert_eq!(phase.to_string(), spelled);
        }
        round_trips(json!({"phase": "applying"}), JobEventBody { phase: Phase::Applying, message: None, deployment_id: None });
        let deployment = Uuid::nil();
        round_trips(
            json!({"phase": "applying", "deployment_id": "00000000-0000-0000-0000-000000000000"}),
            JobEventBody { phase: Phase::Applying, message: None, deployment_id: Some(deployment) },
        );
        assert!(serde_json::from_value::<JobEventBody>(json!({"phase": "swapping"})).is_err(), "an unknown phase is refused");
    }

    #[test]
    fn a_job_event_answer_carries_every_job_status() {
        let statuses = [
            (JobStatus::Pending, "pending"),
            (JobStatus::Delivered, "delivered"),
            (JobStatus::Downloading, "downloading"),
            (JobStatus::BackingUp, "backing_up"),
            (JobStatus::Applying, "applying"),
            (JobStatus::Deployed, "deployed"),
            (JobStatus::Failed, "failed"),
            (JobStatus::Restored, "restored"),
            (JobStatus::Skipped, "skipped"),
        ];
        for (job_status, spelled) in statuses {
            round_trips(json!({"job_status": spelled, "proceed": false}), JobEventResponse { job_status, proceed: false });
        }
    }

    #[test]
    fn only_the_last_phases_end_the_work() {
        let ending: Vec<Phase> = [Phase::Delivered, Phase::Downloading, Phase::BackingUp, Phase::Applying, Phase::Deployed, Phase::Failed, Phase::Restored]
            .into_iter()
            .filter(|p| p.ends_the_work())
            .collect();
        assert_eq!(ending, vec![Phase::Deployed, Phase::Failed, Phase::Restored]);
    }
}

/// `GET /agent/v1/jobs/{id}/extensions` (200): the values of the environment's
/// extensions for what the job's package bundles, secrets in clear. A secret:
/// the agent writes it to a file only its user can read, passes the file to
/// the apply command as `BERTH_EXTENSIONS_FILE`, and never logs it.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"version": 3, "components": {"5b0d0a3e-6a0f-4a0e-9b1e-1f2a3b4c5d6e": {
    "connection": {"url": "https://crm.example", "password": "s3cret"}, "properties": {"batch_size": 100}, "lookups": {"countries": {"DE": "Germany"}}}}})))]
#[serde(deny_unknown_fields)]
pub struct JobExtensions {
    /// The environment's extensions version the values were read at.
    pub version: u64,
    /// Per bundled component that declares extension points, by its id.
    pub components: std::collections::BTreeMap<Uuid, ComponentExtensions>,
}

/// One component's values: declared connection fields that have a value,
/// properties (defaults applied), lookup tables.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ComponentExtensions {
    /// Connection fields in clear, secret ones included.
    pub connection: std::collections::BTreeMap<String, String>,
    /// Each a JSON string, number or boolean.
    #[cfg_attr(feature = "openapi", schema(value_type = std::collections::BTreeMap<String, Object>))]
    pub properties: std::collections::BTreeMap<String, serde_json::Value>,
    /// Per table, source key to target value.
    pub lookups: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
}

impl std::fmt::Debug for JobExtensions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobExtensions").field("version", &self.version).field("components", &self.components.keys().collect::<Vec<_>>()).finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ComponentExtensions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentExtensions").field("connection", &self.connection.keys().collect::<Vec<_>>()).finish_non_exhaustive()
    }
}
