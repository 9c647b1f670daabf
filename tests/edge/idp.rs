//! Tokens as real identity providers issue them, over HTTP: Amazon Cognito
//! (access and ID tokens), Auth0 (namespaced claims) and Keycloak (realm
//! roles), each with the claim settings its README recipe gives. Each token
//! onboards a tenant as a platform admin and reads `/v1/me` as a tenant
//! user; a token without the configured claims is refused with 401 and a
//! `detail` naming the claim.

use crate::id_of;
use berth_domain::usecases::Settings;
use berth_tests::{TestApp, expect_problem, expect_status};
use berth_web::AuthConfig;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn fixture(name: &str) -> String {
    let path = format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

const KID: &str = "idp-key-2024-01";

/// The provider's signing key (tests/fixtures/rs256-private.pem).
fn provider_key() -> EncodingKey {
    EncodingKey::from_rsa_pem(fixture("rs256-private.pem").as_bytes()).expect("an RSA private key")
}

/// Signs `claims` as the provider does: RS256, with its key's `kid`.
fn issue(claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(KID.into());
    jsonwebtoken::encode(&header, claims, &provider_key()).expect("a signed token")
}

/// Serves the provider's JWKS (its one public key) on a local port; returns
/// the URL. A bare HTTP/1.1 answer to any request is all a JWKS fetch needs.
async fn serve_jwks() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut jwk = Jwk::from_encoding_key(&provider_key(), Algorithm::RS256).expect("a JWK");
    jwk.common.key_id = Some(KID.into());
    let body = serde_json::to_string(&JwkSet { keys: vec![jwk] }).expect("a JWKS document");
    let response = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let addr = listener.local_addr().expect("an address");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let response = response.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}/.well-known/jwks.json")
}

/// A Berth configured as a Lambda would be from `vars` (issuer, audience or
/// client id, claim settings), verifying with the provider's JWKS.
async fn app_for(vars: &[(&str, &str)]) -> TestApp {
    let jwks = serve_jwks().await;
    let mut vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    vars.push(("BERTH_JWKS_URL".into(), jwks));
    let auth = AuthConfig::for_lambda(|k| vars.iter().find(|(name, _)| name == k).map(|(_, v)| v.clone())).expect("a Lambda's auth configuration");
    TestApp::spawn_with_auth(auth, String::new(), Settings::default()).await
}

/// Onboards a tenant with `platform_token`; returns its id.
async fn onboard(app: &TestApp, platform_token: &str) -> String {
    let name = format!("Idp{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    id_of(&expect_status(app.post("/platform/v1/tenants", platform_token, json!({"name": name})).await, StatusCode::CREATED).await)
}

/// `GET /v1/me` as `token`: its tenant and sorted roles.
async fn me(app: &TestApp, token: &str) -> (String, Vec<String>) {
    let me = expect_status(app.get("/v1/me", token).await, StatusCode::OK).await;
    let mut roles: Vec<String> = serde_json::from_value(me["roles"].clone()).expect("a list of roles");
    roles.sort();
    (me["tenant_id"].as_str().expect("a tenant id").to_string(), roles)
}

/// Asserts `GET /v1/me` as `token` is refused with 401 and a detail saying `detail`.
async fn refused(app: &TestApp, token: &str, detail: &str) {
    let problem = expect_problem(app.get("/v1/me", token).await, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    assert_eq!(problem["detail"], detail, "{problem}");
}

const COGNITO_ISSUER: &str = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123";
const COGNITO_CLIENT: &str = "4k1c2h3b5m6n7p8q9r0s1t2u3v";

/// The README's Cognito recipe.
const COGNITO: &[(&str, &str)] = &[
    ("BERTH_JWT_ISSUER", COGNITO_ISSUER),
    ("BERTH_JWT_CLIENT_ID", COGNITO_CLIENT),
    ("BERTH_JWT_TENANT_CLAIM", "custom:tenant_id"),
    ("BERTH_JWT_ROLES_CLAIM", "cognito:groups"),
    ("BERTH_JWT_ROLE_MAP", "berth-platform-admins=platform_admin,berth-admins=admin,berth-deployers=deployer,berth-viewers=viewer"),
];

/// A Cognito access token: `client_id` and no `aud` (nor `nbf`). Cognito puts
/// custom attributes in ID tokens only; `tenant` here is what a
/// pre-token-generation trigger adds (left out when `None`).
fn cognito_access(sub: &str, groups: &[&str], tenant: Option<&str>) -> Value {
    let now = now();
    let mut claims = json!({
        "sub": sub, "cognito:groups": groups, "iss": COGNITO_ISSUER, "version": 2, "client_id": COGNITO_CLIENT,
        "origin_jti": "0c4e7a5e-3f7b-4c1e-9d61-2f0b5c9e8a11", "event_id": "b5b8c7f2-1a3d-4e5f-8a9b-0c1d2e3f4a5b", "token_use": "access",
        "scope": "aws.cognito.signin.user.admin", "auth_time": now, "exp": now + 3600, "iat": now,
        "jti": "6f1d9c2b-7e3a-4b5c-8d9e-0f1a2b3c4d5e", "username": sub,
    });
    if let Some(tenant) = tenant {
        claims["custom:tenant_id"] = json!(tenant);
    }
    claims
}

/// A Cognito ID token: `aud` is the app client, the tenant a custom attribute.
fn cognito_id(sub: &str, groups: &[&str], tenant: &str) -> Value {
    let now = now();
    json!({
        "sub": sub, "cognito:groups": groups, "email_verified": true, "iss": COGNITO_ISSUER, "cognito:username": sub,
        "origin_jti": "0c4e7a5e-3f7b-4c1e-9d61-2f0b5c9e8a11", "custom:tenant_id": tenant, "aud": COGNITO_CLIENT,
        "event_id": "b5b8c7f2-1a3d-4e5f-8a9b-0c1d2e3f4a5b", "token_use": "id", "auth_time": now, "exp": now + 3600, "iat": now,
        "jti": "6f1d9c2b-7e3a-4b5c-8d9e-0f1a2b3c4d5e", "email": format!("{sub}@example.com"),
    })
}

#[tokio::test]
async fn cognito_access_and_id_tokens_are_accepted_with_the_tenant_and_groups_they_carry() {
    let app = app_for(COGNITO).await;
    let operator = issue(&cognito_access("2a7c5e1f-operator", &["berth-platform-admins"], None));
    let tenant = onboard(&app, &operator).await;

    let access = issue(&cognito_access("9d4b3a2c-alice", &["berth-admins", "berth-deployers", "Everyone"], Some(&tenant)));
    assert_eq!(me(&app, &access).await, (tenant.clone(), vec!["admin".to_string(), "deployer".to_string()]));
    expect_status(app.post("/v1/environments", &access, json!({"name": "Test", "classification": "test"})).await, StatusCode::CREATED).await;

    let id_token = issue(&cognito_id("5e6f7a8b-bob", &["berth-viewers"], &tenant));
    assert_eq!(me(&app, &id_token).await, (tenant, vec!["viewer".to_string()]));
}

#[tokio::test]
async fn a_cognito_token_for_another_app_client_is_refused() {
    let app = app_for(COGNITO).await;
    let tenant = onboard(&app, &issue(&cognito_access("2a7c5e1f-operator", &["berth-platform-admins"], None))).await;
    let mut other = cognito_access("9d4b3a2c-alice", &["berth-admins"], Some(&tenant));
    other["client_id"] = json!("7h8j9k0l1m2n3o4p5q6r7s8t9u");
    refused(&app, &issue(&other), "the bearer token is invalid or expired").await;
}

#[tokio::test]
async fn an_auth0_token_with_namespaced_tenant_and_roles_claims_is_accepted() {
    let (issuer, audience) = ("https://berth-dev.eu.auth0.com/", "https://api.berth.example");
    let app = app_for(&[
        ("BERTH_JWT_ISSUER", issuer),
        ("BERTH_JWT_AUDIENCE", audience),
        ("BERTH_JWT_TENANT_CLAIM", "https://berth.example/tenant_id"),
        ("BERTH_JWT_ROLES_CLAIM", "https://berth.example/roles"),
    ])
    .await;
    let auth0 = |sub: &str, tenant: Option<&str>, roles: &[&str]| {
        let now = now();
        let mut claims = json!({
            "https://berth.example/roles": roles, "iss": issuer, "sub": sub,
            "aud": [audience, "https://berth-dev.eu.auth0.com/userinfo"], "iat": now, "exp": now + 86400,
            "scope": "openid profile email", "azp": "Xy7Zq1Rw2Sv3Tu4Vw5Xy6Zq7Rw8Sv9Tu",
        });
        if let Some(tenant) = tenant {
            claims["https://berth.example/tenant_id"] = json!(tenant);
        }
        issue(&claims)
    };
    let tenant = onboard(&app, &auth0("auth0|64f0a1b2c3d4e5f6a7b8c9d0", None, &["platform_admin"])).await;
    let alice = auth0("auth0|64f1c2d3e4f5a6b7c8d9e0f1", Some(&tenant), &["admin", "approver"]);
    assert_eq!(me(&app, &alice).await, (tenant, vec!["admin".to_string(), "approver".to_string()]));
}

#[tokio::test]
async fn a_keycloak_token_with_realm_roles_and_a_tenant_id_mapper_is_accepted() {
    let issuer = "https://keycloak.example/realms/berth";
    let app = app_for(&[
        ("BERTH_JWT_ISSUER", issuer),
        ("BERTH_JWT_AUDIENCE", "berth-api"),
        ("BERTH_JWT_ROLES_CLAIM", "/realm_access/roles"),
        ("BERTH_JWT_ROLE_MAP", "berth-platform-admin=platform_admin,berth-admin=admin,berth-developer=developer"),
    ])
    .await;
    let keycloak = |sub: &str, tenant: Option<&str>, realm_roles: &[&str]| {
        let now = now();
        let mut roles = vec!["default-roles-berth", "offline_access", "uma_authorization"];
        roles.extend_from_slice(realm_roles);
        let mut claims = json!({
            "exp": now + 300, "iat": now, "jti": "onrtac:1b2c3d4e", "iss": issuer, "aud": ["berth-api", "account"], "sub": sub,
            "typ": "Bearer", "azp": "berth-portal", "sid": "2c3d4e5f", "acr": "1", "realm_access": {"roles": roles},
            "resource_access": {"account": {"roles": ["manage-account", "view-profile"]}}, "scope": "openid email profile",
            "email_verified": true, "preferred_username": "alice",
        });
        if let Some(tenant) = tenant {
            claims["tenant_id"] = json!(tenant);
        }
        issue(&claims)
    };
    let tenant = onboard(&app, &keycloak("0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0", None, &["berth-platform-admin"])).await;
    let alice = keycloak("1c2d3e4f-5061-7283-94a5-b6c7d8e9f0a1", Some(&tenant), &["berth-admin", "berth-developer"]);
    assert_eq!(me(&app, &alice).await, (tenant, vec!["admin".to_string(), "developer".to_string()]));
}

#[tokio::test]
async fn a_provider_token_without_the_configured_tenant_or_roles_claim_is_refused_with_401_naming_the_claim() {
    let app = app_for(COGNITO).await;
    let tenant = onboard(&app, &issue(&cognito_access("2a7c5e1f-operator", &["berth-platform-admins"], None))).await;

    // Cognito access tokens carry no custom attributes unless a trigger adds them.
    let no_tenant = issue(&cognito_access("9d4b3a2c-alice", &["berth-admins"], None));
    refused(&app, &no_tenant, "this endpoint needs a token with a tenant: the token has no tenant claim `custom:tenant_id` (BERTH_JWT_TENANT_CLAIM)").await;

    // A user in no group has no `cognito:groups` at all.
    let mut no_groups = cognito_access("9d4b3a2c-alice", &[], Some(&tenant));
    no_groups.as_object_mut().expect("an object").remove("cognito:groups");
    refused(&app, &issue(&no_groups), "the token has no roles claim `cognito:groups` (BERTH_JWT_ROLES_CLAIM)").await;

    let not_a_tenant = issue(&cognito_access("9d4b3a2c-alice", &["berth-admins"], Some("acme")));
    refused(&app, &not_a_tenant, "the tenant claim `custom:tenant_id` (BERTH_JWT_TENANT_CLAIM) is not a tenant id (a UUID)").await;

    // The same user with both claims gets in.
    assert_eq!(me(&app, &issue(&cognito_access("9d4b3a2c-alice", &["berth-admins"], Some(&tenant)))).await.0, tenant);
}
