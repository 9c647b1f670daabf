//! Governance: environment policies and approvals of deployments.

pub(crate) mod views;

use super::deployments::views::DeploymentView;
use crate::ctx::Ctx;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_domain::ids::{DeploymentId, EnvironmentId};
use berth_web::extract::path_id;
use berth_web::{ApiError, IfMatch, JsonBody};
use views::{CreateApproval, PolicyBody};

/// Approves or rejects a deployment waiting for approvals.
#[utoipa::path(post, path = "/v1/deployments/{id}/approvals", tag = "deployments", request_body = CreateApproval,
    responses((status = 201, body = DeploymentView), (status = 403, description = "not_an_approver, self_approval_forbidden"), (status = 409, description = "already_decided, not_pending_approval")),
    security(("bearer" = [])))]
pub async fn decide(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<CreateApproval>,
) -> Result<Response, ApiError> {
    let id = path_id::<DeploymentId>(&id, "deployment")?;
    let d = state.berth.decide_deployment(&ctx, id, body.decision, body.comment.unwrap_or_default()).await?;
    let view = DeploymentView::with_approvals(&d, &state.berth.deployment_approvals(&ctx, id).await?);
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// The environment's approval and promotion policy.
#[utoipa::path(get, path = "/v1/environments/{id}/policy", tag = "governance", responses((status = 200, body = PolicyBody)), security(("bearer" = [])))]
pub async fn get_policy(State(state): State<AppState>, Ctx(ctx): Ctx, Path(id): Path<String>) -> Result<Response, ApiError> {
    let policy = state.berth.get_policy(&ctx, path_id::<EnvironmentId>(&id, "environment")?).await?;
    Ok(super::with_etag(policy.version.etag(), PolicyBody::from(&policy)))
}

/// Replaces the environment's policy (admins; `If-Match` with its etag).
#[utoipa::path(put, path = "/v1/environments/{id}/policy", tag = "governance", request_body = PolicyBody,
    responses((status = 200, body = PolicyBody), (status = 412, description = "If-Match mismatch")), security(("bearer" = [])))]
pub async fn put_policy(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    IfMatch(if_match): IfMatch,
    JsonBody(body): JsonBody<PolicyBody>,
) -> Result<Response, ApiError> {
    let policy = state.berth.put_policy(&ctx, path_id::<EnvironmentId>(&id, "environment")?, body.into(), if_match).await?;
    Ok(super::with_etag(policy.version.etag(), PolicyBody::from(&policy)))
}
