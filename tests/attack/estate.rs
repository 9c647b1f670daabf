//! The victim and the attacker. Tenant A (Acme) has a real resource for every
//! kind of path parameter: an environment with a registered runtime attached,
//! a second runtime, a component (revision 2), a package that deployed and is
//! active, a second deployment whose job the runtime holds, and a draft change
//! request. Tenant B (Globex) has an admin and a registered runtime of its own.

use crate::forge::Signer;
use berth_tests::{TestApp, b64, expect_status};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

pub struct Estate {
    /// A's ids by kind (`connection_test`: one pending for A's runtime): `environment`, `runtime`, `component`, `revision`,
    /// `package`, `deployment`, `change_request`, `job`, `tenant`.
    pub ids: BTreeMap<&'static str, String>,
    pub a_tenant: String,
    pub a_admin: String,
    /// A's runtime whose job is in flight, and another runtime of A.
    pub a_credential: String,
    pub a_other_credential: String,
    /// The registration token A's runtime registered with (used up).
    pub a_used_registration: String,
    pub b_admin: String,
    pub b_tenant: String,
    pub b_credential: String,
    /// The signing secrets of A's webhook (`ids["webhook"]`) and of one of B's.
    pub a_webhook_secret: String,
    pub b_webhook_secret: String,
}

/// The delivery A's webhook received while the estate was built (`ids["delivery"]`).
pub const A_DELIVERY: &str = "fixture-delivery";

/// Creates a `package_and_deploy` webhook of `component` to `env`; returns its id and secret.
async fn webhook(app: &TestApp, token: &str, env: &str, component: &str) -> (String, String) {
    let body = json!({"name": "ci", "action": "package_and_deploy", "environment_id": env, "component_id": component});
    let hook = expect_status(call(app, Method::POST, "/v1/webhooks", token, Some(body)).await, StatusCode::CREATED).await;
    (id(&hook), hook["secret"].as_str().expect("the secret, shown once").to_string())
}

/// Sends JSON with a bearer token; returns the response.
pub async fn call(app: &TestApp, method: Method, path: &str, token: &str, body: Option<Value>) -> reqwest::Response {
    let request = app.request(method, path, Some(token));
    let request = match body {
        Some(b) => request.json(&b),
        None => request,
    };
    request.send().await.expect("the request is sent")
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap_or_else(|| panic!("a resource with an id: {v}")).to_string()
}

async fn register(app: &TestApp, runtime: &Value) -> String {
    let body = json!({"registration_token": runtime["registration_token"], "agent_version": "1.0.0"});
    let r = expect_status(app.request(Method::POST, "/agent/v1/register", None).json(&body).send().await.expect("sent"), StatusCode::CREATED).await;
    r["credential"].as_str().expect("a credential").to_string()
}

async fn heartbeat(app: &TestApp, credential: &str) {
    let body = json!({"agent_version": "1.0.0", "status": "ok", "running": []});
    expect_status(call(app, Method::POST, "/agent/v1/heartbeat", credential, Some(body)).await, StatusCode::OK).await;
}

/// The runtime's next job (waiting for the dispatcher to queue it).
async fn next_job(app: &TestApp, credential: &str) -> Value {
    // jobs/next answers within 2 s: thirty polls are a minute.
    for _ in 0..30 {
        let r = call(app, Method::GET, "/agent/v1/jobs/next?wait=2", credential, None).await;
        if r.status() == StatusCode::OK {
            return r.json().await.expect("a job");
        }
        assert_eq!(r.status(), StatusCode::NO_CONTENT, "jobs/next answers 200 or 204");
    }
    panic!("no job reached the runtime within a minute");
}

async fn wait_for_status(app: &TestApp, token: &str, deployment: &str, status: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let d = expect_status(call(app, Method::GET, &format!("/v1/deployments/{deployment}"), token, None).await, StatusCode::OK).await;
        if d["status"] == status {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "deployment {deployment} is {} after 60 s, not {status}", d["status"]);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

impl Estate {
    pub async fn build(app: &TestApp, signer: &Signer) -> Estate {
        let platform = signer.platform();
        let tenant = |name: &'static str| {
            let platform = platform.clone();
            async move {
                id(&expect_status(call(app, Method::POST, "/platform/v1/tenants", &platform, Some(json!({"name": name}))).await, StatusCode::CREATED).await)
            }
        };
        let (a_tenant, b_tenant) = (tenant("Acme").await, tenant("Globex").await);
        let a_admin = signer.user(&a_tenant, "alice@acme.example", &["admin"]);
        let b_admin = signer.user(&b_tenant, "mallory@globex.example", &["admin"]);
        let post = |path: &'static str, body: Value| {
            let token = a_admin.clone();
            async move { expect_status(call(app, Method::POST, path, &token, Some(body)).await, StatusCode::CREATED).await }
        };

        let env = id(&post("/v1/environments", json!({"name": "Test", "classification": "test"})).await);
        let runtime = post("/v1/runtimes", json!({"name": "atom-1"})).await;
        let other_runtime = post("/v1/runtimes", json!({"name": "atom-2"})).await;
        let a_used_registration = runtime["registration_token"].as_str().expect("a registration token").to_string();
        let a_credential = register(app, &runtime).await;
        let a_other_credential = register(app, &other_runtime).await;
        heartbeat(app, &a_credential).await;
        heartbeat(app, &a_other_credential).await;
        let runtime = id(&runtime);
        let attach = call(app, Method::PUT, &format!("/v1/environments/{env}/runtimes/{runtime}"), &a_admin, None).await;
        expect_status(attach, StatusCode::CREATED).await;

        let component = id(&post("/v1/components", json!({"name": "Orders", "type": "process", "content": b64(b"<process v1/>")})).await);
        let package = id(&post("/v1/packages", json!({"component_id": component, "version": "1"})).await);
        let active = id(&post("/v1/deployments", json!({"package_id": package, "environment_id": env})).await);
        let job = next_job(app, &a_credential).await;
        let done = json!({"phase": "deployed", "message": "fixture"});
        expect_status(
            call(app, Method::POST, &format!("/agent/v1/jobs/{}/events", job["job_id"].as_str().expect("a job id")), &a_credential, Some(done)).await,
            StatusCode::OK,
        )
        .await;
        wait_for_status(app, &a_admin, &active, "succeeded").await;

        let revise = call(app, Method::POST, &format!("/v1/components/{component}/revisions"), &a_admin, Some(json!({"content": b64(b"<process v2/>")}))).await;
        expect_status(revise, StatusCode::CREATED).await;
        let second = id(&post("/v1/packages", json!({"component_id": component, "version": "2"})).await);
        let deployment = id(&post("/v1/deployments", json!({"package_id": second, "environment_id": env})).await);
        // Delivered and left running: the job an attacker would most like to report on.
        let job = next_job(app, &a_credential).await;
        assert_eq!(job["deployment_id"], deployment.as_str());
        let job = job["job_id"].as_str().expect("a job id").to_string();

        let cr = json!({"name": "Release 2", "change_type": "normal", "target_environment_id": env, "items": [{"package_id": package}]});
        let change_request = id(&post("/v1/change-requests", cr).await);
        let api_key = id(&post("/v1/api-keys", json!({"name": "ci", "roles": ["admin"]})).await);
        // A connection test left pending for A's runtime: the one an attacker would most like to read the values of, or report on.
        let points = json!({"connection_fields": [{"name": "password", "secret": true, "required": true}]});
        let crm = id(&post("/v1/components", json!({"name": "CRM", "type": "connection", "content": b64(b"<crm/>"), "extensions": points})).await);
        let tested = call(app, Method::POST, &format!("/v1/environments/{env}/connections/{crm}/test"), &a_admin, None).await;
        let connection_test = expect_status(tested, StatusCode::CREATED).await["last_test"]["id"].as_str().expect("a test id").to_string();

        // A presigned upload started (never sent): the one an attacker would most like to complete into A's component.
        let upload = json!({"size": 1, "sha256": format!("sha256:{}", "0".repeat(64))});
        let started = call(app, Method::POST, &format!("/v1/components/{component}/uploads"), &a_admin, Some(upload)).await;
        let upload = expect_status(started, StatusCode::CREATED).await["upload_id"].as_str().expect("an upload id").to_string();

        let (a_webhook, a_webhook_secret) = webhook(app, &a_admin, &env, &component).await;
        // Refused (A's deployment is in flight) but authenticated: its id is taken and can be looked up.
        let signature = berth_domain::webhook::signature::berth_header(a_webhook_secret.as_bytes(), chrono::Utc::now().timestamp(), b"{}");
        let delivered = app
            .http
            .post(format!("{}/hooks/v1/{a_webhook}", app.base))
            .header("berth-delivery", A_DELIVERY)
            .header("berth-signature", signature)
            .body("{}")
            .send()
            .await
            .expect("the fixture delivery is sent");
        expect_status(delivered, StatusCode::CONFLICT).await;
        let b_post = |path: &'static str, body: Value| {
            let token = b_admin.clone();
            async move { id(&expect_status(call(app, Method::POST, path, &token, Some(body)).await, StatusCode::CREATED).await) }
        };
        let b_env = b_post("/v1/environments", json!({"name": "Test", "classification": "test"})).await;
        let b_component = b_post("/v1/components", json!({"name": "Billing", "type": "process", "content": b64(b"<process/>")})).await;
        let (_, b_webhook_secret) = webhook(app, &b_admin, &b_env, &b_component).await;

        let b_runtime = expect_status(call(app, Method::POST, "/v1/runtimes", &b_admin, Some(json!({"name": "globex-atom"}))).await, StatusCode::CREATED).await;
        let b_credential = register(app, &b_runtime).await;
        heartbeat(app, &b_credential).await;

        let ids = BTreeMap::from([
            ("environment", env),
            ("runtime", runtime),
            ("component", component),
            ("revision", "1".to_string()),
            ("package", package),
            ("deployment", deployment),
            ("change_request", change_request),
            ("api_key", api_key),
            ("webhook", a_webhook),
            ("delivery", A_DELIVERY.to_string()),
            ("job", job),
            ("connection_test", connection_test),
            ("upload", upload),
            ("tenant", a_tenant.clone()),
        ]);
        Estate {
            ids,
            a_tenant,
            a_admin,
            a_credential,
            a_other_credential,
            a_used_registration,
            b_admin,
            b_tenant,
            b_credential,
            a_webhook_secret,
            b_webhook_secret,
        }
    }

    /// `path` with every `{param}` replaced by A's id of that kind: `{id}` by
    /// the collection before it (`/v1/environments/{id}` names an environment),
    /// `{<kind>_id}` by its name, `{revision}` by revision 1.
    pub fn fill_path(&self, path: &str) -> Result<String, String> {
        let mut filled = vec![];
        let mut previous = "";
        for segment in path.split('/') {
            match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                None => filled.push(segment.to_string()),
                Some(param) => {
                    let kind = if param == "id" { singular(previous) } else { param.strip_suffix("_id").unwrap_or(param).to_string() };
                    let id = self.ids.get(kind.as_str()).ok_or_else(|| {
                        format!("no fixture for path parameter {{{param}}} (kind `{kind}`); known kinds: {:?} (tests/attack/estate.rs)", self.ids.keys())
                    })?;
                    filled.push(id.clone());
                }
            }
            previous = segment;
        }
        Ok(filled.join("/"))
    }

    /// The example `body` with its ids replaced by A's (or, with `fresh`, by
    /// ids nobody has): an id is known by its field (`environment_id`,
    /// `target_environment_id`, `package_id`, `references`, ...).
    pub fn fill_body(&self, body: &Value, fresh: bool) -> Result<Value, String> {
        self.fill_value(body, None, fresh)
    }

    fn fill_value(&self, v: &Value, field: Option<&str>, fresh: bool) -> Result<Value, String> {
        Ok(match v {
            Value::Object(o) => Value::Object(o.iter().map(|(k, v)| Ok((k.clone(), self.fill_value(v, Some(k), fresh)?))).collect::<Result<_, String>>()?),
            Value::Array(a) => Value::Array(a.iter().map(|v| self.fill_value(v, field, fresh)).collect::<Result<_, String>>()?),
            Value::String(s) if uuid::Uuid::parse_str(s).is_ok() => {
                let field = field.unwrap_or("");
                let kind = id_field_kind(field)
                    .ok_or_else(|| format!("the example has an id in `{field}`: teach tests/attack/estate.rs `id_field_kind` what it names"))?;
                let id = self.ids.get(kind).ok_or_else(|| format!("no fixture of kind `{kind}` for `{field}`"))?;
                Value::String(if fresh { uuid::Uuid::new_v4().to_string() } else { id.clone() })
            }
            other => other.clone(),
        })
    }

    /// Whether the example body names any of A's resources.
    pub fn body_names_resources(body: &Value) -> bool {
        match body {
            Value::Object(o) => o.values().any(Self::body_names_resources),
            Value::Array(a) => a.iter().any(Self::body_names_resources),
            Value::String(s) => uuid::Uuid::parse_str(s).is_ok(),
            _ => false,
        }
    }
}

/// `environments` → `environment`, `change-requests` → `change_request`.
fn singular(collection: &str) -> String {
    collection.strip_suffix('s').unwrap_or(collection).replace('-', "_")
}

fn id_field_kind(field: &str) -> Option<&'static str> {
    Some(match field {
        "references" => "component",
        "require_success_in" => "environment",
        f if f.ends_with("environment_id") => "environment",
        f if f.ends_with("component_id") => "component",
        f if f.ends_with("package_id") => "package",
        f if f.ends_with("runtime_id") => "runtime",
        f if f.ends_with("deployment_id") => "deployment",
        f if f.ends_with("change_request_id") => "change_request",
        _ => return None,
    })
}
