pub(crate) mod views;

use super::{created, with_etag};
use crate::ctx::Platform;
use crate::state::AppState;
use crate::views::ListOf;
use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use berth_domain::ids::TenantId;
use berth_domain::tenant::PlanPatch;
use berth_domain::values::Plan;
use berth_web::extract::path_id;
use berth_web::{ApiError, IfMatch, JsonBody, PageQuery};
use views::{CreateTenant, PatchTenant, TenantView};

/// Onboards a tenant (platform admins only).
#[utoipa::path(post, path = "/platform/v1/tenants", tag = "platform", request_body = CreateTenant,
    responses((status = 201, body = TenantView), (status = 403, description = "not a platform admin")), security(("bearer" = [])))]
pub async fn create_tenant(State(state): State<AppState>, Platform(ctx): Platform, JsonBody(body): JsonBody<CreateTenant>) -> Result<Response, ApiError> {
    let defaults = Plan::default();
    let p: PlanPatch = body.plan.unwrap_or_default().into();
    let plan = Plan::new(
        p.connection_licenses.unwrap_or(defaults.connection_licenses),
        p.max_runtimes.unwrap_or(defaults.max_runtimes),
        p.max_environments.unwrap_or(defaults.max_environments),
    )?;
    let tenant = state.berth.create_tenant(&ctx, body.name, plan).await?;
    Ok(created(format!("/platform/v1/tenants/{}", tenant.id), Some(tenant.version.etag()), TenantView::from(&tenant)))
}

#[utoipa::path(get, path = "/platform/v1/tenants", tag = "platform", params(("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = ListOf<TenantView>)), security(("bearer" = [])))]
pub async fn list_tenants(State(state): State<AppState>, Platform(ctx): Platform, PageQuery(page): PageQuery) -> Result<Json<ListOf<TenantView>>, ApiError> {
    let page = state.berth.list_tenants(&ctx, &page).await?;
    Ok(Json(ListOf::from_page(page, |t| TenantView::from(&t))))
}

#[utoipa::path(get, path = "/platform/v1/tenants/{id}", tag = "platform", responses((status = 200, body = TenantView)), security(("bearer" = [])))]
pub async fn get_tenant(State(state): State<AppState>, Platform(ctx): Platform, Path(id): Path<String>) -> Result<Response, ApiError> {
    let tenant = state.berth.get_tenant(&ctx, path_id::<TenantId>(&id, "tenant")?).await?;
    Ok(with_etag(tenant.version.etag(), TenantView::from(&tenant)))
}

/// Changes a tenant's name or plan, or suspends / reinstates it.
#[utoipa::path(patch, path = "/platform/v1/tenants/{id}", tag = "platform", request_body = PatchTenant,
    responses((status = 200, body = TenantView), (status = 412, description = "If-Match mismatch")), security(("bearer" = [])))]
pub async fn patch_tenant(
    State(state): State<AppState>,
    Platform(ctx): Platform,
    Path(id): Path<String>,
    IfMatch(if_match): IfMatch,
    JsonBody(body): JsonBody<PatchTenant>,
) -> Result<Response, ApiError> {
    let tenant = state.berth.patch_tenant(&ctx, path_id::<TenantId>(&id, "tenant")?, body.into(), if_match).await?;
    Ok(with_etag(tenant.version.etag(), TenantView::from(&tenant)))
}
