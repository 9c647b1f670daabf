//! The agent gateway Lambda: initialisation only.

use berth_agent_gateway::{AgentState, router};
use berth_aws::app::{build_berth, settings_from_env};
use berth_aws::{AwsClients, ResourceNames};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    berth_telemetry::init_tracing();
    let cors = berth_web::CorsOrigins::from_env()?;
    let clients = AwsClients::from_env().await;
    let berth = build_berth(&clients, &ResourceNames::from_env(), settings_from_env()).with_metrics(berth_telemetry::EmfMetrics::stdout("agent-gateway"));
    lambda_http::run(router(AgentState { berth: Arc::new(berth) }, &cors)).await
}
