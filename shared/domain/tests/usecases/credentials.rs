//! The credential lifecycle: registration tokens expire and are re-issued,
//! agents rotate their credential, admins revoke a runtime.

use crate::fixture::*;
use berth_domain::ports::RuntimeStore;
use berth_domain::runtime::{RegistrationTtl, RuntimeKind};
use berth_domain::usecases::{AgentRequest, CreatedRuntime};
use berth_domain::values::Role;
use chrono::{Duration, Utc};

async fn created(w: &World) -> CreatedRuntime {
    w.berth.create_runtime(&w.admin, name("edge"), RuntimeKind::OnPremise).await.expect("the runtime is created")
}

async fn register(w: &World, token: &str) -> berth_domain::Result<String> {
    w.berth.register_agent(token, None, "1.0.0", &AgentRequest::default()).await.map(|r| r.credential.reveal())
}

async fn works(w: &World, credential: &str) -> bool {
    w.berth.authenticate_runtime(credential, &AgentRequest::default()).await.is_ok()
}

#[tokio::test]
async fn a_registration_token_is_valid_a_day_by_default_and_refused_as_expired_after() {
    let w = World::new().await;
    let before = Utc::now();
    let c = created(&w).await;
    let expires_at = c.runtime.registration_expires_at.expect("an expiry");
    assert!(expires_at >= before + Duration::hours(24) && expires_at <= Utc::now() + Duration::hours(24));

    // A day later, as the store would hold it.
    let read = c.runtime.credentials();
    let past = berth_domain::runtime::Credentials { registration_expires_at: Some(Utc::now() - Duration::seconds(1)), ..read.clone() };
    w.store.swap_credentials(w.tenant, c.runtime.id, &read, &past, None).await.expect("backdated");
    let refusal = refused(register(&w, &c.registration_token.reveal()).await);
    assert_eq!((refusal.code(), refusal.to_string().contains("expired")), ("registration_token_expired", true));
    assert!(matches!(refusal, berth_domain::DomainError::Unauthenticated { .. }), "a 401");
    assert_eq!(refused(register(&w, "brr_garbage").await).code(), "unauthenticated", "an unknown token is not told apart from an expired one");
}

#[tokio::test]
async fn a_rotated_credential_leaves_the_old_one_working_until_it_is_first_used() {
    let w = World::new().await;
    let c = created(&w).await;
    let old = register(&w, &c.registration_token.reveal()).await.expect("registered");
    let ctx = w.berth.authenticate_runtime(&old, &AgentRequest::default()).await.expect("authenticated");

    let lost = w.berth.rotate_credential(&ctx).await.expect("rotated").reveal();
    let ctx = w.berth.authenticate_runtime(&old, &AgentRequest::default()).await.expect("the old one still works: the answer was lost");
    let new = w.berth.rotate_credential(&ctx).await.expect("rotated again").reveal();
    assert!(!works(&w, &lost).await, "rotating again voids the rotated credential never used");
    assert!(works(&w, &old).await, "the old one works until the new one is used");

    assert!(works(&w, &new).await, "the new one works");
    assert!(!works(&w, &old).await, "once the new one was used the old one is refused");
    assert!(works(&w, &new).await, "and the new one keeps working");
    let rotations = w.audit_actions(c.runtime.id).await.into_iter().filter(|a| a == "runtime.credential_rotated").count();
    assert_eq!(rotations, 2);
}

#[tokio::test]
async fn a_revoked_runtime_accepts_no_credential_until_a_reissued_token_registers_it_again() {
    let w = World::new().await;
    let c = created(&w).await;
    let credential = register(&w, &c.registration_token.reveal()).await.expect("registered");
    let ctx = w.berth.authenticate_runtime(&credential, &AgentRequest::default()).await.expect("authenticated");
    let pending = w.berth.rotate_credential(&ctx).await.expect("rotated").reveal();

    let revoked = w.berth.revoke_runtime(&w.admin, c.runtime.id).await.expect("revoked");
    assert!(revoked.revoked_at.is_some());
    assert!(!works(&w, &credential).await && !works(&w, &pending).await, "neither the current nor the rotated credential works");
    assert_eq!(refused(w.berth.revoke_runtime(&w.ann, c.runtime.id).await).code(), "forbidden", "only an admin revokes");

    let issued = w.berth.reissue_registration_token(&w.admin, c.runtime.id, RegistrationTtl::default()).await.expect("re-issued");
    assert!(w.berth.get_runtime(&w.admin, c.runtime.id).await.expect("read").revoked_at.is_some(), "revoked until the new token is used");
    let back = register(&w, &issued.registration_token.reveal()).await.expect("the re-issued token registers");
    assert!(works(&w, &back).await);
    assert_eq!(w.berth.get_runtime(&w.admin, c.runtime.id).await.expect("read").revoked_at, None);
    let actions = w.audit_actions(c.runtime.id).await;
    for action in ["runtime.revoked", "runtime.registration_token_issued"] {
        assert!(actions.iter().any(|a| a == action), "{action} in {actions:?}");
    }
}

#[tokio::test]
async fn a_reissued_token_voids_the_old_one_and_its_registration_replaces_the_working_credential() {
    let w = World::new().await;
    let c = created(&w).await;
    let first = w.berth.reissue_registration_token(&w.admin, c.runtime.id, RegistrationTtl::parse(Some(600)).expect("a ttl")).await.expect("re-issued");
    assert_eq!(refused(register(&w, &c.registration_token.reveal()).await).code(), "unauthenticated", "the original token is void");
    let machine_a = register(&w, &first.registration_token.reveal()).await.expect("registered");

    // Replacing the machine: the old one keeps working until the new one registers.
    let second = w.berth.reissue_registration_token(&w.admin, c.runtime.id, RegistrationTtl::default()).await.expect("re-issued");
    assert!(works(&w, &machine_a).await, "the current credential works until the new token is used");
    assert_eq!(refused(register(&w, &first.registration_token.reveal()).await).code(), "unauthenticated", "a used token stays void");
    let machine_b = register(&w, &second.registration_token.reveal()).await.expect("the new machine registers");
    assert!(works(&w, &machine_b).await);
    assert!(!works(&w, &machine_a).await, "the new registration replaced the old machine's credential");

    let deployer = w.user("dan@acme.example", &[Role::Deployer]);
    assert_eq!(refused(w.berth.reissue_registration_token(&deployer, c.runtime.id, RegistrationTtl::default()).await).code(), "forbidden");
}
