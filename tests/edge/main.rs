//! Edge behaviour: auth, bad input, idempotency, If-Match, quotas, concurrency.

mod auth;
mod bad_input;
mod cors;
mod deployments;
mod governance;
mod governance_input;
mod idempotency;
mod idp;

pub use berth_tests::id_of;
use berth_tests::{TestApp, TestTenant, expect_status};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Everything a tenant can see of its own state: environments, runtimes and
/// the audit trail. Two equal snapshots mean nothing was written in between.
pub async fn snapshot(app: &TestApp, t: &TestTenant) -> Value {
    json!({
        "environments": list_items(app, "/v1/environments?limit=100", &t.admin).await,
        "runtimes": list_items(app, "/v1/runtimes?limit=100", &t.admin).await,
        "audit": app.audit(t).await,
    })
}

/// The `items` of one page of a list, as `token` sees it.
pub async fn list_items(app: &TestApp, path: &str, token: &str) -> Vec<Value> {
    let page = expect_status(app.get(path, token).await, StatusCode::OK).await;
    page["items"].as_array().expect("a list has items").clone()
}

/// The names of the tenant's environments, sorted.
pub async fn environment_names(app: &TestApp, t: &TestTenant) -> Vec<String> {
    let mut names: Vec<String> =
        list_items(app, "/v1/environments?limit=100", &t.admin).await.iter().map(|e| e["name"].as_str().expect("a name").to_string()).collect();
    names.sort();
    names
}

/// POSTs `body` as JSON with an `Idempotency-Key`.
pub async fn post_with_key(app: &TestApp, path: &str, token: &str, key: &str, body: Value) -> reqwest::Response {
    app.request(Method::POST, path, Some(token)).header("idempotency-key", key).json(&body).send().await.expect("the request is sent")
}
