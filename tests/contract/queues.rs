use crate::stores::Stores;
use berth_domain::deployment::JobMessage;
use berth_domain::ids::{DeploymentId, JobId, PackageId, RuntimeId, TenantId};
use berth_domain::values::Plan;
use std::collections::BTreeSet;
use std::time::Duration;

const NO_WAIT: Duration = Duration::ZERO;
const HIDE: Duration = Duration::from_secs(30);

fn job(tenant: TenantId, runtime: RuntimeId) -> JobMessage {
    JobMessage { tenant_id: tenant, deployment_id: DeploymentId::new(), runtime_id: runtime, job_id: JobId::new() }
}

pub async fn a_job_is_received_once_and_stays_hidden_until_its_receipt_shows_or_deletes_it(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let runtime = RuntimeId::new();
    let url = s.runtime_queues.create_runtime_queue(acme, runtime).await.expect("the queue is created");
    assert_eq!(s.jobs.receive_job(&url, NO_WAIT, HIDE).await.expect("polled"), None, "an empty queue");
    let sent = job(acme, runtime);
    s.jobs.send_job(&url, &sent).await.expect("sent");

    let first = s.jobs.receive_job(&url, NO_WAIT, HIDE).await.expect("polled").expect("the job");
    assert_eq!(first.job, Some(sent.clone()));
    assert!(!first.receipt.is_empty());
    assert_eq!(s.jobs.receive_job(&url, NO_WAIT, HIDE).await.expect("polled"), None, "hidden while it is handed out");

    s.jobs.hide_job(&url, &first.receipt, Duration::ZERO).await.expect("shown again");
    let second = s.jobs.receive_job(&url, NO_WAIT, HIDE).await.expect("polled").expect("the job again");
    assert_eq!(second.job, Some(sent));
    assert_ne!(second.receipt, first.receipt, "each receive has its own receipt");

    s.jobs.hide_job(&url, &second.receipt, Duration::ZERO).await.expect("shown again");
    s.jobs.delete_job(&url, &second.receipt).await.expect("deleted");
    assert_eq!(s.jobs.receive_job(&url, NO_WAIT, HIDE).await.expect("polled"), None, "deleted, not hidden");
}

pub async fn a_message_that_is_not_a_job_is_received_without_one(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let url = s.runtime_queues.create_runtime_queue(acme, RuntimeId::new()).await.expect("the queue is created");
    s.send_raw(&url, "{\"hello\": true}").await;
    let received = s.jobs.receive_job(&url, NO_WAIT, HIDE).await.expect("polled").expect("a message");
    assert_eq!(received.job, None);
    s.jobs.delete_job(&url, &received.receipt).await.expect("deleted");
}

pub async fn a_runtime_queue_is_created_once_per_runtime_and_deleted_quietly(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let (one, two) = (RuntimeId::new(), RuntimeId::new());
    let url = s.runtime_queues.create_runtime_queue(acme, one).await.expect("the queue is created");
    assert_eq!(s.runtime_queues.create_runtime_queue(acme, one).await.expect("created again"), url, "the same queue");
    let other = s.runtime_queues.create_runtime_queue(acme, two).await.expect("the queue is created");
    assert_ne!(other, url, "each runtime has its own");

    s.jobs.send_job(&other, &job(acme, two)).await.expect("sent");
    assert_eq!(s.jobs.receive_job(&url, NO_WAIT, HIDE).await.expect("polled"), None, "a job goes to its runtime's queue only");
    s.runtime_queues.delete_runtime_queue(acme, one, &url).await.expect("deleted");
    s.runtime_queues.delete_runtime_queue(acme, one, &url).await.expect("deleting it again is fine");
}

pub async fn every_enqueued_deployment_reaches_the_deployments_queue(s: Stores) {
    let (acme, globex) = (TenantId::new(), TenantId::new());
    let sent = BTreeSet::from([(acme, DeploymentId::new()), (acme, DeploymentId::new()), (globex, DeploymentId::new())]);
    for (tenant, deployment) in &sent {
        s.jobs.enqueue_deployment(*tenant, *deployment).await.expect("enqueued");
    }
    let taken: BTreeSet<(TenantId, DeploymentId)> = s.take_enqueued_deployments().await.into_iter().collect();
    assert_eq!(taken, sent);
    assert!(s.take_enqueued_deployments().await.is_empty(), "each is taken once");
}

pub async fn every_enqueued_package_build_reaches_the_package_builds_queue_only(s: Stores) {
    let (acme, globex) = (TenantId::new(), TenantId::new());
    let sent = BTreeSet::from([(acme, PackageId::new()), (acme, PackageId::new()), (globex, PackageId::new())]);
    for (tenant, package) in &sent {
        s.jobs.enqueue_package_build(*tenant, *package).await.expect("enqueued");
    }
    let taken: BTreeSet<(TenantId, PackageId)> = s.take_enqueued_package_builds().await.into_iter().collect();
    assert_eq!(taken, sent);
    assert!(s.take_enqueued_package_builds().await.is_empty(), "each is taken once");
    assert!(s.take_enqueued_deployments().await.is_empty(), "none went to the deployments queue");
}

pub async fn hiding_with_a_receipt_no_message_was_received_with_is_refused_as_an_invalid_receipt_handle(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let runtime = RuntimeId::new();
    let url = s.runtime_queues.create_runtime_queue(acme, runtime).await.expect("the queue is created");
    s.jobs.send_job(&url, &job(acme, runtime)).await.expect("sent");
    let received = s.jobs.receive_job(&url, NO_WAIT, HIDE).await.expect("polled").expect("the job");

    for bogus in ["receipt", "AQEBzbVf", &format!("{}x", received.receipt)] {
        let e = s.jobs.hide_job(&url, bogus, HIDE).await.expect_err("an unknown receipt is refused");
        assert_eq!(e.code(), "validation_failed", "{bogus}: {e:?}");
    }
    s.jobs.hide_job(&url, &received.receipt, HIDE).await.expect("the real receipt hides it");
}
