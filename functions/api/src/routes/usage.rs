pub(crate) mod views;

use crate::ctx::Ctx;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use berth_web::ApiError;
use views::UsageView;

/// What the tenant uses of its plan: connection licences per classification (each
/// connection counted, with where it is active or being deployed), runtimes, environments.
#[utoipa::path(get, path = "/v1/usage", operation_id = "get_usage", tag = "usage", responses((status = 200, body = UsageView)), security(("bearer" = [])))]
pub async fn usage(State(state): State<AppState>, Ctx(ctx): Ctx) -> Result<Json<UsageView>, ApiError> {
    Ok(Json(UsageView::from(&state.berth.usage(&ctx).await?)))
}
