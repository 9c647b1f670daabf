//! The deployments-queue consumer, shared by the Lambda and the local runner.

use berth_aws::bootstrap::MAX_RECEIVES;
use berth_aws::sqs::DeploymentMessage;
use berth_domain::usecases::Berth;

/// The messages of a Lambda SQS event.
pub fn messages_of(event: &aws_lambda_events::event::sqs::SqsEvent) -> Vec<QueueMessage> {
    event.records.iter().map(QueueMessage::from_lambda_record).collect()
}

/// The partial batch response naming `failures` (message ids): SQS delivers
/// only those again, and deletes the rest.
pub fn batch_response(failures: Vec<String>) -> aws_lambda_events::event::sqs::SqsBatchResponse {
    let mut response = aws_lambda_events::event::sqs::SqsBatchResponse::default();
    response.batch_item_failures = failures
        .into_iter()
        .map(|id| {
            let mut failure = aws_lambda_events::event::sqs::BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    response
}

/// One message of a batch, whatever delivered it.
#[derive(Clone, Debug)]
pub struct QueueMessage {
    pub message_id: String,
    pub body: String,
    /// How often SQS has delivered it (1 the first time).
    pub receive_count: u32,
}

impl QueueMessage {
    /// The one mapping of a delivered SQS message, whichever client read it:
    /// a missing id or body is empty (and so retried, then dead-lettered),
    /// and a missing or unreadable receive count counts as the first delivery.
    fn from_parts(message_id: Option<&str>, body: Option<&str>, receive_count: Option<&str>) -> Self {
        Self {
            message_id: message_id.unwrap_or_default().to_string(),
            body: body.unwrap_or_default().to_string(),
            receive_count: receive_count.and_then(|c| c.parse().ok()).unwrap_or(1),
        }
    }

    /// A record of the Lambda's SQS event.
    pub fn from_lambda_record(record: &aws_lambda_events::event::sqs::SqsMessage) -> Self {
        Self::from_parts(record.message_id.as_deref(), record.body.as_deref(), record.attributes.get("ApproximateReceiveCount").map(String::as_str))
    }

    /// A message received with the SDK (the local runner's long poll), asked
    /// for with the `ApproximateReceiveCount` system attribute.
    pub fn from_sdk_message(message: &aws_sdk_sqs::types::Message) -> Self {
        use aws_sdk_sqs::types::MessageSystemAttributeName;
        let receive_count = message.attributes().and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount));
        Self::from_parts(message.message_id(), message.body(), receive_count.map(String::as_str))
    }
}

/// Dispatches each message; returns the ids of those to retry (the rest are
/// done). A message that cannot be read is never dropped: it is retried and
/// ends in the dead-letter queue. On its last delivery, a deployment that
/// still cannot be dispatched is marked failed, so nobody waits for it.
pub async fn handle_batch(berth: &Berth, messages: Vec<QueueMessage>) -> Vec<String> {
    let mut failures = vec![];
    for m in messages {
        let msg: DeploymentMessage = match serde_json::from_str(&m.body) {
            Ok(msg) => msg,
            Err(e) => {
                tracing::error!(message_id = %m.message_id, error = %e, "unreadable deployments message; it will end in the dead-letter queue");
                failures.push(m.message_id);
                continue;
            }
        };
        if let Err(e) = berth.dispatch_deployment(msg.tenant_id, msg.deployment_id).await {
            tracing::error!(tenant_id = %msg.tenant_id, deployment_id = %msg.deployment_id, receive_count = m.receive_count, error = %e, "dispatch failed");
            if m.receive_count >= MAX_RECEIVES {
                if let Err(e) = berth.fail_deployment(msg.tenant_id, msg.deployment_id, "the deployment could not be dispatched").await {
                    tracing::error!(error = %e, "could not mark the undispatchable deployment failed");
                }
            }
            failures.push(m.message_id);
        }
    }
    failures
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};

    #[test]
    fn a_lambda_record_and_an_sdk_message_map_to_the_same_queue_message() {
        let mut record = aws_lambda_events::event::sqs::SqsMessage::default();
        record.message_id = Some("m-1".into());
        record.body = Some("{}".into());
        record.attributes.insert("ApproximateReceiveCount".into(), "3".into());
        let sdk = Message::builder().message_id("m-1").body("{}").attributes(MessageSystemAttributeName::ApproximateReceiveCount, "3").build();
        for m in [QueueMessage::from_lambda_record(&record), QueueMessage::from_sdk_message(&sdk)] {
            assert_eq!((m.message_id.as_str(), m.body.as_str(), m.receive_count), ("m-1", "{}", 3));
        }
    }

    #[test]
    fn a_message_without_a_readable_receive_count_counts_as_its_first_delivery() {
        let mut record = aws_lambda_events::event::sqs::SqsMessage::default();
        record.attributes.insert("ApproximateReceiveCount".into(), "many".into());
        assert_eq!(QueueMessage::from_lambda_record(&record).receive_count, 1);
        assert_eq!(QueueMessage::from_sdk_message(&Message::builder().build()).receive_count, 1);
    }

    #[test]
    fn a_batch_response_names_exactly_the_failed_messages() {
        let ids = |r: &aws_lambda_events::event::sqs::SqsBatchResponse| r.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&batch_response(vec!["m-2".into(), "m-5".into()])), ["m-2", "m-5"]);
        assert!(ids(&batch_response(vec![])).is_empty(), "none failed: SQS deletes the whole batch");
    }
}
