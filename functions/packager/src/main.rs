//! The package builder Lambda (SQS event source, partial batch responses): initialisation only.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use berth_aws::app::{build_berth, settings_from_env};
use berth_aws::{AwsClients, ResourceNames};
use berth_packager::{QueueMessage, handle_batch};
use lambda_runtime::{LambdaEvent, service_fn};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    berth_telemetry::init_tracing();
    let clients = AwsClients::from_env().await;
    let berth = Arc::new(build_berth(&clients, &ResourceNames::from_env(), settings_from_env()).with_metrics(berth_telemetry::EmfMetrics::stdout("packager")));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let berth = berth.clone();
        async move {
            let messages = event.payload.records.iter().map(QueueMessage::from_lambda_record).collect();
            let failures = handle_batch(&berth, messages).await;
            let mut response = SqsBatchResponse::default();
            response.batch_item_failures = failures
                .into_iter()
                .map(|id| {
                    let mut f = BatchItemFailure::default();
                    f.item_identifier = id;
                    f
                })
                .collect();
            Ok::<_, lambda_runtime::Error>(response)
        }
    }))
    .await
}
