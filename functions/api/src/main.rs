//! The portal API Lambda: initialisation only.

use berth_api::{AppState, router};
use berth_aws::app::{build_berth, settings_from_env};
use berth_aws::{AwsClients, ResourceNames};
use berth_web::{AuthConfig, CorsOrigins, JwtVerifier};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    berth_telemetry::init_tracing();
    // First, so a Lambda configured with an HS256 secret stops before anything else.
    let verifier = JwtVerifier::new(&AuthConfig::for_lambda_from_env()?)?;
    let cors = CorsOrigins::from_env()?;
    let clients = AwsClients::from_env().await;
    let berth = build_berth(&clients, &ResourceNames::from_env(), settings_from_env()).with_metrics(berth_telemetry::EmfMetrics::stdout("api"));
    let state = AppState { berth: Arc::new(berth), verifier: Arc::new(verifier) };
    lambda_http::run(berth_web::telemetry::with_gateway_request_id(router(state, &cors), api_gateway_request_id)).await
}

/// API Gateway's id of the request (the `requestId` of its access log).
fn api_gateway_request_id(req: &axum::http::Request<axum::body::Body>) -> Option<String> {
    use lambda_http::RequestExt;
    match req.request_context_ref() {
        Some(lambda_http::request::RequestContext::ApiGatewayV2(context)) => context.request_id.clone(),
        _ => None,
    }
}
