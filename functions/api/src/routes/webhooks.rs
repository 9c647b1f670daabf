pub(crate) mod views;

use super::{created, with_etag};
use crate::ctx::Ctx;
use crate::state::AppState;
use crate::views::ListOf;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_domain::ids::WebhookId;
use berth_web::extract::path_id;
use berth_web::idempotency::SecretFields;
use berth_web::{ApiError, IfMatch, JsonBody, OptionalJsonBody, PageQuery};
use views::{CreateWebhook, DeliveryView, PatchWebhook, RotateSecret, WebhookView, WebhookWithSecretView};

/// The one field that carries a webhook's secret.
const SECRET: SecretFields = SecretFields(&["secret"]);

fn id_of(raw: &str) -> Result<WebhookId, ApiError> {
    path_id::<WebhookId>(raw, "webhook")
}

/// Creates a webhook (admins). The response carries its signing secret, once.
#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks", request_body = CreateWebhook,
    responses((status = 201, body = WebhookWithSecretView), (status = 403), (status = 404, description = "no such environment or component")),
    security(("bearer" = [])))]
pub async fn create_webhook(State(state): State<AppState>, Ctx(ctx): Ctx, JsonBody(body): JsonBody<CreateWebhook>) -> Result<Response, ApiError> {
    let created_ = state.berth.create_webhook(&ctx, body.into()).await?;
    let webhook = &created_.webhook;
    let view = WebhookWithSecretView { webhook: WebhookView::from(webhook), secret: created_.secret.reveal().to_string() };
    Ok(SECRET.mark(created(format!("/v1/webhooks/{}", webhook.id), Some(webhook.version.etag()), view)))
}

#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks", params(("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = ListOf<WebhookView>)), security(("bearer" = [])))]
pub async fn list_webhooks(State(state): State<AppState>, Ctx(ctx): Ctx, PageQuery(page): PageQuery) -> Result<Json<ListOf<WebhookView>>, ApiError> {
    let page = state.berth.list_webhooks(&ctx, &page).await?;
    Ok(Json(ListOf::from_page(page, |w| WebhookView::from(&w))))
}

#[utoipa::path(get, path = "/v1/webhooks/{id}", tag = "webhooks", responses((status = 200, body = WebhookView), (status = 404)), security(("bearer" = [])))]
pub async fn get_webhook(State(state): State<AppState>, Ctx(ctx): Ctx, Path(id): Path<String>) -> Result<Response, ApiError> {
    let webhook = state.berth.get_webhook(&ctx, id_of(&id)?).await?;
    Ok(with_etag(webhook.version.etag(), WebhookView::from(&webhook)))
}

#[utoipa::path(patch, path = "/v1/webhooks/{id}", tag = "webhooks", request_body = PatchWebhook,
    responses((status = 200, body = WebhookView), (status = 404), (status = 412, description = "If-Match mismatch")), security(("bearer" = [])))]
pub async fn patch_webhook(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    IfMatch(if_match): IfMatch,
    JsonBody(body): JsonBody<PatchWebhook>,
) -> Result<Response, ApiError> {
    let webhook = state.berth.patch_webhook(&ctx, id_of(&id)?, body.into(), if_match).await?;
    Ok(with_etag(webhook.version.etag(), WebhookView::from(&webhook)))
}

#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks", responses((status = 204), (status = 404)), security(("bearer" = [])))]
pub async fn delete_webhook(State(state): State<AppState>, Ctx(ctx): Ctx, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    state.berth.delete_webhook(&ctx, id_of(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new signing secret, shown once; the current one keeps verifying for `overlap_seconds` (default a day).
#[utoipa::path(post, path = "/v1/webhooks/{id}/rotate-secret", tag = "webhooks", request_body = Option<RotateSecret>,
    responses((status = 200, body = WebhookWithSecretView), (status = 404), (status = 422, description = "overlap_seconds out of range")), security(("bearer" = [])))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    OptionalJsonBody(body): OptionalJsonBody<RotateSecret>,
) -> Result<Response, ApiError> {
    let rotated = state.berth.rotate_webhook_secret(&ctx, id_of(&id)?, body.overlap_seconds).await?;
    let view = WebhookWithSecretView { webhook: WebhookView::from(&rotated.webhook), secret: rotated.secret.reveal().to_string() };
    Ok(SECRET.mark(Json(view).into_response()))
}

/// The webhook's deliveries, newest first: outcome, refusal code and deployment, never bodies or headers.
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "webhooks", params(("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = ListOf<DeliveryView>), (status = 404)), security(("bearer" = [])))]
pub async fn list_deliveries(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    PageQuery(page): PageQuery,
) -> Result<Json<ListOf<DeliveryView>>, ApiError> {
    let page = state.berth.list_deliveries(&ctx, id_of(&id)?, &page).await?;
    Ok(Json(ListOf::from_page(page, DeliveryView::from)))
}
