//! The holes an attacker (or a careless colleague) found, each closed: every
//! way of changing an environment passes its policy, separation of duties on
//! change requests cannot be laundered, secrets are never replayed or stored,
//! detach and suspension take effect at once, every transition is audited.

mod audit;
mod credentials;
mod duties;
mod policy;
mod runtimes;
mod secrets;

pub use berth_tests::id_of;
use berth_tests::{Agent, TestApp, TestTenant, expect_status};
use chrono::{Duration, Utc};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

pub const ANN: &str = "ann@acme.example";
pub const BOB: &str = "bob@acme.example";
pub const CAROL: &str = "carol@acme.example";

/// Acme's Production with one runtime run by a real agent, the Orders
/// process packaged as v1 and v2, a deployer (Ann), a deployer who also
/// approves (Bob) and an approver (Carol).
pub struct World {
    pub app: TestApp,
    pub acme: TestTenant,
    pub prod: Value,
    pub runtime: Value,
    pub agent: Agent,
    pub orders: Value,
    pub v1: Value,
    pub v2: Value,
    pub ann: String,
    pub bob: String,
    pub carol: String,
}

pub async fn world() -> World {
    world_with_apply(None).await
}

/// A world whose agent runs `apply` as its apply command.
pub async fn world_with_apply(apply: Option<&str>) -> World {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let prod = app.environment(&acme, "Production", "production").await;
    let runtime = app.runtime(&acme, "atom").await;
    app.attach(&acme, &prod, &runtime).await;
    let agent = Agent::start(&app, &runtime, apply);
    let orders = app.component(&acme, "Orders", "process", b"orders v1", &[]).await;
    let v1 = app.package(&acme, &orders, Some("v1")).await;
    app.revise(&acme, &orders, b"orders v2").await;
    let v2 = app.package(&acme, &orders, Some("v2")).await;
    let ann = app.user_token(&acme.id, ANN, &["deployer"]);
    let bob = app.user_token(&acme.id, BOB, &["deployer", "approver"]);
    let carol = app.user_token(&acme.id, CAROL, &["approver"]);
    World { app, acme, prod, runtime, agent, orders, v1, v2, ann, bob, carol }
}

impl World {
    /// Replaces Production's policy (admin, with the current etag).
    pub async fn set_policy(&self, body: Value) {
        let path = format!("/v1/environments/{}/policy", id_of(&self.prod));
        let current = self.app.get(&path, &self.acme.admin).await;
        let etag = current.headers().get("etag").and_then(|v| v.to_str().ok()).expect("an ETag").to_string();
        let response = self.app.request(Method::PUT, &path, Some(&self.acme.admin)).header("if-match", etag).json(&body).send().await.expect("sent");
        expect_status(response, StatusCode::OK).await;
    }

    /// A freeze window from an hour ago to an hour from now, on top of `policy`.
    pub async fn freeze(&self, mut policy: Value) -> chrono::DateTime<Utc> {
        let end = (Utc::now() + Duration::hours(1)).with_nanosecond_zero();
        policy["freeze_windows"] = json!([{"start": Utc::now() - Duration::hours(1), "end": end}]);
        self.set_policy(policy).await;
        end
    }

    /// Deploys `package` as the admin and waits until it is active.
    pub async fn deploy_active(&self, package: &Value) -> Value {
        let d = self.app.deploy(&self.acme, package, &self.prod, "release").await;
        self.app.wait_for_status(&self.acme, &d, "succeeded").await
    }

    pub fn undeploy_path(&self) -> String {
        format!("/v1/environments/{}/active/{}", id_of(&self.prod), id_of(&self.orders))
    }

    pub fn rollback_path(&self) -> String {
        format!("{}/rollback", self.undeploy_path())
    }

    pub async fn deployment(&self, d: &Value) -> Value {
        expect_status(self.app.get(&format!("/v1/deployments/{}", id_of(d)), &self.acme.admin).await, StatusCode::OK).await
    }

    pub async fn targets(&self, d: &Value) -> Vec<Value> {
        let list = expect_status(self.app.get(&format!("/v1/deployments/{}/targets", id_of(d)), &self.acme.admin).await, StatusCode::OK).await;
        list["items"].as_array().expect("items").clone()
    }

    pub async fn timeline(&self, d: &Value) -> Vec<String> {
        let events = expect_status(self.app.get(&format!("/v1/deployments/{}/events?limit=100", id_of(d)), &self.acme.admin).await, StatusCode::OK).await;
        events["items"].as_array().expect("items").iter().map(|e| e["message"].as_str().expect("a message").to_string()).collect()
    }

    /// The version Production runs of Orders, if any.
    pub async fn active_version(&self) -> Option<String> {
        self.app
            .active(&self.acme, &self.prod)
            .await
            .iter()
            .find(|a| a["component_id"] == self.orders["id"])
            .map(|a| a["version"].as_str().expect("a version").to_string())
    }

    /// The version the agent runs of Orders, if any (waits for a pending swap to settle first).
    pub fn installed_version(&self) -> Option<String> {
        self.agent.installed(&self.prod, &self.orders).map(|i| i["version"].as_str().expect("a version").to_string())
    }

    pub async fn approve(&self, token: &str, d: &Value) -> Response {
        self.app.post(&format!("/v1/deployments/{}/approvals", id_of(d)), token, json!({"decision": "approve", "comment": "ok"})).await
    }

    /// The audit actions recorded for `entity_id`, oldest first.
    pub async fn audit_actions(&self, entity_id: &str) -> Vec<String> {
        self.app.audit(&self.acme).await.iter().filter(|e| e["entity_id"] == entity_id).map(|e| e["action"].as_str().expect("an action").to_string()).collect()
    }
}

trait WithoutNanos {
    fn with_nanosecond_zero(self) -> Self;
}

impl WithoutNanos for chrono::DateTime<Utc> {
    fn with_nanosecond_zero(self) -> Self {
        use chrono::Timelike;
        self.with_nanosecond(0).expect("zero nanoseconds is valid")
    }
}
