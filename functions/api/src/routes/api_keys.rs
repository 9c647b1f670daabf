pub(crate) mod views;

use super::created;
use crate::ctx::Ctx;
use crate::state::AppState;
use crate::views::ListOf;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use berth_domain::ids::ApiKeyId;
use berth_web::extract::path_id;
use berth_web::idempotency::SecretFields;
use berth_web::{ApiError, JsonBody, PageQuery};
use views::{ApiKeyView, CreateApiKey};

/// Makes an API key for a pipeline (admins; not with an API key). The response carries the key (`bak_…`) once; only its
/// SHA-256 is stored. Use it as `Authorization: Bearer bak_…` on `/v1`.
#[utoipa::path(post, path = "/v1/api-keys", tag = "api-keys", request_body = CreateApiKey,
    responses((status = 201, body = ApiKeyView), (status = 403, description = "forbidden, roles_exceed_creator"), (status = 422, description = "validation_failed")),
    security(("bearer" = [])))]
pub async fn create_api_key(State(state): State<AppState>, Ctx(ctx): Ctx, JsonBody(body): JsonBody<CreateApiKey>) -> Result<Response, ApiError> {
    let made = state.berth.create_api_key(&ctx, body.into()).await?;
    let mut view = ApiKeyView::from(&made.key);
    view.key = Some(made.token.reveal());
    Ok(SecretFields(&["key"]).mark(created(format!("/v1/api-keys/{}", made.key.id), None, view)))
}

/// The tenant's API keys, oldest first, revoked ones included. Never the keys themselves.
#[utoipa::path(get, path = "/v1/api-keys", tag = "api-keys", params(("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = ListOf<ApiKeyView>)), security(("bearer" = [])))]
pub async fn list_api_keys(State(state): State<AppState>, Ctx(ctx): Ctx, PageQuery(page): PageQuery) -> Result<Json<ListOf<ApiKeyView>>, ApiError> {
    let page = state.berth.list_api_keys(&ctx, &page).await?;
    Ok(Json(ListOf::from_page(page, |k| ApiKeyView::from(&k))))
}

#[utoipa::path(get, path = "/v1/api-keys/{id}", tag = "api-keys", responses((status = 200, body = ApiKeyView), (status = 404)), security(("bearer" = [])))]
pub async fn get_api_key(State(state): State<AppState>, Ctx(ctx): Ctx, Path(id): Path<String>) -> Result<Json<ApiKeyView>, ApiError> {
    let key = state.berth.get_api_key(&ctx, path_id::<ApiKeyId>(&id, "API key")?).await?;
    Ok(Json(ApiKeyView::from(&key)))
}

/// Revokes the key (admins): it gets 401 from then on. Its record stays, with `revoked_at`. Revoking a revoked key is
/// 204 too, and changes nothing.
#[utoipa::path(delete, path = "/v1/api-keys/{id}", tag = "api-keys", responses((status = 204), (status = 403), (status = 404)), security(("bearer" = [])))]
pub async fn revoke_api_key(State(state): State<AppState>, Ctx(ctx): Ctx, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    state.berth.revoke_api_key(&ctx, path_id::<ApiKeyId>(&id, "API key")?).await?;
    Ok(StatusCode::NO_CONTENT)
}
