//! The package-builds queue consumer, shared by the Lambda and the local runner.

use berth_aws::bootstrap::MAX_RECEIVES;
use berth_aws::sqs::PackageBuildMessage;
pub use berth_dispatcher::QueueMessage;
use berth_domain::usecases::Berth;

/// Builds each message's package; returns the ids of those to retry (the rest
/// are done). A message that cannot be read is never dropped: it is retried
/// and ends in the dead-letter queue. On its last delivery, a package that
/// still cannot be built is marked failed, so no deployment waits for it.
pub async fn handle_batch(berth: &Berth, messages: Vec<QueueMessage>) -> Vec<String> {
    let mut failures = vec![];
    for m in messages {
        let msg: PackageBuildMessage = match serde_json::from_str(&m.body) {
            Ok(msg) => msg,
            Err(e) => {
                tracing::error!(message_id = %m.message_id, error = %e, "unreadable package-builds message; it will end in the dead-letter queue");
                failures.push(m.message_id);
                continue;
            }
        };
        if let Err(e) = berth.build_package(msg.tenant_id, msg.package_id).await {
            tracing::error!(tenant_id = %msg.tenant_id, package_id = %msg.package_id, receive_count = m.receive_count, error = %e, "package build failed");
            if m.receive_count >= MAX_RECEIVES {
                if let Err(e) = berth.fail_package_build(msg.tenant_id, msg.package_id, "the archive could not be written").await {
                    tracing::error!(error = %e, "could not mark the unbuildable package failed");
                }
            }
            failures.push(m.message_id);
        }
    }
    failures
}
