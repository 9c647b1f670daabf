//! Tenant isolation across every endpoint: tenant B can neither read nor
//! change anything of tenant A, whether it names A's ids in a path, a body, a
//! query, a list cursor or an agent token.

mod agents;
mod deployments;
mod governance;
mod packages;
mod portal;

use berth_tests::{TestApp, TestTenant, expect_status};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Who tenant B's admin is, as A's audit trail would record them.
pub const MALLORY: &str = "mallory@globex.example";

/// One tenant's environment and runtime, the runtime registered, heartbeating
/// and attached to the environment.
pub struct Estate {
    pub tenant: TestTenant,
    pub env_id: String,
    pub runtime_id: String,
    pub credential: String,
}

/// Tenant A (Acme) and tenant B (Globex, whose admin is `MALLORY`), each with
/// an environment of the same name and a runtime attached to it.
pub struct TwoTenants {
    pub app: TestApp,
    pub a: Estate,
    pub b: Estate,
}

impl TwoTenants {
    pub async fn spawn() -> TwoTenants {
        let app = TestApp::spawn().await;
        let a = estate(&app, "Acme", None).await;
        let b = estate(&app, "Globex", Some(MALLORY)).await;
        TwoTenants { app, a, b }
    }

    /// What A itself sees of its environment, runtime, attachments and audit
    /// trail, to compare before and after B's attempts.
    pub async fn a_snapshot(&self) -> Snapshot {
        let (app, a) = (&self.app, &self.a);
        let env_response = app.get(&format!("/v1/environments/{}", a.env_id), &a.tenant.admin).await;
        let etag = env_response.headers().get("etag").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let environment = expect_status(env_response, StatusCode::OK).await;
        let runtime = expect_status(app.get(&format!("/v1/runtimes/{}", a.runtime_id), &a.tenant.admin).await, StatusCode::OK).await;
        let attached = expect_status(app.get(&format!("/v1/environments/{}/runtimes", a.env_id), &a.tenant.admin).await, StatusCode::OK).await;
        let audit = app.audit(&a.tenant).await;
        Snapshot {
            etag,
            environment,
            runtime: without_status(runtime),
            attached: attached["items"].as_array().expect("items").iter().cloned().map(without_status).collect(),
            audit,
        }
    }
}

/// The observable state of tenant A.
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    pub etag: String,
    pub environment: Value,
    pub runtime: Value,
    pub attached: Vec<Value>,
    pub audit: Vec<Value>,
}

/// A runtime as listed, without its derived `status` (which ages with time).
fn without_status(mut runtime: Value) -> Value {
    if let Some(fields) = runtime.as_object_mut() {
        fields.remove("status");
    }
    runtime
}

async fn estate(app: &TestApp, name: &str, admin_sub: Option<&str>) -> Estate {
    let mut tenant = app.tenant(name).await;
    if let Some(sub) = admin_sub {
        tenant.admin = app.user_token(&tenant.id, sub, &["admin"]);
    }
    let env = app.environment(&tenant, "Production", "production").await;
    let env_id = env["id"].as_str().expect("an environment id").to_string();
    let runtime = app.runtime(&tenant, &format!("{name}-atom")).await;
    let runtime_id = runtime["id"].as_str().expect("a runtime id").to_string();
    let credential = app.register_agent(&runtime).await;
    expect_status(app.heartbeat(&credential).await, StatusCode::OK).await;
    let attached = expect_status(app.put(&format!("/v1/environments/{env_id}/runtimes/{runtime_id}"), &tenant.admin).await, StatusCode::CREATED).await;
    assert_eq!(attached["environments"], json!([env_id]));
    Estate { tenant, env_id, runtime_id, credential }
}

/// Sends `method path` with `token` (and a JSON body when given).
pub async fn send(app: &TestApp, method: Method, path: &str, token: &str, body: Option<&Value>) -> reqwest::Response {
    let request = app.request(method, path, Some(token));
    let request = match body {
        Some(b) => request.json(b),
        None => request,
    };
    request.send().await.expect("the request is sent")
}

/// The ids in a list's `items`.
pub fn ids(list: &Value) -> Vec<String> {
    list["items"].as_array().expect("items").iter().map(|i| i["id"].as_str().expect("an id").to_string()).collect()
}
