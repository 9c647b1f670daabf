//! The deployments-queue consumer, shared by the Lambda and the local runner.

use berth_aws::bootstrap::MAX_RECEIVES;
use berth_aws::sqs::DeploymentMessage;
use berth_domain::usecases::Berth;

/// One message of a batch, whatever delivered it.
#[derive(Clone, Debug)]
pub struct QueueMessage {
    pub message_id: String,
    pub body: String,
    /// How often SQS has delivered it (1 the first time).
    pub receive_count: u32,
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
