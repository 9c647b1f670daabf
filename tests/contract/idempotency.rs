use crate::stores::Stores;
use berth_domain::ports::{IdempotencyScope, Reservation, StoredResponse};
use berth_domain::values::Plan;

pub async fn an_idempotency_key_is_reserved_once_replayed_when_completed_and_free_again_when_released(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let scope = IdempotencyScope::Tenant(acme);
    let store = &s.idempotency;
    let response = StoredResponse { status: 201, headers: vec![("location".into(), "/v1/environments/1".into())], body: br#"{"id":"1"}"#.to_vec() };

    assert_eq!(store.reserve(scope, "key-1", "fp-1").await.expect("reserve"), Reservation::Reserved);
    assert_eq!(
        store.reserve(scope, "key-1", "fp-2").await.expect("reserve"),
        Reservation::InProgress { fingerprint: "fp-1".into() },
        "the first request's fingerprint"
    );
    store.complete(scope, "key-1", "fp-1", &response).await.expect("complete");
    let replay = Reservation::Completed { fingerprint: "fp-1".into(), response: response.clone() };
    assert_eq!(store.reserve(scope, "key-1", "fp-1").await.expect("reserve"), replay);
    store.release(scope, "key-1").await.expect("releasing a completed key is a no-op");
    assert_eq!(store.reserve(scope, "key-1", "fp-1").await.expect("reserve"), replay, "a completed key stays completed");

    assert_eq!(store.reserve(scope, "key-2", "fp-2").await.expect("reserve"), Reservation::Reserved);
    store.release(scope, "key-2").await.expect("release");
    assert_eq!(store.reserve(scope, "key-2", "fp-2").await.expect("reserve"), Reservation::Reserved, "a released key can be retried");
    store.release(scope, "never-reserved").await.expect("releasing an unknown key is a no-op");

    // Keys are per tenant: the same key elsewhere is new.
    let globex = s.tenant(Plan::default()).await;
    assert_eq!(store.reserve(IdempotencyScope::Tenant(globex), "key-1", "fp-1").await.expect("reserve"), Reservation::Reserved);
    assert_eq!(store.reserve(IdempotencyScope::Platform, "key-1", "fp-1").await.expect("reserve"), Reservation::Reserved);
}
