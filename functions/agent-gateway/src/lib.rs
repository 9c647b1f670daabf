//! The runtime agent API (`/agent/v1`): agents register with a one-time
//! token, then authenticate with their runtime credential.

use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use berth_domain::DomainError;
use berth_domain::deployment::{DeploymentKind, TargetState};
use berth_domain::ids::JobId;
use berth_domain::runtime::{AgentHealth, Heartbeat, RunningPackage, parse_agent_version};
use berth_domain::usecases::AgentRequest;
use berth_domain::usecases::{Berth, RuntimeCtx};
use berth_domain::values::Name;
use berth_web::extract::{bearer_token, client_request_id_of, request_id_of};
use berth_web::{ApiError, JsonBody};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// At most this many running packages in one heartbeat.
pub const MAX_RUNNING: usize = 1000;

#[derive(Clone)]
pub struct AgentState {
    pub berth: Arc<Berth>,
}

/// The agent routes, without the shared edge layers (see `router`).
pub fn routes(state: AgentState) -> Router {
    Router::new()
        .route("/agent/v1/register", post(register))
        .route("/agent/v1/heartbeat", post(heartbeat))
        .route("/agent/v1/jobs/next", axum::routing::get(next_job))
        .route("/agent/v1/jobs/{id}/events", post(job_event))
        .with_state(state)
}

/// What the Lambda serves.
pub fn router(state: AgentState) -> Router {
    berth_web::finish_router(routes(state))
}

/// An agent authenticated by its runtime credential.
pub struct Agent(pub RuntimeCtx);

impl FromRequestParts<AgentState> for Agent {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AgentState) -> Result<Self, Self::Rejection> {
        let token = bearer_token(parts).ok_or_else(|| ApiError::unauthenticated("a runtime credential is required"))?;
        let ctx = state.berth.authenticate_runtime(token, &agent_request(parts)).await?;
        tracing::Span::current().record("tenant_id", tracing::field::display(ctx.tenant));
        Ok(Agent(ctx))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    pub registration_token: String,
    pub name: Option<Name>,
    pub agent_version: String,
}

#[derive(Serialize, Deserialize)]
pub struct RegisterResponse {
    pub runtime_id: uuid::Uuid,
    /// Shown once: the agent keeps it; Berth keeps only its hash.
    pub credential: String,
}

fn agent_request(parts: &Parts) -> AgentRequest {
    AgentRequest { request_id: request_id_of(parts), client_request_id: client_request_id_of(parts) }
}

async fn register(State(state): State<AgentState>, parts: Parts, JsonBody(body): JsonBody<RegisterBody>) -> Result<Response, ApiError> {
    let agent_version = parse_agent_version(&body.agent_version).map_err(|m| DomainError::invalid("agent_version", m))?;
    let registration = state.berth.register_agent(&body.registration_token, body.name, &agent_version, &agent_request(&parts)).await?;
    let response = RegisterResponse { runtime_id: registration.runtime_id.as_uuid(), credential: registration.credential.reveal() };
    Ok((StatusCode::CREATED, Json(response)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatBody {
    pub agent_version: String,
    pub status: AgentHealth,
    #[serde(default)]
    pub running: Vec<RunningPackage>,
}

#[derive(Serialize, Deserialize)]
pub struct HeartbeatResponse {
    pub runtime_id: uuid::Uuid,
    pub status: berth_domain::runtime::RuntimeStatus,
}

async fn heartbeat(State(state): State<AgentState>, Agent(ctx): Agent, JsonBody(body): JsonBody<HeartbeatBody>) -> Result<Json<HeartbeatResponse>, ApiError> {
    let agent_version = parse_agent_version(&body.agent_version).map_err(|m| DomainError::invalid("agent_version", m))?;
    if body.running.len() > MAX_RUNNING {
        return Err(DomainError::invalid("running", format!("at most {MAX_RUNNING} entries")).into());
    }
    let hb = Heartbeat { agent_version, health: body.status, running: body.running, at: chrono::Utc::now() };
    let status = state.berth.heartbeat(&ctx, hb).await?;
    Ok(Json(HeartbeatResponse { runtime_id: ctx.runtime.id.as_uuid(), status }))
}

#[derive(Deserialize)]
struct NextQuery {
    wait: Option<String>,
}

/// A job, as DESIGN.md's agent protocol gives it.
#[derive(Serialize, Deserialize)]
pub struct JobView {
    pub job_id: uuid::Uuid,
    pub deployment_id: uuid::Uuid,
    pub kind: DeploymentKind,
    pub environment_id: uuid::Uuid,
    pub component_id: uuid::Uuid,
    pub package_id: uuid::Uuid,
    pub version: String,
    pub digest: String,
    pub size: u64,
    pub download_url: String,
    pub deadline: chrono::DateTime<chrono::Utc>,
}

/// Long-polls for the runtime's next job: 200 with the job, or 204.
async fn next_job(State(state): State<AgentState>, Agent(ctx): Agent, parts: axum::http::request::Parts) -> Result<Response, ApiError> {
    let query: NextQuery = berth_web::extract::serde_urlencoded_query(parts.uri.query().unwrap_or(""))?;
    let wait = match query.wait {
        None => 0,
        Some(w) => w
            .parse::<u64>()
            .ok()
            .filter(|w| *w <= 20)
            .ok_or_else(|| ApiError::from(DomainError::invalid("wait", "must be a whole number of seconds from 0 to 20")))?,
    };
    match state.berth.next_job(&ctx, Duration::from_secs(wait)).await? {
        None => Ok(StatusCode::NO_CONTENT.into_response()),
        Some(job) => Ok(Json(JobView {
            job_id: job.job_id.as_uuid(),
            deployment_id: job.deployment_id.as_uuid(),
            kind: job.kind,
            environment_id: job.environment_id.as_uuid(),
            component_id: job.component_id.as_uuid(),
            package_id: job.package_id.as_uuid(),
            version: job.version.to_string(),
            digest: job.digest.as_str().to_string(),
            size: job.size,
            download_url: job.download_url,
            deadline: job.deadline,
        })
        .into_response()),
    }
}

/// Phases an agent reports.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
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

impl From<Phase> for TargetState {
    fn from(p: Phase) -> Self {
        match p {
            Phase::Delivered => TargetState::Delivered,
            Phase::Downloading => TargetState::Downloading,
            Phase::BackingUp => TargetState::BackingUp,
            Phase::Applying => TargetState::Applying,
            Phase::Deployed => TargetState::Deployed,
            Phase::Failed => TargetState::Failed,
            Phase::Restored => TargetState::Restored,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobEventBody {
    pub phase: Phase,
    pub message: Option<String>,
}

#[derive(Serialize, Deserialize)]
pub struct JobEventResponse {
    pub job_status: TargetState,
    pub proceed: bool,
}

/// Most characters of an event message that are kept.
const MAX_MESSAGE_CHARS: usize = 2000;

async fn job_event(
    State(state): State<AgentState>,
    Agent(ctx): Agent,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<JobEventBody>,
) -> Result<Json<JobEventResponse>, ApiError> {
    let job = berth_web::extract::path_id::<JobId>(&id, "job")?;
    let message: String = body.message.unwrap_or_default().chars().filter(|c| !c.is_control() || *c == '\n').take(MAX_MESSAGE_CHARS).collect();
    let outcome = state.berth.report_job_event(&ctx, job, body.phase.into(), message).await?;
    Ok(Json(JobEventResponse { job_status: outcome.job_status, proceed: outcome.proceed }))
}
