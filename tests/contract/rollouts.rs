//! What gradual rollouts and automatic retries ask of the deployment store:
//! rollout moves written over the step they read only, targets reset to
//! their next try with a new job, and the sweeper's watch on bakes and retries.

use crate::fixtures::*;
use crate::stores::Stores;
use berth_domain::deployment::{Deployment, DeploymentStatus, Target, TargetState};
use berth_domain::ids::{ComponentId, EnvironmentId, JobId, RuntimeId, TenantId};
use berth_domain::ports::SweepItem;
use berth_domain::refusal::{Entity, Refusal};
use berth_domain::rollout::{BatchSize, Progress, Rollout, Strategy};
use berth_domain::values::Plan;
use chrono::{Duration, Utc};

/// A deployment in progress in batches of one, at batch 1 of 3.
async fn rolling_out(s: &Stores, tenant: TenantId, env: EnvironmentId, component: ComponentId) -> Deployment {
    let d = s.in_progress(tenant, env, component, "1").await;
    let rollout = Rollout { strategy: Strategy::Batches, batch_size: Some(BatchSize::Count(1)), bake_seconds: 60, max_failed_targets: 0 };
    let started = Deployment { rollout, progress: Some(Progress::start(3)), ..d.clone() };
    s.deployments.transition(tenant, &started, DeploymentStatus::InProgress, None).await.expect("started in batches");
    assert_eq!(s.read_deployment(tenant, &d).await, started, "its rollout and progress read back as written");
    started
}

pub async fn a_rollout_moves_on_only_from_the_step_it_read_and_a_halt_and_a_resume_give_up_and_take_the_lock(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let (env, orders) = (EnvironmentId::new(), ComponentId::new());
    let d = rolling_out(&s, acme, env, orders).await;
    let progress = d.progress.expect("progress");
    let step = async |after: &Deployment, from: DeploymentStatus, audit: Option<&str>| {
        s.deployments.step_rollout(acme, after, from, audit.map(|a| draft(a, "deployment", d.id))).await
    };

    let baking = Deployment { progress: Some(progress.then(|p| p.next_batch_at = Some(Utc::now() + Duration::seconds(60)))), ..d.clone() };
    step(&baking, DeploymentStatus::InProgress, None).await.expect("the bake is scheduled");
    assert_eq!(s.read_deployment(acme, &d).await, baking);
    assert_eq!(refused(step(&baking, DeploymentStatus::InProgress, None).await), Refusal::Stale(Entity::Deployment), "the same move twice");
    let rival = Deployment { progress: Some(progress.then(|p| p.batch = 2)), ..d.clone() };
    assert_eq!(refused(step(&rival, DeploymentStatus::InProgress, None).await), Refusal::Stale(Entity::Deployment), "a move from a step read before");
    let next = Deployment { progress: Some(baking.progress.expect("progress").then(|p| p.batch = 2)), ..d.clone() };
    assert_eq!(refused(step(&next, DeploymentStatus::Queued, None).await), Refusal::Stale(Entity::Deployment), "from a status it no longer has");
    assert_eq!(refused(step(&Deployment { progress: None, ..next.clone() }, DeploymentStatus::InProgress, None).await), Refusal::Stale(Entity::Deployment));
    assert_eq!(s.read_deployment(acme, &d).await, baking, "refused moves changed nothing");
    step(&next, DeploymentStatus::InProgress, None).await.expect("batch 2 starts");

    let halted = Deployment { status: DeploymentStatus::Halted, progress: Some(next.progress.expect("progress").then(|_| {})), ..next.clone() };
    step(&halted, DeploymentStatus::InProgress, Some("deployment.halted")).await.expect("halted");
    assert_eq!(s.read_deployment(acme, &d).await, halted);
    assert_eq!(s.deployments.in_flight(acme, env, orders).await.expect("read"), None, "a halted rollout gives the lock up");
    assert_eq!(s.actions(acme).await.last().map(String::as_str), Some("deployment.halted"));

    let blocker = deployment(env, &package(orders, "2", &[]));
    s.create_deployment(acme, &blocker).await.expect("another deployment takes the lock");
    let resumed = Deployment { status: DeploymentStatus::InProgress, progress: Some(halted.progress.expect("progress").then(|_| {})), ..halted.clone() };
    assert_eq!(refused(step(&resumed, DeploymentStatus::Halted, Some("deployment.resumed")).await), Refusal::InFlight { deployment: Some(blocker.id) });
    assert_eq!(s.read_deployment(acme, &d).await, halted, "the refused resume changed nothing");
    s.transition(acme, &blocker, DeploymentStatus::Cancelled).await;
    step(&resumed, DeploymentStatus::Halted, Some("deployment.resumed")).await.expect("resumed");
    assert_eq!(s.read_deployment(acme, &d).await, resumed);
    assert_eq!(s.deployments.in_flight(acme, env, orders).await.expect("read"), Some(d.id), "a resumed rollout takes the lock again");
    assert_eq!(s.actions(acme).await.iter().filter(|a| *a == "deployment.resumed").count(), 1);
}

pub async fn a_failed_target_is_reset_to_its_next_try_only_from_the_state_and_job_read_and_its_new_job_leads_back(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let d = s.in_progress(acme, EnvironmentId::new(), ComponentId::new(), "1").await;
    let runtime = RuntimeId::new();
    let first = Target { batch: 2, state: TargetState::Waiting, ..target(&d, runtime) };
    assert!(s.deployments.put_target_if_absent(acme, &first).await.expect("put"));
    assert_eq!(s.deployments.get_target(acme, d.id, runtime).await.expect("read"), Some(first.clone()), "its batch reads back");
    let pending = Target { state: TargetState::Pending, ..first.clone() };
    s.deployments.update_target(acme, &pending, TargetState::Waiting, None).await.expect("released");
    let failed = Target { state: TargetState::Failed, retry_at: Some(Utc::now() + Duration::seconds(30)), ..pending.clone() };
    s.deployments.update_target(acme, &failed, TargetState::Pending, Some("receipt")).await.expect("failed, to be retried");
    assert_eq!(s.deployments.get_target(acme, d.id, runtime).await.expect("read"), Some(failed.clone()), "its retry time reads back");

    let second = Target { job_id: JobId::new(), state: TargetState::Pending, attempt: 2, retry_at: None, ..failed.clone() };
    let stale = Target { state: TargetState::Applying, ..failed.clone() };
    assert_eq!(refused(s.deployments.reset_target(acme, &second, &stale).await), Refusal::Stale(Entity::Target), "from a state it left");
    s.deployments.reset_target(acme, &second, &failed).await.expect("reset to its second try");
    assert_eq!(s.deployments.get_target(acme, d.id, runtime).await.expect("read"), Some(second.clone()));
    assert_eq!(s.deployments.find_job(acme, runtime, second.job_id).await.expect("read"), Some(d.id), "the new job leads back to its deployment");
    assert_eq!(s.deployments.target_receipt(acme, d.id, runtime).await.expect("read"), None, "the old job's receipt is not the new one's");
    let third = Target { job_id: JobId::new(), attempt: 3, ..second.clone() };
    assert_eq!(refused(s.deployments.reset_target(acme, &third, &failed).await), Refusal::Stale(Entity::Target), "reset once");
    assert_eq!(s.deployments.find_job(acme, runtime, third.job_id).await.expect("read"), None);
}

pub async fn the_sweeper_sees_a_rollout_once_its_bake_ends_and_a_failed_target_once_its_retry_is_due(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let env = EnvironmentId::new();
    let now = Utc::now();
    let d = rolling_out(&s, acme, env, ComponentId::new()).await;
    let baking = Deployment { progress: Some(d.progress.expect("progress").then(|p| p.next_batch_at = Some(now + Duration::seconds(60)))), ..d.clone() };
    s.deployments.step_rollout(acme, &baking, DeploymentStatus::InProgress, None).await.expect("baking");
    let item = SweepItem { tenant: acme, deployment: d.id, runtime: None };
    assert_eq!(s.deployments.due_scheduled(now, 10).await.expect("read"), [], "not before the bake ends");
    assert_eq!(s.deployments.due_scheduled(now + Duration::seconds(61), 10).await.expect("read"), [item]);
    let started = Deployment { progress: Some(baking.progress.expect("progress").then(|p| p.next_batch_at = None)), ..baking.clone() };
    s.deployments.step_rollout(acme, &started, DeploymentStatus::InProgress, None).await.expect("the next batch started");
    assert_eq!(s.deployments.due_scheduled(now + Duration::seconds(61), 10).await.expect("read"), [], "watched no more");

    let runtime = RuntimeId::new();
    let t = target(&d, runtime);
    assert!(s.deployments.put_target_if_absent(acme, &t).await.expect("put"));
    let retrying = Target { state: TargetState::Failed, retry_at: Some(now + Duration::seconds(30)), ..t.clone() };
    s.deployments.update_target(acme, &retrying, TargetState::Pending, None).await.expect("failed");
    let target_item = SweepItem { tenant: acme, deployment: d.id, runtime: Some(runtime) };
    assert_eq!(s.deployments.overdue_targets(now, 10).await.expect("read"), [], "not before its retry is due");
    assert_eq!(s.deployments.overdue_targets(now + Duration::seconds(31), 10).await.expect("read"), [target_item]);
    let given_up = Target { retry_at: None, ..retrying.clone() };
    s.deployments.update_target(acme, &given_up, TargetState::Failed, None).await.expect("no retry");
    assert_eq!(s.deployments.overdue_targets(now + Duration::seconds(31), 10).await.expect("read"), [], "failed for good: watched no more");
}
