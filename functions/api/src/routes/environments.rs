pub(crate) mod views;

use super::runtimes::views::RuntimeView;
use super::{created, with_etag};
use crate::ctx::Ctx;
use crate::state::AppState;
use crate::views::ListOf;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use berth_domain::ids::{EnvironmentId, RuntimeId};
use berth_web::extract::{hold_if_frozen_of, path_id};
use berth_web::{ApiError, IfMatch, JsonBody, PageQuery};
use views::{CreateEnvironment, EnvironmentView, PatchEnvironment};

#[utoipa::path(post, path = "/v1/environments", tag = "environments", request_body = CreateEnvironment,
    responses((status = 201, body = EnvironmentView), (status = 409, description = "name_exists"), (status = 429, description = "quota_exceeded")),
    security(("bearer" = [])))]
pub async fn create_environment(State(state): State<AppState>, Ctx(ctx): Ctx, JsonBody(body): JsonBody<CreateEnvironment>) -> Result<Response, ApiError> {
    let env = state.berth.create_environment(&ctx, body.into()).await?;
    Ok(created(format!("/v1/environments/{}", env.id), Some(env.version.etag()), EnvironmentView::from(&env)))
}

#[utoipa::path(get, path = "/v1/environments", tag = "environments", params(("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = ListOf<EnvironmentView>)), security(("bearer" = [])))]
pub async fn list_environments(State(state): State<AppState>, Ctx(ctx): Ctx, PageQuery(page): PageQuery) -> Result<Json<ListOf<EnvironmentView>>, ApiError> {
    let page = state.berth.list_environments(&ctx, &page).await?;
    Ok(Json(ListOf::from_page(page, |e| EnvironmentView::from(&e))))
}

#[utoipa::path(get, path = "/v1/environments/{id}", tag = "environments", responses((status = 200, body = EnvironmentView), (status = 404)), security(("bearer" = [])))]
pub async fn get_environment(State(state): State<AppState>, Ctx(ctx): Ctx, Path(id): Path<String>) -> Result<Response, ApiError> {
    let env = state.berth.get_environment(&ctx, path_id::<EnvironmentId>(&id, "environment")?).await?;
    Ok(with_etag(env.version.etag(), EnvironmentView::from(&env)))
}

#[utoipa::path(patch, path = "/v1/environments/{id}", tag = "environments", request_body = PatchEnvironment,
    responses((status = 200, body = EnvironmentView), (status = 412, description = "If-Match mismatch")), security(("bearer" = [])))]
pub async fn patch_environment(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    IfMatch(if_match): IfMatch,
    JsonBody(body): JsonBody<PatchEnvironment>,
) -> Result<Response, ApiError> {
    let env = state.berth.patch_environment(&ctx, path_id::<EnvironmentId>(&id, "environment")?, body.into(), if_match).await?;
    Ok(with_etag(env.version.etag(), EnvironmentView::from(&env)))
}

#[utoipa::path(delete, path = "/v1/environments/{id}", tag = "environments",
    responses((status = 204), (status = 409, description = "environment_has_runtimes")), security(("bearer" = [])))]
pub async fn delete_environment(State(state): State<AppState>, Ctx(ctx): Ctx, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    state.berth.delete_environment(&ctx, path_id::<EnvironmentId>(&id, "environment")?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Attaches a runtime: 201 when newly attached (it is sent a `sync` of each
/// version the environment runs, listed in `syncing`), 200 when it already was
/// (nothing is sent).
#[utoipa::path(put, path = "/v1/environments/{id}/runtimes/{runtime_id}", tag = "environments",
    params(("hold_if_frozen" = Option<bool>, Query, description = "inside a freeze window: attach now and hold its syncs until the window ends, instead of refusing")),
    responses((status = 201, body = RuntimeView), (status = 200, body = RuntimeView), (status = 409, description = "freeze_window")), security(("bearer" = [])))]
pub async fn attach_runtime(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path((id, runtime_id)): Path<(String, String)>,
    parts: Parts,
) -> Result<Response, ApiError> {
    let env = path_id::<EnvironmentId>(&id, "environment")?;
    let runtime_id = path_id::<RuntimeId>(&runtime_id, "runtime")?;
    let newly = state.berth.attach_runtime_or_hold(&ctx, env, runtime_id, hold_if_frozen_of(&parts)?).await?.is_some();
    let runtime = state.berth.get_runtime(&ctx, runtime_id).await?;
    let syncing = state.berth.runtime_syncing(&ctx, &runtime).await?;
    let view = RuntimeView::detail(&runtime, state.berth.runtime_status(&runtime), &syncing);
    Ok((if newly { StatusCode::CREATED } else { StatusCode::OK }, Json(view)).into_response())
}

#[utoipa::path(delete, path = "/v1/environments/{id}/runtimes/{runtime_id}", tag = "environments",
    responses((status = 204), (status = 404, description = "not attached")), security(("bearer" = [])))]
pub async fn detach_runtime(State(state): State<AppState>, Ctx(ctx): Ctx, Path((id, runtime_id)): Path<(String, String)>) -> Result<StatusCode, ApiError> {
    let env = path_id::<EnvironmentId>(&id, "environment")?;
    let runtime_id = path_id::<RuntimeId>(&runtime_id, "runtime")?;
    state.berth.detach_runtime(&ctx, env, runtime_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/environments/{id}/runtimes", tag = "environments", params(("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = ListOf<RuntimeView>)), security(("bearer" = [])))]
pub async fn list_environment_runtimes(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    PageQuery(page): PageQuery,
) -> Result<Json<ListOf<RuntimeView>>, ApiError> {
    let page = state.berth.list_environment_runtimes(&ctx, path_id::<EnvironmentId>(&id, "environment")?, &page).await?;
    Ok(Json(ListOf::from_page(page, |r| RuntimeView::new(&r, state.berth.runtime_status(&r)))))
}
