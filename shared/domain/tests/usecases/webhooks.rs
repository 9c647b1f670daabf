//! Webhooks: a signed delivery packages and deploys as the webhook, through
//! the environment's policy like anyone's request; signatures, replays,
//! rotation and the rate limit decide what is let in at all.

use crate::fixture::{World, freeze_now, refused};
use berth_domain::deployment::{DeploymentStatus, TargetState};
use berth_domain::ids::WebhookId;
use berth_domain::page::PageRequest;
use berth_domain::policy::Policy;
use berth_domain::usecases::{IncomingDelivery, RevisionInput, WebhookWithSecret};
use berth_domain::values::{Name, Role};
use berth_domain::webhook::signature::{berth_header, github_header};
use berth_domain::webhook::{DELIVERIES_PER_MINUTE, DeliveryOutcome, NewWebhook, WebhookAction, WebhookPatch};
use chrono::Utc;

async fn webhook(w: &World, action: WebhookAction, env: berth_domain::ids::EnvironmentId, hold_if_frozen: bool) -> WebhookWithSecret {
    let input = NewWebhook { name: Name::parse("main to Test").unwrap(), action, environment_id: env, component_id: w.orders.id, hold_if_frozen };
    w.berth.create_webhook(&w.admin, input).await.expect("the admin creates the webhook")
}

/// A Berth delivery of `body` with id `id`, signed now with `secret`.
fn signed(hook: WebhookId, secret: &str, id: &str, body: &str) -> IncomingDelivery {
    signed_at(hook, secret, id, body, Utc::now().timestamp())
}

fn signed_at(hook: WebhookId, secret: &str, id: &str, body: &str, t: i64) -> IncomingDelivery {
    IncomingDelivery {
        webhook: hook.to_string(),
        berth_signature: Some(berth_header(secret.as_bytes(), t, body.as_bytes())),
        delivery_id: Some(id.to_string()),
        body: body.as_bytes().to_vec(),
        request_id: format!("req-{id}"),
        ..IncomingDelivery::default()
    }
}

async fn revise_orders(w: &World, content: &str) {
    let input = RevisionInput { content: Some(content.as_bytes().to_vec()), references: None, extensions: None };
    w.berth.revise_component(&w.admin, w.orders.id, input, None).await.expect("Orders is revised");
}

#[tokio::test]
async fn a_signed_delivery_packages_the_new_revision_and_deploys_it_as_the_webhook() {
    let w = World::new().await;
    let hook = webhook(&w, WebhookAction::PackageAndDeploy, w.test.id, false).await;
    revise_orders(&w, "orders v2").await;

    let body = r#"{"version":"2.0","commit":"9f2c1e7","notes":"merged #42"}"#;
    let receipt = w.berth.receive_delivery(signed(hook.webhook.id, hook.secret.reveal(), "d-1", body)).await.expect("the delivery is accepted");
    assert_eq!((receipt.outcome, receipt.status), (DeliveryOutcome::Accepted, Some(DeploymentStatus::Queued)));

    let package = w.berth.get_package(&w.admin, receipt.package_id.unwrap()).await.unwrap().package;
    assert_eq!((package.version.as_str(), package.commit.as_deref()), ("2.0", Some("9f2c1e7")));
    assert_eq!(package.manifest.components[0].revision, 2, "the latest revision is packaged");
    let d = w.deployment(receipt.deployment_id.unwrap()).await;
    let actor = format!("webhook:{}", hook.webhook.id);
    assert_eq!((d.requested_by.as_str(), d.commit.as_deref(), d.notes.as_str()), (actor.as_str(), Some("9f2c1e7"), "merged #42"));
    assert_eq!(package.created_by, actor);

    w.run(TargetState::Deployed).await;
    assert_eq!(w.active_orders(w.test.id).await.as_deref(), Some("2.0"));
    let history = w.berth.list_deliveries(&w.admin, hook.webhook.id, &PageRequest::first(10)).await.unwrap().items;
    assert_eq!(history.len(), 1);
    assert_eq!((history[0].outcome, history[0].deployment_id), (DeliveryOutcome::Accepted, Some(d.id)));
}

#[tokio::test]
async fn a_delivery_reuses_the_newest_package_when_the_component_has_not_changed_since() {
    let w = World::new().await;
    let hook = webhook(&w, WebhookAction::PackageAndDeploy, w.test.id, false).await;
    let receipt = w.berth.receive_delivery(signed(hook.webhook.id, hook.secret.reveal(), "d-1", "")).await.expect("accepted");
    assert_eq!(receipt.package_id, Some(w.v1.id), "Orders is unchanged since v1");
}

#[tokio::test]
async fn a_replayed_delivery_id_is_refused_and_does_nothing() {
    let w = World::new().await;
    let hook = webhook(&w, WebhookAction::PackageAndDeploy, w.test.id, false).await;
    w.berth.receive_delivery(signed(hook.webhook.id, hook.secret.reveal(), "d-1", "{}")).await.expect("accepted");
    let replay = refused(w.berth.receive_delivery(signed(hook.webhook.id, hook.secret.reveal(), "d-1", "{}")).await);
    assert_eq!(replay.code(), "duplicate_delivery");
    assert_eq!(w.deployments().await.len(), 1);
    assert_eq!(w.berth.list_deliveries(&w.admin, hook.webhook.id, &PageRequest::first(10)).await.unwrap().items.len(), 1);
}

#[tokio::test]
async fn a_bad_or_stale_signature_is_refused_recorded_and_does_not_take_the_delivery_id() {
    let w = World::new().await;
    let hook = webhook(&w, WebhookAction::PackageAndDeploy, w.test.id, false).await;
    let id = hook.webhook.id;
    assert_eq!(refused(w.berth.receive_delivery(signed(id, "whsec_wrong", "d-1", "{}")).await).code(), "bad_signature");
    let stale = signed_at(id, hook.secret.reveal(), "d-1", "{}", Utc::now().timestamp() - 301);
    assert_eq!(refused(w.berth.receive_delivery(stale).await).code(), "stale_signature");
    let unsigned = IncomingDelivery { berth_signature: None, ..signed(id, hook.secret.reveal(), "d-1", "{}") };
    assert_eq!(refused(w.berth.receive_delivery(unsigned).await).code(), "signature_required");
    assert!(w.deployments().await.is_empty());

    let history = w.berth.list_deliveries(&w.admin, id, &PageRequest::first(10)).await.unwrap().items;
    let codes: Vec<_> = history.iter().map(|d| (d.outcome, d.code.clone().unwrap_or_default(), d.authenticated)).collect();
    assert_eq!(codes.len(), 3);
    assert!(codes.iter().all(|(o, _, authenticated)| *o == DeliveryOutcome::Refused && !authenticated), "{codes:?}");
    // The owner's delivery with the same id still goes through: the refusals did not claim it.
    w.berth.receive_delivery(signed(id, hook.secret.reveal(), "d-1", "{}")).await.expect("the real delivery is accepted");
}

#[tokio::test]
async fn an_unknown_or_deleted_webhook_is_not_found() {
    let w = World::new().await;
    let hook = webhook(&w, WebhookAction::PackageAndDeploy, w.test.id, false).await;
    for raw in [WebhookId::new().to_string(), "not-an-id".to_string()] {
        let e = refused(w.berth.receive_delivery(IncomingDelivery { webhook: raw, ..signed(hook.webhook.id, hook.secret.reveal(), "d", "{}") }).await);
        assert_eq!(e.code(), "not_found");
    }
    w.berth.delete_webhook(&w.admin, hook.webhook.id).await.expect("deleted");
    assert_eq!(refused(w.berth.receive_delivery(signed(hook.webhook.id, hook.secret.reveal(), "d", "{}")).await).code(), "not_found");
}

#[tokio::test]
async fn a_webhook_requests_through_the_policy_and_never_bypasses_approvals() {
    let w = World::new().await;
    w.set_policy(w.prod.id, Policy { required_approvals: 1, ..Policy::default() }).await;
    let hook = webhook(&w, WebhookAction::PackageAndDeploy, w.prod.id, false).await;
    let receipt = w.berth.receive_delivery(signed(hook.webhook.id, hook.secret.reveal(), "d-1", "{}")).await.expect("accepted");
    assert_eq!(receipt.status, Some(DeploymentStatus::PendingApproval));
    assert!(w.dispatch().await.is_empty(), "nothing runs before an approval");
}

#[tokio::test]
async fn inside_a_freeze_window_a_delivery_is_refused_or_held_as_the_webhook_says() {
    let w = World::new().await;
    w.set_policy(w.prod.id, Policy { freeze_windows: vec![freeze_now()], ..Policy::default() }).await;
    let strict = webhook(&w, WebhookAction::PackageAndDeploy, w.prod.id, false).await;
    let e = refused(w.berth.receive_delivery(signed(strict.webhook.id, strict.secret.reveal(), "d-1", "{}")).await);
    assert_eq!(e.code(), "freeze_window");
    let history = w.berth.list_deliveries(&w.admin, strict.webhook.id, &PageRequest::first(10)).await.unwrap().items;
    assert_eq!((history[0].outcome, history[0].code.as_deref(), history[0].authenticated), (DeliveryOutcome::Refused, Some("freeze_window"), true));

    let patient = webhook(&w, WebhookAction::PackageAndDeploy, w.prod.id, true).await;
    let receipt = w.berth.receive_delivery(signed(patient.webhook.id, patient.secret.reveal(), "d-1", "{}")).await.expect("held");
    assert_eq!(receipt.status, Some(DeploymentStatus::Scheduled));
}

#[tokio::test]
async fn after_a_rotation_both_secrets_verify_during_the_overlap_and_only_the_new_one_without() {
    let w = World::new().await;
    let hook = webhook(&w, WebhookAction::PackageAndDeploy, w.test.id, false).await;
    let old = hook.secret.reveal().to_string();
    let id = hook.webhook.id;
    let rotated = w.berth.rotate_webhook_secret(&w.admin, id, Some(3600)).await.expect("rotated");
    assert_ne!(rotated.secret.reveal(), old);
    w.berth.receive_delivery(signed(id, &old, "d-old", "{}")).await.expect("the old secret verifies during the overlap");

    let again = w.berth.rotate_webhook_secret(&w.admin, id, Some(0)).await.expect("rotated without overlap");
    let e = refused(w.berth.receive_delivery(signed(id, rotated.secret.reveal(), "d-2", "{}")).await);
    assert_eq!(e.code(), "bad_signature", "the previous secret stopped at once");
    assert_eq!(refused(w.berth.receive_delivery(signed(id, &old, "d-3", "{}")).await).code(), "bad_signature");
    let e = refused(w.berth.receive_delivery(signed(id, again.secret.reveal(), "d-4", "{}")).await);
    assert_eq!(e.code(), "deployment_in_progress", "the newest secret verifies (and the first deployment still holds the lock)");
}

#[tokio::test]
async fn deploy_version_deploys_the_named_version_and_needs_one() {
    let w = World::new().await;
    let hook = webhook(&w, WebhookAction::DeployVersion, w.test.id, false).await;
    let (id, secret) = (hook.webhook.id, hook.secret.reveal());
    assert_eq!(refused(w.berth.receive_delivery(signed(id, secret, "d-1", "{}")).await).code(), "version_required");
    assert_eq!(refused(w.berth.receive_delivery(signed(id, secret, "d-2", r#"{"version":"9"}"#)).await).code(), "not_found");
    let receipt = w.berth.receive_delivery(signed(id, secret, "d-3", r#"{"version":"v1"}"#)).await.expect("accepted");
    assert_eq!(receipt.package_id, Some(w.v1.id));
}

#[tokio::test]
async fn more_than_sixty_deliveries_a_minute_are_refused_with_a_retry_after() {
    let w = World::new().await;
    let hook = webhook(&w, WebhookAction::PackageAndDeploy, w.test.id, false).await;
    let mut last = None;
    // Refused deliveries count too: a flood costs a counter write, not a secret opened.
    for n in 0..=DELIVERIES_PER_MINUTE {
        last = Some(w.berth.receive_delivery(signed(hook.webhook.id, "whsec_wrong", &format!("d-{n}"), "{}")).await);
    }
    match last.unwrap() {
        Err(berth_domain::DomainError::RateLimited { retry_after_secs, .. }) => assert!((1..=60).contains(&retry_after_secs)),
        other => panic!("the 61st delivery in a minute is rate limited: {other:?}"),
    }
}

#[tokio::test]
async fn the_signed_status_call_reports_where_the_delivery_s_deployment_is() {
    let w = World::new().await;
    let hook = webhook(&w, WebhookAction::PackageAndDeploy, w.test.id, false).await;
    let (id, secret) = (hook.webhook.id, hook.secret.reveal());
    w.berth.receive_delivery(signed(id, secret, "d-1", "{}")).await.expect("accepted");
    let sign = |payload: &str| berth_header(secret.as_bytes(), Utc::now().timestamp(), payload.as_bytes());
    let status = w.berth.delivery_status(&id.to_string(), "d-1", Some(&sign("d-1"))).await.expect("the status answers");
    assert_eq!(status.status, Some(DeploymentStatus::Queued));
    w.run(TargetState::Deployed).await;
    let status = w.berth.delivery_status(&id.to_string(), "d-1", Some(&sign("d-1"))).await.expect("the status answers");
    assert_eq!(status.status, Some(DeploymentStatus::Succeeded));
    assert_eq!(refused(w.berth.delivery_status(&id.to_string(), "d-1", Some(&sign("d-2"))).await).code(), "bad_signature");
    assert_eq!(refused(w.berth.delivery_status(&id.to_string(), "d-9", Some(&sign("d-9"))).await).code(), "not_found");
}

#[tokio::test]
async fn a_github_push_deploys_with_its_after_commit_and_a_ping_does_nothing() {
    let w = World::new().await;
    let hook = webhook(&w, WebhookAction::PackageAndDeploy, w.test.id, false).await;
    let github = |event: &str, id: &str, body: &str| IncomingDelivery {
        webhook: hook.webhook.id.to_string(),
        github_signature: Some(github_header(hook.secret.reveal().as_bytes(), body.as_bytes())),
        delivery_id: Some(id.to_string()),
        github_event: Some(event.to_string()),
        body: body.as_bytes().to_vec(),
        ..IncomingDelivery::default()
    };
    let ping = w.berth.receive_delivery(github("ping", "g-1", r#"{"zen":"Keep it logically awesome."}"#)).await.expect("a ping is answered");
    assert_eq!((ping.outcome, ping.deployment_id), (DeliveryOutcome::Ignored, None));
    let push =
        r#"{"ref":"refs/heads/main","after":"0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c","repository":{"full_name":"acme/orders","default_branch":"main"}}"#;
    let receipt = w.berth.receive_delivery(github("push", "g-2", push)).await.expect("a push deploys");
    let d = w.deployment(receipt.deployment_id.unwrap()).await;
    assert_eq!(d.commit.as_deref(), Some("0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"));
}

#[tokio::test]
async fn only_admins_manage_webhooks_and_a_disabled_one_refuses_deliveries() {
    let w = World::new().await;
    let input = NewWebhook {
        name: Name::parse("ci").unwrap(),
        action: WebhookAction::PackageAndDeploy,
        environment_id: w.test.id,
        component_id: w.orders.id,
        hold_if_frozen: false,
    };
    assert_eq!(refused(w.berth.create_webhook(&w.ann, input).await).code(), "forbidden");
    let hook = webhook(&w, WebhookAction::PackageAndDeploy, w.test.id, false).await;
    assert_eq!(hook.webhook.roles, [Role::Admin], "it acts with its creator's roles");
    let stored = w.berth.get_webhook(&w.admin, hook.webhook.id).await.unwrap();
    assert!(stored.secrets.iter().all(|s| !s.sealed.0.contains(hook.secret.reveal())), "only the sealed secret is stored");

    w.berth.patch_webhook(&w.admin, hook.webhook.id, WebhookPatch { active: Some(false), ..WebhookPatch::default() }, None).await.expect("disabled");
    let e = refused(w.berth.receive_delivery(signed(hook.webhook.id, hook.secret.reveal(), "d-1", "{}")).await);
    assert_eq!(e.code(), "webhook_disabled");
    assert_eq!(w.audit_actions(hook.webhook.id).await, ["webhook.created", "webhook.updated"]);
}

#[tokio::test]
async fn a_rolled_back_version_is_refused_to_a_webhook_as_quarantined_and_recorded() {
    let w = World::new().await;
    w.deploy_active(&w.v1, w.prod.id).await;
    let v2 = w.next_orders("v2").await;
    let d = w.request(&w.admin, &v2, w.prod.id).await.expect("v2 is accepted");
    w.dispatch().await;
    while let Some(job) = w.atom.next_job(&w.berth).await {
        for phase in [TargetState::Downloading, TargetState::Applying, TargetState::Failed, TargetState::Restored] {
            w.atom.report(&w.berth, job.job_id, phase).await.expect("the agent reports");
        }
    }
    assert_eq!(w.status(&d).await, DeploymentStatus::RolledBack);

    let hook = webhook(&w, WebhookAction::DeployVersion, w.prod.id, false).await;
    let e = refused(w.berth.receive_delivery(signed(hook.webhook.id, hook.secret.reveal(), "d-1", r#"{"version":"v2"}"#)).await);
    assert_eq!(e.code(), "quarantined");
    let history = w.berth.list_deliveries(&w.admin, hook.webhook.id, &PageRequest::first(10)).await.unwrap().items;
    assert_eq!((history[0].code.as_deref(), history[0].package_id), (Some("quarantined"), Some(v2.id)));
}
