//! Who may call: every token that is missing, forged, expired, misaddressed
//! or malformed is refused with 401; roles, tenants and suspension decide
//! the rest; agents authenticate with their runtime credential only.

use crate::{id_of, list_items, snapshot};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use berth_domain::usecases::Settings;
use berth_tests::{AUDIENCE, ISSUER, TestApp, TestTenant, expect_problem, expect_status};
use berth_web::AuthConfig;
use berth_web::auth::{Claims, KeySource, claims_for};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// Valid claims for an admin of `tenant`.
fn admin_claims(tenant: &str) -> Claims {
    claims_for(ISSUER, AUDIENCE, "alice@example.com", Some(tenant.to_string()), &["admin"], Duration::from_secs(3600))
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Signs arbitrary JSON claims with HS256 and `secret`.
fn sign_json(secret: &str, claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret.as_bytes())).expect("a signed token")
}

fn fixture(name: &str) -> String {
    let path = format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

fn sign_rs256(private_pem: &str, claims: &Claims) -> String {
    let key = EncodingKey::from_rsa_pem(private_pem.as_bytes()).expect("an RSA private key");
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), claims, &key).expect("a signed token")
}

/// Sends `method path` with a raw `Authorization` header (or none).
async fn send(app: &TestApp, method: Method, path: &str, authorization: Option<&str>, body: Option<Value>) -> reqwest::Response {
    let mut request = app.http.request(method, format!("{}{}", app.base, path));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("the request is sent")
}

/// Asserts that `authorization` gets 401 `unauthenticated` both on a read
/// (`GET /v1/me`) and on a write (`POST /v1/environments`), and that the
/// write left no trace in `tenant`.
async fn refused_on_read_and_write(app: &TestApp, tenant: &TestTenant, authorization: Option<&str>) {
    let before = snapshot(app, tenant).await;
    expect_problem(send(app, Method::GET, "/v1/me", authorization, None).await, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let body = json!({"name": "Sneaky", "classification": "test"});
    expect_problem(send(app, Method::POST, "/v1/environments", authorization, Some(body)).await, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    assert_eq!(snapshot(app, tenant).await, before, "a refused write changes nothing");
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test]
async fn a_request_without_an_authorization_header_is_refused_with_401() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    refused_on_read_and_write(&app, &acme, None).await;
    refused_on_read_and_write(&app, &acme, Some("Bearer ")).await;
}

#[tokio::test]
async fn a_valid_token_under_a_scheme_other_than_bearer_is_refused_with_401() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    expect_status(send(&app, Method::GET, "/v1/me", Some(&bearer(&acme.admin)), None).await, StatusCode::OK).await;

    refused_on_read_and_write(&app, &acme, Some(&format!("Basic {}", b64(b"alice:password")))).await;
    refused_on_read_and_write(&app, &acme, Some(&format!("Token {}", acme.admin))).await;
    refused_on_read_and_write(&app, &acme, Some(&acme.admin)).await;
}

#[tokio::test]
async fn a_token_that_expired_two_hours_ago_is_refused_with_401() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let mut claims = admin_claims(&acme.id);
    claims.iat = Some(now() - 3 * 3600);
    claims.nbf = Some(now() - 3 * 3600);
    claims.exp = now() - 2 * 3600;
    refused_on_read_and_write(&app, &acme, Some(&bearer(&app.sign(&claims)))).await;
}

#[tokio::test]
async fn a_token_not_valid_for_another_two_hours_is_refused_with_401() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let mut claims = admin_claims(&acme.id);
    claims.nbf = Some(now() + 2 * 3600);
    claims.exp = now() + 3 * 3600;
    refused_on_read_and_write(&app, &acme, Some(&bearer(&app.sign(&claims)))).await;
}

#[tokio::test]
async fn a_token_for_another_audience_is_refused_with_401() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let mut claims = admin_claims(&acme.id);
    claims.aud = "some-other-api".into();
    refused_on_read_and_write(&app, &acme, Some(&bearer(&app.sign(&claims)))).await;
}

#[tokio::test]
async fn a_token_from_another_issuer_is_refused_with_401() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let mut claims = admin_claims(&acme.id);
    claims.iss = "https://evil.example".into();
    refused_on_read_and_write(&app, &acme, Some(&bearer(&app.sign(&claims)))).await;
}

#[tokio::test]
async fn a_token_signed_with_another_secret_is_refused_with_401() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let forged = berth_web::auth::issue_hs256("a-secret-that-is-not-the-apps-secret-at-all", &admin_claims(&acme.id)).unwrap();
    refused_on_read_and_write(&app, &acme, Some(&bearer(&forged))).await;
}

#[tokio::test]
async fn a_token_signed_with_the_right_secret_but_another_algorithm_is_refused_with_401() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    for algorithm in [Algorithm::HS384, Algorithm::HS512] {
        let token = jsonwebtoken::encode(&Header::new(algorithm), &admin_claims(&acme.id), &EncodingKey::from_secret(app.secret.as_bytes())).unwrap();
        refused_on_read_and_write(&app, &acme, Some(&bearer(&token))).await;
    }
}

#[tokio::test]
async fn an_unsigned_alg_none_token_is_refused_with_401() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let claims = serde_json::to_vec(&admin_claims(&acme.id)).unwrap();
    for alg in ["none", "None", "NONE"] {
        let header = serde_json::to_vec(&json!({"alg": alg, "typ": "JWT"})).unwrap();
        let unsigned = format!("{}.{}.", b64(&header), b64(&claims));
        refused_on_read_and_write(&app, &acme, Some(&bearer(&unsigned))).await;
    }
}

#[tokio::test]
async fn a_token_whose_payload_was_tampered_with_is_refused_with_401() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let viewer = app.token(&acme.id, &["viewer"]);
    expect_status(send(&app, Method::GET, "/v1/me", Some(&bearer(&viewer)), None).await, StatusCode::OK).await;
    let parts: Vec<&str> = viewer.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWS has three parts");

    // One character of the payload flipped.
    let mut payload: Vec<char> = parts[1].chars().collect();
    let i = payload.len() / 2;
    payload[i] = if payload[i] == 'A' { 'B' } else { 'A' };
    let flipped = format!("{}.{}.{}", parts[0], payload.iter().collect::<String>(), parts[2]);
    refused_on_read_and_write(&app, &acme, Some(&bearer(&flipped))).await;

    // The viewer's signature on a payload that makes them an admin.
    let mut claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["roles"] = json!(["admin"]);
    let escalated = format!("{}.{}.{}", parts[0], b64(&serde_json::to_vec(&claims).unwrap()), parts[2]);
    refused_on_read_and_write(&app, &acme, Some(&bearer(&escalated))).await;
}

#[tokio::test]
async fn a_token_whose_exp_is_a_string_is_refused_with_401() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let mut claims = serde_json::to_value(admin_claims(&acme.id)).unwrap();
    claims["exp"] = json!("9999999999");
    refused_on_read_and_write(&app, &acme, Some(&bearer(&sign_json(&app.secret, &claims)))).await;
}

#[tokio::test]
async fn a_token_without_exp_is_refused_with_401() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let mut claims = serde_json::to_value(admin_claims(&acme.id)).unwrap();
    claims.as_object_mut().unwrap().remove("exp");
    refused_on_read_and_write(&app, &acme, Some(&bearer(&sign_json(&app.secret, &claims)))).await;
}

#[tokio::test]
async fn a_tenant_endpoint_refuses_a_token_without_tenant_id_with_401() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let no_tenant = app.sign(&claims_for(ISSUER, AUDIENCE, "alice@example.com", None, &["admin"], Duration::from_secs(3600)));
    let before = snapshot(&app, &acme).await;
    expect_problem(app.get("/v1/environments", &no_tenant).await, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    expect_problem(
        app.post("/v1/environments", &no_tenant, json!({"name": "Test", "classification": "test"})).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    refused_on_read_and_write(&app, &acme, Some(&bearer(&no_tenant))).await;
    assert_eq!(snapshot(&app, &acme).await, before);
}

#[tokio::test]
async fn a_token_whose_tenant_id_is_not_a_uuid_is_refused_with_401() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    for bad in ["acme", "", "../../T#other", &format!("{} ", acme.id)] {
        let token = app.token(bad, &["admin"]);
        refused_on_read_and_write(&app, &acme, Some(&bearer(&token))).await;
    }
}

/// An app that verifies RS256 tokens with tests/fixtures/rs256-public.pem,
/// and a tenant onboarded with an RS256 platform token.
async fn rs256_app() -> (TestApp, TestTenant) {
    let auth = AuthConfig {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        keys: KeySource::PublicKeyPem { algorithm: Algorithm::RS256, pem: fixture("rs256-public.pem") },
        claims: Default::default(),
    };
    let app = TestApp::spawn_with_auth(auth, format!("hs256-secret-{}", uuid::Uuid::new_v4()), Settings::default()).await;
    let private = fixture("rs256-private.pem");
    let platform = sign_rs256(&private, &claims_for(ISSUER, AUDIENCE, "operator@berth.example", None, &["platform_admin"], Duration::from_secs(3600)));
    let created = expect_status(app.post("/platform/v1/tenants", &platform, json!({"name": "Acme"})).await, StatusCode::CREATED).await;
    let id = id_of(&created);
    let admin = sign_rs256(&private, &admin_claims(&id));
    (app, TestTenant { id, admin })
}

#[tokio::test]
async fn with_rs256_configured_a_token_signed_by_the_configured_key_is_accepted() {
    let (app, acme) = rs256_app().await;
    let me = expect_status(app.get("/v1/me", &acme.admin).await, StatusCode::OK).await;
    assert_eq!(me["tenant_id"], acme.id.as_str());
    assert_eq!(me["roles"], json!(["admin"]));
    expect_status(app.post("/v1/environments", &acme.admin, json!({"name": "Test", "classification": "test"})).await, StatusCode::CREATED).await;
}

#[tokio::test]
async fn with_rs256_configured_hs256_tokens_are_refused_even_when_hmac_signed_with_the_public_key() {
    let (app, acme) = rs256_app().await;
    let claims = serde_json::to_value(admin_claims(&acme.id)).unwrap();
    // The classic key confusion: the public key, which anyone may have, as an HMAC secret.
    let confused = sign_json(&fixture("rs256-public.pem"), &claims);
    refused_on_read_and_write(&app, &acme, Some(&bearer(&confused))).await;
    let confused_trimmed = sign_json(fixture("rs256-public.pem").trim(), &claims);
    refused_on_read_and_write(&app, &acme, Some(&bearer(&confused_trimmed))).await;
    // And a plain HS256 token with the app's (unused) secret.
    refused_on_read_and_write(&app, &acme, Some(&bearer(&app.sign(&admin_claims(&acme.id))))).await;
}

#[tokio::test]
async fn with_rs256_configured_a_token_signed_by_another_rsa_key_is_refused() {
    let (app, acme) = rs256_app().await;
    let forged = sign_rs256(&fixture("rs256-other-private.pem"), &admin_claims(&acme.id));
    refused_on_read_and_write(&app, &acme, Some(&bearer(&forged))).await;
}

#[tokio::test]
async fn a_viewer_can_list_environments_but_is_forbidden_to_create_one() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    app.environment(&acme, "Test", "test").await;
    let viewer = app.token(&acme.id, &["viewer"]);

    let listed = list_items(&app, "/v1/environments", &viewer).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["name"], "Test");

    let before = snapshot(&app, &acme).await;
    expect_problem(
        app.post("/v1/environments", &viewer, json!({"name": "Production", "classification": "production"})).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    expect_problem(app.post("/v1/runtimes", &viewer, json!({"name": "atom-1"})).await, StatusCode::FORBIDDEN, "forbidden").await;
    let env_id = id_of(&listed[0]);
    expect_problem(app.patch(&format!("/v1/environments/{env_id}"), &viewer, json!({"enabled": false})).await, StatusCode::FORBIDDEN, "forbidden").await;
    expect_problem(app.delete(&format!("/v1/environments/{env_id}"), &viewer).await, StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(snapshot(&app, &acme).await, before, "a viewer changes nothing");
}

#[tokio::test]
async fn a_token_with_no_known_role_may_not_even_read() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    for roles in [&[][..], &["root"][..], &["Admin"][..]] {
        let token = app.token(&acme.id, roles);
        expect_problem(app.get("/v1/environments", &token).await, StatusCode::FORBIDDEN, "forbidden").await;
        expect_problem(app.post("/v1/environments", &token, json!({"name": "Test", "classification": "test"})).await, StatusCode::FORBIDDEN, "forbidden").await;
    }
    assert!(list_items(&app, "/v1/environments", &acme.admin).await.is_empty());
}

#[tokio::test]
async fn a_platform_admin_token_without_a_tenant_is_refused_by_tenant_endpoints_with_401() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let platform = app.platform_token();
    let before = snapshot(&app, &acme).await;
    for path in ["/v1/me", "/v1/environments", "/v1/runtimes", "/v1/audit"] {
        expect_problem(app.get(path, &platform).await, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
    expect_problem(
        app.post("/v1/environments", &platform, json!({"name": "Test", "classification": "test"})).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    assert_eq!(snapshot(&app, &acme).await, before);
}

#[tokio::test]
async fn a_tenant_admin_is_forbidden_to_call_the_platform_api() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let platform = app.platform_token();
    let tenants_before = list_items(&app, "/platform/v1/tenants", &platform).await;

    // Even a tenant token that claims platform_admin is not a platform operator.
    let tenant_and_platform = app.token(&acme.id, &["admin", "platform_admin"]);
    for token in [&acme.admin, &tenant_and_platform] {
        expect_problem(app.get("/platform/v1/tenants", token).await, StatusCode::FORBIDDEN, "forbidden").await;
        expect_problem(app.get(&format!("/platform/v1/tenants/{}", acme.id), token).await, StatusCode::FORBIDDEN, "forbidden").await;
        expect_problem(app.post("/platform/v1/tenants", token, json!({"name": "Evil"})).await, StatusCode::FORBIDDEN, "forbidden").await;
        expect_problem(
            app.patch(&format!("/platform/v1/tenants/{}", acme.id), token, json!({"plan": {"max_environments": 1000}})).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        )
        .await;
    }
    assert_eq!(list_items(&app, "/platform/v1/tenants", &platform).await, tenants_before, "no tenant was created or changed");
}

#[tokio::test]
async fn a_token_naming_a_tenant_that_does_not_exist_is_refused_with_unknown_tenant() {
    let app = TestApp::spawn().await;
    let ghost = app.token(&uuid::Uuid::new_v4().to_string(), &["admin"]);
    expect_problem(app.get("/v1/me", &ghost).await, StatusCode::FORBIDDEN, "unknown_tenant").await;
    expect_problem(app.get("/v1/environments", &ghost).await, StatusCode::FORBIDDEN, "unknown_tenant").await;
    expect_problem(app.post("/v1/environments", &ghost, json!({"name": "Test", "classification": "test"})).await, StatusCode::FORBIDDEN, "unknown_tenant")
        .await;
}

#[tokio::test]
async fn a_suspended_tenant_can_read_but_not_create_environments_or_runtimes_until_reinstated() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let test_env = app.environment(&acme, "Test", "test").await;
    let platform = app.platform_token();
    let suspended = expect_status(app.patch(&format!("/platform/v1/tenants/{}", acme.id), &platform, json!({"suspended": true})).await, StatusCode::OK).await;
    assert_eq!(suspended["suspended"], true);

    let me = expect_status(app.get("/v1/me", &acme.admin).await, StatusCode::OK).await;
    assert_eq!(me["tenant_suspended"], true);
    let before = snapshot(&app, &acme).await;
    assert_eq!(before["environments"].as_array().unwrap().len(), 1, "a suspended tenant still reads its environments");

    expect_problem(
        app.post("/v1/environments", &acme.admin, json!({"name": "Production", "classification": "production"})).await,
        StatusCode::FORBIDDEN,
        "tenant_suspended",
    )
    .await;
    expect_problem(app.post("/v1/runtimes", &acme.admin, json!({"name": "atom-1"})).await, StatusCode::FORBIDDEN, "tenant_suspended").await;
    let env_path = format!("/v1/environments/{}", id_of(&test_env));
    expect_problem(app.patch(&env_path, &acme.admin, json!({"name": "Renamed"})).await, StatusCode::FORBIDDEN, "tenant_suspended").await;
    expect_problem(app.delete(&env_path, &acme.admin).await, StatusCode::FORBIDDEN, "tenant_suspended").await;
    assert_eq!(snapshot(&app, &acme).await, before, "nothing was written while suspended");

    expect_status(app.patch(&format!("/platform/v1/tenants/{}", acme.id), &platform, json!({"suspended": false})).await, StatusCode::OK).await;
    expect_status(app.post("/v1/runtimes", &acme.admin, json!({"name": "atom-1"})).await, StatusCode::CREATED).await;
}

async fn heartbeat_with(app: &TestApp, authorization: Option<&str>) -> reqwest::Response {
    send(app, Method::POST, "/agent/v1/heartbeat", authorization, Some(json!({"agent_version": "1.0.0", "status": "ok", "running": []}))).await
}

#[tokio::test]
async fn a_heartbeat_without_the_runtimes_current_credential_is_refused_with_401() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let runtime = app.runtime(&acme, "atom-1").await;
    let unregistered = app.runtime(&acme, "atom-2").await;
    let credential = app.register_agent(&runtime).await;
    let runtime_path = format!("/v1/runtimes/{}", id_of(&runtime));

    let mut altered = credential.clone();
    let last = altered.pop().unwrap();
    altered.push(if last == 'a' { 'b' } else { 'a' });
    let registration_token = unregistered["registration_token"].as_str().unwrap().to_string();
    let other_runtime = credential.replace(&id_of(&runtime).replace('-', ""), &id_of(&unregistered).replace('-', ""));
    assert_ne!(other_runtime, credential, "the credential names its runtime");

    for authorization in [
        None,
        Some("Bearer garbage".to_string()),
        Some(bearer("brc_not_a_credential")),
        Some(bearer(&registration_token)),
        Some(bearer(&altered)),
        Some(bearer(&other_runtime)),
        Some(bearer(&acme.admin)),
        Some(format!("Basic {credential}")),
    ] {
        expect_problem(heartbeat_with(&app, authorization.as_deref()).await, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
    let seen = expect_status(app.get(&runtime_path, &acme.admin).await, StatusCode::OK).await;
    assert_eq!(seen["last_seen_at"], Value::Null, "no refused heartbeat was recorded");
    assert_eq!(seen["status"], "unknown");

    expect_status(heartbeat_with(&app, Some(&bearer(&credential))).await, StatusCode::OK).await;
    let seen = expect_status(app.get(&runtime_path, &acme.admin).await, StatusCode::OK).await;
    assert_eq!(seen["status"], "online");
}

#[tokio::test]
async fn a_registration_token_registers_an_agent_exactly_once() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let runtime = app.runtime(&acme, "atom-1").await;
    let credential = app.register_agent(&runtime).await;

    let again = json!({"registration_token": runtime["registration_token"], "agent_version": "1.0.0"});
    expect_problem(send(&app, Method::POST, "/agent/v1/register", None, Some(again)).await, StatusCode::UNAUTHORIZED, "unauthenticated").await;

    // The first credential still works; the refused attempt issued none.
    expect_status(app.heartbeat(&credential).await, StatusCode::OK).await;
    let registrations = app.audit(&acme).await.iter().filter(|e| e["action"] == "runtime.registered").count();
    assert_eq!(registrations, 1);
}

#[tokio::test]
async fn a_forged_registration_token_is_refused_with_401() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let runtime = app.runtime(&acme, "atom-1").await;
    let token = runtime["registration_token"].as_str().unwrap();
    let mut forged = token.to_string();
    let last = forged.pop().unwrap();
    forged.push(if last == '0' { '1' } else { '0' });

    for candidate in [forged.as_str(), "garbage", "", &token.replacen("brr_", "brc_", 1)] {
        let body = json!({"registration_token": candidate, "agent_version": "1.0.0"});
        expect_problem(send(&app, Method::POST, "/agent/v1/register", None, Some(body)).await, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
    // The genuine token was not burnt by the attempts.
    app.register_agent(&runtime).await;
}

#[tokio::test]
async fn a_deleted_runtimes_credential_and_registration_token_are_refused_with_401() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let registered = app.runtime(&acme, "atom-1").await;
    let unregistered = app.runtime(&acme, "atom-2").await;
    let credential = app.register_agent(&registered).await;
    expect_status(app.heartbeat(&credential).await, StatusCode::OK).await;

    for runtime in [&registered, &unregistered] {
        expect_status(app.delete(&format!("/v1/runtimes/{}", id_of(runtime)), &acme.admin).await, StatusCode::NO_CONTENT).await;
    }
    expect_problem(app.heartbeat(&credential).await, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let body = json!({"registration_token": unregistered["registration_token"], "agent_version": "1.0.0"});
    expect_problem(send(&app, Method::POST, "/agent/v1/register", None, Some(body)).await, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    assert!(list_items(&app, "/v1/runtimes", &acme.admin).await.is_empty(), "nothing came back to life");
}
