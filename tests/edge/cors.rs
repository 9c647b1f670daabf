//! CORS for a browser portal: what a browser sees, request by request. A
//! preflight from an allowed origin is answered 204 on every API with what
//! the portal may send; actual responses (errors too) name the origin and
//! the headers a script may read; any other origin, or a Berth with no
//! origins configured, sees no CORS header at all.

use berth_tests::{TestApp, expect_status};
use reqwest::header::HeaderMap;
use reqwest::{Method, Response, StatusCode};
use serde_json::json;

const PORTAL: &str = "https://portal.example.com";
const DEV_SERVER: &str = "http://localhost:5173";

async fn portal_app() -> TestApp {
    TestApp::spawn_with_cors(&format!("{PORTAL}, {DEV_SERVER}")).await
}

/// What a browser sends before a request that carries a token or JSON.
async fn preflight(app: &TestApp, origin: &str, path: &str, method: &str, headers: &str) -> Response {
    app.request(Method::OPTIONS, path, None)
        .header("origin", origin)
        .header("access-control-request-method", method)
        .header("access-control-request-headers", headers)
        .send()
        .await
        .expect("the preflight is sent")
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// The lowercased items of a comma-separated header.
fn list(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).map(|v| v.trim().to_ascii_lowercase()).collect()
}

/// Every `Access-Control-*` header of a response.
fn cors_headers(headers: &HeaderMap) -> Vec<String> {
    headers.keys().map(|k| k.as_str().to_string()).filter(|k| k.starts_with("access-control-")).collect()
}

#[tokio::test]
async fn a_preflight_from_an_allowed_origin_is_answered_204_on_the_portal_platform_agent_and_webhook_apis() {
    let app = portal_app().await;
    let id = uuid::Uuid::new_v4();
    let requests = [
        ("/v1/me".to_string(), "GET", "authorization"),
        ("/v1/environments".to_string(), "POST", "authorization,content-type,idempotency-key,x-request-id"),
        (format!("/v1/environments/{id}"), "PATCH", "authorization,content-type,if-match"),
        (format!("/v1/packages/{id}"), "DELETE", "authorization"),
        (format!("/v1/environments/{id}/policy"), "PUT", "authorization,content-type,if-match"),
        ("/platform/v1/tenants".to_string(), "POST", "authorization,content-type"),
        ("/agent/v1/heartbeat".to_string(), "POST", "authorization,content-type"),
        (format!("/hooks/v1/{id}"), "POST", "content-type"),
        ("/v1/no-such-resource".to_string(), "GET", "authorization"),
    ];
    for (path, method, asked) in &requests {
        let response = preflight(&app, PORTAL, path, method, asked).await;
        let h = response.headers().clone();
        assert_eq!(response.status(), StatusCode::NO_CONTENT, "preflight {method} {path}: {h:?}");
        assert_eq!(header(&h, "access-control-allow-origin"), PORTAL, "{method} {path}");
        let methods = list(&h, "access-control-allow-methods");
        for m in ["get", "post", "put", "patch", "delete"] {
            assert!(methods.contains(&m.to_string()), "{method} {path}: {m} allowed in {methods:?}");
        }
        let allowed = list(&h, "access-control-allow-headers");
        for name in ["authorization", "content-type", "if-match", "idempotency-key", "x-request-id"] {
            assert!(allowed.contains(&name.to_string()), "{method} {path}: {name} allowed in {allowed:?}");
        }
        assert_eq!(header(&h, "access-control-max-age"), "600", "{method} {path}");
        assert!(h.get("access-control-allow-credentials").is_none(), "bearer tokens need no credentials mode: {h:?}");
        assert!(list(&h, "vary").contains(&"origin".to_string()), "the answer varies by origin: {h:?}");
        assert!(response.bytes().await.expect("a body").is_empty(), "a preflight answer has no body");
    }

    let dev = preflight(&app, DEV_SERVER, "/v1/environments", "POST", "authorization,content-type").await;
    assert_eq!(dev.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(dev.headers(), "access-control-allow-origin"), DEV_SERVER, "each allowed origin is named back, not another");
}

#[tokio::test]
async fn responses_to_an_allowed_origin_name_it_and_expose_the_headers_the_portal_reads_errors_included() {
    let app = portal_app().await;
    let t = app.tenant("Acme").await;
    let exposed = ["etag", "location", "idempotent-replayed", "x-request-id"];

    let me = app.request(Method::GET, "/v1/me", Some(&t.admin)).header("origin", PORTAL).send().await.expect("sent");
    let h = me.headers().clone();
    assert_eq!(header(&h, "access-control-allow-origin"), PORTAL);
    let listed = list(&h, "access-control-expose-headers");
    for name in exposed {
        assert!(listed.contains(&name.to_string()), "{name} exposed in {listed:?}");
    }
    assert!(h.get("access-control-allow-credentials").is_none(), "{h:?}");
    expect_status(me, StatusCode::OK).await;

    // A create: the Location, ETag and request id it carries are readable by the script.
    let created = app
        .request(Method::POST, "/v1/environments", Some(&t.admin))
        .header("origin", PORTAL)
        .header("idempotency-key", uuid::Uuid::new_v4().to_string())
        .json(&json!({"name": "Staging", "classification": "test"}))
        .send()
        .await
        .expect("sent");
    let h = created.headers().clone();
    assert_eq!(header(&h, "access-control-allow-origin"), PORTAL);
    for name in exposed {
        assert!(list(&h, "access-control-expose-headers").contains(&name.to_string()), "{name} exposed: {h:?}");
    }
    for name in ["location", "etag", "x-request-id"] {
        assert!(h.get(name).is_some(), "the create returns {name}: {h:?}");
    }
    expect_status(created, StatusCode::CREATED).await;

    // A refusal is readable too, so the portal can show the problem's detail.
    let refused = app.request(Method::GET, "/v1/me", None).header("origin", PORTAL).send().await.expect("sent");
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header(refused.headers(), "access-control-allow-origin"), PORTAL);
}

#[tokio::test]
async fn any_other_origin_gets_no_cors_header_and_its_preflight_is_refused_as_berth_would_without_cors() {
    let app = portal_app().await;
    let t = app.tenant("Acme").await;
    // Another site, and near misses of the allowed origins: scheme, port, subdomain.
    for origin in ["https://evil.example.com", "http://portal.example.com", "http://localhost:5174", "https://app.portal.example.com", "null"] {
        let asked = preflight(&app, origin, "/v1/environments", "POST", "authorization,content-type").await;
        assert_eq!(asked.status(), StatusCode::METHOD_NOT_ALLOWED, "{origin}: the preflight is not answered");
        assert_eq!(cors_headers(asked.headers()), Vec::<String>::new(), "{origin}");

        let unknown = preflight(&app, origin, "/v1/no-such-resource", "GET", "authorization").await;
        assert_eq!(unknown.status(), StatusCode::NOT_FOUND, "{origin}");
        assert_eq!(cors_headers(unknown.headers()), Vec::<String>::new(), "{origin}");

        let me = app.request(Method::GET, "/v1/me", Some(&t.admin)).header("origin", origin).send().await.expect("sent");
        assert_eq!(cors_headers(me.headers()), Vec::<String>::new(), "{origin}");
        assert!(list(me.headers(), "vary").contains(&"origin".to_string()), "a cache keeps this answer apart from an allowed origin's");
        expect_status(me, StatusCode::OK).await;
    }
}

#[tokio::test]
async fn with_no_origins_configured_no_response_carries_a_cors_header() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let asked = preflight(&app, DEV_SERVER, "/v1/environments", "POST", "authorization,content-type").await;
    assert_eq!(asked.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(cors_headers(asked.headers()), Vec::<String>::new());
    let me = app.request(Method::GET, "/v1/me", Some(&t.admin)).header("origin", DEV_SERVER).send().await.expect("sent");
    assert_eq!(cors_headers(me.headers()), Vec::<String>::new());
    expect_status(me, StatusCode::OK).await;
}
