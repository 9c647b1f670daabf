pub(crate) mod views;

use super::created;
use crate::ctx::Ctx;
use crate::state::AppState;
use crate::views::ListOf;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use berth_domain::DomainError;
use berth_domain::ids::{ComponentId, PackageId};
use berth_domain::package::PackageStatus;
use berth_domain::usecases::NewPackage;
use berth_web::extract::{path_id, serde_urlencoded_query};
use berth_web::{ApiError, JsonBody, PageQuery};
use views::{CreatePackage, DownloadView, PackageView};

/// Snapshots a component (and everything it bundles) into an immutable package:
/// 201 ready, or, when its content exceeds `BERTH_SYNC_PACKAGE_MAX_BYTES`, 202
/// `building` (poll the `Location` until `ready` or `failed`).
#[utoipa::path(post, path = "/v1/packages", tag = "packages", request_body = CreatePackage,
    responses((status = 201, body = PackageView), (status = 202, body = PackageView, description = "building: the archive is written in the background"),
        (status = 404, description = "no such component"), (status = 409, description = "version_exists")),
    security(("bearer" = [])))]
pub async fn create_package(State(state): State<AppState>, Ctx(ctx): Ctx, JsonBody(body): JsonBody<CreatePackage>) -> Result<Response, ApiError> {
    let input = NewPackage {
        component_id: ComponentId::from_uuid(body.component_id),
        version: body.version,
        notes: body.notes.unwrap_or_default(),
        shareable: body.shareable.unwrap_or(false),
        commit: body.commit,
    };
    let package = state.berth.create_package(&ctx, input).await?;
    let mut response = created(format!("/v1/packages/{}", package.id), None, PackageView::new(&package, Some(vec![])));
    if package.status == PackageStatus::Building {
        *response.status_mut() = StatusCode::ACCEPTED;
    }
    Ok(response)
}

#[derive(serde::Deserialize)]
struct PackageFilter {
    component_id: Option<String>,
}

/// Packages, newest first; `?component_id=` narrows to one component's.
#[utoipa::path(get, path = "/v1/packages", tag = "packages",
    params(("component_id" = Option<String>, Query), ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = ListOf<PackageView>)), security(("bearer" = [])))]
pub async fn list_packages(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PageQuery(page): PageQuery,
    parts: Parts,
) -> Result<Json<ListOf<PackageView>>, ApiError> {
    let filter: PackageFilter = serde_urlencoded_query(parts.uri.query().unwrap_or(""))?;
    let component = filter
        .component_id
        .map(|raw| raw.parse::<ComponentId>().map_err(|_| ApiError::from(DomainError::invalid("component_id", "must be a UUID"))))
        .transpose()?;
    let page = state.berth.list_packages(&ctx, component, &page).await?;
    Ok(Json(ListOf::from_page(page, |p| PackageView::new(&p, None))))
}

#[utoipa::path(get, path = "/v1/packages/{id}", tag = "packages", responses((status = 200, body = PackageView), (status = 404)), security(("bearer" = [])))]
pub async fn get_package(State(state): State<AppState>, Ctx(ctx): Ctx, Path(id): Path<String>) -> Result<Json<PackageView>, ApiError> {
    let details = state.berth.get_package(&ctx, path_id::<PackageId>(&id, "package")?).await?;
    Ok(Json(PackageView::new(&details.package, Some(details.outdated_components))))
}

/// A short-lived presigned URL for the package archive (409 `package_not_ready` until it is ready).
#[utoipa::path(get, path = "/v1/packages/{id}/download", tag = "packages",
    responses((status = 200, body = DownloadView), (status = 404), (status = 409, description = "package_not_ready: building, or its build failed")),
    security(("bearer" = [])))]
pub async fn download_package(State(state): State<AppState>, Ctx(ctx): Ctx, Path(id): Path<String>) -> Result<Json<DownloadView>, ApiError> {
    let url = state.berth.package_download(&ctx, path_id::<PackageId>(&id, "package")?).await?;
    Ok(Json(DownloadView { url: url.url, expires_at: url.expires_at }))
}

/// Marks the package deleted; refused (409 `package_active`) while it is active anywhere.
#[utoipa::path(delete, path = "/v1/packages/{id}", tag = "packages", responses((status = 204), (status = 409, description = "package_active")), security(("bearer" = [])))]
pub async fn delete_package(State(state): State<AppState>, Ctx(ctx): Ctx, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    state.berth.delete_package(&ctx, path_id::<PackageId>(&id, "package")?).await?;
    Ok(StatusCode::NO_CONTENT)
}
