pub(crate) mod views;

use super::governance::views::CreateApproval;
use super::{created, with_etag};
use crate::ctx::Ctx;
use crate::state::AppState;
use crate::views::ListOf;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_domain::change_request::ChangeRequest;
use berth_domain::context::TenantCtx;
use berth_domain::ids::{ChangeRequestId, EnvironmentId};
use berth_domain::usecases::{ChangeRequestInput, ChangeRequestPatch};
use berth_web::extract::path_id;
use berth_web::{ApiError, IfMatch, JsonBody, OptionalJsonBody, PageQuery};
use views::{ChangeRequestView, ChangeScanView, ChangeValidationView, CreateChangeRequest, DeployChangeRequest, PatchChangeRequest, package_ids};

async fn view(state: &AppState, ctx: &TenantCtx, cr: &ChangeRequest) -> Result<ChangeRequestView, ApiError> {
    Ok(ChangeRequestView::new(cr, &state.berth.change_request_approvals(ctx, cr.id).await?))
}

fn id_of(raw: &str) -> Result<ChangeRequestId, ApiError> {
    path_id::<ChangeRequestId>(raw, "change request")
}

#[utoipa::path(post, path = "/v1/change-requests", operation_id = "create_change_request", tag = "change requests", request_body = CreateChangeRequest,
    responses((status = 201, body = ChangeRequestView)), security(("bearer" = [])))]
pub async fn create(State(state): State<AppState>, Ctx(ctx): Ctx, JsonBody(body): JsonBody<CreateChangeRequest>) -> Result<Response, ApiError> {
    let input = ChangeRequestInput {
        name: body.name,
        overview: body.overview,
        change_type: body.change_type,
        target_environment_id: EnvironmentId::from_uuid(body.target_environment_id),
        items: package_ids(body.items),
        links: body.links,
    };
    let cr = state.berth.create_change_request(&ctx, input).await?;
    Ok(created(format!("/v1/change-requests/{}", cr.id), Some(cr.version.etag()), view(&state, &ctx, &cr).await?))
}

#[utoipa::path(get, path = "/v1/change-requests", operation_id = "list_change_requests", tag = "change requests", params(("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = ListOf<ChangeRequestView>)), security(("bearer" = [])))]
pub async fn list(State(state): State<AppState>, Ctx(ctx): Ctx, PageQuery(page): PageQuery) -> Result<Json<ListOf<ChangeRequestView>>, ApiError> {
    let page = state.berth.list_change_requests(&ctx, &page).await?;
    let mut items = vec![];
    for cr in &page.items {
        items.push(view(&state, &ctx, cr).await?);
    }
    Ok(Json(ListOf { items, next_cursor: page.next_cursor }))
}

#[utoipa::path(get, path = "/v1/change-requests/{id}", operation_id = "get_change_request", tag = "change requests", responses((status = 200, body = ChangeRequestView)), security(("bearer" = [])))]
pub async fn get(State(state): State<AppState>, Ctx(ctx): Ctx, Path(id): Path<String>) -> Result<Response, ApiError> {
    let cr = state.berth.get_change_request(&ctx, id_of(&id)?).await?;
    Ok(with_etag(cr.version.etag(), view(&state, &ctx, &cr).await?))
}

/// Edits it; new items void the approvals given so far.
#[utoipa::path(patch, path = "/v1/change-requests/{id}", operation_id = "patch_change_request", tag = "change requests", request_body = PatchChangeRequest,
    responses((status = 200, body = ChangeRequestView), (status = 412)), security(("bearer" = [])))]
pub async fn patch(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    IfMatch(if_match): IfMatch,
    JsonBody(body): JsonBody<PatchChangeRequest>,
) -> Result<Response, ApiError> {
    let patch =
        ChangeRequestPatch { name: body.name, overview: body.overview, change_type: body.change_type, items: body.items.map(package_ids), links: body.links };
    let cr = state.berth.patch_change_request(&ctx, id_of(&id)?, patch, if_match).await?;
    Ok(with_etag(cr.version.etag(), view(&state, &ctx, &cr).await?))
}

#[utoipa::path(post, path = "/v1/change-requests/{id}/submit", operation_id = "submit_change_request", tag = "change requests", responses((status = 200, body = ChangeRequestView)), security(("bearer" = [])))]
pub async fn submit(State(state): State<AppState>, Ctx(ctx): Ctx, Path(id): Path<String>) -> Result<Json<ChangeRequestView>, ApiError> {
    let cr = state.berth.submit_change_request(&ctx, id_of(&id)?).await?;
    Ok(Json(view(&state, &ctx, &cr).await?))
}

#[utoipa::path(post, path = "/v1/change-requests/{id}/approvals", operation_id = "decide_change_request", tag = "change requests", request_body = CreateApproval,
    responses((status = 201, body = ChangeRequestView)), security(("bearer" = [])))]
pub async fn decide(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<CreateApproval>,
) -> Result<Response, ApiError> {
    let cr = state.berth.decide_change_request(&ctx, id_of(&id)?, body.decision, body.comment.unwrap_or_default()).await?;
    Ok((StatusCode::CREATED, Json(view(&state, &ctx, &cr).await?)).into_response())
}

/// Creates the deployments of an approved change request (refused 409 `outdated_items`,
/// listing them, while an item is outdated, unless `accept_outdated`).
#[utoipa::path(post, path = "/v1/change-requests/{id}/deploy", operation_id = "deploy_change_request", tag = "change requests", request_body = Option<DeployChangeRequest>,
    responses((status = 200, body = ChangeRequestView), (status = 403, description = "forbidden"), (status = 409, description = "not_approved, outdated_items, freeze_window, ...")),
    security(("bearer" = [])))]
pub async fn deploy(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    OptionalJsonBody(body): OptionalJsonBody<DeployChangeRequest>,
) -> Result<Json<ChangeRequestView>, ApiError> {
    let cr =
        state.berth.deploy_change_request_accepting(&ctx, id_of(&id)?, body.hold_if_frozen.unwrap_or(false), body.accept_outdated.unwrap_or(false)).await?;
    Ok(Json(view(&state, &ctx, &cr).await?))
}

/// The dry run of every item against the target environment (as `POST /v1/deployments/validate`,
/// judged as the change request's deploy), with an `outdated` warning for an outdated item.
#[utoipa::path(post, path = "/v1/change-requests/{id}/validate", operation_id = "validate_change_request", tag = "change requests",
    responses((status = 200, body = ChangeValidationView), (status = 404)), security(("bearer" = [])))]
pub async fn validate(State(state): State<AppState>, Ctx(ctx): Ctx, Path(id): Path<String>) -> Result<Json<ChangeValidationView>, ApiError> {
    let reports = state.berth.validate_change_request(&ctx, id_of(&id)?).await?;
    Ok(Json(ChangeValidationView::from(reports.as_slice())))
}

/// Which items' components (or bundled children) were revised after packaging (`outdated`).
#[utoipa::path(post, path = "/v1/change-requests/{id}/scan", operation_id = "scan_change_request", tag = "change requests",
    responses((status = 200, body = ChangeScanView), (status = 404)), security(("bearer" = [])))]
pub async fn scan(State(state): State<AppState>, Ctx(ctx): Ctx, Path(id): Path<String>) -> Result<Json<ChangeScanView>, ApiError> {
    let scan = state.berth.scan_change_request(&ctx, id_of(&id)?).await?;
    Ok(Json(ChangeScanView::from(scan.as_slice())))
}

/// Closes it once its deployments succeeded (409 `deployments_not_finished` before).
#[utoipa::path(post, path = "/v1/change-requests/{id}/complete", operation_id = "complete_change_request", tag = "change requests", responses((status = 200, body = ChangeRequestView)), security(("bearer" = [])))]
pub async fn complete(State(state): State<AppState>, Ctx(ctx): Ctx, Path(id): Path<String>) -> Result<Json<ChangeRequestView>, ApiError> {
    let cr = state.berth.complete_change_request(&ctx, id_of(&id)?).await?;
    Ok(Json(view(&state, &ctx, &cr).await?))
}
