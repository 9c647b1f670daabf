//! The dispatcher Lambda (SQS event source, partial batch responses): initialisation only.

use aws_lambda_events::event::sqs::SqsEvent;
use berth_aws::app::{build_berth, settings_from_env};
use berth_aws::{AwsClients, ResourceNames};
use berth_dispatcher::handle_batch;
use lambda_runtime::{LambdaEvent, service_fn};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    berth_telemetry::init_tracing();
    let clients = AwsClients::from_env().await;
    let berth =
        Arc::new(build_berth(&clients, &ResourceNames::from_env(), settings_from_env()).with_metrics(berth_telemetry::EmfMetrics::stdout("dispatcher")));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let berth = berth.clone();
        async move {
            let failures = handle_batch(&berth, berth_dispatcher::messages_of(&event.payload)).await;
            Ok::<_, lambda_runtime::Error>(berth_dispatcher::batch_response(failures))
        }
    }))
    .await
}
