pub(crate) mod views;

use crate::ctx::Ctx;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use berth_web::ApiError;
use views::MeView;

/// The caller, their tenant and roles.
#[utoipa::path(get, path = "/v1/me", tag = "me", responses((status = 200, body = MeView)), security(("bearer" = [])))]
pub async fn me(State(state): State<AppState>, Ctx(ctx): Ctx) -> Result<Json<MeView>, ApiError> {
    let tenant = state.berth.tenant_of_token(ctx.tenant).await?;
    Ok(Json(MeView {
        sub: ctx.actor.id,
        tenant_id: tenant.id.as_uuid(),
        tenant_name: tenant.name.to_string(),
        tenant_suspended: tenant.suspended,
        roles: ctx.roles.iter().map(|r| r.as_str().to_string()).collect(),
    }))
}
