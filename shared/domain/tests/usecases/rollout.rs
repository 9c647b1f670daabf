//! Gradual rollout (issue 13, item 1) and automatic retry (item 2) on the
//! in-memory store: batches go out one after another and bake, too many
//! failures halt the rollout (or roll it back), a person halts and resumes
//! it, and failed targets are tried again by themselves up to the limit.

use crate::fixture::{Agent, World, deploy_input, refused};
use berth_domain::DomainError;
use berth_domain::deployment::{Deployment, DeploymentKind, DeploymentStatus, Target, TargetState};
use berth_domain::environment::Environment;
use berth_domain::policy::Policy;
use berth_domain::rollout::{AutoRetry, BatchSize, Rollout, RolloutRequest, Strategy};
use berth_domain::usecases::NewDeployment;
use berth_domain::values::{Classification, Role};
use chrono::{Duration, Utc};

/// A Staging environment with six runtimes, in runtime-id order.
async fn staging(w: &World, policy: Policy) -> (Environment, Vec<Agent>) {
    let env = w.environment("Staging", Classification::Test).await;
    let mut agents = vec![];
    for i in 0..6 {
        agents.push(w.runtime(&format!("atom-{i}"), &[env.id]).await);
    }
    agents.sort_by_key(|a| a.runtime);
    w.set_policy(env.id, policy).await;
    (env, agents)
}

fn batches_of(size: u32, bake_seconds: u32, max_failed_targets: u32) -> Rollout {
    Rollout { strategy: Strategy::Batches, batch_size: Some(BatchSize::Count(size)), bake_seconds, max_failed_targets }
}

async fn targets(w: &World, d: &Deployment) -> Vec<Target> {
    let mut targets = w.berth.list_targets(&w.admin, d.id).await.expect("targets are listed");
    targets.sort_by_key(|t| t.runtime_id);
    targets
}

async fn states(w: &World, d: &Deployment) -> Vec<TargetState> {
    targets(w, d).await.iter().map(|t| t.state).collect()
}

/// Each agent runs what it was sent to `outcome` (the agents of `failing` fail).
async fn run_all(w: &World, agents: &[Agent], failing: &[usize]) -> usize {
    let mut ran = 0;
    for (i, a) in agents.iter().enumerate() {
        let outcome = if failing.contains(&i) { TargetState::Failed } else { TargetState::Deployed };
        ran += a.run_jobs(&w.berth, outcome).await.len();
    }
    ran
}

use TargetState::{Deployed, Failed, Pending, Skipped, Waiting};

#[tokio::test]
async fn batches_of_two_go_out_one_after_another_and_each_starts_only_after_the_one_before_baked() {
    let w = World::new().await;
    let (env, agents) = staging(&w, Policy { rollout: batches_of(2, 60, 0), ..Policy::default() }).await;
    let d = w.request(&w.admin, &w.v1, env.id).await.expect("accepted");
    assert_eq!(d.rollout, batches_of(2, 60, 0), "the policy's rollout is stored on the deployment");
    w.dispatch().await;
    let t = targets(&w, &d).await;
    assert_eq!(t.iter().map(|t| t.batch).collect::<Vec<_>>(), [1, 1, 2, 2, 3, 3], "numbered in runtime-id order");
    assert_eq!(states(&w, &d).await, [Pending, Pending, Waiting, Waiting, Waiting, Waiting], "only batch 1 is sent");

    assert_eq!(run_all(&w, &agents, &[]).await, 2, "only batch 1's agents had a job");
    let baking = w.deployment(d.id).await;
    let progress = baking.progress.expect("a rollout in batches has progress");
    let bake_ends = progress.next_batch_at.expect("batch 1 succeeded: it bakes");
    assert_eq!((progress.batch, progress.batches), (1, 3));
    assert_eq!(states(&w, &d).await[2..4], [Waiting, Waiting], "batch 2 waits for the bake");

    w.berth.sweep(bake_ends - Duration::seconds(1)).await.expect("the sweeper runs");
    assert_eq!(states(&w, &d).await[2..4], [Waiting, Waiting], "not before the bake ends");
    let report = w.berth.sweep(bake_ends + Duration::seconds(1)).await.expect("the sweeper runs");
    assert_eq!(report.batches, 1);
    assert_eq!(states(&w, &d).await[2..4], [Pending, Pending], "batch 2 starts once baked");
    assert_eq!(w.berth.sweep(bake_ends + Duration::seconds(2)).await.expect("again").batches, 0, "a second sweep starts nothing twice");

    assert_eq!(run_all(&w, &agents, &[]).await, 2);
    let at = w.deployment(d.id).await.progress.and_then(|p| p.next_batch_at).expect("batch 2 bakes");
    w.berth.sweep(at + Duration::seconds(1)).await.expect("the sweeper runs");
    assert_eq!(run_all(&w, &agents, &[]).await, 2);
    assert_eq!(w.status(&d).await, DeploymentStatus::Succeeded);
    let timeline = w.timeline(&d).await;
    for line in [
        "Batch 1 of 3 started on 2 runtime(s)",
        "Batch 1 of 3 succeeded; baking for 60 s",
        "Batch 1 of 3 baked",
        "Batch 2 of 3 started on 2 runtime(s)",
        "Batch 3 of 3 started",
    ] {
        assert!(timeline.iter().any(|l| l.starts_with(line)), "the timeline shows \"{line}\": {timeline:#?}");
    }
}

#[tokio::test]
async fn without_a_bake_the_settling_report_starts_the_next_batch_itself() {
    let w = World::new().await;
    let (env, agents) = staging(&w, Policy { rollout: batches_of(3, 0, 0), ..Policy::default() }).await;
    let d = w.request(&w.admin, &w.v1, env.id).await.expect("accepted");
    w.dispatch().await;
    // The agents run in runtime-id order: each batch's last report sent the next batch its jobs.
    assert_eq!(run_all(&w, &agents, &[]).await, 6);
    assert_eq!(w.status(&d).await, DeploymentStatus::Succeeded);
}

#[tokio::test]
async fn more_failed_targets_than_tolerated_halt_the_rollout_and_skip_what_waits() {
    let w = World::new().await;
    let (env, agents) = staging(&w, Policy { rollout: batches_of(2, 0, 0), ..Policy::default() }).await;
    let d = w.request(&w.admin, &w.v1, env.id).await.expect("accepted");
    w.dispatch().await;
    run_all(&w, &agents, &[3]).await;
    let halted = w.deployment(d.id).await;
    assert_eq!(halted.status, DeploymentStatus::Halted);
    assert_eq!(states(&w, &d).await, [Deployed, Deployed, Deployed, Failed, Skipped, Skipped]);
    assert_eq!(w.berth.get_deployment(&w.admin, d.id).await.unwrap().finished_at, None, "a halted rollout has not finished");
    assert!(w.audit_actions(d.id).await.contains(&"deployment.halted".to_string()));
    assert_eq!(w.active_orders(env.id).await, None, "nothing became active");
    // It holds no lock: another deployment of the component may go.
    w.request(&w.admin, &w.v1, env.id).await.expect("the halted deployment holds no lock");
}

#[tokio::test]
async fn with_auto_rollback_too_many_failures_end_rolled_back_and_the_previous_version_goes_back() {
    let w = World::new().await;
    let (env, agents) = staging(&w, Policy::default()).await;
    w.request(&w.admin, &w.v1, env.id).await.expect("accepted");
    w.dispatch().await;
    run_all(&w, &agents, &[]).await;
    w.set_policy(env.id, Policy { rollout: batches_of(2, 0, 0), auto_rollback: true, ..Policy::default() }).await;
    let v2 = w.next_orders("v2").await;
    let d = w.request(&w.admin, &v2, env.id).await.expect("accepted");
    w.dispatch().await;
    run_all(&w, &agents, &[2]).await;
    assert_eq!(w.status(&d).await, DeploymentStatus::RolledBack);
    assert_eq!(states(&w, &d).await, [Deployed, Deployed, Failed, Deployed, Skipped, Skipped]);
    let rollback = w.deployments().await.into_iter().find(|r| r.kind == DeploymentKind::Rollback).expect("an automatic rollback");
    assert_eq!(rollback.package_id, w.v1.id);
    assert!(rollback.rollout.is_default(), "a rollback goes out at once");
    w.dispatch().await;
    run_all(&w, &agents, &[]).await;
    assert_eq!(w.status(&rollback).await, DeploymentStatus::Succeeded);
    assert_eq!(w.active_orders(env.id).await.as_deref(), Some("v1"));
}

#[tokio::test]
async fn a_halted_rollout_resumes_with_its_next_batch_and_completes() {
    let w = World::new().await;
    let (env, agents) = staging(&w, Policy { rollout: batches_of(2, 600, 0), ..Policy::default() }).await;
    let d = w.request(&w.admin, &w.v1, env.id).await.expect("accepted");
    w.dispatch().await;
    run_all(&w, &agents, &[]).await;
    let viewer = w.user("vic@acme.example", &[Role::Viewer]);
    assert_eq!(refused(w.berth.halt_deployment(&viewer, d.id).await).code(), "forbidden");
    assert_eq!(refused(w.berth.resume_deployment(&w.ann, d.id).await).code(), "not_halted");

    let halted = w.berth.halt_deployment(&w.ann, d.id).await.expect("a deployer halts it during the bake");
    assert_eq!(halted.status, DeploymentStatus::Halted);
    assert_eq!(refused(w.berth.halt_deployment(&w.ann, d.id).await).code(), "not_haltable", "twice changes nothing");
    assert_eq!(states(&w, &d).await, [Deployed, Deployed, Skipped, Skipped, Skipped, Skipped]);
    let later = w.deployment(d.id).await.progress.unwrap().next_batch_at;
    assert_eq!(later, None, "no batch is due");

    let resumed = w.berth.resume_deployment(&w.ann, d.id).await.expect("a deployer resumes it");
    assert_eq!(resumed.status, DeploymentStatus::InProgress);
    assert_eq!(states(&w, &d).await, [Deployed, Deployed, Pending, Pending, Waiting, Waiting], "the next batch starts at once");
    assert_eq!(refused(w.berth.resume_deployment(&w.ann, d.id).await).code(), "not_halted");
    run_all(&w, &agents, &[]).await;
    let at = w.deployment(d.id).await.progress.and_then(|p| p.next_batch_at).expect("it bakes again");
    w.berth.sweep(at + Duration::seconds(1)).await.expect("the sweeper runs");
    run_all(&w, &agents, &[]).await;
    assert_eq!(w.status(&d).await, DeploymentStatus::Succeeded);
    let audit = w.audit_actions(d.id).await;
    assert!(audit.contains(&"deployment.halted".into()) && audit.contains(&"deployment.resumed".into()), "{audit:?}");
}

#[tokio::test]
async fn a_resume_accepts_the_failures_so_far_and_halts_again_only_on_new_ones() {
    let w = World::new().await;
    let (env, agents) = staging(&w, Policy { rollout: batches_of(2, 0, 0), ..Policy::default() }).await;
    let d = w.request(&w.admin, &w.v1, env.id).await.expect("accepted");
    w.dispatch().await;
    run_all(&w, &agents, &[0]).await;
    assert_eq!(w.status(&d).await, DeploymentStatus::Halted);
    w.berth.resume_deployment(&w.ann, d.id).await.expect("resumed");
    assert_eq!(w.deployment(d.id).await.progress.unwrap().accepted_failures, 1);
    run_all(&w, &agents, &[]).await;
    run_all(&w, &agents, &[]).await;
    assert_eq!(w.status(&d).await, DeploymentStatus::PartiallyFailed, "it went on to the end; the first failure stays");
}

#[tokio::test]
async fn an_all_at_once_deployment_cannot_be_halted() {
    let w = World::new().await;
    let d = w.request(&w.admin, &w.v1, w.test.id).await.expect("accepted");
    w.dispatch().await;
    let e = refused(w.berth.halt_deployment(&w.ann, d.id).await);
    assert!(matches!(e, DomainError::Conflict { code: "not_haltable", .. }), "{e:?}");
}

#[tokio::test]
async fn a_deployments_rollout_may_only_be_more_careful_than_the_policy() {
    let w = World::new().await;
    let (env, _agents) = staging(&w, Policy { rollout: batches_of(2, 60, 1), ..Policy::default() }).await;
    let ask = |rollout: RolloutRequest| NewDeployment { rollout: Some(rollout), ..deploy_input(&w.v1, env.id) };
    let less = RolloutRequest { strategy: Some(Strategy::AllAtOnce), ..RolloutRequest::default() };
    let DomainError::Validation { code, errors } = refused(w.berth.create_deployment(&w.admin, ask(less)).await) else { panic!("a validation error") };
    assert_eq!((code, errors[0].field.as_str()), ("rollout_less_careful", "rollout.strategy"));
    let bigger = RolloutRequest { batch_size: Some(BatchSize::Percent(50)), ..RolloutRequest::default() };
    let DomainError::Validation { code, errors } = refused(w.berth.create_deployment(&w.admin, ask(bigger)).await) else { panic!("a validation error") };
    assert_eq!((code, errors[0].field.as_str()), ("rollout_less_careful", "rollout.batch_size"), "50% of 6 is 3, more than 2");
    let impossible = RolloutRequest { batch_size: Some(BatchSize::Count(0)), ..RolloutRequest::default() };
    let DomainError::Validation { errors, .. } = refused(w.berth.create_deployment(&w.admin, ask(impossible)).await) else { panic!("a validation error") };
    assert_eq!(errors[0].field, "rollout.batch_size");

    let careful = RolloutRequest { batch_size: Some(BatchSize::Count(1)), bake_seconds: Some(120), max_failed_targets: Some(0), ..RolloutRequest::default() };
    let d = w.berth.create_deployment(&w.admin, ask(careful)).await.expect("a more careful rollout is accepted");
    assert_eq!(d.rollout, batches_of(1, 120, 0), "fields left out keep the policy's");
}

#[tokio::test]
async fn a_failed_target_is_retried_by_itself_and_succeeds_on_its_second_attempt() {
    let w = World::new().await;
    w.set_policy(w.test.id, Policy { auto_retry: Some(AutoRetry { attempts: 3, backoff_seconds: 0 }), ..Policy::default() }).await;
    let d = w.request(&w.admin, &w.v1, w.test.id).await.expect("accepted");
    w.dispatch().await;
    // Without a backoff each failed try is followed at once by the next.
    let first = w.atom.run_jobs(&w.berth, Failed).await;
    assert_eq!(first.len(), 3, "three tries of a job that always fails");
    let t = &targets(&w, &d).await[0];
    assert_eq!((t.attempt, t.state), (3, Failed), "three tries, then no more: {t:?}");
    assert_eq!(w.status(&d).await, DeploymentStatus::Failed, "failed only after its last attempt");
    assert_ne!(first[0].job_id, first[1].job_id, "each try is a new job");

    let d2 = w.request(&w.admin, &w.v1, w.test.id).await.expect("accepted");
    w.dispatch().await;
    let job = w.atom.next_job(&w.berth).await.expect("a job");
    w.atom.report(&w.berth, job.job_id, Failed).await.expect("reported");
    assert_eq!(w.status(&d2).await, DeploymentStatus::InProgress, "a failure with a try left does not end it");
    w.atom.run_jobs(&w.berth, Deployed).await;
    let t = &targets(&w, &d2).await[0];
    assert_eq!((t.attempt, t.state), (2, Deployed));
    assert_eq!(w.status(&d2).await, DeploymentStatus::Succeeded);
    assert!(w.timeline(&d2).await.iter().any(|l| l == "Attempt 1 of 3 failed: retrying in 0 s"));
}

#[tokio::test]
async fn a_retry_with_a_backoff_is_sent_by_the_sweeper_once_it_is_due() {
    let w = World::new().await;
    w.set_policy(w.test.id, Policy { auto_retry: Some(AutoRetry { attempts: 2, backoff_seconds: 30 }), ..Policy::default() }).await;
    let d = w.request(&w.admin, &w.v1, w.test.id).await.expect("accepted");
    w.dispatch().await;
    assert_eq!(w.atom.run_jobs(&w.berth, Failed).await.len(), 1);
    let t = targets(&w, &d).await.remove(0);
    let due = t.retry_at.expect("a retry is due later");
    assert!(due > Utc::now() + Duration::seconds(20));
    assert_eq!(w.berth.sweep(due - Duration::seconds(1)).await.unwrap().retried, 0);
    assert_eq!(w.berth.sweep(due + Duration::seconds(1)).await.unwrap().retried, 1);
    assert_eq!(w.berth.sweep(due + Duration::seconds(2)).await.unwrap().retried, 0, "sent once");
    assert_eq!(w.atom.run_jobs(&w.berth, Deployed).await.len(), 1);
    assert_eq!(w.status(&d).await, DeploymentStatus::Succeeded);
}
