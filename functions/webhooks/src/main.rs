//! The webhooks Lambda: initialisation only.

use berth_aws::app::{build_berth, settings_from_env};
use berth_aws::{AwsClients, ResourceNames};
use berth_webhooks::{HooksState, router};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    berth_telemetry::init_tracing();
    let cors = berth_web::CorsOrigins::from_env()?;
    let clients = AwsClients::from_env().await;
    let berth = build_berth(&clients, &ResourceNames::from_env(), settings_from_env()).with_metrics(berth_telemetry::EmfMetrics::stdout("webhooks"));
    lambda_http::run(berth_web::telemetry::with_gateway_request_id(router(HooksState { berth: Arc::new(berth) }, &cors), api_gateway_request_id)).await
}

/// API Gateway's id of the request (the `requestId` of its access log).
fn api_gateway_request_id(req: &axum::http::Request<axum::body::Body>) -> Option<String> {
    use lambda_http::RequestExt;
    match req.request_context_ref() {
        Some(lambda_http::request::RequestContext::ApiGatewayV2(context)) => context.request_id.clone(),
        _ => None,
    }
}
