//! The sweeper Lambda (EventBridge schedule): initialisation only.

use berth_aws::app::{build_berth, settings_from_env};
use berth_aws::{AwsClients, ResourceNames};
use lambda_runtime::{LambdaEvent, service_fn};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    berth_telemetry::init_tracing();
    let clients = AwsClients::from_env().await;
    let berth = Arc::new(build_berth(&clients, &ResourceNames::from_env(), settings_from_env()).with_metrics(berth_telemetry::EmfMetrics::stdout("sweeper")));
    lambda_runtime::run(service_fn(move |_: LambdaEvent<serde_json::Value>| {
        let berth = berth.clone();
        async move {
            let report = berth_sweeper::sweep_once(&berth).await?;
            Ok::<_, lambda_runtime::Error>(serde_json::json!({"timed_out": report.timed_out, "released": report.released, "requeued": report.requeued}))
        }
    }))
    .await
}
