//! Presigned uploads of component content (too large for a request body).

pub(crate) mod views;

use crate::ctx::Ctx;
use crate::routes::components::views::{ComponentView, RevisionView};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_domain::DomainError;
use berth_domain::ids::{ComponentId, UploadId};
use berth_domain::runtime::Digest;
use berth_domain::usecases::{CompleteUpload, NewUpload};
use berth_web::extract::path_id;
use berth_web::{ApiError, IfMatch, JsonBody, OptionalJsonBody};
use views::{CompleteUploadBody, StartUpload, UploadView};

/// Starts an upload of the component's next content: answers where to PUT it
/// (a presigned URL, or one per part above the part size), valid 15 minutes.
#[utoipa::path(post, path = "/v1/components/{id}/uploads", tag = "components", request_body = StartUpload,
    responses((status = 201, body = UploadView), (status = 404, description = "component"),
        (status = 422, description = "validation_failed (a size over 1 GiB, too)")), security(("bearer" = [])))]
pub async fn start_upload(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<StartUpload>,
) -> Result<Response, ApiError> {
    let id = path_id::<ComponentId>(&id, "component")?;
    let sha256 = Digest::parse(&body.sha256).map_err(|m| DomainError::invalid("sha256", m))?;
    let started = state.berth.start_upload(&ctx, id, NewUpload { size: body.size, sha256 }).await?;
    Ok((StatusCode::CREATED, Json(UploadView::from(&started))).into_response())
}

/// Checks the uploaded content (size and SHA-256) and makes it the
/// component's next revision, as `POST /v1/components/{id}/revisions` would.
/// Completing the same upload again answers 200 with the revision it became.
#[utoipa::path(post, path = "/v1/components/{id}/uploads/{upload_id}/complete", tag = "components", request_body = Option<CompleteUploadBody>,
    responses((status = 201, body = RevisionView), (status = 200, body = RevisionView, description = "completed before: the revision it became"),
        (status = 404, description = "component, or upload unknown, expired or another's"),
        (status = 409, description = "upload_incomplete, upload_in_progress"), (status = 412),
        (status = 422, description = "upload_size_mismatch, upload_digest_mismatch, reference_cycle, reference_not_found")),
    security(("bearer" = [])))]
pub async fn complete_upload(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path((id, upload)): Path<(String, String)>,
    IfMatch(if_match): IfMatch,
    OptionalJsonBody(body): OptionalJsonBody<CompleteUploadBody>,
) -> Result<Response, ApiError> {
    let id = path_id::<ComponentId>(&id, "component")?;
    let upload = path_id::<UploadId>(&upload, "upload")?;
    let input = CompleteUpload {
        references: body.references.map(|r| r.into_iter().map(ComponentId::from_uuid).collect()),
        extensions: body.extensions.map(Into::into),
    };
    let done = state.berth.complete_upload(&ctx, id, upload, input, if_match).await?;
    let status = if done.created { StatusCode::CREATED } else { StatusCode::OK };
    let mut response = (status, Json(RevisionView::from(&done.revision))).into_response();
    let location = format!("/v1/components/{id}/revisions/{}", done.revision.revision);
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&ComponentView::from(&done.component).etag) {
        response.headers_mut().insert(header::ETAG, v);
    }
    Ok(response)
}
