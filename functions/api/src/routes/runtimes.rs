pub(crate) mod views;

use super::created;
use crate::ctx::Ctx;
use crate::state::AppState;
use crate::views::ListOf;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use berth_domain::ids::RuntimeId;
use berth_domain::runtime::RuntimeKind;
use berth_web::extract::path_id;
use berth_web::idempotency::SecretFields;
use berth_web::{ApiError, JsonBody, PageQuery};
use views::{CreateRuntime, RuntimeView};

/// Creates a runtime and its job queue; the response carries the one-time `registration_token`.
#[utoipa::path(post, path = "/v1/runtimes", tag = "runtimes", request_body = CreateRuntime,
    responses((status = 201, body = RuntimeView), (status = 429, description = "quota_exceeded")), security(("bearer" = [])))]
pub async fn create_runtime(State(state): State<AppState>, Ctx(ctx): Ctx, JsonBody(body): JsonBody<CreateRuntime>) -> Result<Response, ApiError> {
    let created_runtime = state.berth.create_runtime(&ctx, body.name, body.kind.unwrap_or(RuntimeKind::OnPremise)).await?;
    let runtime = &created_runtime.runtime;
    let mut view = RuntimeView::new(runtime, state.berth.runtime_status(runtime));
    view.registration_token = Some(created_runtime.registration_token.reveal());
    Ok(SecretFields(&["registration_token"]).mark(created(format!("/v1/runtimes/{}", runtime.id), None, view)))
}

#[utoipa::path(get, path = "/v1/runtimes", tag = "runtimes", params(("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = ListOf<RuntimeView>)), security(("bearer" = [])))]
pub async fn list_runtimes(State(state): State<AppState>, Ctx(ctx): Ctx, PageQuery(page): PageQuery) -> Result<Json<ListOf<RuntimeView>>, ApiError> {
    let page = state.berth.list_runtimes(&ctx, &page).await?;
    Ok(Json(ListOf::from_page(page, |r| RuntimeView::new(&r, state.berth.runtime_status(&r)))))
}

/// The runtime, with `syncing`: the syncs sent to it on an attach that have not succeeded yet.
#[utoipa::path(get, path = "/v1/runtimes/{id}", tag = "runtimes", responses((status = 200, body = RuntimeView), (status = 404)), security(("bearer" = [])))]
pub async fn get_runtime(State(state): State<AppState>, Ctx(ctx): Ctx, Path(id): Path<String>) -> Result<Json<RuntimeView>, ApiError> {
    let runtime = state.berth.get_runtime(&ctx, path_id::<RuntimeId>(&id, "runtime")?).await?;
    let syncing = state.berth.runtime_syncing(&ctx, &runtime).await?;
    Ok(Json(RuntimeView::detail(&runtime, state.berth.runtime_status(&runtime), &syncing)))
}

/// Deletes a runtime, detaching it from every environment, and its queue.
#[utoipa::path(delete, path = "/v1/runtimes/{id}", tag = "runtimes", responses((status = 204), (status = 404)), security(("bearer" = [])))]
pub async fn delete_runtime(State(state): State<AppState>, Ctx(ctx): Ctx, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    state.berth.delete_runtime(&ctx, path_id::<RuntimeId>(&id, "runtime")?).await?;
    Ok(StatusCode::NO_CONTENT)
}
