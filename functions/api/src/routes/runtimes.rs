pub(crate) mod views;

use super::created;
use crate::ctx::Ctx;
use crate::state::AppState;
use crate::views::ListOf;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::response::Response;
use berth_domain::ids::RuntimeId;
use berth_domain::runtime::RuntimeKind;
use berth_web::extract::path_id;
use berth_web::idempotency::SecretFields;
use berth_web::{ApiError, JsonBody, OptionalJsonBody, PageQuery};
use views::{CreateRuntime, IssueRegistrationToken, RuntimeView};

/// Creates a runtime and its job queue; the response carries the one-time `registration_token`.
#[utoipa::path(post, path = "/v1/runtimes", tag = "runtimes", request_body = CreateRuntime,
    responses((status = 201, body = RuntimeView), (status = 422, description = "validation_failed"), (status = 429, description = "quota_exceeded")), security(("bearer" = [])))]
pub async fn create_runtime(State(state): State<AppState>, Ctx(ctx): Ctx, JsonBody(body): JsonBody<CreateRuntime>) -> Result<Response, ApiError> {
    let ttl = views::registration_ttl(body.registration_token_ttl_seconds)?;
    let created_runtime = state.berth.create_runtime_with(&ctx, body.name, body.kind.unwrap_or(RuntimeKind::OnPremise), ttl).await?;
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

/// Issues a new registration token (shown once), voiding any earlier one. For a registered runtime this is how its machine
/// is replaced: its current credential keeps working until the new token is used, then the new registration replaces it.
#[utoipa::path(post, path = "/v1/runtimes/{id}/registration-token", tag = "runtimes", request_body = Option<IssueRegistrationToken>,
    responses((status = 200, body = RuntimeView), (status = 404), (status = 409, description = "runtime_changed"), (status = 422, description = "validation_failed")),
    security(("bearer" = [])))]
pub async fn issue_registration_token(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    OptionalJsonBody(body): OptionalJsonBody<IssueRegistrationToken>,
) -> Result<Response, ApiError> {
    let id = path_id::<RuntimeId>(&id, "runtime")?;
    let ttl = views::registration_ttl(body.registration_token_ttl_seconds)?;
    let issued = state.berth.reissue_registration_token(&ctx, id, ttl).await?;
    let mut view = RuntimeView::new(&issued.runtime, state.berth.runtime_status(&issued.runtime));
    view.registration_token = Some(issued.registration_token.reveal());
    Ok(SecretFields(&["registration_token"]).mark(Json(view).into_response()))
}

/// Revokes every credential and registration token of the runtime at once: its agent gets 401 on its next call. The runtime
/// stays (with `revoked_at`) until a re-issued registration token brings it back.
#[utoipa::path(post, path = "/v1/runtimes/{id}/revoke", tag = "runtimes",
    responses((status = 200, body = RuntimeView), (status = 404), (status = 409, description = "runtime_changed")), security(("bearer" = [])))]
pub async fn revoke_runtime(State(state): State<AppState>, Ctx(ctx): Ctx, Path(id): Path<String>) -> Result<Json<RuntimeView>, ApiError> {
    let runtime = state.berth.revoke_runtime(&ctx, path_id::<RuntimeId>(&id, "runtime")?).await?;
    Ok(Json(RuntimeView::new(&runtime, state.berth.runtime_status(&runtime))))
}
