//! `berth-local teardown`: the runtime queues a stack leaves behind are
//! deleted, and nothing else is, against LocalStack's SQS.

use berth_aws::sqs::delete_runtime_queues;
use berth_aws::{AwsClients, ResourceNames, SqsRuntimeQueues};
use berth_domain::ids::{RuntimeId, TenantId};
use berth_domain::ports::RuntimeQueues;

#[tokio::test]
async fn teardown_deletes_every_runtime_queue_and_dead_letter_queue_of_the_prefix_and_nothing_else() {
    berth_aws::testing::require_localstack();
    let clients = AwsClients::from_env().await;
    let names = ResourceNames::unique("td");
    let other = ResourceNames::unique("td");
    let ours = SqsRuntimeQueues::new(clients.sqs.clone(), names.queue_prefix.clone(), names.deployments_queue.clone(), None);
    let theirs = SqsRuntimeQueues::new(clients.sqs.clone(), other.queue_prefix.clone(), other.deployments_queue.clone(), None);
    let (a, b, c) = (RuntimeId::new(), RuntimeId::new(), RuntimeId::new());
    for runtime in [a, b] {
        ours.create_runtime_queue(TenantId::new(), runtime).await.expect("a runtime queue is created");
    }
    let kept = theirs.create_runtime_queue(TenantId::new(), c).await.expect("another stack's runtime queue is created");
    let deployments = clients.sqs.create_queue().queue_name(&names.deployments_queue).send().await.expect("the deployments queue is created");

    let deleted = delete_runtime_queues(&clients.sqs, &names.queue_prefix).await.expect("the teardown runs");
    let mut expected: Vec<String> =
        [a, b].iter().flat_map(|r| [format!("{}rt-{}", names.queue_prefix, r.simple()), format!("{}rt-{}-dlq", names.queue_prefix, r.simple())]).collect();
    expected.sort();
    assert_eq!(deleted, expected);

    let left = |url: String| {
        let sqs = clients.sqs.clone();
        async move { sqs.get_queue_attributes().queue_url(url).send().await.is_ok() }
    };
    assert!(left(kept).await, "another prefix's runtime queue stays");
    assert!(left(deployments.queue_url.unwrap_or_default()).await, "the stack's own deployments queue stays (CloudFormation owns it)");
    assert!(delete_runtime_queues(&clients.sqs, &names.queue_prefix).await.expect("a second teardown runs").is_empty(), "nothing is left to delete");
}
