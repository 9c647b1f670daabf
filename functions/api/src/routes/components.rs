pub(crate) mod views;

use super::{created, with_etag};
use crate::ctx::Ctx;
use crate::state::AppState;
use crate::views::ListOf;
use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use base64::Engine;
use berth_domain::DomainError;
use berth_domain::ids::ComponentId;
use berth_domain::usecases::{NewComponent, RevisionInput};
use berth_web::extract::path_id;
use berth_web::{ApiError, IfMatch, JsonBody, MAX_UPLOAD_BODY_BYTES, PageQuery};
use uuid::Uuid;
use views::{ComponentView, CreateComponent, CreateRevision, RevisionView};

fn decode_content(raw: &str) -> Result<Vec<u8>, ApiError> {
    base64::engine::general_purpose::STANDARD.decode(raw.trim()).map_err(|_| DomainError::invalid("content", "must be standard base64").into())
}

fn ids(raw: Vec<Uuid>) -> Vec<ComponentId> {
    raw.into_iter().map(ComponentId::from_uuid).collect()
}

#[utoipa::path(post, path = "/v1/components", tag = "components", request_body = CreateComponent,
    responses((status = 201, body = ComponentView), (status = 409, description = "name_exists"), (status = 413, description = "content too large"),
        (status = 422, description = "reference_not_found, validation_failed")), security(("bearer" = [])))]
pub async fn create_component(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    JsonBody(body): JsonBody<CreateComponent, MAX_UPLOAD_BODY_BYTES>,
) -> Result<Response, ApiError> {
    let input = NewComponent {
        name: body.name,
        kind: body.kind,
        content: decode_content(&body.content)?,
        references: ids(body.references),
        extensions: body.extensions.map(Into::into).unwrap_or_default(),
    };
    let component = state.berth.create_component(&ctx, input).await?;
    let view = ComponentView::from(&component);
    Ok(created(format!("/v1/components/{}", component.id), Some(view.etag.clone()), view))
}

#[utoipa::path(get, path = "/v1/components", tag = "components", params(("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = ListOf<ComponentView>)), security(("bearer" = [])))]
pub async fn list_components(State(state): State<AppState>, Ctx(ctx): Ctx, PageQuery(page): PageQuery) -> Result<Json<ListOf<ComponentView>>, ApiError> {
    let page = state.berth.list_components(&ctx, &page).await?;
    Ok(Json(ListOf::from_page(page, |c| ComponentView::from(&c))))
}

#[utoipa::path(get, path = "/v1/components/{id}", tag = "components", responses((status = 200, body = ComponentView), (status = 404)), security(("bearer" = [])))]
pub async fn get_component(State(state): State<AppState>, Ctx(ctx): Ctx, Path(id): Path<String>) -> Result<Response, ApiError> {
    let component = state.berth.get_component(&ctx, path_id::<ComponentId>(&id, "component")?).await?;
    let view = ComponentView::from(&component);
    Ok(with_etag(view.etag.clone(), view))
}

/// Adds the next revision (`If-Match` with the component's etag guards against lost updates).
#[utoipa::path(post, path = "/v1/components/{id}/revisions", tag = "components", request_body = CreateRevision,
    responses((status = 201, body = RevisionView), (status = 412), (status = 422, description = "reference_cycle, reference_not_found")), security(("bearer" = [])))]
pub async fn create_revision(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    IfMatch(if_match): IfMatch,
    JsonBody(body): JsonBody<CreateRevision, MAX_UPLOAD_BODY_BYTES>,
) -> Result<Response, ApiError> {
    let id = path_id::<ComponentId>(&id, "component")?;
    let input = RevisionInput {
        content: body.content.as_deref().map(decode_content).transpose()?,
        references: body.references.map(ids),
        extensions: body.extensions.map(Into::into),
    };
    let (component, revision) = state.berth.revise_component(&ctx, id, input, if_match).await?;
    let etag = ComponentView::from(&component).etag;
    Ok(created(format!("/v1/components/{id}/revisions/{}", revision.revision), Some(etag), RevisionView::from(&revision)))
}

#[utoipa::path(get, path = "/v1/components/{id}/revisions", tag = "components", params(("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = ListOf<RevisionView>)), security(("bearer" = [])))]
pub async fn list_revisions(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    PageQuery(page): PageQuery,
) -> Result<Json<ListOf<RevisionView>>, ApiError> {
    let page = state.berth.list_revisions(&ctx, path_id::<ComponentId>(&id, "component")?, &page).await?;
    Ok(Json(ListOf::from_page(page, |r| RevisionView::from(&r))))
}

#[utoipa::path(get, path = "/v1/components/{id}/revisions/{revision}", tag = "components", responses((status = 200, body = RevisionView), (status = 404)), security(("bearer" = [])))]
pub async fn get_revision(State(state): State<AppState>, Ctx(ctx): Ctx, Path((id, revision)): Path<(String, String)>) -> Result<Json<RevisionView>, ApiError> {
    let id = path_id::<ComponentId>(&id, "component")?;
    let n = revision.parse::<u32>().map_err(|_| ApiError::bad_request("invalid_id", "revision must be a whole number"))?;
    Ok(Json(RevisionView::from(&state.berth.get_revision(&ctx, id, n).await?)))
}
