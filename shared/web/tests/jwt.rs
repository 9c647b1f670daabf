//! The JWT verifier on its own: claims it must check, and the JWKS key
//! source (keys chosen by `kid`, pinned to their own algorithm, fetched
//! sparingly, trusted for a TTL), served here by a local HTTP server whose
//! key set the tests swap.

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use berth_web::auth::{AuthConfig, AuthFailure, ClaimSettings, Claims, JwksCachePolicy, JwtVerifier, KeySource, claims_for};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

const ISSUER: &str = "https://idp.example";
const AUDIENCE: &str = "berth-api";
const SECRET: &str = "a-test-secret-of-at-least-32-characters";

fn fixture(name: &str) -> String {
    let path = format!("{}/../../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

fn claims() -> Claims {
    claims_for(ISSUER, AUDIENCE, "alice@example.com", Some(uuid::Uuid::new_v4().to_string()), &["admin"], Duration::from_secs(600))
}

fn hs256_verifier() -> JwtVerifier {
    JwtVerifier::new(&AuthConfig { issuer: ISSUER.into(), audience: AUDIENCE.into(), keys: KeySource::Hs256Secret(SECRET.into()), claims: Default::default() })
        .expect("a verifier")
}

fn sign_json_hs256(claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(SECRET.as_bytes())).unwrap()
}

fn rsa_key(name: &str) -> EncodingKey {
    EncodingKey::from_rsa_pem(fixture(name).as_bytes()).expect("an RSA private key")
}

fn sign_rs256(key: &EncodingKey, kid: Option<&str>, claims: &Claims) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

fn assert_refused(result: Result<Claims, AuthFailure>, why: &str) {
    match result {
        Err(AuthFailure::Invalid(_)) => {}
        other => panic!("{why}: expected the token to be refused as invalid, got {other:?}"),
    }
}

#[tokio::test]
async fn a_token_signed_with_the_configured_secret_verifies_to_its_claims() {
    let c = claims();
    let verified = hs256_verifier().verify(&sign_json_hs256(&serde_json::to_value(&c).unwrap())).await.expect("a valid token");
    assert_eq!((verified.sub, verified.tenant_id, verified.roles), (c.sub, c.tenant_id, c.roles));
}

#[tokio::test]
async fn a_token_expired_a_minute_ago_is_refused() {
    let mut c = serde_json::to_value(claims()).unwrap();
    let now = jsonwebtoken::get_current_timestamp();
    c["exp"] = json!(now - 60);
    c["nbf"] = json!(now - 600);
    assert_refused(hs256_verifier().verify(&sign_json_hs256(&c)).await, "expired beyond the leeway");
}

#[tokio::test]
async fn a_token_without_sub_iss_or_aud_is_refused() {
    for claim in ["sub", "iss", "aud"] {
        let mut c = serde_json::to_value(claims()).unwrap();
        c.as_object_mut().unwrap().remove(claim);
        assert_refused(hs256_verifier().verify(&sign_json_hs256(&c)).await, &format!("no {claim}"));
    }
}

/// RFC 7519 §4.1.3: `aud` is in general an array; a token meant for this
/// API among others names it in that array.
#[tokio::test]
async fn a_token_whose_aud_is_a_list_naming_this_api_is_accepted() {
    let mut c = serde_json::to_value(claims()).unwrap();
    c["aud"] = json!([AUDIENCE, "https://idp.example/userinfo"]);
    let verified = hs256_verifier().verify(&sign_json_hs256(&c)).await;
    assert!(verified.is_ok(), "a list audience naming this API is accepted: {verified:?}");
}

#[tokio::test]
async fn a_token_whose_aud_is_a_list_not_naming_this_api_is_refused() {
    let mut c = serde_json::to_value(claims()).unwrap();
    c["aud"] = json!(["another-api", "https://idp.example/userinfo"]);
    assert_refused(hs256_verifier().verify(&sign_json_hs256(&c)).await, "another audience");
}

#[tokio::test]
async fn a_verifier_cannot_be_built_from_a_key_that_is_not_a_public_key_pem() {
    for pem in ["", "not a pem", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"] {
        let config = AuthConfig {
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
            keys: KeySource::PublicKeyPem { algorithm: Algorithm::RS256, pem: pem.into() },
            claims: Default::default(),
        };
        assert!(JwtVerifier::new(&config).is_err(), "{pem:?} is refused at start-up");
    }
}

/// What the test JWKS endpoint answers: the published keys, or a 500 while
/// `failing`; with `stall` set, each answer waits for a permit of it first.
#[derive(Default)]
struct Served {
    keys: Vec<Jwk>,
    failing: bool,
    stall: Option<Arc<Semaphore>>,
}

/// A JWKS endpoint whose key set the test can swap, counting its fetches.
struct Jwks {
    url: String,
    fetches: Arc<AtomicUsize>,
    served: Arc<Mutex<Served>>,
}

impl Jwks {
    fn publish(&self, keys: Vec<Jwk>) {
        self.served.lock().unwrap().keys = keys;
    }

    fn fail(&self, failing: bool) {
        self.served.lock().unwrap().failing = failing;
    }

    /// Holds every answer from now on until the returned gate gets permits.
    fn stall(&self) -> Arc<Semaphore> {
        let gate = Arc::new(Semaphore::new(0));
        self.served.lock().unwrap().stall = Some(gate.clone());
        gate
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

async fn serve_jwks(keys: Vec<Jwk>) -> Jwks {
    let fetches = Arc::new(AtomicUsize::new(0));
    let served = Arc::new(Mutex::new(Served { keys, ..Served::default() }));
    let (f, s) = (fetches.clone(), served.clone());
    let app = Router::new().route(
        "/.well-known/jwks.json",
        get(move || {
            let (f, s) = (f.clone(), s.clone());
            async move {
                f.fetch_add(1, Ordering::SeqCst);
                let stall = s.lock().unwrap().stall.clone();
                if let Some(gate) = stall {
                    let _permit = gate.acquire().await;
                }
                let served = s.lock().unwrap();
                if served.failing {
                    return StatusCode::INTERNAL_SERVER_ERROR.into_response();
                }
                Json(JwkSet { keys: served.keys.clone() }).into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Jwks { url: format!("http://{addr}/.well-known/jwks.json"), fetches, served }
}

fn public_jwk(private: &EncodingKey, kid: &str) -> Jwk {
    let mut jwk = Jwk::from_encoding_key(private, Algorithm::RS256).expect("a JWK");
    jwk.common.key_id = Some(kid.to_string());
    jwk
}

fn jwks_verifier(url: &str) -> JwtVerifier {
    jwks_verifier_with(url, JwksCachePolicy::default())
}

fn jwks_verifier_with(url: &str, cache: JwksCachePolicy) -> JwtVerifier {
    JwtVerifier::new(&AuthConfig {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        keys: KeySource::Jwks { url: url.into(), cache },
        claims: Default::default(),
    })
    .expect("a verifier")
}

fn cache(ttl: Duration, min_refetch_interval: Duration) -> JwksCachePolicy {
    JwksCachePolicy { ttl, min_refetch_interval }
}

/// Polls `condition` every 20 ms until it holds; panics after `within`.
/// Returns how long it took.
async fn eventually<F, Fut>(within: Duration, what: &str, mut condition: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if condition().await {
            return started.elapsed();
        }
        assert!(started.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn with_a_jwks_a_token_signed_by_a_published_key_under_its_kid_is_accepted() {
    let key = rsa_key("rs256-private.pem");
    let jwks = serve_jwks(vec![public_jwk(&rsa_key("rs256-other-private.pem"), "old"), public_jwk(&key, "current")]).await;
    let verifier = jwks_verifier(&jwks.url);
    let c = claims();
    let verified = verifier.verify(&sign_rs256(&key, Some("current"), &c)).await.expect("a valid token");
    assert_eq!(verified.tenant_id, c.tenant_id);
    // Cached: a second token costs no fetch.
    verifier.verify(&sign_rs256(&key, Some("current"), &claims())).await.expect("a valid token");
    assert_eq!(jwks.fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn with_a_jwks_a_token_signed_by_another_key_under_a_published_kid_is_refused() {
    let jwks = serve_jwks(vec![public_jwk(&rsa_key("rs256-private.pem"), "current")]).await;
    let forged = sign_rs256(&rsa_key("rs256-other-private.pem"), Some("current"), &claims());
    assert_refused(jwks_verifier(&jwks.url).verify(&forged).await, "signed by an unpublished key");
}

#[tokio::test]
async fn with_a_jwks_a_token_without_a_kid_or_with_an_unknown_kid_is_refused() {
    let key = rsa_key("rs256-private.pem");
    let jwks = serve_jwks(vec![public_jwk(&key, "current")]).await;
    let verifier = jwks_verifier(&jwks.url);
    assert_refused(verifier.verify(&sign_rs256(&key, None, &claims())).await, "no kid");
    assert_refused(verifier.verify(&sign_rs256(&key, Some("retired"), &claims())).await, "unknown kid");
}

#[tokio::test]
async fn with_a_jwks_unknown_kids_do_not_make_the_verifier_refetch_more_than_once_a_minute() {
    let key = rsa_key("rs256-private.pem");
    let jwks = serve_jwks(vec![public_jwk(&key, "current")]).await;
    let verifier = jwks_verifier(&jwks.url);
    verifier.verify(&sign_rs256(&key, Some("current"), &claims())).await.expect("a valid token");
    for i in 0..10 {
        assert_refused(verifier.verify(&sign_rs256(&key, Some(&format!("made-up-{i}")), &claims())).await, "unknown kid");
    }
    assert_eq!(jwks.fetches.load(Ordering::SeqCst), 1, "a flood of made-up kids costs no fetch within the minute");
    // And the published key keeps working meanwhile.
    verifier.verify(&sign_rs256(&key, Some("current"), &claims())).await.expect("a valid token");
}

#[tokio::test]
async fn with_a_jwks_hmac_tokens_are_refused_even_against_a_published_symmetric_key() {
    let secret = b"a-shared-secret-someone-published-in-the-jwks";
    let mut oct = Jwk::from_encoding_key(&EncodingKey::from_secret(secret), Algorithm::HS256).unwrap();
    oct.common.key_id = Some("hmac".into());
    let jwks = serve_jwks(vec![oct]).await;
    let verifier = jwks_verifier(&jwks.url);

    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("hmac".into());
    let hs256 = jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_secret(secret)).unwrap();
    assert_refused(verifier.verify(&hs256).await, "HS256 against a JWKS");

    // An HMAC signature under a header claiming RS256.
    let header = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&json!({"alg": "RS256", "typ": "JWT", "kid": "hmac"})).unwrap());
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims()).unwrap());
    let message = format!("{header}.{payload}");
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &EncodingKey::from_secret(secret), Algorithm::HS256).unwrap();
    assert_refused(verifier.verify(&format!("{message}.{signature}")).await, "RS256 header over a symmetric key");
}

#[tokio::test]
async fn with_an_unreachable_jwks_tokens_are_refused_not_failed() {
    // A port nothing listens on (bound, then released).
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let verifier = jwks_verifier(&format!("http://{addr}/.well-known/jwks.json"));
    let token = sign_rs256(&rsa_key("rs256-private.pem"), Some("current"), &claims());
    assert_refused(verifier.verify(&token).await, "no JWKS to check against");
}

#[tokio::test]
async fn with_a_jwks_a_token_signed_by_a_key_published_after_start_verifies_without_a_restart() {
    let (old, new) = (rsa_key("rs256-private.pem"), rsa_key("rs256-other-private.pem"));
    let jwks = serve_jwks(vec![public_jwk(&old, "2026-01")]).await;
    let verifier = jwks_verifier_with(&jwks.url, cache(Duration::from_secs(600), Duration::from_millis(200)));
    verifier.verify(&sign_rs256(&old, Some("2026-01"), &claims())).await.expect("the first key verifies");

    // The provider rotates: the new key is published beside the old one.
    jwks.publish(vec![public_jwk(&old, "2026-01"), public_jwk(&new, "2026-02")]);
    let rotated = sign_rs256(&new, Some("2026-02"), &claims());
    eventually(Duration::from_secs(5), "a token under the new kid verifies", || async { verifier.verify(&rotated).await.is_ok() }).await;
    verifier.verify(&sign_rs256(&old, Some("2026-01"), &claims())).await.expect("the old key, still published, still verifies");
}

#[tokio::test]
async fn with_a_jwks_a_key_the_provider_removed_stops_verifying_within_the_ttl() {
    let (old, new) = (rsa_key("rs256-private.pem"), rsa_key("rs256-other-private.pem"));
    let jwks = serve_jwks(vec![public_jwk(&old, "old"), public_jwk(&new, "new")]).await;
    let ttl = Duration::from_secs(1);
    let verifier = jwks_verifier_with(&jwks.url, cache(ttl, Duration::from_millis(100)));
    let old_token = sign_rs256(&old, Some("old"), &claims());
    verifier.verify(&old_token).await.expect("the old key verifies while published");

    jwks.publish(vec![public_jwk(&new, "new")]);
    let removed = Instant::now();
    eventually(ttl + Duration::from_secs(3), "the removed key is refused", || async { verifier.verify(&old_token).await.is_err() }).await;
    assert!(removed.elapsed() < ttl + Duration::from_secs(1), "refused within about a TTL of its removal, not {:?}", removed.elapsed());
    assert_refused(verifier.verify(&old_token).await, "the removed key stays refused");
    verifier.verify(&sign_rs256(&new, Some("new"), &claims())).await.expect("the key still published verifies");
}

#[tokio::test]
async fn with_a_jwks_that_cannot_be_fetched_cached_keys_are_trusted_until_their_ttl_and_refused_after() {
    let key = rsa_key("rs256-private.pem");
    let jwks = serve_jwks(vec![public_jwk(&key, "current")]).await;
    let ttl = Duration::from_secs(2);
    let verifier = jwks_verifier_with(&jwks.url, cache(ttl, Duration::from_millis(100)));
    let token = sign_rs256(&key, Some("current"), &claims());
    verifier.verify(&token).await.expect("a valid token");
    let fetched = Instant::now();

    jwks.fail(true);
    verifier.verify(&token).await.expect("a provider outage does not refuse keys fetched within the TTL");
    eventually(ttl + Duration::from_secs(3), "the expired keys are refused", || async { verifier.verify(&token).await.is_err() }).await;
    assert!(fetched.elapsed() >= ttl - Duration::from_millis(200), "the keys were trusted until their TTL ({:?})", fetched.elapsed());
    assert!(jwks.fetches() > 1, "the verifier tried to fetch the keys again");

    jwks.fail(false);
    eventually(Duration::from_secs(3), "the token verifies once the JWKS answers again", || async { verifier.verify(&token).await.is_ok() }).await;
}

#[tokio::test]
async fn with_a_jwks_unknown_kids_refetch_at_most_once_per_interval_and_one_fetch_at_a_time() {
    let key = rsa_key("rs256-private.pem");
    let jwks = serve_jwks(vec![public_jwk(&key, "current")]).await;
    let interval = Duration::from_secs(1);
    let verifier = Arc::new(jwks_verifier_with(&jwks.url, cache(Duration::from_secs(600), interval)));
    verifier.verify(&sign_rs256(&key, Some("current"), &claims())).await.expect("a valid token");
    let first_fetch = Instant::now();
    assert_eq!(jwks.fetches(), 1);

    let flood = |round: usize| {
        let verifier = verifier.clone();
        let key = key.clone();
        async move {
            let tasks: Vec<_> = (0..20)
                .map(|i| {
                    let (verifier, token) = (verifier.clone(), sign_rs256(&key, Some(&format!("made-up-{round}-{i}")), &claims()));
                    tokio::spawn(async move { verifier.verify(&token).await })
                })
                .collect();
            for task in tasks {
                assert_refused(task.await.unwrap(), "a made-up kid");
            }
        }
    };
    flood(0).await;
    assert_eq!(jwks.fetches(), 1, "20 made-up kids within the interval cost no fetch");

    tokio::time::sleep_until((first_fetch + interval).into()).await;
    flood(1).await;
    assert_eq!(jwks.fetches(), 2, "past the interval, 20 concurrent made-up kids cost one fetch");
    flood(2).await;
    assert_eq!(jwks.fetches(), 2, "and none again until the next interval");
}

#[tokio::test]
async fn with_a_jwks_a_slow_refetch_for_an_unknown_kid_does_not_hold_up_tokens_with_a_cached_kid() {
    let (current, next) = (rsa_key("rs256-private.pem"), rsa_key("rs256-other-private.pem"));
    let jwks = serve_jwks(vec![public_jwk(&current, "current")]).await;
    let verifier = Arc::new(jwks_verifier_with(&jwks.url, cache(Duration::from_secs(600), Duration::from_millis(10))));
    let cached = sign_rs256(&current, Some("current"), &claims());
    verifier.verify(&cached).await.expect("a valid token");

    // The provider publishes a new key, then answers slowly.
    jwks.publish(vec![public_jwk(&current, "current"), public_jwk(&next, "next")]);
    let gate = jwks.stall();
    tokio::time::sleep(Duration::from_millis(20)).await; // past the minimum refetch interval
    let waiting: Vec<_> = (0..5)
        .map(|_| {
            let (verifier, token) = (verifier.clone(), sign_rs256(&next, Some("next"), &claims()));
            tokio::spawn(async move { verifier.verify(&token).await })
        })
        .collect();
    eventually(Duration::from_secs(3), "the refetch reaches the JWKS", || async { jwks.fetches() == 2 }).await;

    let started = Instant::now();
    let verified = tokio::time::timeout(Duration::from_secs(1), verifier.verify(&cached)).await;
    assert!(matches!(verified, Ok(Ok(_))), "a cached kid verifies while the refetch is stalled: {verified:?}");
    assert!(started.elapsed() < Duration::from_millis(500), "and at once ({:?})", started.elapsed());
    assert!(waiting.iter().all(|t| !t.is_finished()), "the tokens under the new kid wait for the refetch");

    gate.add_permits(100);
    for task in waiting {
        task.await.unwrap().expect("the new kid verifies once the refetch answers");
    }
    assert_eq!(jwks.fetches(), 2, "the five tokens under the new kid shared one fetch");
}

// Identity providers' own token shapes: the tenant and roles are read where
// the claim settings say, the provider's groups mapped to Berth roles.

/// Claim settings as the `BERTH_JWT_*` variables `vars` give them.
fn settings(vars: &[(&str, &str)]) -> ClaimSettings {
    ClaimSettings::from_vars(|k| vars.iter().find(|(name, _)| *name == k).map(|(_, v)| v.to_string())).expect("valid claim settings")
}

/// Verifies RS256 tokens signed by tests/fixtures/rs256-private.pem, issued
/// by `issuer`, with `claims` settings.
fn provider_verifier(issuer: &str, audience: &str, claims: ClaimSettings) -> JwtVerifier {
    let keys = KeySource::PublicKeyPem { algorithm: Algorithm::RS256, pem: fixture("rs256-public.pem") };
    JwtVerifier::new(&AuthConfig { issuer: issuer.into(), audience: audience.into(), keys, claims }).expect("a verifier")
}

fn sign_provider(claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("provider-key-1".into());
    jsonwebtoken::encode(&header, claims, &rsa_key("rs256-private.pem")).unwrap()
}

const COGNITO_ISSUER: &str = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123";
const COGNITO_CLIENT: &str = "4k1c2h3b5m6n7p8q9r0s1t2u3v";

fn cognito_settings() -> ClaimSettings {
    settings(&[
        ("BERTH_JWT_CLIENT_ID", COGNITO_CLIENT),
        ("BERTH_JWT_TENANT_CLAIM", "custom:tenant_id"),
        ("BERTH_JWT_ROLES_CLAIM", "cognito:groups"),
        ("BERTH_JWT_ROLE_MAP", "berth-admins=admin,berth-deployers=deployer"),
    ])
}

/// A Cognito access token: `client_id`, no `aud`, no `nbf`; the tenant added
/// by a pre-token-generation trigger (ID tokens carry `custom:tenant_id` as is).
fn cognito_access_token(tenant: &str, groups: &[&str]) -> Value {
    let now = jsonwebtoken::get_current_timestamp();
    json!({
        "sub": "8f1c2d3e-0000-4000-8000-00000000a11c", "cognito:groups": groups, "iss": COGNITO_ISSUER, "version": 2,
        "client_id": COGNITO_CLIENT, "origin_jti": "5a6b", "event_id": "7c8d", "token_use": "access",
        "scope": "aws.cognito.signin.user.admin", "auth_time": now, "exp": now + 3600, "iat": now, "jti": "9e0f", "username": "alice",
        "custom:tenant_id": tenant,
    })
}

#[tokio::test]
async fn a_cognito_access_token_with_client_id_and_no_aud_verifies_to_its_tenant_and_mapped_groups() {
    let tenant = uuid::Uuid::new_v4().to_string();
    let verifier = provider_verifier(COGNITO_ISSUER, "", cognito_settings());
    let token = sign_provider(&cognito_access_token(&tenant, &["berth-admins", "berth-deployers", "everyone"]));
    let verified = verifier.verify(&token).await.expect("a Cognito access token verifies");
    assert_eq!(verified.tenant_id.as_deref(), Some(tenant.as_str()));
    assert_eq!(verified.roles, ["admin", "deployer", "everyone"], "groups mapped; an unmapped non-role name is kept only to be ignored");
}

#[tokio::test]
async fn a_cognito_id_token_names_the_client_in_aud_and_verifies_under_the_same_settings() {
    let tenant = uuid::Uuid::new_v4().to_string();
    let now = jsonwebtoken::get_current_timestamp();
    let id_token = json!({
        "sub": "8f1c2d3e-0000-4000-8000-00000000a11c", "cognito:groups": ["berth-deployers"], "email_verified": true,
        "iss": COGNITO_ISSUER, "cognito:username": "alice", "custom:tenant_id": tenant, "aud": COGNITO_CLIENT,
        "token_use": "id", "auth_time": now, "exp": now + 3600, "iat": now, "email": "alice@example.com",
    });
    let verified = provider_verifier(COGNITO_ISSUER, "", cognito_settings()).verify(&sign_provider(&id_token)).await.expect("an ID token verifies");
    assert_eq!((verified.tenant_id.as_deref(), verified.roles), (Some(tenant.as_str()), vec!["deployer".to_string()]));
}

#[tokio::test]
async fn with_a_client_id_configured_a_token_for_another_client_is_refused() {
    let verifier = provider_verifier(COGNITO_ISSUER, "", cognito_settings());
    let mut other_client = cognito_access_token(&uuid::Uuid::new_v4().to_string(), &["berth-admins"]);
    other_client["client_id"] = json!("another-app-client");
    assert_refused(verifier.verify(&sign_provider(&other_client)).await, "another client's access token");
    // Its `aud` naming this client does not make up for it.
    other_client["aud"] = json!(COGNITO_CLIENT);
    assert_refused(verifier.verify(&sign_provider(&other_client)).await, "another client's access token with our aud");

    let mut other_audience = cognito_access_token(&uuid::Uuid::new_v4().to_string(), &["berth-admins"]);
    other_audience.as_object_mut().unwrap().remove("client_id");
    other_audience["aud"] = json!("another-app-client");
    assert_refused(verifier.verify(&sign_provider(&other_audience)).await, "another client's ID token");
}

#[tokio::test]
async fn without_a_client_id_configured_a_token_with_no_aud_is_refused_even_with_a_client_id_claim() {
    let verifier = provider_verifier(COGNITO_ISSUER, COGNITO_CLIENT, ClaimSettings { client_id: None, ..cognito_settings() });
    assert_refused(verifier.verify(&sign_provider(&cognito_access_token(&uuid::Uuid::new_v4().to_string(), &["berth-admins"]))).await, "no aud");
}

#[tokio::test]
async fn an_auth0_token_with_namespaced_claims_verifies_to_its_tenant_and_roles() {
    let (issuer, audience) = ("https://berth.eu.auth0.com/", "https://api.berth.example");
    let tenant = uuid::Uuid::new_v4().to_string();
    let now = jsonwebtoken::get_current_timestamp();
    let token = json!({
        "https://berth.example/tenant_id": tenant, "https://berth.example/roles": ["admin", "approver"],
        "iss": issuer, "sub": "auth0|64f1c2d3e4f5a6b7c8d9e0f1", "aud": [audience, "https://berth.eu.auth0.com/userinfo"],
        "iat": now, "exp": now + 86400, "scope": "openid profile email", "azp": "Xy7Zq1Rw2Sv3Tu4",
    });
    let claims = settings(&[("BERTH_JWT_TENANT_CLAIM", "https://berth.example/tenant_id"), ("BERTH_JWT_ROLES_CLAIM", "https://berth.example/roles")]);
    let verified = provider_verifier(issuer, audience, claims).verify(&sign_provider(&token)).await.expect("an Auth0 token verifies");
    assert_eq!((verified.tenant_id.as_deref(), verified.roles), (Some(tenant.as_str()), vec!["admin".to_string(), "approver".to_string()]));
}

#[tokio::test]
async fn a_keycloak_token_with_realm_roles_verifies_to_its_tenant_and_mapped_roles() {
    let issuer = "https://keycloak.example/realms/berth";
    let tenant = uuid::Uuid::new_v4().to_string();
    let now = jsonwebtoken::get_current_timestamp();
    let token = json!({
        "exp": now + 300, "iat": now, "jti": "onrtac:1b2c", "iss": issuer, "aud": ["berth-api", "account"],
        "sub": "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0", "typ": "Bearer", "azp": "berth-portal", "sid": "2c3d", "acr": "1",
        "realm_access": {"roles": ["default-roles-berth", "offline_access", "uma_authorization", "berth-admin"]},
        "resource_access": {"account": {"roles": ["manage-account", "view-profile"]}},
        "scope": "openid email profile", "email_verified": true, "tenant_id": tenant, "preferred_username": "alice",
    });
    let claims = settings(&[("BERTH_JWT_ROLES_CLAIM", "/realm_access/roles"), ("BERTH_JWT_ROLE_MAP", "berth-admin=admin")]);
    let verified = provider_verifier(issuer, "berth-api", claims).verify(&sign_provider(&token)).await.expect("a Keycloak token verifies");
    assert_eq!(verified.tenant_id.as_deref(), Some(tenant.as_str()));
    assert!(verified.roles.contains(&"admin".to_string()) && !verified.roles.contains(&"viewer".to_string()), "{:?}", verified.roles);
}

#[tokio::test]
async fn roles_given_as_one_string_separated_by_spaces_or_commas_are_read_as_a_list() {
    for roles in ["admin deployer", "admin,deployer", " admin, deployer "] {
        let mut c = serde_json::to_value(claims()).unwrap();
        c["roles"] = json!(roles);
        let verified = hs256_verifier().verify(&sign_json_hs256(&c)).await.expect("a valid token");
        assert_eq!(verified.roles, ["admin", "deployer"], "{roles:?}");
    }
}

/// The message a verified token is refused with, which the caller sees.
fn claims_refusal(result: Result<Claims, AuthFailure>) -> String {
    match result {
        Err(AuthFailure::Claims(message)) => message,
        other => panic!("expected a refusal naming the claim, got {other:?}"),
    }
}

#[tokio::test]
async fn a_token_without_the_configured_roles_claim_or_with_one_of_another_type_is_refused_naming_the_claim() {
    let verifier = provider_verifier(COGNITO_ISSUER, "", cognito_settings());
    let mut no_groups = cognito_access_token(&uuid::Uuid::new_v4().to_string(), &[]);
    no_groups.as_object_mut().unwrap().remove("cognito:groups");
    assert_eq!(claims_refusal(verifier.verify(&sign_provider(&no_groups)).await), "the token has no roles claim `cognito:groups` (BERTH_JWT_ROLES_CLAIM)");
    for wrong in [json!(7), json!({"admin": true}), json!(["admin", 3])] {
        no_groups["cognito:groups"] = wrong.clone();
        assert_eq!(
            claims_refusal(verifier.verify(&sign_provider(&no_groups)).await),
            "the roles claim `cognito:groups` (BERTH_JWT_ROLES_CLAIM) is not a list of role names or a string of them",
            "{wrong}"
        );
    }
    let mut tenant_number = cognito_access_token("", &["berth-admins"]);
    tenant_number["custom:tenant_id"] = json!(42);
    assert_eq!(
        claims_refusal(verifier.verify(&sign_provider(&tenant_number)).await),
        "the tenant claim `custom:tenant_id` (BERTH_JWT_TENANT_CLAIM) is not a string"
    );
}
