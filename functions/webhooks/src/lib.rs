//! Signed inbound webhooks (`/hooks/v1`): CI asks Berth to package and
//! deploy, then waits for the outcome, with the webhook's secret and no
//! user token. The rules (signatures, replays, rate, policy) are the
//! domain's (`berth_domain::usecases::deliveries`); this is the HTTP edge.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use berth_domain::deployment::DeploymentStatus;
use berth_domain::ids::{DeploymentId, PackageId};
use berth_domain::usecases::{Berth, DeliveryReceipt, DeliveryStatus, IncomingDelivery};
use berth_domain::webhook::{DeliveryOutcome, MAX_BODY_BYTES};
use berth_web::ApiError;
use berth_web::extract::RequestId;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::Arc;
use utoipa::{OpenApi, ToSchema};

/// The headers a delivery is read from.
pub const BERTH_SIGNATURE: &str = "berth-signature";
pub const BERTH_DELIVERY: &str = "berth-delivery";
pub const GITHUB_SIGNATURE: &str = "x-hub-signature-256";
pub const GITHUB_DELIVERY: &str = "x-github-delivery";
pub const GITHUB_EVENT: &str = "x-github-event";

#[derive(Clone)]
pub struct HooksState {
    pub berth: Arc<Berth>,
}

/// The webhook routes, without the shared edge layers (see `router`).
pub fn routes(state: HooksState) -> Router {
    Router::new()
        .route("/hooks/v1/{webhook_id}", post(deliver))
        .route("/hooks/v1/{webhook_id}/deliveries/{delivery_id}", get(delivery_status))
        .with_state(state)
}

/// What the Lambda serves.
pub fn router(state: HooksState, cors: &berth_web::CorsOrigins) -> Router {
    berth_web::finish_router(routes(state), cors)
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// What a delivery did.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryAccepted {
    pub delivery_id: String,
    /// `accepted`, or `ignored` (GitHub's `ping`).
    #[schema(value_type = String, example = "accepted")]
    pub outcome: DeliveryOutcome,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub package_id: Option<PackageId>,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub deployment_id: Option<DeploymentId>,
    /// The deployment's status: `queued`, `pending_approval`, `scheduled` (held by a freeze window), ...
    #[schema(value_type = Option<String>, example = "queued")]
    pub status: Option<DeploymentStatus>,
}

impl From<DeliveryReceipt> for DeliveryAccepted {
    fn from(r: DeliveryReceipt) -> Self {
        Self { delivery_id: r.delivery_id.to_string(), outcome: r.outcome, package_id: r.package_id, deployment_id: r.deployment_id, status: r.status }
    }
}

/// A delivery's outcome and where its deployment is now.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryStatusView {
    pub delivery_id: String,
    pub received_at: DateTime<Utc>,
    /// `accepted`, `ignored` or `refused`.
    #[schema(value_type = String, example = "accepted")]
    pub outcome: DeliveryOutcome,
    /// Why it was refused.
    pub code: Option<String>,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub package_id: Option<PackageId>,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub deployment_id: Option<DeploymentId>,
    pub commit: Option<String>,
    /// The deployment's status now: wait for `succeeded` (or `failed`, `rolled_back`, `partially_failed`, `cancelled`, `rejected`).
    #[schema(value_type = Option<String>, example = "succeeded")]
    pub status: Option<DeploymentStatus>,
}

impl From<DeliveryStatus> for DeliveryStatusView {
    fn from(s: DeliveryStatus) -> Self {
        let d = s.delivery;
        Self {
            delivery_id: d.id.to_string(),
            received_at: d.received_at,
            outcome: d.outcome,
            code: d.code,
            package_id: d.package_id,
            deployment_id: d.deployment_id,
            commit: d.commit,
            status: s.status,
        }
    }
}

/// The fields a Berth delivery may carry (all optional; others are ignored).
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"version": "1.4.0", "commit": "9f2c1e7", "notes": "merged #42"}))]
pub struct DeliveryBody {
    /// The version label of the new package (`package_and_deploy`), or the version to deploy (`deploy_version`).
    pub version: Option<String>,
    /// The source commit, recorded on the package and the deployment.
    pub commit: Option<String>,
    /// The deployment's (and a new package's) notes.
    pub notes: Option<String>,
}

/// Asks the webhook to act. Signed with `Berth-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`
/// (the key is the whole `whsec_...` secret) and identified by a unique `Berth-Delivery`; or as GitHub signs
/// (`X-Hub-Signature-256`, `X-GitHub-Delivery`, `X-GitHub-Event`).
#[utoipa::path(post, path = "/hooks/v1/{webhook_id}", tag = "webhooks",
    params(
        ("webhook_id" = String, Path, description = "The webhook's id"),
        ("Berth-Signature" = Option<String>, Header, description = "t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<raw body>\">"),
        ("Berth-Delivery" = Option<String>, Header, description = "A unique id for this delivery (1-128 of letters, digits, - _ . :)"),
        ("X-Hub-Signature-256" = Option<String>, Header, description = "GitHub's sha256=<hex HMAC-SHA256 of the raw body>"),
        ("X-GitHub-Delivery" = Option<String>, Header, description = "GitHub's delivery id"),
        ("X-GitHub-Event" = Option<String>, Header, description = "GitHub's event name; `ping` is answered without deploying"),
    ),
    request_body = DeliveryBody,
    security(("webhook_signature" = [])),
    responses(
        (status = 202, description = "Accepted: packaged and/or requested a deployment", body = DeliveryAccepted),
        (status = 200, description = "Nothing to do (GitHub `ping`)", body = DeliveryAccepted),
        (status = 401, description = "Missing, malformed, wrong or stale signature (`signature_required`, `bad_signature`, `stale_signature`)"),
        (status = 404, description = "No such webhook"),
        (status = 409, description = "`duplicate_delivery`, `quarantined`, `environment_frozen`, `deployment_in_progress`, ..."),
        (status = 413, description = "The body is over 256 KiB"),
        (status = 422, description = "`delivery_id_required`, `version_required`, `invalid_body`, ..."),
        (status = 429, description = "More than 60 deliveries a minute; see `Retry-After`"),
    ))]
pub async fn deliver(
    State(state): State<HooksState>,
    Path(webhook): Path<String>,
    RequestId(request_id): RequestId,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => bytes.to_vec(),
        Err(_) => return ApiError::PayloadTooLarge.into_response(),
    };
    let incoming = IncomingDelivery {
        webhook,
        berth_signature: header(&headers, BERTH_SIGNATURE),
        github_signature: header(&headers, GITHUB_SIGNATURE),
        delivery_id: header(&headers, BERTH_DELIVERY).or_else(|| header(&headers, GITHUB_DELIVERY)),
        github_event: header(&headers, GITHUB_EVENT),
        body,
        request_id,
    };
    match state.berth.receive_delivery(incoming).await {
        Ok(receipt) => {
            let status = if receipt.outcome == DeliveryOutcome::Ignored { StatusCode::OK } else { StatusCode::ACCEPTED };
            (status, Json(DeliveryAccepted::from(receipt))).into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// A delivery's outcome and its deployment's status, for a pipeline waiting on it without a user token.
/// Signed like a delivery, over `"<t>.<delivery id>"`.
#[utoipa::path(get, path = "/hooks/v1/{webhook_id}/deliveries/{delivery_id}", tag = "webhooks",
    params(
        ("webhook_id" = String, Path, description = "The webhook's id"),
        ("delivery_id" = String, Path, description = "The delivery's id (its Berth-Delivery)"),
        ("Berth-Signature" = Option<String>, Header, description = "t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<delivery id>\">"),
    ),
    security(("webhook_signature" = [])),
    responses(
        (status = 200, description = "The delivery and its deployment's status", body = DeliveryStatusView),
        (status = 401, description = "Missing, malformed, wrong or stale signature"),
        (status = 404, description = "No such webhook, or no delivery with that id"),
    ))]
pub async fn delivery_status(
    State(state): State<HooksState>,
    Path((webhook, delivery)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<DeliveryStatusView>, ApiError> {
    let signature = header(&headers, BERTH_SIGNATURE);
    Ok(Json(state.berth.delivery_status(&webhook, &delivery, signature.as_deref()).await?.into()))
}

#[derive(OpenApi)]
#[openapi(
    paths(deliver, delivery_status),
    components(schemas(DeliveryBody, DeliveryAccepted, DeliveryStatusView)),
    tags((name = "webhooks", description = "Signed inbound webhooks for CI: no user token, the webhook's secret signs each request.")),
    modifiers(&WebhookSignatureAuth)
)]
struct HooksApiDoc;

/// The name of the webhook routes' security scheme in the OpenAPI document.
pub const WEBHOOK_SIGNATURE: &str = "webhook_signature";

struct WebhookSignatureAuth;

impl utoipa::Modify for WebhookSignatureAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        let key = ApiKeyValue::with_description(
            "Berth-Signature",
            "t=<unix seconds>,v1=<hex HMAC-SHA256, keyed by the webhook's whole whsec_ secret, of \"<t>.<raw body>\"> (of \"<t>.<delivery id>\" for a status call); or GitHub's X-Hub-Signature-256",
        );
        components.add_security_scheme(WEBHOOK_SIGNATURE, SecurityScheme::ApiKey(ApiKey::Header(key)));
    }
}

/// The webhook routes' part of the OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    HooksApiDoc::openapi()
}
