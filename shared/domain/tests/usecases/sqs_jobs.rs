//! Jobs received straight from SQS: the agent's queue credentials, and the
//! claim of a job whose message the agent received itself.

use crate::fixture::{World, refused};
use berth_domain::deployment::{DeploymentStatus, JobMessage, TargetState};
use berth_domain::ports::{JobQueues, ReceivedJob};
use berth_domain::queue_access::queue_arn;
use berth_domain::usecases::{QUEUE_SESSION, RuntimeCtx};
use std::time::Duration;

/// What an agent polling SQS does: receive one message from its own queue.
async fn receive(w: &World, ctx: &RuntimeCtx) -> Option<(JobMessage, String)> {
    let received: Option<ReceivedJob> =
        w.store.receive_job(&ctx.runtime.queue_url, Duration::ZERO, Duration::from_secs(30)).await.expect("the agent reads its queue");
    received.map(|r| (r.job.expect("a job message"), r.receipt))
}

#[tokio::test]
async fn an_agent_gets_one_hour_credentials_for_its_own_queue_only_in_a_session_named_after_its_runtime() {
    let w = World::new().await;
    let ctx = w.atom.ctx(&w.berth).await;
    let vended = w.berth.vend_queue_credentials(&ctx).await.expect("credentials are vended");

    assert_eq!(vended.queue_url, ctx.runtime.queue_url);
    assert_eq!(vended.region, "us-east-1");
    let expires_in = vended.credentials.expiration - chrono::Utc::now();
    assert!(expires_in > chrono::Duration::minutes(59) && expires_in <= chrono::Duration::hours(1), "{expires_in}");
    let [session] = w.store.vended_sessions().try_into().expect("one AssumeRole");
    assert_eq!(session.session_name, ctx.runtime.id.to_string());
    assert_eq!(session.duration, QUEUE_SESSION);
    assert_eq!(session.access_key_id, vended.credentials.access_key_id);
    let arn = queue_arn(&ctx.runtime.queue_url, "us-east-1").expect("the queue has an ARN");
    assert_eq!(session.policy["Statement"][0]["Resource"], arn.as_str());
    assert_eq!(session.policy["Statement"].as_array().map(Vec::len), Some(1));
    assert!(!format!("{:?}", vended.credentials).contains(&vended.credentials.secret_access_key), "Debug never shows the secret");
}

#[tokio::test]
async fn two_runtimes_get_credentials_naming_two_different_queues() {
    let w = World::new().await;
    let other = w.runtime("atom-2", &[w.test.id]).await;
    for agent in [&w.atom, &other] {
        w.berth.vend_queue_credentials(&agent.ctx(&w.berth).await).await.expect("credentials are vended");
    }
    let [a, b] = w.store.vended_sessions().try_into().expect("two sessions");
    assert_ne!(a.policy["Statement"][0]["Resource"], b.policy["Statement"][0]["Resource"]);
}

#[tokio::test]
async fn a_job_received_from_sqs_is_claimed_delivered_and_handed_out_again_on_a_duplicate_delivery_until_it_settles() {
    let w = World::new().await;
    let d = w.request(&w.admin, &w.v1, w.test.id).await.expect("the deployment is accepted");
    w.dispatch().await;
    let ctx = w.atom.ctx(&w.berth).await;
    let (message, receipt) = receive(&w, &ctx).await.expect("the job's message is in the runtime's queue");
    assert_eq!(message.deployment_id, d.id);

    let job = w.berth.claim_job(&ctx, message.job_id, None, &receipt).await.expect("the job is claimed");
    assert_eq!((job.job_id, job.deployment_id, job.package_id), (message.job_id, d.id, w.v1.id));
    assert!(!job.download_url.is_empty() && job.deadline > chrono::Utc::now());
    assert_eq!(receive(&w, &ctx).await.map(|(m, _)| m), None, "the message stays hidden while the job runs");
    w.atom.report(&w.berth, job.job_id, TargetState::Downloading).await.expect("the agent reports");

    // SQS delivers the same message again (its visibility ended).
    w.store.reveal_hidden_jobs(&ctx.runtime.queue_url);
    let (again, second_receipt) = receive(&w, &ctx).await.expect("the message comes again");
    assert_eq!(again, message);
    let same =
        w.berth.claim_job(&ctx, again.job_id, Some(again.deployment_id), &second_receipt).await.expect("a job delivered to this runtime is handed out again");
    assert_eq!(same.job_id, job.job_id);
    let timeline = w.timeline(&d).await;
    assert_eq!(timeline.iter().filter(|l| l.starts_with("Delivered")).count(), 1, "delivered once: {timeline:?}");

    for phase in [TargetState::Applying, TargetState::Deployed] {
        w.atom.report(&w.berth, job.job_id, phase).await.expect("the agent reports");
    }
    assert_eq!(w.status(&d).await, DeploymentStatus::Succeeded);
    assert!(w.store.queued_jobs(&ctx.runtime.queue_url).is_empty(), "settling deleted the message with the latest receipt");
    let e = refused(w.berth.claim_job(&ctx, message.job_id, None, &second_receipt).await);
    assert_eq!(e.code(), "job_settled", "a settled job is never handed out again");
}

#[tokio::test]
async fn a_claim_of_another_runtimes_job_is_not_found_and_a_missing_receipt_is_invalid() {
    let w = World::new().await;
    let other = w.runtime("atom-2", &[w.test.id]).await;
    w.request(&w.admin, &w.v1, w.test.id).await.expect("the deployment is accepted");
    w.dispatch().await;
    let ctx = w.atom.ctx(&w.berth).await;
    let (message, receipt) = receive(&w, &ctx).await.expect("atom's job");

    let e = refused(w.berth.claim_job(&other.ctx(&w.berth).await, message.job_id, None, &receipt).await);
    assert_eq!(e.code(), "not_found");
    let e = refused(w.berth.claim_job(&ctx, message.job_id, None, "").await);
    assert_eq!(e.code(), "validation_failed");
    w.berth.claim_job(&ctx, message.job_id, None, &receipt).await.expect("its own runtime claims it");
}

#[tokio::test]
async fn jobs_next_waits_at_most_two_seconds_whatever_is_asked() {
    let w = World::new().await;
    let ctx = w.atom.ctx(&w.berth).await;
    assert_eq!(berth_domain::usecases::MAX_WAIT, Duration::from_secs(2));
    let started = std::time::Instant::now();
    assert!(w.berth.next_job(&ctx, Duration::from_secs(20)).await.expect("jobs/next answers").is_none());
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_job_withdrawn_by_a_detach_before_it_was_claimed_is_refused_as_settled_and_skipped() {
    let w = World::new().await;
    let d = w.request(&w.admin, &w.v1, w.test.id).await.expect("the deployment is accepted");
    w.dispatch().await;
    let ctx = w.atom.ctx(&w.berth).await;
    let (message, receipt) = receive(&w, &ctx).await.expect("the job's message");

    w.berth.detach_runtime(&w.admin, w.test.id, w.atom.runtime).await.expect("the runtime is detached");
    let e = refused(w.berth.claim_job(&w.atom.ctx(&w.berth).await, message.job_id, None, &receipt).await);
    assert_eq!(e.code(), "job_settled");
    let targets = w.berth.list_targets(&w.admin, d.id).await.expect("the targets are listed");
    assert_eq!(targets.iter().map(|t| t.state).collect::<Vec<_>>(), [TargetState::Skipped], "withdrawn, never delivered");
}

#[tokio::test]
async fn a_claim_with_a_receipt_the_queue_does_not_know_is_refused_and_delivers_nothing() {
    let w = World::new().await;
    let d = w.request(&w.admin, &w.v1, w.test.id).await.expect("the deployment is accepted");
    w.dispatch().await;
    let ctx = w.atom.ctx(&w.berth).await;
    let (message, receipt) = receive(&w, &ctx).await.expect("the job's message");

    let e = refused(w.berth.claim_job(&ctx, message.job_id, None, "not-a-receipt").await);
    assert_eq!(e.code(), "validation_failed");
    let targets = w.berth.list_targets(&w.admin, d.id).await.expect("the targets are listed");
    assert_eq!(targets.iter().map(|t| t.state).collect::<Vec<_>>(), [TargetState::Pending], "nothing was written");
    assert!(w.timeline(&d).await.iter().all(|l| !l.starts_with("Delivered")));
    w.berth.claim_job(&ctx, message.job_id, None, &receipt).await.expect("the real receipt claims it");
}
