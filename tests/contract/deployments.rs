use crate::fixtures::*;
use crate::stores::Stores;
use berth_domain::deployment::{Deployment, DeploymentEvent, DeploymentStatus, Target, TargetState};
use berth_domain::ids::{ComponentId, DeploymentId, EnvironmentId, JobId, PackageId, RuntimeId, TenantId};
use berth_domain::page::PageRequest;
use berth_domain::policy::Decision;
use berth_domain::ports::{Activation, ConnectionSlot, DeploymentFilter};
use berth_domain::refusal::{Decided, Entity, Refusal};
use berth_domain::values::Plan;
use chrono::{Duration, Utc};

/// A tenant, an environment and a component (none of them need exist for the deployment store).
async fn setting(s: &Stores) -> (TenantId, EnvironmentId, ComponentId) {
    (s.tenant(Plan::default()).await, EnvironmentId::new(), ComponentId::new())
}

impl Stores {
    async fn finish(&self, tenant: TenantId, d: &Deployment, status: DeploymentStatus, activation: &Activation) -> berth_domain::Result<Deployment> {
        let after = moved(d, status);
        self.deployments.finish_deployment(tenant, &after, d.status, activation, None, draft("deployment.finished", "deployment", d.id)).await.map(|()| after)
    }

    /// A deployment of a new package of `component`, queued and then in progress.
    pub(crate) async fn in_progress(&self, tenant: TenantId, env: EnvironmentId, component: ComponentId, version: &str) -> Deployment {
        let d = deployment(env, &package(component, version, &[]));
        self.create_deployment(tenant, &d).await.expect("created");
        self.transition(tenant, &d, DeploymentStatus::InProgress).await
    }

    /// `in_progress`, then succeeded and active in place of `previous`.
    async fn succeeded(&self, tenant: TenantId, env: EnvironmentId, component: ComponentId, version: &str, previous: Option<&Deployment>) -> Deployment {
        let d = self.in_progress(tenant, env, component, version).await;
        let activation = Activation::Activate { new: active(&d), previous: previous.map(active) };
        self.finish(tenant, &d, DeploymentStatus::Succeeded, &activation).await.expect("succeeded")
    }

    async fn in_flight(&self, tenant: TenantId, env: EnvironmentId, component: ComponentId) -> Option<DeploymentId> {
        self.deployments.in_flight(tenant, env, component).await.expect("read")
    }

    async fn active_deployment(&self, tenant: TenantId, env: EnvironmentId, component: ComponentId) -> Option<DeploymentId> {
        self.deployments.active_version(tenant, env, component).await.expect("read").map(|a| a.deployment_id)
    }
}

pub async fn a_second_deployment_of_a_component_in_flight_is_refused_naming_the_holder(s: Stores) {
    let (acme, env, orders) = setting(&s).await;
    let (invoices, connection) = (ComponentId::new(), ComponentId::new());
    let first = deployment(env, &package(orders, "1", &[connection]));
    s.create_deployment(acme, &first).await.expect("created");
    assert_eq!(s.read_deployment(acme, &first).await, first);
    assert_eq!(s.in_flight(acme, env, orders).await, Some(first.id));

    let second = deployment(env, &package(orders, "2", &[]));
    assert_eq!(refused(s.create_deployment(acme, &second).await), Refusal::InFlight { deployment: Some(first.id) });
    assert_eq!(s.deployments.get_deployment(acme, second.id).await.expect("read"), None, "the refused deployment is not written");

    let other_component = deployment(env, &package(invoices, "1", &[]));
    s.create_deployment(acme, &other_component).await.expect("another component is not locked");
    let elsewhere = deployment(EnvironmentId::new(), &package(orders, "2", &[]));
    s.create_deployment(acme, &elsewhere).await.expect("another environment is not locked");

    let mut holders = vec![(orders, first.id), (invoices, other_component.id)];
    holders.sort();
    assert_eq!(s.deployments.in_flight_deployments(acme, env).await.expect("read"), holders.iter().map(|(_, d)| *d).collect::<Vec<_>>());
    let slots = s.deployments.connection_slots(acme).await.expect("read");
    assert_eq!(
        slots,
        vec![ConnectionSlot { environment: env, component: orders, in_flight: true, connections: vec![connection] }],
        "the deployment in flight holds the connections it bundles; one without connections holds no slot"
    );
    assert_eq!(s.actions(acme).await.iter().filter(|a| *a == "deployment.requested").count(), 3);
}

pub async fn a_deployment_for_one_detached_runtime_takes_no_lock(s: Stores) {
    let (acme, env, orders) = setting(&s).await;
    let holder = s.succeeded(acme, env, orders, "1", None).await;
    let deploy = deployment(env, &package(orders, "2", &[]));
    s.create_deployment(acme, &deploy).await.expect("created");

    let undeploy = Deployment::new_undeploy(&active(&holder), "alice@acme.example", Some(RuntimeId::new()));
    s.create_deployment(acme, &undeploy).await.expect("created while the component is in flight");
    assert_eq!(s.in_flight(acme, env, orders).await, Some(deploy.id), "the lock stays with its holder");
    let finished = s.finish(acme, &undeploy, DeploymentStatus::Succeeded, &Activation::Unchanged).await.expect("finished");
    assert_eq!(s.read_deployment(acme, &undeploy).await, finished);
    assert_eq!(s.in_flight(acme, env, orders).await, Some(deploy.id), "and is not released by it");
}

pub async fn a_deployment_is_created_once_per_id(s: Stores) {
    let (acme, env, orders) = setting(&s).await;
    let d = deployment(env, &package(orders, "1", &[]));
    s.create_deployment(acme, &d).await.expect("created");
    assert_eq!(refused(s.create_deployment(acme, &d).await), Refusal::Exists(Entity::Deployment), "the id is checked before the lock");
    let finished_copy = moved(&d, DeploymentStatus::Succeeded);
    assert_eq!(refused(s.create_deployment(acme, &finished_copy).await), Refusal::Exists(Entity::Deployment));
    assert_eq!(s.read_deployment(acme, &d).await, d);
}

pub async fn moving_a_deployment_on_from_a_status_it_no_longer_has_is_refused(s: Stores) {
    let (acme, env, orders) = setting(&s).await;
    let queued = deployment(env, &package(orders, "1", &[]));
    s.create_deployment(acme, &queued).await.expect("created");
    let head = s.audit.audit_head(acme).await.expect("the head");

    let started = moved(&queued, DeploymentStatus::InProgress);
    s.deployments.transition(acme, &started, DeploymentStatus::Queued, None).await.expect("started");
    assert_eq!(s.read_deployment(acme, &queued).await, started);
    assert_eq!(s.audit.audit_head(acme).await.expect("the head"), head, "a transition without an audit event records none");

    let cancelled = moved(&queued, DeploymentStatus::Cancelled);
    let refusal =
        refused(s.deployments.transition(acme, &cancelled, DeploymentStatus::Queued, Some(draft("deployment.cancelled", "deployment", queued.id))).await);
    assert_eq!(refusal, Refusal::Stale(Entity::Deployment));
    assert_eq!(s.read_deployment(acme, &queued).await, started, "the stale move changed nothing");
    assert_eq!(s.in_flight(acme, env, orders).await, Some(queued.id));

    let ghost = deployment(env, &package(ComponentId::new(), "1", &[]));
    assert_eq!(
        refused(s.deployments.transition(acme, &moved(&ghost, DeploymentStatus::InProgress), DeploymentStatus::Queued, None).await),
        Refusal::Stale(Entity::Deployment)
    );

    let failed = s.transition(acme, &started, DeploymentStatus::Failed).await;
    assert_eq!(s.read_deployment(acme, &queued).await, failed);
    assert_eq!(s.in_flight(acme, env, orders).await, None, "leaving flight releases the lock");
    assert_eq!(s.actions(acme).await.last().map(String::as_str), Some("deployment.moved"));
}

pub async fn finishing_a_deployment_releases_its_lock_so_the_next_can_take_it(s: Stores) {
    let (acme, env, orders) = setting(&s).await;
    let first = s.in_progress(acme, env, orders, "1").await;
    let failed = s.finish(acme, &first, DeploymentStatus::Failed, &Activation::Unchanged).await.expect("finished");
    assert_eq!(s.read_deployment(acme, &first).await, failed);
    assert_eq!(s.in_flight(acme, env, orders).await, None);
    assert_eq!(s.active_deployment(acme, env, orders).await, None, "a failure activates nothing");

    let next = deployment(env, &package(orders, "2", &[]));
    s.create_deployment(acme, &next).await.expect("the lock is free");
    assert_eq!(refused(s.finish(acme, &first, DeploymentStatus::Failed, &Activation::Unchanged).await), Refusal::Stale(Entity::Deployment), "finished already");
    assert_eq!(s.in_flight(acme, env, orders).await, Some(next.id), "and the refused finish did not release another's lock");
}

pub async fn each_approver_decides_once_and_each_decision_is_counted_on_the_deployment(s: Stores) {
    let (acme, env, orders) = setting(&s).await;
    let mut pending = deployment(env, &package(orders, "1", &[]));
    pending.status = DeploymentStatus::PendingApproval;
    pending.required_approvals = 2;
    s.create_deployment(acme, &pending).await.expect("created");
    assert_eq!(s.in_flight(acme, env, orders).await, Some(pending.id), "waiting for approvals holds the lock");
    let decide = async |who: &str, decision: Decision, minutes_ago: i64| {
        let mut a = approval(who, decision, &[pending.digest.clone()]);
        a.created_at = Utc::now() - Duration::minutes(minutes_ago);
        s.deployments.add_approval(acme, pending.id, &a, draft("deployment.approved", "deployment", pending.id)).await
    };

    decide("bob", Decision::Approve, 1).await.expect("bob decides");
    assert_eq!(s.read_deployment(acme, &pending).await.decisions, 1);
    assert_eq!(refused(decide("bob", Decision::Reject, 0).await), Refusal::AlreadyDecided(Decided::Deployment));
    decide("carol", Decision::Reject, 5).await.expect("carol decides");
    assert_eq!(s.read_deployment(acme, &pending).await.decisions, 2, "the refused decision was not counted");

    let approvals = s.deployments.approvals(acme, pending.id).await.expect("read");
    let by: Vec<(&str, Decision)> = approvals.iter().map(|a| (a.approver.as_str(), a.decision)).collect();
    assert_eq!(by, [("carol", Decision::Reject), ("bob", Decision::Approve)], "oldest decision first");
    let missing =
        s.deployments.add_approval(acme, DeploymentId::new(), &approval("bob", Decision::Approve, &[]), draft("deployment.approved", "deployment", "x")).await;
    assert_eq!(refused(missing), Refusal::NotAwaitingApproval(Decided::Deployment));
    assert_eq!(s.actions(acme).await.iter().filter(|a| *a == "deployment.approved").count(), 2);
}

pub async fn leaving_approval_is_refused_when_a_decision_arrived_since_they_were_counted(s: Stores) {
    let (acme, env, orders) = setting(&s).await;
    let mut pending = deployment(env, &package(orders, "1", &[]));
    pending.status = DeploymentStatus::PendingApproval;
    pending.required_approvals = 1;
    s.create_deployment(acme, &pending).await.expect("created");
    let counted = s.read_deployment(acme, &pending).await;
    let decide = async |who: &str| {
        s.deployments
            .add_approval(
                acme,
                pending.id,
                &approval(who, Decision::Approve, &[pending.digest.clone()]),
                draft("deployment.approved", "deployment", pending.id),
            )
            .await
    };
    decide("bob").await.expect("a decision arrives");

    let released = moved(&counted, DeploymentStatus::Queued);
    let refusal = refused(s.deployments.transition(acme, &released, DeploymentStatus::PendingApproval, None).await);
    assert_eq!(refusal, Refusal::Stale(Entity::Deployment), "counted before bob's decision");
    let recounted = s.read_deployment(acme, &pending).await;
    assert_eq!(recounted.status, DeploymentStatus::PendingApproval);
    let released = moved(&recounted, DeploymentStatus::Queued);
    s.deployments.transition(acme, &released, DeploymentStatus::PendingApproval, None).await.expect("released once recounted");
    assert_eq!(s.read_deployment(acme, &pending).await, released);
    assert_eq!(refused(decide("carol").await), Refusal::NotAwaitingApproval(Decided::Deployment), "it moved on");
    assert_eq!(s.in_flight(acme, env, orders).await, Some(pending.id), "queued still holds the lock");
}

pub async fn a_success_activates_the_version_marks_the_package_active_and_records_where_it_succeeded(s: Stores) {
    let (acme, env, orders) = setting(&s).await;
    let d = s.in_progress(acme, env, orders, "1").await;
    let new = active(&d);
    let done = s.finish(acme, &d, DeploymentStatus::Succeeded, &Activation::Activate { new: new.clone(), previous: None }).await.expect("succeeded");

    assert_eq!(s.read_deployment(acme, &d).await, done);
    assert_eq!(s.in_flight(acme, env, orders).await, None);
    assert_eq!(s.deployments.active_version(acme, env, orders).await.expect("read"), Some(new.clone()));
    assert_eq!(s.deployments.active_versions(acme, env).await.expect("read"), [new]);
    assert!(s.activity.is_package_active(acme, d.package_id).await.expect("read"));
    assert!(!s.activity.is_package_active(acme, PackageId::new()).await.expect("read"));
    assert_eq!(s.deployments.succeeded_in(acme, d.package_id).await.expect("read"), [env]);

    let invoices = s.succeeded(acme, env, ComponentId::new(), "1", None).await;
    let mut components = vec![orders, invoices.component_id];
    components.sort();
    let listed: Vec<ComponentId> = s.deployments.active_versions(acme, env).await.expect("read").iter().map(|a| a.component_id).collect();
    assert_eq!(listed, components, "an environment's active versions, by component");
    let globex = s.tenant(Plan::default()).await;
    assert!(s.deployments.active_versions(globex, env).await.expect("read").is_empty(), "per tenant");
}

pub async fn a_new_success_supersedes_the_one_it_replaces_and_moves_the_activity_marker(s: Stores) {
    let (acme, env, orders) = setting(&s).await;
    let first = s.succeeded(acme, env, orders, "1", None).await;
    let second = s.succeeded(acme, env, orders, "2", Some(&first)).await;

    assert_eq!(s.read_deployment(acme, &first).await.status, DeploymentStatus::Superseded);
    assert_eq!(s.read_deployment(acme, &second).await.status, DeploymentStatus::Succeeded);
    assert_eq!(s.active_deployment(acme, env, orders).await, Some(second.id));
    assert!(!s.activity.is_package_active(acme, first.package_id).await.expect("read"), "the replaced package is active nowhere");
    assert!(s.activity.is_package_active(acme, second.package_id).await.expect("read"));
    assert_eq!(s.deployments.succeeded_in(acme, first.package_id).await.expect("read"), [env], "where a package succeeded stays on record");

    // The first package again (a redeploy): it is active again, the second is not.
    let again = deployment(env, &package(orders, "1-again", &[]));
    let again = berth_domain::deployment::Deployment { package_id: first.package_id, ..again };
    s.create_deployment(acme, &again).await.expect("created");
    let again = s.transition(acme, &again, DeploymentStatus::InProgress).await;
    s.finish(acme, &again, DeploymentStatus::Succeeded, &Activation::Activate { new: active(&again), previous: Some(active(&second)) })
        .await
        .expect("succeeded");
    assert!(s.activity.is_package_active(acme, first.package_id).await.expect("read"));
    assert!(!s.activity.is_package_active(acme, second.package_id).await.expect("read"));
    assert_eq!(s.read_deployment(acme, &second).await.status, DeploymentStatus::Superseded);
}

pub async fn a_package_s_successes_name_the_deployment_that_last_succeeded_in_each_environment(s: Stores) {
    let (acme, test, orders) = setting(&s).await;
    let staging = EnvironmentId::new();
    let first = s.succeeded(acme, test, orders, "1", None).await;
    assert_eq!(s.deployments.package_successes(acme, first.package_id).await.expect("read"), [(test, first.id)]);

    // The same package succeeds again in Test (a redeploy) and in Staging.
    let again = Deployment { package_id: first.package_id, ..deployment(test, &package(orders, "1", &[])) };
    s.create_deployment(acme, &again).await.expect("created");
    let again = s.transition(acme, &again, DeploymentStatus::InProgress).await;
    s.finish(acme, &again, DeploymentStatus::Succeeded, &Activation::Activate { new: active(&again), previous: Some(active(&first)) })
        .await
        .expect("succeeded");
    let there = Deployment { package_id: first.package_id, ..deployment(staging, &package(orders, "1", &[])) };
    s.create_deployment(acme, &there).await.expect("created");
    let there = s.transition(acme, &there, DeploymentStatus::InProgress).await;
    s.finish(acme, &there, DeploymentStatus::Succeeded, &Activation::Activate { new: active(&there), previous: None }).await.expect("succeeded");

    let mut successes = s.deployments.package_successes(acme, first.package_id).await.expect("read");
    successes.sort();
    let mut expected = vec![(test, again.id), (staging, there.id)];
    expected.sort();
    assert_eq!(successes, expected);
    let globex = s.tenant(Plan::default()).await;
    assert!(s.deployments.package_successes(globex, first.package_id).await.expect("read").is_empty(), "per tenant");
}

pub async fn an_activation_that_does_not_replace_what_is_active_is_refused_and_changes_nothing(s: Stores) {
    let (acme, env, orders) = setting(&s).await;
    let first = s.succeeded(acme, env, orders, "1", None).await;
    let second = s.in_progress(acme, env, orders, "2").await;

    let as_if_none = Activation::Activate { new: active(&second), previous: None };
    assert_eq!(refused(s.finish(acme, &second, DeploymentStatus::Succeeded, &as_if_none).await), Refusal::Stale(Entity::Deployment));
    let other = deployment(env, &package(orders, "0", &[]));
    let as_if_other = Activation::Activate { new: active(&second), previous: Some(active(&other)) };
    assert_eq!(refused(s.finish(acme, &second, DeploymentStatus::Succeeded, &as_if_other).await), Refusal::Stale(Entity::Deployment));

    assert_eq!(s.read_deployment(acme, &second).await, second, "still in progress");
    assert_eq!(s.in_flight(acme, env, orders).await, Some(second.id), "still holding the lock");
    assert_eq!(s.active_deployment(acme, env, orders).await, Some(first.id));
    assert!(!s.activity.is_package_active(acme, second.package_id).await.expect("read"));
    assert!(s.deployments.succeeded_in(acme, second.package_id).await.expect("read").is_empty());

    // What it replaces must still be the success it was: one rolled back meanwhile is not superseded.
    s.transition(acme, &first, DeploymentStatus::RolledBack).await;
    let replacing = Activation::Activate { new: active(&second), previous: Some(active(&first)) };
    assert_eq!(refused(s.finish(acme, &second, DeploymentStatus::Succeeded, &replacing).await), Refusal::Stale(Entity::Deployment));
    assert_eq!(s.read_deployment(acme, &first).await.status, DeploymentStatus::RolledBack);
}

pub async fn an_undeploy_deactivates_the_component_and_supersedes_what_it_removed(s: Stores) {
    let (acme, env, orders) = setting(&s).await;
    let deployed = s.succeeded(acme, env, orders, "1", None).await;
    let undeploy = Deployment::new_undeploy(&active(&deployed), "alice@acme.example", None);
    s.create_deployment(acme, &undeploy).await.expect("created");
    assert_eq!(s.in_flight(acme, env, orders).await, Some(undeploy.id), "an undeploy of the whole environment holds the lock");
    let undeploy = s.transition(acme, &undeploy, DeploymentStatus::InProgress).await;
    s.finish(acme, &undeploy, DeploymentStatus::Succeeded, &Activation::Deactivate { previous: active(&deployed) }).await.expect("undeployed");

    assert_eq!(s.active_deployment(acme, env, orders).await, None);
    assert!(!s.activity.is_package_active(acme, deployed.package_id).await.expect("read"));
    assert_eq!(s.read_deployment(acme, &deployed).await.status, DeploymentStatus::Superseded);
    assert_eq!(s.in_flight(acme, env, orders).await, None);

    let again = Deployment::new_undeploy(&active(&deployed), "alice@acme.example", None);
    s.create_deployment(acme, &again).await.expect("created");
    let again = s.transition(acme, &again, DeploymentStatus::InProgress).await;
    let refusal = refused(s.finish(acme, &again, DeploymentStatus::Succeeded, &Activation::Deactivate { previous: active(&deployed) }).await);
    assert_eq!(refusal, Refusal::Stale(Entity::Deployment), "nothing is active to deactivate");
}

pub async fn reopening_a_failed_deployment_takes_the_lock_again_and_resets_its_targets(s: Stores) {
    let (acme, env, orders) = setting(&s).await;
    let (r1, r2) = (RuntimeId::new(), RuntimeId::new());
    let d = s.in_progress(acme, env, orders, "1").await;
    let (t1, t2) = (target(&d, r1), target(&d, r2));
    for t in [&t1, &t2] {
        assert!(s.deployments.put_target_if_absent(acme, t).await.expect("put"));
    }
    let failed_t1 = Target { state: TargetState::Failed, ..t1.clone() };
    let deployed_t2 = Target { state: TargetState::Deployed, ..t2.clone() };
    s.deployments.update_target(acme, &failed_t1, TargetState::Pending, None).await.expect("updated");
    s.deployments.update_target(acme, &deployed_t2, TargetState::Pending, None).await.expect("updated");
    let failed = s.finish(acme, &d, DeploymentStatus::PartiallyFailed, &Activation::Unchanged).await.expect("finished");

    let retried = Target { job_id: JobId::new(), state: TargetState::Pending, message: "retry".into(), ..t1.clone() };
    let reopened = moved(&failed, DeploymentStatus::InProgress);
    // A reset is keyed by its new job: one that carries a job already used is not applied.
    let reused_job = Target { state: TargetState::Pending, ..deployed_t2.clone() };
    let resets = [retried.clone(), reused_job];
    let reopen =
        async |from: DeploymentStatus| s.deployments.reopen_deployment(acme, &reopened, from, &resets, draft("deployment.retried", "deployment", d.id)).await;
    let blocker = deployment(env, &package(orders, "2", &[]));
    s.create_deployment(acme, &blocker).await.expect("another deployment takes the lock");
    assert_eq!(refused(reopen(DeploymentStatus::PartiallyFailed).await), Refusal::InFlight { deployment: Some(blocker.id) });
    assert_eq!(s.read_deployment(acme, &d).await, failed, "the refused retry changed nothing");
    assert_eq!(s.deployments.get_target(acme, d.id, r1).await.expect("read"), Some(failed_t1.clone()));

    s.transition(acme, &blocker, DeploymentStatus::Cancelled).await;
    reopen(DeploymentStatus::PartiallyFailed).await.expect("reopened");
    assert_eq!(s.read_deployment(acme, &d).await, reopened);
    assert_eq!(s.in_flight(acme, env, orders).await, Some(d.id));
    assert_eq!(s.deployments.get_target(acme, d.id, r1).await.expect("read"), Some(retried.clone()), "the retried target starts again with its new job");
    assert_eq!(s.deployments.get_target(acme, d.id, r2).await.expect("read"), Some(deployed_t2), "the others stay, even one passed with its old job");
    assert_eq!(s.deployments.find_job(acme, r1, retried.job_id).await.expect("read"), Some(d.id));
    assert_eq!(s.deployments.find_job(acme, r1, t1.job_id).await.expect("read"), Some(d.id), "the old job still leads to its deployment");
    assert_eq!(refused(reopen(DeploymentStatus::PartiallyFailed).await), Refusal::Stale(Entity::Deployment), "reopened already");
    assert_eq!(s.actions(acme).await.iter().filter(|a| *a == "deployment.retried").count(), 1);
}

pub async fn a_target_is_put_once_per_runtime_and_its_job_leads_back_to_its_deployment(s: Stores) {
    let (acme, env, orders) = setting(&s).await;
    let d = s.in_progress(acme, env, orders, "1").await;
    let head = s.audit.audit_head(acme).await.expect("the head");
    let mut runtimes = [RuntimeId::new(), RuntimeId::new(), RuntimeId::new()];
    let first = target(&d, runtimes[0]);

    assert!(s.deployments.put_target_if_absent(acme, &first).await.expect("put"));
    assert!(!s.deployments.put_target_if_absent(acme, &target(&d, runtimes[0])).await.expect("put"), "one target per runtime");
    assert_eq!(s.deployments.get_target(acme, d.id, runtimes[0]).await.expect("read"), Some(first.clone()), "the first stays");
    let other = deployment(EnvironmentId::new(), &package(orders, "1", &[]));
    let same_job = Target { job_id: first.job_id, ..target(&other, runtimes[0]) };
    assert!(!s.deployments.put_target_if_absent(acme, &same_job).await.expect("put"), "a job id is the runtime's once");
    assert_eq!(s.deployments.get_target(acme, other.id, runtimes[0]).await.expect("read"), None);

    assert_eq!(s.deployments.find_job(acme, runtimes[0], first.job_id).await.expect("read"), Some(d.id));
    assert_eq!(s.deployments.find_job(acme, runtimes[1], first.job_id).await.expect("read"), None, "jobs are per runtime");
    assert_eq!(s.deployments.find_job(acme, runtimes[0], JobId::new()).await.expect("read"), None);
    for r in &runtimes[1..] {
        assert!(s.deployments.put_target_if_absent(acme, &target(&d, *r)).await.expect("put"));
    }
    runtimes.sort();
    let listed: Vec<RuntimeId> = s.deployments.list_targets(acme, d.id).await.expect("read").iter().map(|t| t.runtime_id).collect();
    assert_eq!(listed, runtimes, "a deployment's targets, by runtime");
    assert_eq!(s.audit.audit_head(acme).await.expect("the head"), head, "targets are not audited");
}

pub async fn a_target_is_replaced_only_from_the_state_and_job_read_and_keeps_its_receipt(s: Stores) {
    let (acme, env, orders) = setting(&s).await;
    let d = s.in_progress(acme, env, orders, "1").await;
    let runtime = RuntimeId::new();
    let pending = target(&d, runtime);
    assert!(s.deployments.put_target_if_absent(acme, &pending).await.expect("put"));
    assert_eq!(s.deployments.target_receipt(acme, d.id, runtime).await.expect("read"), None);

    let delivered = Target { state: TargetState::Delivered, deadline: Some(Utc::now() + Duration::minutes(15)), ..pending.clone() };
    s.deployments.update_target(acme, &delivered, TargetState::Pending, Some("receipt-1")).await.expect("delivered");
    assert_eq!(s.deployments.target_receipt(acme, d.id, runtime).await.expect("read").as_deref(), Some("receipt-1"));
    let applying = Target { state: TargetState::Applying, message: "step 2".into(), ..delivered.clone() };
    s.deployments.update_target(acme, &applying, TargetState::Delivered, None).await.expect("applying");
    assert_eq!(s.deployments.target_receipt(acme, d.id, runtime).await.expect("read").as_deref(), Some("receipt-1"), "kept when none is given");

    let late = Target { state: TargetState::Downloading, ..delivered.clone() };
    assert_eq!(refused(s.deployments.update_target(acme, &late, TargetState::Delivered, None).await), Refusal::Stale(Entity::Target), "from a state it left");
    let retried_meanwhile = Target { job_id: JobId::new(), state: TargetState::Deployed, ..applying.clone() };
    assert_eq!(
        refused(s.deployments.update_target(acme, &retried_meanwhile, TargetState::Applying, None).await),
        Refusal::Stale(Entity::Target),
        "for another job"
    );
    let nowhere = target(&d, RuntimeId::new());
    assert_eq!(refused(s.deployments.update_target(acme, &nowhere, TargetState::Pending, None).await), Refusal::Stale(Entity::Target), "a missing target");
    assert_eq!(s.deployments.get_target(acme, d.id, runtime).await.expect("read"), Some(applying));
}

pub async fn deployment_events_are_listed_oldest_first_page_by_page(s: Stores) {
    let (acme, env, orders) = setting(&s).await;
    let (d, other) = (s.in_progress(acme, env, orders, "1").await, DeploymentId::new());
    let head = s.audit.audit_head(acme).await.expect("the head");
    let base = Utc::now();
    let mut events = vec![];
    for seconds in [3, 0, 4, 1, 2] {
        let event =
            DeploymentEvent { at: base + Duration::seconds(seconds), runtime_id: (seconds == 2).then(RuntimeId::new), message: format!("line {seconds}") };
        s.deployments.add_event(acme, d.id, &event).await.expect("added");
        events.push(event);
    }
    s.deployments.add_event(acme, other, &DeploymentEvent { at: base, runtime_id: None, message: "elsewhere".into() }).await.expect("added");
    events.sort_by_key(|e| e.at);

    let pages = pages(2, async |page| s.deployments.list_events(acme, d.id, &page).await).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);
    assert_eq!(pages.concat(), events, "in time order, this deployment's only");
    assert_eq!(s.audit.audit_head(acme).await.expect("the head"), head, "timeline lines are not audited");
    let cursor = s.deployments.list_events(acme, d.id, &PageRequest::first(1)).await.expect("a page").next_cursor;
    assert_eq!(refused(s.deployments.list_events(acme, other, &PageRequest { limit: 1, cursor }).await), Refusal::InvalidCursor);
}

pub async fn deployments_are_listed_newest_first_and_filters_keep_only_what_matches(s: Stores) {
    let (acme, test, orders) = setting(&s).await;
    let (prod, invoices) = (EnvironmentId::new(), ComponentId::new());
    let mut written = vec![];
    for (env, component, status) in [
        (test, orders, DeploymentStatus::Succeeded),
        (prod, orders, DeploymentStatus::Queued),
        (test, invoices, DeploymentStatus::Failed),
        (test, orders, DeploymentStatus::Queued),
        (prod, invoices, DeploymentStatus::Succeeded),
    ] {
        let mut d = deployment(env, &package(component, "1", &[]));
        d.status = status;
        s.create_deployment(acme, &d).await.expect("created");
        written.push(d);
    }
    written.sort_by(|a, b| b.id.cmp(&a.id));
    let ids = |ds: &[Deployment]| ds.iter().map(|d| d.id).collect::<Vec<_>>();

    let listed = all(2, async |page| s.deployments.list_deployments(acme, &DeploymentFilter::default(), &page).await).await;
    assert_eq!(listed, written, "newest first, as written");
    let filters = [
        DeploymentFilter { environment: Some(test), ..Default::default() },
        DeploymentFilter { component: Some(invoices), ..Default::default() },
        DeploymentFilter { status: Some(DeploymentStatus::Queued), ..Default::default() },
        DeploymentFilter { environment: Some(test), component: Some(orders), status: Some(DeploymentStatus::Succeeded) },
    ];
    for filter in filters {
        let matching: Vec<Deployment> = written
            .iter()
            .filter(|d| {
                filter.environment.is_none_or(|e| d.environment_id == e)
                    && filter.component.is_none_or(|c| d.component_id == c)
                    && filter.status.is_none_or(|st| d.status == st)
            })
            .cloned()
            .collect();
        let listed = all(2, async |page| s.deployments.list_deployments(acme, &filter, &page).await).await;
        assert_eq!(ids(&listed), ids(&matching), "{filter:?}");
    }
}

pub async fn the_sweeper_sees_delivered_jobs_past_their_deadline_across_tenants(s: Stores) {
    let (acme, env, orders) = setting(&s).await;
    let globex = s.tenant(Plan::default()).await;
    let now = Utc::now();
    let (d, g) = (s.in_progress(acme, env, orders, "1").await, s.in_progress(globex, env, orders, "1").await);
    let put = async |tenant: TenantId, d: &Deployment, state: TargetState, deadline_minutes: i64| {
        let t = target(d, RuntimeId::new());
        assert!(s.deployments.put_target_if_absent(tenant, &t).await.expect("put"));
        let t2 = Target { state, deadline: Some(now + Duration::minutes(deadline_minutes)), ..t.clone() };
        s.deployments.update_target(tenant, &t2, TargetState::Pending, Some("r")).await.expect("updated");
        t2
    };
    let overdue = put(acme, &d, TargetState::Delivered, -1).await;
    let longer_overdue = put(globex, &g, TargetState::Applying, -2).await;
    put(acme, &d, TargetState::Delivered, 60).await;
    put(acme, &d, TargetState::Pending, -5).await;
    put(acme, &d, TargetState::Failed, -5).await;

    let item = |tenant: TenantId, t: &Target| berth_domain::ports::SweepItem { tenant, deployment: t.deployment_id, runtime: Some(t.runtime_id) };
    assert_eq!(
        s.deployments.overdue_targets(now, 10).await.expect("read"),
        [item(globex, &longer_overdue), item(acme, &overdue)],
        "by deadline, across tenants"
    );
    assert_eq!(s.deployments.overdue_targets(now, 1).await.expect("read"), [item(globex, &longer_overdue)], "at most the limit");
    assert_eq!(s.deployments.overdue_targets(now - Duration::minutes(3), 10).await.expect("read"), []);

    let settled = Target { state: TargetState::Failed, ..overdue.clone() };
    s.deployments.update_target(acme, &settled, TargetState::Delivered, None).await.expect("failed");
    assert_eq!(s.deployments.overdue_targets(now, 10).await.expect("read"), [item(globex, &longer_overdue)], "a settled job is watched no more");
}

pub async fn the_sweeper_sees_scheduled_deployments_once_due_and_queued_ones_left_waiting(s: Stores) {
    let (acme, env, _) = setting(&s).await;
    let globex = s.tenant(Plan::default()).await;
    let now = Utc::now();
    let scheduled = async |tenant: TenantId, minutes: i64| {
        let mut d = deployment(env, &package(ComponentId::new(), "1", &[]));
        d.status = DeploymentStatus::Scheduled;
        d.scheduled_at = Some(now + Duration::minutes(minutes));
        s.create_deployment(tenant, &d).await.expect("created");
        d
    };
    let due = scheduled(acme, -1).await;
    let later = scheduled(globex, 60).await;
    let before_queueing = Utc::now();
    let queued = deployment(env, &package(ComponentId::new(), "1", &[]));
    s.create_deployment(acme, &queued).await.expect("created");
    let item = |tenant: TenantId, d: &Deployment| berth_domain::ports::SweepItem { tenant, deployment: d.id, runtime: None };

    assert_eq!(s.deployments.due_scheduled(now, 10).await.expect("read"), [item(acme, &due)]);
    assert_eq!(
        s.deployments.due_scheduled(now + Duration::hours(2), 10).await.expect("read"),
        [item(acme, &due), item(globex, &later)],
        "by time, across tenants"
    );
    assert_eq!(s.deployments.due_scheduled(now + Duration::hours(2), 1).await.expect("read"), [item(acme, &due)], "at most the limit");

    assert_eq!(s.deployments.stale_queued(before_queueing, 10).await.expect("read"), [], "queued since it was written");
    let a_second_later = Utc::now() + Duration::seconds(1);
    assert_eq!(s.deployments.stale_queued(a_second_later, 10).await.expect("read"), [item(acme, &queued)], "scheduled ones are not queued");

    s.transition(acme, &queued, DeploymentStatus::InProgress).await;
    s.transition(acme, &due, DeploymentStatus::Queued).await;
    assert_eq!(s.deployments.due_scheduled(now + Duration::hours(2), 10).await.expect("read"), [item(globex, &later)], "released: due no more");
    assert_eq!(
        s.deployments.stale_queued(a_second_later + Duration::seconds(1), 10).await.expect("read"),
        [item(acme, &due)],
        "picked up: queued no more; released: queued now"
    );
}

pub async fn a_deployments_targets_are_put_at_once_and_a_redelivery_writes_only_the_missing_ones(s: Stores) {
    let (acme, env, orders) = setting(&s).await;
    let d = s.in_progress(acme, env, orders, "1").await;
    // More than one transaction's worth (50 targets each in DynamoDB).
    let mut targets: Vec<Target> = (0..120).map(|_| target(&d, RuntimeId::new())).collect();
    targets.sort_by_key(|t| t.runtime_id);
    let first_delivery = &targets[..70];
    assert_eq!(s.deployments.put_targets_if_absent(acme, first_delivery).await.expect("put"), vec![true; 70], "every new target is written");

    // A redelivery of the message: new targets (with new job ids) for every runtime, 70 of them there already.
    let again: Vec<Target> = targets.iter().map(|t| target(&d, t.runtime_id)).collect();
    let written = s.deployments.put_targets_if_absent(acme, &again).await.expect("put");
    assert_eq!(written, [vec![false; 70], vec![true; 50]].concat(), "only the runtimes without a target get one");
    let listed = s.deployments.list_targets(acme, d.id).await.expect("read");
    assert_eq!(listed.len(), 120);
    for (before, after) in targets[..70].iter().zip(&listed[..70]) {
        assert_eq!(after.job_id, before.job_id, "a target there already keeps its job");
    }
    for (new, after) in again[70..].iter().zip(&listed[70..]) {
        assert_eq!(s.deployments.find_job(acme, after.runtime_id, new.job_id).await.expect("read"), Some(d.id), "a new target's job leads to it");
    }
    assert_eq!(s.deployments.put_targets_if_absent(acme, &[]).await.expect("nothing to put"), Vec::<bool>::new());
}

pub async fn a_deployment_and_one_of_its_targets_are_read_together_and_only_the_tenants(s: Stores) {
    let (acme, env, orders) = setting(&s).await;
    let d = s.in_progress(acme, env, orders, "1").await;
    let runtime = RuntimeId::new();
    let t = target(&d, runtime);
    assert!(s.deployments.put_target_if_absent(acme, &t).await.expect("put"));

    let (read_d, read_t) = s.deployments.get_deployment_and_target(acme, d.id, runtime).await.expect("read");
    assert_eq!((read_d.as_ref(), read_t.as_ref()), (Some(&d), Some(&t)));
    let (read_d, read_t) = s.deployments.get_deployment_and_target(acme, d.id, RuntimeId::new()).await.expect("read");
    assert_eq!((read_d.as_ref(), read_t), (Some(&d), None), "another runtime has no target");
    let globex = s.tenant(Plan::default()).await;
    let (read_d, read_t) = s.deployments.get_deployment_and_target(globex, d.id, runtime).await.expect("read");
    assert_eq!((read_d, read_t), (None, None), "another tenant's deployment is not found");
}

pub async fn timeline_lines_are_written_with_the_move_they_tell_of_and_not_without_it(s: Stores) {
    let (acme, env, orders) = setting(&s).await;
    let line = |text: &str| DeploymentEvent::line(None, text);
    let d = deployment(env, &package(orders, "1", &[]));
    s.deployments.create_deployment(acme, &d, draft("deployment.requested", "deployment", d.id), &[line("requested"), line("waiting")]).await.expect("created");
    let started = moved(&d, DeploymentStatus::InProgress);
    s.deployments.transition_noting(acme, &started, d.status, None, &[line("started")]).await.expect("moved");
    let refused_move = moved(&d, DeploymentStatus::Cancelled);
    assert_eq!(refused(s.deployments.transition_noting(acme, &refused_move, d.status, None, &[line("never")]).await), Refusal::Stale(Entity::Deployment));

    let runtime = RuntimeId::new();
    let pending = target(&d, runtime);
    assert!(s.deployments.put_target_if_absent(acme, &pending).await.expect("put"));
    let delivered = Target { state: TargetState::Delivered, deadline: Some(Utc::now() + Duration::minutes(15)), ..pending.clone() };
    s.deployments.update_target_noting(acme, &delivered, TargetState::Pending, Some("receipt-1"), Some(&line("delivered"))).await.expect("delivered");
    let late = Target { state: TargetState::Applying, ..delivered.clone() };
    assert_eq!(
        refused(s.deployments.update_target_noting(acme, &late, TargetState::Pending, None, Some(&line("never either"))).await),
        Refusal::Stale(Entity::Target)
    );
    // Settled: no deadline any more (the sweeper no longer watches it), the receipt kept.
    let failed = Target { state: TargetState::Failed, deadline: None, message: "boom".into(), ..delivered.clone() };
    s.deployments.update_target_noting(acme, &failed, TargetState::Delivered, None, Some(&line("failed"))).await.expect("failed");
    assert_eq!(s.deployments.get_target(acme, d.id, runtime).await.expect("read"), Some(failed));
    assert_eq!(s.deployments.target_receipt(acme, d.id, runtime).await.expect("read").as_deref(), Some("receipt-1"));

    let lines: Vec<String> =
        s.deployments.list_events(acme, d.id, &PageRequest::first(100)).await.expect("read").items.into_iter().map(|e| e.message).collect();
    let mut sorted = lines.clone();
    sorted.sort();
    let mut expected = vec!["requested", "waiting", "started", "delivered", "failed"];
    expected.sort();
    assert_eq!(sorted, expected, "each line that was written with its move, none of a refused one");
}

pub async fn connection_slots_follow_what_is_in_flight_and_active_across_environments_of_the_tenant_only(s: Stores) {
    let (acme, test, orders) = setting(&s).await;
    let prod = EnvironmentId::new();
    let (sftp, http) = (ComponentId::new(), ComponentId::new());
    let with_connections = |env: EnvironmentId, version: &str, connections: &[ComponentId]| {
        let p = package(orders, version, connections);
        let d = deployment(env, &p);
        (d, p)
    };
    let (in_test, p_test) = with_connections(test, "1", &[sftp]);
    let (in_prod, _) = with_connections(prod, "1", &[sftp, http]);
    s.create_deployment(acme, &in_test).await.expect("created");
    s.create_deployment(acme, &in_prod).await.expect("created");
    let in_test = s.transition(acme, &in_test, DeploymentStatus::InProgress).await;
    let slot =
        |env: EnvironmentId, in_flight: bool, connections: Vec<ComponentId>| ConnectionSlot { environment: env, component: orders, in_flight, connections };
    let mut expected = vec![slot(test, true, vec![sftp]), slot(prod, true, vec![sftp, http])];
    expected.sort_by_key(|s| s.environment.to_string());
    assert_eq!(s.deployments.connection_slots(acme).await.expect("read"), expected, "each deployment in flight, in every environment");

    // Succeeded in Test: the version is active there, holding its connections; the lock is gone.
    let activation = Activation::Activate { new: in_test.activation(p_test.manifest.components.clone(), Utc::now()), previous: None };
    s.finish(acme, &in_test, DeploymentStatus::Succeeded, &activation).await.expect("succeeded");
    let mut expected = vec![slot(test, false, vec![sftp]), slot(prod, true, vec![sftp, http])];
    expected.sort_by_key(|s| s.environment.to_string());
    assert_eq!(s.deployments.connection_slots(acme).await.expect("read"), expected);

    // Cancelled in Production: the lock goes with its slot.
    s.transition(acme, &in_prod, DeploymentStatus::Cancelled).await;
    assert_eq!(s.deployments.connection_slots(acme).await.expect("read"), vec![slot(test, false, vec![sftp])]);
    let globex = s.tenant(Plan::default()).await;
    assert_eq!(s.deployments.connection_slots(globex).await.expect("read"), vec![], "another tenant holds none of them");
}

pub async fn what_settling_reads_is_read_together_and_only_the_tenants(s: Stores) {
    let (acme, env, orders) = setting(&s).await;
    let p = package(orders, "1", &[]);
    s.packages.create_package(acme, &p, draft("package.created", "package", p.id)).await.expect("created");
    let before = s.deployments.activation_reads(acme, p.id, env, orders).await.expect("read");
    assert_eq!((before.package.as_ref(), before.active), (Some(&p), None), "nothing active yet");

    let deployed = s.succeeded(acme, env, orders, "1", None).await;
    let after = s.deployments.activation_reads(acme, p.id, env, orders).await.expect("read");
    assert_eq!(after.active.map(|a| a.deployment_id), Some(deployed.id), "the version active there now");
    assert_eq!(after.audit_head, Some(s.audit.audit_head(acme).await.expect("the head")), "the tenant's audit head");

    let globex = s.tenant(Plan::default()).await;
    let elsewhere = s.deployments.activation_reads(globex, p.id, env, orders).await.expect("read");
    assert!(elsewhere.package.is_none() && elsewhere.active.is_none(), "another tenant's package and version are not read");
}
