//! Freeze windows: inside one a change is refused, or held until the window
//! ends when the caller asks (`hold_if_frozen`); a window that ended blocks
//! nothing; a weekly window repeats from its start (included) to its end
//! (excluded) every week.

use crate::fixture::{World, deploy_input, freeze_now, refused, window};
use berth_domain::component::ComponentType;
use berth_domain::deployment::{DeploymentKind, DeploymentStatus, TargetState};
use berth_domain::policy::{FreezeWindow, Policy};
use berth_domain::usecases::NewDeployment;
use chrono::{DateTime, Duration, Utc};

async fn frozen(windows: Vec<FreezeWindow>) -> World {
    let w = World::new().await;
    w.set_policy(w.prod.id, Policy { freeze_windows: windows, ..Policy::default() }).await;
    w
}

fn weekly(start: DateTime<Utc>, end: DateTime<Utc>) -> FreezeWindow {
    FreezeWindow { start, end, weekly: true }
}

#[tokio::test]
async fn a_deployment_inside_a_freeze_window_is_refused_and_nothing_is_recorded() {
    let w = frozen(vec![freeze_now()]).await;
    let err = refused(w.request(&w.ann, &w.v1, w.prod.id).await);
    assert_eq!(err.code(), "freeze_window");
    let report = w.berth.validate_deployment(&w.ann, w.v1.id, w.prod.id).await.expect("the dry run answers");
    assert_eq!(report.errors.iter().map(|e| e.code).collect::<Vec<_>>(), ["freeze_window"]);
    assert!(w.deployments().await.is_empty());
    assert!(w.dispatch().await.is_empty());
    // Test has no window.
    assert_eq!(w.request(&w.ann, &w.v1, w.test.id).await.expect("Test is not frozen").status, DeploymentStatus::Queued);
}

#[tokio::test]
async fn a_held_deployment_is_scheduled_for_the_window_s_end_and_the_sweeper_queues_it_then() {
    let window = freeze_now();
    let w = frozen(vec![window.clone()]).await;
    let report = w.berth.validate_deployment(&w.ann, w.v1.id, w.prod.id).await.expect("the dry run answers");
    assert!(report.errors.iter().any(|e| e.code == "freeze_window"), "without hold_if_frozen it is refused: {report:?}");

    let held = w.request_held(&w.ann, &w.v1, w.prod.id).await.expect("the deployment is held");
    assert_eq!((held.status, held.scheduled_at), (DeploymentStatus::Scheduled, Some(window.end)));
    assert!(w.dispatch().await.is_empty(), "nothing runs inside the window");

    let early = w.berth.sweep(window.end - Duration::minutes(1)).await.expect("the sweeper runs");
    assert_eq!(early.released, 0);
    assert_eq!(w.status(&held).await, DeploymentStatus::Scheduled);
    let after = w.berth.sweep(window.end + Duration::seconds(1)).await.expect("the sweeper runs");
    assert_eq!(after.released, 1);
    assert_eq!(w.status(&held).await, DeploymentStatus::Queued);
    assert_eq!(w.dispatch().await, [held.id]);
    w.atom.run_jobs(&w.berth, TargetState::Deployed).await;
    assert_eq!(w.active_orders(w.prod.id).await.as_deref(), Some("v1"));
}

#[tokio::test]
async fn a_held_deployment_requested_for_a_time_after_the_window_waits_for_that_time() {
    let window = freeze_now();
    let w = frozen(vec![window.clone()]).await;
    let later = window.end + Duration::hours(3);
    let input = NewDeployment { scheduled_at: Some(later), hold_if_frozen: true, ..deploy_input(&w.v1, w.prod.id) };
    let d = w.berth.create_deployment(&w.ann, input).await.expect("the deployment is held");
    assert_eq!((d.status, d.scheduled_at), (DeploymentStatus::Scheduled, Some(later)));
}

#[tokio::test]
async fn an_undeploy_or_a_rollback_may_be_held_too() {
    let w = World::new().await;
    w.deploy_active(&w.v1, w.prod.id).await;
    let v2 = w.next_orders("v2").await;
    w.deploy_active(&v2, w.prod.id).await;
    let window = freeze_now();
    w.set_policy(w.prod.id, Policy { freeze_windows: vec![window.clone()], ..Policy::default() }).await;

    let rollback = w.berth.roll_back(&w.ann, w.prod.id, w.orders.id, String::new(), true).await.expect("the rollback is held");
    assert_eq!((rollback.kind, rollback.status, rollback.scheduled_at), (DeploymentKind::Rollback, DeploymentStatus::Scheduled, Some(window.end)));
    w.berth.cancel_deployment(&w.ann, rollback.id).await.expect("cancelled");
    let undeploy = w.berth.undeploy(&w.ann, w.prod.id, w.orders.id, true).await.expect("the undeploy is held");
    assert_eq!((undeploy.kind, undeploy.status, undeploy.scheduled_at), (DeploymentKind::Undeploy, DeploymentStatus::Scheduled, Some(window.end)));
    assert_eq!(w.active_orders(w.prod.id).await.as_deref(), Some("v2"), "nothing was removed");
}

#[tokio::test]
async fn a_window_that_ended_or_has_not_begun_does_not_block() {
    let now = Utc::now();
    let week = Duration::weeks(1);
    let w = frozen(vec![
        window(now - Duration::hours(2), now - Duration::hours(1)),
        // Its occurrence this week ended now, before the request.
        weekly(now - week - Duration::hours(1), now - week),
        window(now + Duration::hours(1), now + Duration::hours(2)),
    ])
    .await;
    let report = w.berth.validate_deployment(&w.ann, w.v1.id, w.prod.id).await.expect("the dry run answers");
    assert!(report.errors.is_empty() && !report.warnings.iter().any(|i| i.code == "freeze_window"), "{report:?}");
    let d = w.request(&w.ann, &w.v1, w.prod.id).await.expect("the deployment is accepted");
    assert_eq!((d.status, d.scheduled_at), (DeploymentStatus::Queued, None));
}

#[tokio::test]
async fn a_weekly_window_whose_first_occurrence_was_a_week_ago_freezes_now() {
    let now = Utc::now();
    let (start, end) = (now - Duration::weeks(1) - Duration::hours(1), now - Duration::weeks(1) + Duration::hours(1));
    let w = frozen(vec![window(start, end)]).await;
    w.request(&w.ann, &w.v1, w.prod.id).await.expect("once only, the window is long over");

    let billing = w.component("Billing", ComponentType::Process, b"billing", &[]).await;
    let billing = w.package(billing.id, "v1").await;
    w.set_policy(w.prod.id, Policy { freeze_windows: vec![weekly(start, end)], ..Policy::default() }).await;
    let before = w.deployments().await;
    assert_eq!(refused(w.request(&w.ann, &billing, w.prod.id).await).code(), "freeze_window");
    let report = w.berth.validate_deployment(&w.ann, billing.id, w.prod.id).await.expect("the dry run answers");
    assert_eq!(report.errors.iter().map(|e| e.code).collect::<Vec<_>>(), ["freeze_window"]);
    assert_eq!(w.deployments().await, before, "nothing was recorded");
    let held = w.request_held(&w.ann, &billing, w.prod.id).await.expect("the deployment is held");
    assert_eq!(held.scheduled_at, Some(end + Duration::weeks(1)), "until this week's occurrence ends");
}

#[tokio::test]
async fn a_weekly_window_holds_what_falls_due_at_its_start_and_frees_what_falls_due_at_its_end() {
    // Tomorrow at `t` a weekly window opens for an hour; its first occurrence was a week earlier.
    let t = Utc::now() + Duration::days(1);
    let w = frozen(vec![weekly(t - Duration::weeks(1), t - Duration::weeks(1) + Duration::hours(1))]).await;
    let billing = w.component("Billing", ComponentType::Process, b"billing", &[]).await;
    let billing = w.package(billing.id, "v1").await;
    let at = |package: &berth_domain::package::Package, when: DateTime<Utc>| NewDeployment { scheduled_at: Some(when), ..deploy_input(package, w.prod.id) };
    let orders = w.berth.create_deployment(&w.ann, at(&w.v1, t - Duration::minutes(1))).await.expect("Orders is scheduled");
    let billing = w.berth.create_deployment(&w.ann, at(&billing, t + Duration::minutes(30))).await.expect("Billing is scheduled");

    // At the window's first instant Orders is due, and held until the window ends.
    w.berth.sweep(t).await.expect("the sweeper runs");
    let held = w.deployment(orders.id).await;
    assert_eq!((held.status, held.scheduled_at), (DeploymentStatus::Scheduled, Some(t + Duration::hours(1))));
    assert_eq!(w.status(&billing).await, DeploymentStatus::Scheduled, "not due yet");

    // At its end instant the window no longer holds what is due.
    w.berth.sweep(t + Duration::hours(1)).await.expect("the sweeper runs");
    assert_eq!(w.status(&billing).await, DeploymentStatus::Queued);
    w.berth.sweep(t + Duration::hours(1) + Duration::seconds(1)).await.expect("the sweeper runs");
    assert_eq!(w.status(&orders).await, DeploymentStatus::Queued);
    let sent = w.dispatch().await;
    assert!(sent.contains(&orders.id) && sent.contains(&billing.id), "{sent:?}");
}

#[tokio::test]
async fn a_window_that_began_after_a_deployment_was_scheduled_holds_it_when_it_falls_due() {
    let w = World::new().await;
    let t = Utc::now() + Duration::days(1);
    let input = NewDeployment { scheduled_at: Some(t), ..deploy_input(&w.v1, w.prod.id) };
    let d = w.berth.create_deployment(&w.ann, input).await.expect("the deployment is scheduled");
    w.set_policy(w.prod.id, Policy { freeze_windows: vec![window(t - Duration::hours(1), t + Duration::hours(1))], ..Policy::default() }).await;

    let report = w.berth.sweep(t + Duration::seconds(1)).await.expect("the sweeper runs");
    assert_eq!(report.released, 0);
    let held = w.deployment(d.id).await;
    assert_eq!((held.status, held.scheduled_at), (DeploymentStatus::Scheduled, Some(t + Duration::hours(1))));
    assert!(w.dispatch().await.is_empty());
}
