//! The JWT verifier on its own: claims it must check, and the JWKS key
//! source (keys chosen by `kid`, pinned to their own algorithm, fetched
//! sparingly), served here by a local HTTP server.

use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use berth_web::auth::{AuthConfig, AuthFailure, Claims, JwtVerifier, KeySource, claims_for};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

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
    JwtVerifier::new(&AuthConfig { issuer: ISSUER.into(), audience: AUDIENCE.into(), keys: KeySource::Hs256Secret(SECRET.into()) }).expect("a verifier")
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
        let config =
            AuthConfig { issuer: ISSUER.into(), audience: AUDIENCE.into(), keys: KeySource::PublicKeyPem { algorithm: Algorithm::RS256, pem: pem.into() } };
        assert!(JwtVerifier::new(&config).is_err(), "{pem:?} is refused at start-up");
    }
}

/// A JWKS endpoint, counting its fetches.
struct Jwks {
    url: String,
    fetches: Arc<AtomicUsize>,
}

async fn serve_jwks(keys: Vec<Jwk>) -> Jwks {
    let set = JwkSet { keys };
    let fetches = Arc::new(AtomicUsize::new(0));
    let (s, f) = (set, fetches.clone());
    let app = Router::new().route(
        "/.well-known/jwks.json",
        get(move || {
            let (s, f) = (s.clone(), f.clone());
            async move {
                f.fetch_add(1, Ordering::SeqCst);
                Json(s)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Jwks { url: format!("http://{addr}/.well-known/jwks.json"), fetches }
}

fn public_jwk(private: &EncodingKey, kid: &str) -> Jwk {
    let mut jwk = Jwk::from_encoding_key(private, Algorithm::RS256).expect("a JWK");
    jwk.common.key_id = Some(kid.to_string());
    jwk
}

fn jwks_verifier(url: &str) -> JwtVerifier {
    JwtVerifier::new(&AuthConfig { issuer: ISSUER.into(), audience: AUDIENCE.into(), keys: KeySource::Jwks { url: url.into() } }).expect("a verifier")
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
