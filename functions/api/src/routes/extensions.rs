//! Environment extensions: an environment's values for the extension points
//! its components declare (secrets write-only).

pub(crate) mod views;

use super::{created, with_etag};
use crate::ctx::Ctx;
use crate::routes::deployments::views::DeploymentView;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use berth_domain::ids::{ComponentId, EnvironmentId};
use berth_web::extract::path_id;
use berth_web::{ApiError, IfMatch, JsonBody};
use views::{ConnectionView, DeployExtensions, ExtensionsBody, PutExtensions};

/// The environment's extension values (admins). A secret shows only as set, when and by whom.
#[utoipa::path(get, path = "/v1/environments/{id}/extensions", tag = "environments",
    responses((status = 200, body = ExtensionsBody), (status = 403, description = "forbidden (admins only)"), (status = 404)), security(("bearer" = [])))]
pub async fn get_extensions(State(state): State<AppState>, Ctx(ctx): Ctx, Path(id): Path<String>) -> Result<Response, ApiError> {
    let view = state.berth.get_extensions(&ctx, path_id::<EnvironmentId>(&id, "environment")?).await?;
    Ok(with_etag(view.version.etag(), ExtensionsBody::from(&view)))
}

/// Writes the environment's extension values (admins; `If-Match` with the etag of the last read is required).
#[utoipa::path(put, path = "/v1/environments/{id}/extensions", tag = "environments", request_body = PutExtensions,
    responses((status = 200, body = ExtensionsBody), (status = 412, description = "If-Match mismatch"),
        (status = 428, description = "precondition_required: no If-Match", body = crate::views::ProblemView, content_type = "application/problem+json"),
        (status = 413, description = "the environment's values would exceed 300 KiB"),
        (status = 422, description = "component_not_found, extension_unknown, validation_failed")),
    security(("bearer" = [])))]
pub async fn put_extensions(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    IfMatch(if_match): IfMatch,
    JsonBody(body): JsonBody<PutExtensions>,
) -> Result<Response, ApiError> {
    let env = path_id::<EnvironmentId>(&id, "environment")?;
    let view = state.berth.put_extensions(&ctx, env, body.into_input()?, if_match).await?;
    Ok(with_etag(view.version.etag(), ExtensionsBody::from(&view)))
}

/// Deploys the environment's current extension values alone: the package
/// active for the component there, again, as a new deployment through the
/// policy, validation and approvals like any other (deployers). Its
/// `extensions_changed` says whether the values changed since the active deployment.
#[utoipa::path(post, path = "/v1/environments/{id}/extensions/deploy", tag = "deployments", request_body = DeployExtensions,
    responses((status = 201, body = DeploymentView), (status = 403, description = "forbidden (deployers)"), (status = 404),
        (status = 409, description = "not_deployed: nothing is active for the component in the environment; or any refusal of a deploy (extension_missing, deployment_in_progress, ...)"),
        (status = 422, description = "validation_failed")),
    security(("bearer" = [])))]
pub async fn deploy_extensions(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<DeployExtensions>,
) -> Result<Response, ApiError> {
    let env = path_id::<EnvironmentId>(&id, "environment")?;
    let d = state.berth.deploy_extensions(&ctx, env, ComponentId::from_uuid(body.component_id)).await?;
    Ok(created(format!("/v1/deployments/{}", d.id), None, DeploymentView::from(&d)))
}

/// Tests the component's connection in the environment (deployers): one
/// attached runtime that is online runs the agent's
/// `BERTH_TEST_CONNECTION_COMMAND` with the environment's values, and reports.
/// The runtime learns of the test at its next heartbeat; `GET` shows the result.
#[utoipa::path(post, path = "/v1/environments/{id}/connections/{component_id}/test", tag = "environments",
    params(("id" = String, Path, description = "The environment."), ("component_id" = String, Path, description = "A component declaring connection fields.")),
    responses((status = 201, body = ConnectionView, description = "The test, pending"), (status = 403, description = "forbidden (deployers)"), (status = 404),
        (status = 409, description = "no_runtime_online: no attached runtime is online; no_connection: the component declares no connection fields")),
    security(("bearer" = [])))]
pub async fn test_connection(State(state): State<AppState>, Ctx(ctx): Ctx, Path((id, component)): Path<(String, String)>) -> Result<Response, ApiError> {
    let env = path_id::<EnvironmentId>(&id, "environment")?;
    let component = path_id::<ComponentId>(&component, "component")?;
    let test = state.berth.test_connection(&ctx, env, component).await?;
    let view = ConnectionView::of(env.as_uuid(), component.as_uuid(), Some(&test));
    Ok(created(format!("/v1/environments/{env}/connections/{component}"), None, view))
}

/// The component's connection in the environment: its latest test (`last_test`), if any.
#[utoipa::path(get, path = "/v1/environments/{id}/connections/{component_id}", tag = "environments",
    params(("id" = String, Path, description = "The environment."), ("component_id" = String, Path, description = "The component.")),
    responses((status = 200, body = ConnectionView), (status = 404)), security(("bearer" = [])))]
pub async fn get_connection(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path((id, component)): Path<(String, String)>,
) -> Result<Json<ConnectionView>, ApiError> {
    let env = path_id::<EnvironmentId>(&id, "environment")?;
    let component = path_id::<ComponentId>(&component, "component")?;
    let test = state.berth.get_connection_test(&ctx, env, component).await?;
    Ok(Json(ConnectionView::of(env.as_uuid(), component.as_uuid(), test.as_ref())))
}
