//! The runtime agent API (`/agent/v1`): agents register with a one-time
//! token, then authenticate with their runtime credential.

use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use berth_domain::DomainError;
use berth_domain::ids::{DeploymentId, JobId};
use berth_domain::runtime::{Heartbeat, parse_agent_version};
use berth_domain::usecases::{AgentRequest, MAX_WAIT};
use berth_domain::usecases::{Berth, RuntimeCtx};
use berth_protocol::{
    AwsCredentialsResponse, ClaimBody, HeartbeatBody, HeartbeatResponse, Job, JobEventBody, JobEventResponse, RegisterBody, RegisterResponse, RotateResponse,
};
use berth_web::extract::{bearer_token, client_request_id_of, request_id_of};
use berth_web::{ApiError, JsonBody};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

mod wire;

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
        .route("/agent/v1/credentials/rotate", post(rotate_credential))
        .route("/agent/v1/jobs/next", axum::routing::get(next_job))
        .route("/agent/v1/jobs/{id}/events", post(job_event))
        .route("/agent/v1/jobs/{id}/claim", post(claim_job))
        .route("/agent/v1/jobs/{id}/extensions", axum::routing::get(job_extensions))
        .route("/agent/v1/connection-tests/{id}/extensions", axum::routing::get(connection_test_extensions))
        .route("/agent/v1/connection-tests/{id}/result", post(connection_test_result))
        .route("/agent/v1/credentials/aws", post(aws_credentials))
        .with_state(state)
}

/// What the Lambda serves.
pub fn router(state: AgentState, cors: &berth_web::CorsOrigins) -> Router {
    berth_web::finish_router(routes(state), cors)
}

/// The name of the agent API's security scheme in the OpenAPI document.
pub const RUNTIME_CREDENTIAL: &str = "runtime_credential";

#[derive(OpenApi)]
#[openapi(
    paths(register, heartbeat, rotate_credential, next_job, job_event, claim_job, job_extensions, connection_test_extensions, connection_test_result, aws_credentials),
    components(schemas(RegisterBody, RegisterResponse, RotateResponse, HeartbeatBody, HeartbeatResponse, berth_protocol::RunningPackage, berth_protocol::AgentHealth,
        berth_protocol::RuntimeStatus, Job, berth_protocol::JobKind, berth_protocol::Phase, berth_protocol::JobStatus, JobEventBody, JobEventResponse,
        berth_protocol::ClaimBody, berth_protocol::JobMessage, AwsCredentialsResponse, berth_protocol::JobExtensions, berth_protocol::ComponentExtensions,
        berth_protocol::ConnectionTestJob, berth_protocol::ConnectionTestResultBody)),
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

fn agent_request(parts: &Parts) -> AgentRequest {
    AgentRequest { request_id: request_id_of(parts), client_request_id: client_request_id_of(parts) }
}

/// Exchanges a one-time registration token for the runtime's credential (401 for an unknown or used token).
#[utoipa::path(post, path = "/agent/v1/register", tag = "agent", request_body = RegisterBody,
    responses((status = 201, body = RegisterResponse),
        (status = 401, description = "unauthenticated: unknown, voided or already used registration token; registration_token_expired: past its expiry"),
        (status = 403, description = "tenant_suspended")))]
async fn register(State(state): State<AgentState>, parts: Parts, JsonBody(body): JsonBody<RegisterBody>) -> Result<Response, ApiError> {
    let agent_version = parse_agent_version(&body.agent_version).map_err(|m| DomainError::invalid("agent_version", m))?;
    let name = wire::name(body.name)?;
    let registration = state.berth.register_agent(&body.registration_token, name, &agent_version, &agent_request(&parts)).await?;
    let response = RegisterResponse { runtime_id: registration.runtime_id.as_uuid(), credential: registration.credential.reveal() };
    Ok((StatusCode::CREATED, Json(response)).into_response())
}

/// Reports the agent's health and what it runs.
#[utoipa::path(post, path = "/agent/v1/heartbeat", tag = "agent", request_body = HeartbeatBody,
    responses((status = 200, body = HeartbeatResponse), (status = 401, description = "unauthenticated")), security(("runtime_credential" = [])))]
async fn heartbeat(State(state): State<AgentState>, Agent(ctx): Agent, JsonBody(body): JsonBody<HeartbeatBody>) -> Result<Json<HeartbeatResponse>, ApiError> {
    let agent_version = parse_agent_version(&body.agent_version).map_err(|m| DomainError::invalid("agent_version", m))?;
    if body.running.len() > MAX_RUNNING {
        return Err(DomainError::invalid("running", format!("at most {MAX_RUNNING} entries")).into());
    }
    let hb = Heartbeat { agent_version, health: wire::health(body.status), running: wire::running(body.running)?, at: chrono::Utc::now() };
    let status = state.berth.heartbeat(&ctx, hb).await?;
    let connection_tests = state.berth.pending_connection_tests(&ctx).await?.iter().map(wire::connection_test).collect();
    Ok(Json(HeartbeatResponse { runtime_id: ctx.runtime.id.as_uuid(), status: wire::runtime_status(status), connection_tests }))
}

/// A new credential for this runtime; the one used for this request keeps
/// working until the new one is first used (then only the new one works).
#[utoipa::path(post, path = "/agent/v1/credentials/rotate", tag = "agent",
    responses((status = 200, body = RotateResponse), (status = 401, description = "unauthenticated")), security(("runtime_credential" = [])))]
async fn rotate_credential(State(state): State<AgentState>, Agent(ctx): Agent) -> Result<Json<RotateResponse>, ApiError> {
    let credential = state.berth.rotate_credential(&ctx).await?;
    Ok(Json(RotateResponse { credential: credential.reveal() }))
}

#[derive(Deserialize)]
struct NextQuery {
    wait: Option<String>,
}

/// Polls for the runtime's next job, waiting at most `MAX_WAIT` (2 s): 200 with the job, or 204.
#[utoipa::path(get, path = "/agent/v1/jobs/next", tag = "agent",
    params(("wait" = Option<u64>, Query, description = "Seconds to wait for a job (default 0); more than 2 is taken as 2. The fallback for agents that cannot reach SQS: others receive from their queue with `POST /agent/v1/credentials/aws`.")),
    responses((status = 200, body = Job), (status = 204, description = "no job"), (status = 401, description = "unauthenticated")),
    security(("runtime_credential" = [])))]
async fn next_job(State(state): State<AgentState>, Agent(ctx): Agent, parts: axum::http::request::Parts) -> Result<Response, ApiError> {
    let query: NextQuery = berth_web::extract::serde_urlencoded_query(parts.uri.query().unwrap_or(""))?;
    let wait = match query.wait {
        None => 0,
        // Any whole number of seconds: what is over `MAX_WAIT` is clamped (agents built for 20 s keep working).
        Some(w) if !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit()) => w.parse::<u64>().unwrap_or(u64::MAX),
        Some(_) => return Err(DomainError::invalid("wait", "must be a whole number of seconds").into()),
    };
    let wait = Duration::from_secs(wait).min(MAX_WAIT);
    match state.berth.next_job(&ctx, wait).await? {
        None => Ok(StatusCode::NO_CONTENT.into_response()),
        Some(job) => Ok(Json(wire::job(job)).into_response()),
    }
}

/// Hands out a job whose message the agent received from its own queue in SQS.
#[utoipa::path(post, path = "/agent/v1/jobs/{id}/claim", tag = "agent", params(("id" = String, Path, description = "The message's `job_id`.")), request_body = ClaimBody,
    responses((status = 200, body = Job), (status = 401, description = "unauthenticated"), (status = 404, description = "no such job for this runtime"),
        (status = 409, description = "job_settled: the job ended or was withdrawn; delete the message"), (status = 422, description = "invalid receipt_handle")),
    security(("runtime_credential" = [])))]
async fn claim_job(
    State(state): State<AgentState>,
    Agent(ctx): Agent,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ClaimBody>,
) -> Result<Json<Job>, ApiError> {
    let job = berth_web::extract::path_id::<JobId>(&id, "job")?;
    let offer = state.berth.claim_job(&ctx, job, body.deployment_id.map(DeploymentId::from_uuid), &body.receipt_handle).await?;
    Ok(Json(wire::job(offer)))
}

/// The environment's extension values for a job under way (handed out, not
/// ended), secrets in clear: fetched by the agent at the job's apply, never
/// sent through SQS nor stored with the job.
#[utoipa::path(get, path = "/agent/v1/jobs/{id}/extensions", tag = "agent", params(("id" = String, Path, description = "The job id.")),
    responses((status = 200, body = berth_protocol::JobExtensions, description = "Secret (`Cache-Control: no-store`): the values of what the job's package bundles, read now."),
        (status = 401, description = "unauthenticated"), (status = 403, description = "tenant_suspended"),
        (status = 404, description = "no such job under way for this runtime (not handed out yet, ended, or of another runtime)")),
    security(("runtime_credential" = [])))]
async fn job_extensions(State(state): State<AgentState>, Agent(ctx): Agent, Path(id): Path<String>) -> Result<Response, ApiError> {
    let job = berth_web::extract::path_id::<JobId>(&id, "job")?;
    let (version, resolved) = state.berth.job_extensions(&ctx, job).await?;
    // Secrets in clear: no cache may keep it, and nothing here logs it.
    Ok(([(axum::http::header::CACHE_CONTROL, "no-store")], Json(wire::extensions(version, resolved))).into_response())
}

/// The values a connection test of this runtime runs with (the component's, in the test's environment), secrets in clear.
#[utoipa::path(get, path = "/agent/v1/connection-tests/{id}/extensions", tag = "agent", params(("id" = String, Path, description = "The test's `test_id` (from a heartbeat's answer).")),
    responses((status = 200, body = berth_protocol::JobExtensions, description = "Secret (`Cache-Control: no-store`): one component's values, read now."),
        (status = 401, description = "unauthenticated"), (status = 403, description = "tenant_suspended"),
        (status = 404, description = "no such test pending for this runtime (ended, replaced by a newer test, or another runtime's)")),
    security(("runtime_credential" = [])))]
async fn connection_test_extensions(State(state): State<AgentState>, Agent(ctx): Agent, Path(id): Path<String>) -> Result<Response, ApiError> {
    let test = berth_web::extract::path_id::<JobId>(&id, "connection test")?;
    let resolved = state.berth.connection_test_extensions(&ctx, test).await?;
    Ok(([(axum::http::header::CACHE_CONTROL, "no-store")], Json(wire::extensions(resolved.version, vec![resolved]))).into_response())
}

/// Reports how a connection test went (404 once it ended or a newer test replaced it).
#[utoipa::path(post, path = "/agent/v1/connection-tests/{id}/result", tag = "agent", params(("id" = String, Path, description = "The test's `test_id`.")),
    request_body = berth_protocol::ConnectionTestResultBody,
    responses((status = 204, description = "recorded"), (status = 401, description = "unauthenticated"), (status = 403, description = "tenant_suspended"),
        (status = 404, description = "no such test pending for this runtime"), (status = 422, description = "validation_failed")),
    security(("runtime_credential" = [])))]
async fn connection_test_result(
    State(state): State<AgentState>,
    Agent(ctx): Agent,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<berth_protocol::ConnectionTestResultBody>,
) -> Result<StatusCode, ApiError> {
    let test = berth_web::extract::path_id::<JobId>(&id, "connection test")?;
    let message: String = body.message.unwrap_or_default().chars().filter(|c| !c.is_control() || *c == '\n').take(MAX_MESSAGE_CHARS).collect();
    state.berth.report_connection_test(&ctx, test, body.succeeded, &message).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Vends short-lived AWS credentials for the runtime's own queue only (1 hour).
#[utoipa::path(post, path = "/agent/v1/credentials/aws", tag = "agent",
    responses((status = 200, body = AwsCredentialsResponse, description = "Secret: receive, hide and delete messages of the runtime's own queue, until `expiration`."),
        (status = 401, description = "unauthenticated"), (status = 403, description = "tenant_suspended")),
    security(("runtime_credential" = [])))]
async fn aws_credentials(State(state): State<AgentState>, Agent(ctx): Agent) -> Result<Response, ApiError> {
    let vended = state.berth.vend_queue_credentials(&ctx).await?;
    let c = vended.credentials;
    let body = AwsCredentialsResponse {
        access_key_id: c.access_key_id,
        secret_access_key: c.secret_access_key,
        session_token: c.session_token,
        expiration: c.expiration,
        region: vended.region,
        queue_url: vended.queue_url,
    };
    // A secret: no cache may keep it.
    Ok(([(axum::http::header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
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
    let named = body.deployment_id.map(DeploymentId::from_uuid);
    let outcome = state.berth.report_job_event(&ctx, job, named, wire::phase(body.phase), message).await?;
    Ok(Json(JobEventResponse { job_status: wire::job_status(outcome.job_status), proceed: outcome.proceed }))
}
