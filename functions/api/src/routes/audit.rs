use crate::ctx::Ctx;
use crate::state::AppState;
use crate::views::ListOf;
use axum::Json;
use axum::extract::State;
use berth_domain::audit::AuditEvent;
use berth_domain::usecases::VerifyReport;
use berth_web::{ApiError, PageQuery};

/// The tenant's audit events, oldest first.
#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, description = "{items: [audit event], next_cursor}")), security(("bearer" = [])))]
pub async fn list_audit(State(state): State<AppState>, Ctx(ctx): Ctx, PageQuery(page): PageQuery) -> Result<Json<ListOf<AuditEvent>>, ApiError> {
    let page = state.berth.list_audit(&ctx, &page).await?;
    Ok(Json(ListOf::from_page(page, |e| e)))
}

/// Walks the hash chain and reports the first broken link.
#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit", responses((status = 200, description = "{ok, checked, first_broken}")), security(("bearer" = [])))]
pub async fn verify_audit(State(state): State<AppState>, Ctx(ctx): Ctx) -> Result<Json<VerifyReport>, ApiError> {
    Ok(Json(state.berth.verify_audit(&ctx).await?))
}
