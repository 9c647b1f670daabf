//! API keys: made by an admin with at most their roles, shown once, opened
//! only by their secret while live, every use acting as `api-key:<id>`.

use crate::fixture::{ADMIN, World, deploy_input, name, refused};
use berth_domain::DomainError;
use berth_domain::api_key::{ApiKey, NewApiKey};
use berth_domain::audit::AuditDraft;
use berth_domain::context::{Actor, ActorKind, TenantCtx};
use berth_domain::ids::ApiKeyId;
use berth_domain::page::PageRequest;
use berth_domain::ports::ApiKeyStore;
use berth_domain::secret::ApiKeyToken;
use berth_domain::usecases::{ApiKeyPrincipal, AuditFilter, CreatedApiKey};
use berth_domain::values::Role;
use chrono::{Duration, Utc};

fn new_key(roles: &[Role]) -> NewApiKey {
    NewApiKey { name: name("ci-main"), roles: roles.to_vec(), expires_at: None }
}

/// An admin who also deploys and builds, as a CI owner would be.
fn ci_owner(w: &World) -> TenantCtx {
    w.user(ADMIN, &[Role::Admin, Role::Deployer, Role::Developer])
}

/// What the portal API makes of a request authenticated by the key.
fn acting_as(principal: &ApiKeyPrincipal) -> TenantCtx {
    TenantCtx {
        tenant: principal.tenant,
        actor: Actor::api_key(principal.id),
        roles: principal.roles.clone(),
        request_id: "req-ci".into(),
        client_request_id: None,
        tenant_suspended: false,
    }
}

async fn make(w: &World, roles: &[Role]) -> CreatedApiKey {
    w.berth.create_api_key(&ci_owner(w), new_key(roles)).await.expect("the key is made")
}

#[tokio::test]
async fn a_key_made_by_an_admin_opens_with_its_roles_and_what_it_does_is_attributed_to_it() {
    let w = World::new().await;
    let made = make(&w, &[Role::Deployer]).await;
    assert_eq!((made.key.roles.as_slice(), made.key.created_by.as_str()), (&[Role::Deployer][..], ADMIN));
    assert!((made.key.expires_at - (Utc::now() + Duration::days(90))).num_seconds().abs() < 5, "90 days by default");

    let principal = w.berth.authenticate_api_key(&made.token.reveal()).await.expect("the key opens");
    assert_eq!(principal, ApiKeyPrincipal { tenant: w.tenant, id: made.key.id, roles: vec![Role::Deployer] });
    let ci = acting_as(&principal);
    let d = w.berth.create_deployment(&ci, deploy_input(&w.v1, w.test.id)).await.expect("the key deploys");
    assert_eq!(d.requested_by, format!("api-key:{}", made.key.id));

    let filter = AuditFilter { actor: Some(format!("api-key:{}", made.key.id)), ..AuditFilter::default() };
    let by_key = w.berth.list_audit(&w.admin, &filter, &PageRequest::first(100)).await.expect("the trail is listed").items;
    assert_eq!(by_key.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), ["deployment.requested"]);
    assert_eq!(by_key[0].actor.kind, ActorKind::ApiKey);
    assert_eq!(w.audit_actions(made.key.id).await, ["api_key.created"]);
}

#[tokio::test]
async fn only_an_admin_person_may_make_a_key_and_only_with_roles_they_hold() {
    let w = World::new().await;
    for roles in [&[Role::Developer][..], &[Role::Viewer], &[Role::Deployer, Role::Developer]] {
        let refusal = refused(w.berth.create_api_key(&w.user("dev@acme.example", roles), new_key(&[Role::Viewer])).await);
        assert_eq!(refusal.code(), "forbidden", "{roles:?}");
    }
    let refusal = refused(w.berth.create_api_key(&w.admin, new_key(&[Role::Admin, Role::Deployer])).await);
    assert_eq!(refusal.code(), "roles_exceed_creator", "an admin does not hold deployer");
    assert!(matches!(refusal, DomainError::Forbidden { .. }));

    let admin_key = make(&w, &[Role::Admin]).await;
    let as_key = acting_as(&w.berth.authenticate_api_key(&admin_key.token.reveal()).await.expect("opens"));
    assert_eq!(refused(w.berth.create_api_key(&as_key, new_key(&[Role::Admin])).await).code(), "forbidden", "a key cannot mint keys");

    let listed = w.berth.list_api_keys(&w.admin, &PageRequest::first(100)).await.expect("listed").items;
    assert_eq!(listed.iter().map(|k| k.id).collect::<Vec<_>>(), [admin_key.key.id], "the refused ones wrote nothing");
}

#[tokio::test]
async fn an_unknown_revoked_expired_or_wrong_key_gets_the_same_refusal() {
    let w = World::new().await;
    let live = make(&w, &[Role::Deployer]).await;
    let revoked = make(&w, &[Role::Deployer]).await;
    w.berth.revoke_api_key(&w.admin, revoked.key.id).await.expect("revoked");
    let expired = ApiKeyToken::generate(w.tenant, ApiKeyId::new()).expect("a key");
    let past = Utc::now() - Duration::days(1);
    let stored = ApiKey { id: expired.key, hash: expired.hash(), expires_at: past, created_at: past - Duration::days(1), ..live.key.clone() };
    let draft = AuditDraft::new(&Actor::user(ADMIN), "req", "api_key.created", "api_key", expired.key, serde_json::json!({}));
    w.store.create_api_key(w.tenant, &stored, draft).await.expect("an expired key is stored");
    let wrong_secret = ApiKeyToken::generate(w.tenant, live.key.id).expect("a key");
    let other_tenant = ApiKeyToken::generate(berth_domain::ids::TenantId::new(), live.key.id).expect("a key");

    let mut answers = vec![];
    for raw in [
        ApiKeyToken::generate(w.tenant, ApiKeyId::new()).expect("a key").reveal(),
        revoked.token.reveal(),
        expired.reveal(),
        wrong_secret.reveal(),
        other_tenant.reveal(),
        "bak_garbage".to_string(),
    ] {
        let refusal = refused(w.berth.authenticate_api_key(&raw).await);
        answers.push((refusal.code(), refusal.to_string()));
    }
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
    assert_eq!(answers[0].0, "unauthenticated");
    w.berth.authenticate_api_key(&live.token.reveal()).await.expect("the live key still opens");
}

#[tokio::test]
async fn revoking_twice_is_quiet_the_record_stays_and_another_tenants_key_is_not_found() {
    let w = World::new().await;
    let made = make(&w, &[Role::Deployer]).await;
    let first = w.berth.revoke_api_key(&w.admin, made.key.id).await.expect("revoked");
    let again = w.berth.revoke_api_key(&w.admin, made.key.id).await.expect("revoking again is no error");
    assert_eq!(again.revoked_at, first.revoked_at, "the first revocation stands");
    assert_eq!(w.berth.get_api_key(&w.ann, made.key.id).await.expect("kept").revoked_at, first.revoked_at, "anyone of the tenant reads it");
    assert_eq!(w.audit_actions(made.key.id).await, ["api_key.created", "api_key.revoked"]);
    assert_eq!(refused(w.berth.revoke_api_key(&w.ann, made.key.id).await).code(), "forbidden", "a deployer may not revoke");

    let globex = World::new().await;
    assert_eq!(refused(globex.berth.get_api_key(&globex.admin, made.key.id).await).code(), "not_found");
    assert_eq!(refused(globex.berth.revoke_api_key(&globex.admin, made.key.id).await).code(), "not_found");
}

#[tokio::test]
async fn a_use_is_recorded_once_a_minute_at_most() {
    let w = World::new().await;
    let made = make(&w, &[Role::Developer]).await;
    let raw = made.token.reveal();
    assert_eq!(w.berth.get_api_key(&w.admin, made.key.id).await.expect("read").last_used_at, None);
    w.berth.authenticate_api_key(&raw).await.expect("opens");
    let first = w.berth.get_api_key(&w.admin, made.key.id).await.expect("read").last_used_at.expect("the use is recorded");
    w.berth.authenticate_api_key(&raw).await.expect("opens");
    assert_eq!(w.berth.get_api_key(&w.admin, made.key.id).await.expect("read").last_used_at, Some(first), "not again within the minute");
    assert_eq!(w.audit_actions(made.key.id).await, ["api_key.created"], "uses are not audited");
}
