//! The credential lifecycle's store contract: `swap_credentials` replaces a
//! runtime's credentials only from what was read (a rotation, revoke, re-issue
//! or registration is never lost to a concurrent one), and a registration
//! leaves exactly one credential.

use crate::fixtures::*;
use crate::stores::Stores;
use berth_domain::ids::RuntimeId;
use berth_domain::refusal::{Entity, Refusal};
use berth_domain::runtime::Credentials;
use berth_domain::secret::{RuntimeToken, SecretHash, TokenKind};
use berth_domain::values::Plan;
use chrono::{Duration, Utc};

fn credential(tenant: berth_domain::ids::TenantId, runtime: RuntimeId) -> SecretHash {
    RuntimeToken::generate(TokenKind::RuntimeCredential, tenant, runtime).expect("a token").hash()
}

pub async fn a_runtime_reads_back_its_registration_expiry(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let runtime = s.create_runtime(acme, "atom-1").await.expect("created");
    let stored = s.read_runtime(acme, runtime.id).await;
    assert_eq!(stored.credentials(), runtime.credentials(), "the registration hash and its expiry read back as written");
    assert!(stored.registration_expires_at.is_some());
}

pub async fn credentials_are_swapped_only_from_what_was_read_and_each_swap_is_audited_when_asked(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let runtime = s.create_runtime(acme, "atom-1").await.expect("created");
    let id = runtime.id;
    let read = runtime.credentials();

    let reissued = read.reissued(RuntimeToken::generate(TokenKind::Registration, acme, id).expect("a token").hash(), Utc::now() + Duration::hours(1));
    let audit = draft("runtime.registration_token_issued", "runtime", id);
    s.runtimes.swap_credentials(acme, id, &read, &reissued, Some(audit)).await.expect("swapped from what was read");
    assert_eq!(s.read_runtime(acme, id).await.credentials(), reissued);

    let rotated = read.rotated(credential(acme, id));
    let stale = s.runtimes.swap_credentials(acme, id, &read, &rotated, Some(draft("runtime.credential_rotated", "runtime", id))).await;
    assert_eq!(refused(stale), Refusal::Stale(Entity::Runtime), "a swap from credentials since replaced is refused");
    assert_eq!(s.read_runtime(acme, id).await.credentials(), reissued, "the refused swap changed nothing");

    // A rotated credential promoted without an audit event, then a revoke clearing everything.
    let with_pending = Credentials { credential_hash: Some(credential(acme, id)), ..reissued.clone() }.rotated(credential(acme, id));
    s.runtimes.swap_credentials(acme, id, &reissued, &with_pending, None).await.expect("swapped");
    s.runtimes.swap_credentials(acme, id, &with_pending, &with_pending.promoted(), None).await.expect("promoted");
    let promoted = s.read_runtime(acme, id).await;
    assert_eq!((promoted.credential_hash, promoted.pending_credential_hash), (with_pending.pending_credential_hash.clone(), None));
    let revoked = with_pending.promoted().revoked(Utc::now());
    s.runtimes.swap_credentials(acme, id, &with_pending.promoted(), &revoked, Some(draft("runtime.revoked", "runtime", id))).await.expect("revoked");
    let stored = s.read_runtime(acme, id).await;
    assert_eq!(stored.credentials(), revoked);
    assert_eq!((stored.credential_hash, stored.registration_hash), (None, None), "nothing works after a revoke");

    let gone = s.runtimes.swap_credentials(acme, RuntimeId::new(), &read, &reissued, Some(draft("runtime.revoked", "runtime", id))).await;
    assert_eq!(refused(gone), Refusal::Stale(Entity::Runtime), "a missing runtime is refused");
    let audited: Vec<String> = s.actions(acme).await.into_iter().filter(|a| a != "tenant.created" && a != "runtime.created").collect();
    assert_eq!(audited, ["runtime.registration_token_issued", "runtime.revoked"], "only the swaps that happened and asked for it are audited");
}

pub async fn a_registration_leaves_one_credential_nothing_pending_and_not_revoked(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let runtime = s.create_runtime(acme, "atom-1").await.expect("created");
    let id = runtime.id;
    // Revoked, then a token re-issued: the runtime's state before its agent registers again.
    let revoked = runtime.credentials().revoked(Utc::now());
    s.runtimes.swap_credentials(acme, id, &runtime.credentials(), &revoked, None).await.expect("revoked");
    let token = RuntimeToken::generate(TokenKind::Registration, acme, id).expect("a token").hash();
    let reissued = revoked.reissued(token.clone(), Utc::now() + Duration::hours(1));
    s.runtimes.swap_credentials(acme, id, &revoked, &reissued, None).await.expect("re-issued");

    let new = credential(acme, id);
    s.runtimes.complete_registration(acme, id, &token, &new, None, "1.0.0", draft("runtime.registered", "runtime", id)).await.expect("registered");
    assert_eq!(s.read_runtime(acme, id).await.credentials(), Credentials::registered(new), "no expiry, nothing pending, not revoked");
}

pub async fn of_two_concurrent_swaps_from_the_same_read_exactly_one_wins(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let runtime = s.create_runtime(acme, "atom-1").await.expect("created");
    let (id, read) = (runtime.id, runtime.credentials());
    let (a, b) = (read.rotated(credential(acme, id)), read.revoked(Utc::now()));
    let (first, second) = tokio::join!(
        s.runtimes.swap_credentials(acme, id, &read, &a, Some(draft("runtime.credential_rotated", "runtime", id))),
        s.runtimes.swap_credentials(acme, id, &read, &b, Some(draft("runtime.revoked", "runtime", id))),
    );
    assert!(first.is_ok() != second.is_ok(), "exactly one wins: {first:?} {second:?}");
    let stored = s.read_runtime(acme, id).await.credentials();
    assert_eq!(stored, if first.is_ok() { a } else { b }, "the winner's credentials are stored, the loser's are not");
    let audited = s.actions(acme).await.into_iter().filter(|a| a == "runtime.credential_rotated" || a == "runtime.revoked").count();
    assert_eq!(audited, 1, "only the winner is audited");
}
