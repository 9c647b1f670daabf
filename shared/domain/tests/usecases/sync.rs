//! Late attach: a runtime attached to an environment that already runs
//! components is sent a `sync` of each active version, to it only, taking no
//! lock and waiting for no approval, but held by a freeze window like any change.

use crate::fixture::{Agent, World, freeze_now, refused};
use berth_domain::component::ComponentType;
use berth_domain::deployment::{Deployment, DeploymentKind, DeploymentStatus, TargetState};
use berth_domain::package::Package;
use berth_domain::policy::Policy;
use chrono::Duration;

/// Production runs Orders v1 and Billing b1 on `atom`; `spare` is registered, attached nowhere.
struct Estate {
    w: World,
    billing: Package,
    spare: Agent,
}

async fn estate() -> Estate {
    let w = World::new().await;
    w.deploy_active(&w.v1, w.prod.id).await;
    let billing = w.component("Billing", ComponentType::Process, b"billing b1", &[]).await;
    let billing = w.package(billing.id, "b1").await;
    w.deploy_active(&billing, w.prod.id).await;
    let spare = w.runtime("spare", &[]).await;
    Estate { w, billing, spare }
}

impl Estate {
    async fn syncs(&self) -> Vec<Deployment> {
        self.w.deployments().await.into_iter().filter(|d| d.kind == DeploymentKind::Sync).collect()
    }
}

#[tokio::test]
async fn attaching_a_runtime_sends_it_a_sync_of_each_active_version_and_nothing_to_the_others() {
    let e = estate().await;
    let w = &e.w;
    let syncs = w.berth.attach_runtime_or_hold(&w.admin, w.prod.id, e.spare.runtime, false).await.expect("spare is attached").expect("newly attached");
    assert_eq!(syncs.len(), 2);
    let mut packages: Vec<_> = syncs.iter().map(|d| d.package_id).collect();
    packages.sort();
    let mut active = vec![w.v1.id, e.billing.id];
    active.sort();
    assert_eq!(packages, active, "one sync per active version, of that exact package");
    for d in &syncs {
        assert_eq!((d.kind, d.status, d.only_runtime, d.required_approvals), (DeploymentKind::Sync, DeploymentStatus::Queued, Some(e.spare.runtime), 0));
        assert_eq!(w.audit_actions(d.id).await, ["deployment.sync_requested"]);
        let requested = format!("Sync of version {} requested by {}: runtime {} attached to the environment", d.version, w.admin.actor.id, e.spare.runtime);
        assert_eq!(w.timeline(d).await, [requested]);
    }

    assert_eq!(w.dispatch().await.len(), 2);
    assert!(w.atom.next_job(&w.berth).await.is_none(), "atom runs both already: it is sent nothing");
    let syncing = w.berth.runtime_syncing(&w.admin, &w.berth.get_runtime(&w.admin, e.spare.runtime).await.unwrap()).await.unwrap();
    assert_eq!(syncing.len(), 2, "the runtime's detail shows both syncs until they succeed");

    let ran = e.spare.run_jobs(&w.berth, TargetState::Deployed).await;
    let mut ran: Vec<_> = ran.iter().map(|j| (j.package_id, j.digest.as_str().to_string())).collect();
    ran.sort();
    let mut want = vec![(w.v1.id, w.v1.digest.as_ref().unwrap().as_str().to_string()), (e.billing.id, e.billing.digest.as_ref().unwrap().as_str().to_string())];
    want.sort();
    assert_eq!(ran, want, "spare ran the exact versions Production runs");
    for d in &syncs {
        assert_eq!(w.status(d).await, DeploymentStatus::Succeeded);
    }
    let runtime = w.berth.get_runtime(&w.admin, e.spare.runtime).await.unwrap();
    assert!(w.berth.runtime_syncing(&w.admin, &runtime).await.unwrap().is_empty(), "nothing is syncing once the syncs succeeded");
    assert_eq!(w.active_orders(w.prod.id).await.as_deref(), Some("v1"), "the environment's active versions are unchanged");
    let actives = w.berth.active_versions(&w.admin, w.prod.id).await.unwrap();
    assert!(actives.iter().all(|a| a.active.deployment_id != syncs[0].id && a.active.deployment_id != syncs[1].id), "no sync became an active version");
}

#[tokio::test]
async fn a_sync_takes_no_lock_so_a_deployment_can_be_requested_while_it_runs() {
    let e = estate().await;
    let w = &e.w;
    w.berth.attach_runtime(&w.admin, w.prod.id, e.spare.runtime).await.expect("spare is attached");
    assert_eq!(e.syncs().await.len(), 2);
    let v2 = w.next_orders("v2").await;
    let next = w.request(&w.ann, &v2, w.prod.id).await.expect("no sync holds Orders' lock");
    assert_eq!(next.status, DeploymentStatus::Queued);
}

#[tokio::test]
async fn a_sync_needs_no_approval_even_where_deployments_need_two() {
    let e = estate().await;
    let w = &e.w;
    w.set_policy(w.prod.id, Policy { required_approvals: 2, ..Policy::default() }).await;
    w.berth.attach_runtime(&w.admin, w.prod.id, e.spare.runtime).await.expect("spare is attached");
    let syncs = e.syncs().await;
    assert_eq!(syncs.len(), 2);
    assert!(syncs.iter().all(|d| d.status == DeploymentStatus::Queued && d.required_approvals == 0), "{syncs:?}");
    assert_eq!(w.dispatch().await.len(), 2);
    assert_eq!(e.spare.run_jobs(&w.berth, TargetState::Deployed).await.len(), 2);
}

#[tokio::test]
async fn inside_a_freeze_window_an_attach_is_refused_or_held_and_its_syncs_wait_for_the_window_s_end() {
    let e = estate().await;
    let w = &e.w;
    let window = freeze_now();
    w.set_policy(w.prod.id, Policy { freeze_windows: vec![window.clone()], ..Policy::default() }).await;
    assert_eq!(refused(w.berth.attach_runtime(&w.admin, w.prod.id, e.spare.runtime).await).code(), "freeze_window");
    assert!(e.syncs().await.is_empty(), "a refused attach sends nothing");

    let syncs = w.berth.attach_runtime_or_hold(&w.admin, w.prod.id, e.spare.runtime, true).await.expect("the attach is held").expect("newly attached");
    assert_eq!(syncs.len(), 2);
    assert!(syncs.iter().all(|d| d.status == DeploymentStatus::Scheduled && d.scheduled_at == Some(window.end)), "{syncs:?}");
    assert!(w.dispatch().await.is_empty(), "nothing is sent inside the window");

    assert_eq!(w.berth.sweep(window.end - Duration::minutes(1)).await.unwrap().released, 0);
    assert_eq!(w.berth.sweep(window.end + Duration::seconds(1)).await.unwrap().released, 2, "the sweeper releases both at the window's end");
    assert_eq!(w.dispatch().await.len(), 2);
    assert_eq!(e.spare.run_jobs(&w.berth, TargetState::Deployed).await.len(), 2);
    for d in &syncs {
        assert_eq!(w.status(d).await, DeploymentStatus::Succeeded);
    }
}

#[tokio::test]
async fn attaching_to_an_environment_that_runs_nothing_sends_nothing() {
    let w = World::new().await;
    let spare = w.runtime("spare", &[]).await;
    let syncs = w.berth.attach_runtime_or_hold(&w.admin, w.prod.id, spare.runtime, false).await.expect("spare is attached").expect("newly attached");
    assert!(syncs.is_empty());
    assert!(w.deployments().await.is_empty());
    assert!(w.dispatch().await.is_empty());
}

#[tokio::test]
async fn attaching_a_runtime_that_is_attached_already_sends_nothing() {
    let e = estate().await;
    let w = &e.w;
    assert_eq!(w.berth.attach_runtime_or_hold(&w.admin, w.prod.id, w.atom.runtime, false).await.expect("attached already"), None);
    assert!(e.syncs().await.is_empty(), "atom runs Production's versions already");
    w.berth.attach_runtime(&w.admin, w.prod.id, e.spare.runtime).await.expect("spare is attached");
    assert!(!w.berth.attach_runtime(&w.admin, w.prod.id, e.spare.runtime).await.expect("attached again"));
    assert_eq!(e.syncs().await.len(), 2, "the second attach sent nothing more");
}

#[tokio::test]
async fn a_sync_for_a_runtime_detached_before_it_ran_is_withdrawn() {
    let e = estate().await;
    let w = &e.w;
    w.berth.attach_runtime(&w.admin, w.prod.id, e.spare.runtime).await.expect("spare is attached");
    w.dispatch().await;
    w.berth.detach_runtime(&w.admin, w.prod.id, e.spare.runtime).await.expect("spare is detached");
    w.dispatch().await;
    let ran = e.spare.run_jobs(&w.berth, TargetState::Deployed).await;
    assert!(
        ran.iter().all(|j| j.kind == DeploymentKind::Undeploy),
        "only the detach's undeploys reach spare: {:?}",
        ran.iter().map(|j| j.kind).collect::<Vec<_>>()
    );
    for d in e.syncs().await {
        assert_eq!(d.status, DeploymentStatus::Failed, "a withdrawn sync ran nowhere");
    }
}

#[tokio::test]
async fn a_sync_never_brings_back_the_version_a_deployment_under_way_on_that_runtime_replaces() {
    let e = estate().await;
    let w = &e.w;
    let v2 = w.next_orders("v2").await;
    let deploy = w.request(&w.ann, &v2, w.prod.id).await.expect("v2 is queued");
    w.berth.attach_runtime(&w.admin, w.prod.id, e.spare.runtime).await.expect("spare is attached before v2 is dispatched");
    w.dispatch().await;
    let ran: Vec<_> = e.spare.run_jobs(&w.berth, TargetState::Deployed).await.into_iter().map(|j| j.package_id).collect();
    assert_eq!(ran.first(), Some(&v2.id), "v2 reached spare first (it was dispatched first)");
    assert!(!ran.contains(&w.v1.id), "the sync of v1 came after v2 and was withdrawn: {ran:?}");
    assert!(ran.contains(&e.billing.id), "Billing is synced as usual");
    w.atom.run_jobs(&w.berth, TargetState::Deployed).await;
    assert_eq!(w.status(&deploy).await, DeploymentStatus::Succeeded);
    let orders_sync = e.syncs().await.into_iter().find(|d| d.component_id == w.orders.id).expect("Orders' sync");
    assert_eq!(orders_sync.status, DeploymentStatus::Failed, "withdrawn, it ran nowhere");
    let runtime = w.berth.get_runtime(&w.admin, e.spare.runtime).await.unwrap();
    assert!(w.berth.runtime_syncing(&w.admin, &runtime).await.unwrap().is_empty(), "v1 is no longer active: nothing left to sync");
}

#[tokio::test]
async fn a_sync_overtaken_by_a_deployment_that_did_not_reach_the_runtime_is_replaced_by_a_sync_of_the_new_version() {
    let e = estate().await;
    let w = &e.w;
    let v2 = w.next_orders("v2").await;
    let deploy = w.request(&w.ann, &v2, w.prod.id).await.expect("v2 is queued");
    w.dispatch().await;
    w.berth.attach_runtime(&w.admin, w.prod.id, e.spare.runtime).await.expect("spare is attached while v2 runs on atom only");
    w.dispatch().await;
    w.atom.run_jobs(&w.berth, TargetState::Deployed).await;
    assert_eq!(w.status(&deploy).await, DeploymentStatus::Succeeded);

    let ran: Vec<_> = e.spare.run_jobs(&w.berth, TargetState::Deployed).await.into_iter().map(|j| j.package_id).collect();
    assert!(!ran.contains(&w.v1.id), "v1 is no longer active: its sync is withdrawn: {ran:?}");
    w.dispatch().await;
    let ran: Vec<_> = e.spare.run_jobs(&w.berth, TargetState::Deployed).await.into_iter().map(|j| j.package_id).collect();
    assert_eq!(ran, [v2.id], "spare is sent the version now active instead");
    let syncs = e.syncs().await;
    let resync = syncs.iter().find(|d| d.package_id == v2.id).expect("a sync of v2");
    assert_eq!((resync.status, resync.only_runtime, resync.requested_by.as_str()), (DeploymentStatus::Succeeded, Some(e.spare.runtime), "system:sync"));
    assert_eq!(w.active_orders(w.prod.id).await.as_deref(), Some("v2"));
}
