//! The runtime agent API (`/agent/v1`): agents register with a one-time
//! token, then authenticate with their runtime credential.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use berth_domain::runtime::{parse_agent_version, AgentHealth, Heartbeat, RunningPackage};
use berth_domain::usecases::{Berth, RuntimeCtx};
use berth_domain::values::Name;
use berth_domain::DomainError;
use berth_web::extract::{bearer_token, request_id_of};
use berth_web::{ApiError, JsonBody, RequestId};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// At most this many running packages in one heartbeat.
pub const MAX_RUNNING: usize = 1000;

#[derive(Clone)]
pub struct AgentState {
    pub berth: Arc<Berth>,
}

/// The agent routes, without the shared edge layers (see `router`).
pub fn routes(state: AgentState) -> Router {
    Router::new().route("/agent/v1/register", post(register)).route("/agent/v1/heartbeat", post(heartbeat)).with_state(state)
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
        let ctx = state.berth.authenticate_runtime(token, &request_id_of(parts)).await?;
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

async fn register(State(state): State<AgentState>, RequestId(request_id): RequestId, JsonBody(body): JsonBody<RegisterBody>) -> Result<Response, ApiError> {
    let agent_version = parse_agent_version(&body.agent_version).map_err(|m| DomainError::invalid("agent_version", m))?;
    let registration = state.berth.register_agent(&body.registration_token, body.name, &agent_version, &request_id).await?;
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
