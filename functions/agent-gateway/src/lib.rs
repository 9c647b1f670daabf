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
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

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

/// The name of the agent API's security scheme in the OpenAPI document.
pub const RUNTIME_CREDENTIAL: &str = "runtime_credential";

#[derive(OpenApi)]
#[openapi(
    paths(register, heartbeat, next_job, job_event),
    components(schemas(RegisterBody, RegisterResponse, HeartbeatBody, HeartbeatResponse, RunningPackageView, JobView, Phase, JobEventBody, JobEventResponse)),
    tags((name = "agent", description = "The runtime agent API: register once, then heartbeat, poll for jobs and report their progress.")),
    modifiers(&RuntimeCredentialAuth)
)]
struct AgentApiDoc;

struct RuntimeCredentialAuth;

impl Modify for RuntimeCredentialAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("runtime credential")
            .description(Some("The `credential` that `POST /agent/v1/register` returned (`brc_...`); not a portal JWT."))
            .build();
        components.add_security_scheme(RUNTIME_CREDENTIAL, SecurityScheme::Http(scheme));
    }
}

/// The agent API's part of the OpenAPI document; the API Lambda merges it
/// into the one document it serves, as both are behind one HTTP API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    AgentApiDoc::openapi()
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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"registration_token": "brr_0b5e2c1a9f8e4d7c8b6a5f4e3d2c1b0a_5d0c8a521f0e4c539a436c1d2f0e7b31_4f1c4f1c4f1c4f1c4f1c4f1c4f1c4f1c4f1c4f1c4f1c4f1c4f1c4f1c4f1c4f1c", "name": "atom-prod-1", "agent_version": "1.4.2"}))]
pub struct RegisterBody {
    /// The one-time `registration_token` of `POST /v1/runtimes`.
    pub registration_token: String,
    /// Renames the runtime.
    #[schema(value_type = Option<String>)]
    pub name: Option<Name>,
    /// Semantic version of the agent.
    pub agent_version: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct RegisterResponse {
    pub runtime_id: uuid::Uuid,
    /// Shown once: the agent keeps it; Berth keeps only its hash.
    pub credential: String,
}

fn agent_request(parts: &Parts) -> AgentRequest {
    AgentRequest { request_id: request_id_of(parts), client_request_id: client_request_id_of(parts) }
}

/// Exchanges a one-time registration token for the runtime's credential (401 for an unknown or used token).
#[utoipa::path(post, path = "/agent/v1/register", tag = "agent", request_body = RegisterBody,
    responses((status = 201, body = RegisterResponse), (status = 401, description = "unauthenticated: unknown or already used registration token"),
        (status = 403, description = "tenant_suspended")))]
async fn register(State(state): State<AgentState>, parts: Parts, JsonBody(body): JsonBody<RegisterBody>) -> Result<Response, ApiError> {
    let agent_version = parse_agent_version(&body.agent_version).map_err(|m| DomainError::invalid("agent_version", m))?;
    let registration = state.berth.register_agent(&body.registration_token, body.name, &agent_version, &agent_request(&parts)).await?;
    let response = RegisterResponse { runtime_id: registration.runtime_id.as_uuid(), credential: registration.credential.reveal() };
    Ok((StatusCode::CREATED, Json(response)).into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"agent_version": "1.4.2", "status": "ok", "running": [{
    "component_id": "5d0c8a52-1f0e-4c53-9a43-6c1d2f0e7b31",
    "package_id": "8f3b2a10-6c4d-4e8f-b1a2-3c4d5e6f7a8b",
    "digest": "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}]}))]
pub struct HeartbeatBody {
    pub agent_version: String,
    /// `ok` or `degraded`.
    #[schema(value_type = String, example = "ok")]
    pub status: AgentHealth,
    /// What the runtime runs (at most 1000 entries).
    #[serde(default)]
    #[schema(value_type = Vec<RunningPackageView>)]
    pub running: Vec<RunningPackage>,
}

/// A package version the agent runs (the shape of `berth_domain::runtime::RunningPackage`).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RunningPackageView {
    component_id: uuid::Uuid,
    package_id: uuid::Uuid,
    /// `sha256:<64 lowercase hex>` of the package archive.
    digest: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct HeartbeatResponse {
    pub runtime_id: uuid::Uuid,
    /// `online`, `offline` or `unknown`.
    #[schema(value_type = String, example = "online")]
    pub status: berth_domain::runtime::RuntimeStatus,
}

/// Reports the agent's health and what it runs.
#[utoipa::path(post, path = "/agent/v1/heartbeat", tag = "agent", request_body = HeartbeatBody,
    responses((status = 200, body = HeartbeatResponse), (status = 401, description = "unauthenticated")), security(("runtime_credential" = [])))]
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

/// A deployment job for this runtime: which package to install where, how to download it, and by when.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct JobView {
    pub job_id: uuid::Uuid,
    pub deployment_id: uuid::Uuid,
    /// `deploy`, `redeploy`, `rollback` or `undeploy`.
    #[schema(value_type = String, example = "deploy")]
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
#[utoipa::path(get, path = "/agent/v1/jobs/next", tag = "agent", params(("wait" = Option<u32>, Query, description = "Seconds to wait for a job, 0 to 20 (default 0).")),
    responses((status = 200, body = JobView), (status = 204, description = "no job"), (status = 401, description = "unauthenticated")),
    security(("runtime_credential" = [])))]
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
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, ToSchema)]
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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"phase": "applying", "message": "Stopping the old version"}))]
pub struct JobEventBody {
    pub phase: Phase,
    /// Kept up to 2000 characters, control characters removed.
    pub message: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct JobEventResponse {
    /// The job's state after the event.
    #[schema(value_type = String, example = "applying")]
    pub job_status: TargetState,
    /// False once the job ended, was replaced by a retry, or its deployment was cancelled: the agent stops.
    pub proceed: bool,
}

/// Most characters of an event message that are kept.
const MAX_MESSAGE_CHARS: usize = 2000;

/// Reports progress on one of the runtime's jobs (404 for a job of another runtime).
#[utoipa::path(post, path = "/agent/v1/jobs/{id}/events", tag = "agent", params(("id" = String, Path, description = "The job id.")), request_body = JobEventBody,
    responses((status = 200, body = JobEventResponse), (status = 401, description = "unauthenticated"), (status = 404, description = "no such job for this runtime"),
        (status = 409, description = "invalid_phase")),
    security(("runtime_credential" = [])))]
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
