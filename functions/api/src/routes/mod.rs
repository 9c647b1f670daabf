pub(crate) mod api_keys;
pub(crate) mod approvals;
mod audit;
pub(crate) mod change_requests;
pub(crate) mod components;
pub(crate) mod deployments;
pub(crate) mod environments;
pub(crate) mod extensions;
pub(crate) mod governance;
pub(crate) mod me;
pub(crate) mod packages;
pub(crate) mod runtimes;
pub(crate) mod tenants;
pub(crate) mod uploads;
pub(crate) mod usage;
pub(crate) mod webhooks;

use crate::state::AppState;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

pub(crate) use api_keys::{__path_create_api_key, __path_get_api_key, __path_list_api_keys, __path_revoke_api_key};
pub(crate) use audit::__path_list_audit;
pub(crate) use audit::__path_verify_audit;
pub(crate) use components::{
    __path_create_component, __path_create_revision, __path_get_component, __path_get_revision, __path_list_components, __path_list_revisions,
};
pub(crate) use deployments::__path_lift_quarantine;
pub(crate) use deployments::{
    __path_active_versions, __path_cancel_deployment, __path_create_deployment, __path_get_deployment, __path_list_deployments, __path_list_events,
    __path_list_targets, __path_retry_deployment, __path_roll_back, __path_undeploy, __path_validate_deployment,
};
pub(crate) use deployments::{__path_halt_deployment, __path_resume_deployment};
pub(crate) use environments::{
    __path_attach_runtime, __path_create_environment, __path_delete_environment, __path_detach_runtime, __path_get_environment,
    __path_list_environment_runtimes, __path_list_environments, __path_patch_environment,
};
pub(crate) use extensions::{__path_deploy_extensions, __path_get_connection, __path_get_extensions, __path_put_extensions, __path_test_connection};
pub(crate) use governance::{__path_decide, __path_get_policy, __path_put_policy};
pub(crate) use me::__path_me;
pub(crate) use packages::{__path_create_package, __path_delete_package, __path_download_package, __path_get_package, __path_list_packages};
pub(crate) use runtimes::{__path_create_runtime, __path_delete_runtime, __path_get_runtime, __path_list_runtimes};
pub(crate) use runtimes::{__path_issue_registration_token, __path_revoke_runtime};
pub(crate) use tenants::{__path_create_tenant, __path_get_tenant, __path_list_tenants, __path_patch_tenant};
pub(crate) use uploads::{__path_complete_upload, __path_start_upload};
pub(crate) use webhooks::{
    __path_create_webhook, __path_delete_webhook, __path_get_webhook, __path_list_deliveries, __path_list_webhooks, __path_patch_webhook, __path_rotate_secret,
};

/// What the Lambda serves: the routes with the shared edge layers.
pub fn router(state: AppState, cors: &berth_web::CorsOrigins) -> Router {
    berth_web::finish_router(routes(state), cors)
}

/// Every route of the portal and platform APIs, with idempotency applied to
/// the creating `POST`s.
pub fn routes(state: AppState) -> Router {
    let api = Router::new()
        .route("/v1/me", get(me::me))
        .route("/v1/environments", get(environments::list_environments).post(environments::create_environment))
        .route("/v1/environments/{id}", get(environments::get_environment).patch(environments::patch_environment).delete(environments::delete_environment))
        .route("/v1/environments/{id}/runtimes", get(environments::list_environment_runtimes))
        .route("/v1/environments/{id}/runtimes/{runtime_id}", axum::routing::put(environments::attach_runtime).delete(environments::detach_runtime))
        .route("/v1/runtimes", get(runtimes::list_runtimes).post(runtimes::create_runtime))
        .route("/v1/runtimes/{id}", get(runtimes::get_runtime).delete(runtimes::delete_runtime))
        .route("/v1/runtimes/{id}/registration-token", axum::routing::post(runtimes::issue_registration_token))
        .route("/v1/runtimes/{id}/revoke", axum::routing::post(runtimes::revoke_runtime))
        .route("/v1/components", get(components::list_components).post(components::create_component))
        .route("/v1/components/{id}", get(components::get_component))
        .route("/v1/components/{id}/revisions", get(components::list_revisions).post(components::create_revision))
        .route("/v1/components/{id}/revisions/{revision}", get(components::get_revision))
        .route("/v1/components/{id}/uploads", axum::routing::post(uploads::start_upload))
        .route("/v1/components/{id}/uploads/{upload_id}/complete", axum::routing::post(uploads::complete_upload))
        .route("/v1/packages", get(packages::list_packages).post(packages::create_package))
        .route("/v1/packages/{id}", get(packages::get_package).delete(packages::delete_package))
        .route("/v1/packages/{id}/download", get(packages::download_package))
        .route("/v1/deployments/validate", axum::routing::post(deployments::validate_deployment))
        .route("/v1/deployments", get(deployments::list_deployments).post(deployments::create_deployment))
        .route("/v1/deployments/{id}", get(deployments::get_deployment))
        .route("/v1/deployments/{id}/targets", get(deployments::list_targets))
        .route("/v1/deployments/{id}/events", get(deployments::list_events))
        .route("/v1/deployments/{id}/cancel", axum::routing::post(deployments::cancel_deployment))
        .route("/v1/deployments/{id}/retry", axum::routing::post(deployments::retry_deployment))
        .route("/v1/deployments/{id}/halt", axum::routing::post(deployments::halt_deployment))
        .route("/v1/deployments/{id}/resume", axum::routing::post(deployments::resume_deployment))
        .route("/v1/deployments/{id}/approvals", axum::routing::post(governance::decide))
        .route("/v1/environments/{id}/policy", get(governance::get_policy).put(governance::put_policy))
        .route("/v1/environments/{id}/extensions", get(extensions::get_extensions).put(extensions::put_extensions))
        .route("/v1/environments/{id}/extensions/deploy", axum::routing::post(extensions::deploy_extensions))
        .route("/v1/environments/{id}/connections/{component_id}", get(extensions::get_connection))
        .route("/v1/environments/{id}/connections/{component_id}/test", axum::routing::post(extensions::test_connection))
        .route("/v1/environments/{id}/active", get(deployments::active_versions))
        .route("/v1/environments/{id}/active/{component_id}", axum::routing::delete(deployments::undeploy))
        .route("/v1/environments/{id}/active/{component_id}/rollback", axum::routing::post(deployments::roll_back))
        .route("/v1/environments/{id}/quarantine/{package_id}", axum::routing::delete(deployments::lift_quarantine))
        .route("/v1/change-requests", get(change_requests::list).post(change_requests::create))
        .route("/v1/change-requests/{id}", get(change_requests::get).patch(change_requests::patch))
        .route("/v1/change-requests/{id}/submit", axum::routing::post(change_requests::submit))
        .route("/v1/change-requests/{id}/approvals", axum::routing::post(change_requests::decide))
        .route("/v1/change-requests/{id}/deploy", axum::routing::post(change_requests::deploy))
        .route("/v1/change-requests/{id}/complete", axum::routing::post(change_requests::complete))
        .route("/v1/change-requests/{id}/validate", axum::routing::post(change_requests::validate))
        .route("/v1/change-requests/{id}/scan", axum::routing::post(change_requests::scan))
        .route("/v1/approvals/pending", get(approvals::pending))
        .route("/v1/usage", get(usage::usage))
        .route("/v1/webhooks", get(webhooks::list_webhooks).post(webhooks::create_webhook))
        .route("/v1/webhooks/{id}", get(webhooks::get_webhook).patch(webhooks::patch_webhook).delete(webhooks::delete_webhook))
        .route("/v1/webhooks/{id}/rotate-secret", axum::routing::post(webhooks::rotate_secret))
        .route("/v1/webhooks/{id}/deliveries", get(webhooks::list_deliveries))
        .route("/v1/audit", get(audit::list_audit))
        .route("/v1/audit/verify", get(audit::verify_audit))
        .route("/v1/api-keys", get(api_keys::list_api_keys).post(api_keys::create_api_key))
        .route("/v1/api-keys/{id}", get(api_keys::get_api_key).delete(api_keys::revoke_api_key))
        .route("/platform/v1/tenants", get(tenants::list_tenants).post(tenants::create_tenant))
        .route("/platform/v1/tenants/{id}", get(tenants::get_tenant).patch(tenants::patch_tenant))
        .layer(axum::middleware::from_fn_with_state(state.idempotency(), berth_web::idempotency::middleware))
        .route("/v1/openapi.json", get(crate::openapi::serve));
    api.with_state(state)
}

/// 201 with `Location` (and `ETag` when the resource has one).
pub(crate) fn created<T: Serialize>(location: String, etag: Option<String>, body: T) -> Response {
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    if let Some(v) = etag.and_then(|e| HeaderValue::from_str(&e).ok()) {
        response.headers_mut().insert(header::ETAG, v);
    }
    response
}

/// 200 with an `ETag` header.
pub(crate) fn with_etag<T: Serialize>(etag: String, body: T) -> Response {
    let mut response = Json(body).into_response();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, v);
    }
    response
}
