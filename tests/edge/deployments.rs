//! Bad input on every deployment and agent-job endpoint is refused with the
//! right status and `code`, and writes nothing: no deployment, no target
//! change, no timeline line, no audit event, no job handed to an agent.

use crate::{id_of, list_items};
use berth_tests::{TestApp, TestTenant, eventually, expect_invalid_field, expect_problem, expect_status};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A tenant with a Test environment, one runtime registered by hand (its
/// credential plays the agent), heartbeating and attached, and a packaged
/// process.
struct World {
    app: TestApp,
    acme: TestTenant,
    env: Value,
    runtime: Value,
    credential: String,
    process: Value,
    package: Value,
}

async fn world() -> World {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let env = app.environment(&acme, "Test", "test").await;
    let runtime = app.runtime(&acme, "atom").await;
    let credential = app.register_agent(&runtime).await;
    expect_status(app.heartbeat(&credential).await, StatusCode::OK).await;
    app.attach(&acme, &env, &runtime).await;
    let process = app.component(&acme, "Orders", "process", b"orders v1", &[]).await;
    let package = app.package(&acme, &process, Some("v1")).await;
    World { app, acme, env, runtime, credential, process, package }
}

/// Sends `method path` with `token` and no body.
async fn send(app: &TestApp, method: Method, path: &str, token: Option<&str>) -> Response {
    app.request(method, path, token).send().await.expect("the request is sent")
}

/// POSTs a raw body declared as JSON.
async fn post_raw(app: &TestApp, path: &str, token: &str, body: &'static str) -> Response {
    app.request(Method::POST, path, Some(token)).header("content-type", "application/json").body(body).send().await.expect("the request is sent")
}

/// `GET /agent/v1/jobs/next?wait=<wait>` as the agent holding `credential`.
async fn poll(app: &TestApp, credential: &str, wait: &str) -> Response {
    send(app, Method::GET, &format!("/agent/v1/jobs/next?wait={wait}"), Some(credential)).await
}

/// Polls as an agent does until a job comes (at most 30 s).
async fn next_job(app: &TestApp, credential: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let response = poll(app, credential, "5").await;
        let status = response.status();
        if status == StatusCode::OK {
            return response.json().await.expect("a job");
        }
        let body = response.text().await.unwrap_or_default();
        assert_eq!(status, StatusCode::NO_CONTENT, "jobs/next: {body}");
        assert!(Instant::now() < deadline, "no job within 30 s");
    }
}

/// Reports `body` on job `job_id` as the agent holding `credential`.
async fn report_body(app: &TestApp, credential: Option<&str>, job_id: &str, body: Value) -> Response {
    app.request(Method::POST, &format!("/agent/v1/jobs/{job_id}/events"), credential).json(&body).send().await.expect("the request is sent")
}

async fn report(app: &TestApp, credential: &str, job_id: &str, phase: &str) -> Response {
    report_body(app, Some(credential), job_id, json!({"phase": phase})).await
}

fn str_of<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field].as_str().unwrap_or_else(|| panic!("{field} in {v}"))
}

fn codes(issues: &Value) -> Vec<&str> {
    issues.as_array().expect("a list of issues").iter().map(|i| i["code"].as_str().expect("a code")).collect()
}

impl World {
    fn body(&self, package: &Value, env: &Value) -> Value {
        json!({"package_id": package["id"], "environment_id": env["id"]})
    }

    async fn get_ok(&self, path: &str) -> Value {
        expect_status(self.app.get(path, &self.acme.admin).await, StatusCode::OK).await
    }

    async fn deployment(&self, d: &Value) -> Value {
        self.get_ok(&format!("/v1/deployments/{}", id_of(d))).await
    }

    async fn targets(&self, d: &Value) -> Vec<Value> {
        let list = self.get_ok(&format!("/v1/deployments/{}/targets", id_of(d))).await;
        list["items"].as_array().expect("items").clone()
    }

    /// Every deployment with its targets and timeline, what the environment
    /// runs, and the audit trail: equal ledgers mean nothing was written.
    async fn ledger(&self) -> Value {
        let deployments = list_items(&self.app, "/v1/deployments?limit=100", &self.acme.admin).await;
        let mut details = vec![];
        for d in &deployments {
            let events = self.get_ok(&format!("/v1/deployments/{}/events?limit=100", id_of(d))).await;
            details.push(json!({"targets": self.targets(d).await, "events": events["items"]}));
        }
        json!({
            "deployments": deployments,
            "details": details,
            "active": self.app.active(&self.acme, &self.env).await,
            "audit": self.app.audit(&self.acme).await,
        })
    }

    /// The runtime's queue hands out nothing.
    async fn assert_no_job(&self) {
        let response = poll(&self.app, &self.credential, "1").await;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        assert_eq!(status, StatusCode::NO_CONTENT, "no job is delivered: {body}");
    }

    /// Puts `job`'s message on the runtime's queue again, as SQS may.
    async fn redeliver(&self, job: &Value) {
        let (queue, _) = berth_aws::keys::runtime_queue_names(&self.app.names.queue_prefix, str_of(&self.runtime, "id").parse().expect("a runtime id"));
        let sqs = &self.app.clients.sqs;
        let queue_url = sqs.get_queue_url().queue_name(&queue).send().await.expect("the runtime's queue exists").queue_url().expect("a queue url").to_string();
        let message = json!({"tenant_id": self.acme.id, "deployment_id": job["deployment_id"], "runtime_id": self.runtime["id"], "job_id": job["job_id"]});
        sqs.send_message().queue_url(&queue_url).message_body(message.to_string()).send().await.expect("the duplicate is sent");
    }

    /// Deploys `package` and plays the agent through every phase to success.
    async fn deploy_by_hand(&self, package: &Value) -> (Value, Value) {
        let d = self.app.deploy(&self.acme, package, &self.env, "by hand").await;
        let job = next_job(&self.app, &self.credential).await;
        assert_eq!(job["deployment_id"], d["id"], "{job}");
        for phase in ["downloading", "backing_up", "applying", "deployed"] {
            let outcome = expect_status(report(&self.app, &self.credential, str_of(&job, "job_id"), phase).await, StatusCode::OK).await;
            assert_eq!(outcome["job_status"], phase, "{outcome}");
        }
        (self.app.wait_for_status(&self.acme, &d, "succeeded").await, job)
    }

    /// Deploys `package` and has its job fail on the agent.
    async fn deploy_and_fail(&self, package: &Value) -> (Value, Value) {
        let d = self.app.deploy(&self.acme, package, &self.env, "will fail").await;
        let job = next_job(&self.app, &self.credential).await;
        assert_eq!(job["deployment_id"], d["id"], "{job}");
        let outcome = expect_status(
            report_body(&self.app, Some(&self.credential), str_of(&job, "job_id"), json!({"phase": "failed", "message": "apply command failed"})).await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(outcome, json!({"job_status": "failed", "proceed": false}));
        (self.app.wait_for_status(&self.acme, &d, "failed").await, job)
    }
}

#[tokio::test]
async fn malformed_json_to_deploy_or_validate_is_refused_with_400_and_nothing_is_written() {
    let w = world().await;
    let before = w.ledger().await;
    for path in ["/v1/deployments", "/v1/deployments/validate"] {
        for body in [r#"{"package_id": "#, "{package_id: 1}", r#"{"package_id": null} trailing"#, ""] {
            expect_problem(post_raw(&w.app, path, &w.acme.admin, body).await, StatusCode::BAD_REQUEST, "malformed_json").await;
        }
    }
    assert_eq!(w.ledger().await, before);
    w.assert_no_job().await;
}

#[tokio::test]
async fn an_unknown_field_in_a_deployment_is_refused_with_422_naming_it() {
    let w = world().await;
    let before = w.ledger().await;
    for path in ["/v1/deployments", "/v1/deployments/validate"] {
        let mut body = w.body(&w.package, &w.env);
        body["force"] = json!(true);
        expect_invalid_field(w.app.post(path, &w.acme.admin, body).await, "force").await;
        let mut body = w.body(&w.package, &w.env);
        body["tenant_id"] = json!(w.acme.id);
        expect_invalid_field(w.app.post(path, &w.acme.admin, body).await, "tenant_id").await;
    }
    assert_eq!(w.ledger().await, before);
    w.assert_no_job().await;
}

#[tokio::test]
async fn a_deployment_without_its_package_or_environment_is_refused_with_422_saying_which() {
    let w = world().await;
    let before = w.ledger().await;
    for path in ["/v1/deployments", "/v1/deployments/validate"] {
        for (body, missing) in [
            (json!({"environment_id": w.env["id"]}), "package_id"),
            (json!({"package_id": w.package["id"]}), "environment_id"),
            (json!({}), "package_id"),
            (json!({"package_id": null, "environment_id": w.env["id"]}), "package_id"),
        ] {
            let problem = expect_problem(w.app.post(path, &w.acme.admin, body.clone()).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
            assert!(problem["errors"].to_string().contains(missing), "{path} {body}: the errors mention {missing}: {problem}");
        }
    }
    assert_eq!(w.ledger().await, before);
    w.assert_no_job().await;
}

#[tokio::test]
async fn ids_that_are_not_uuids_in_a_deployment_body_are_refused_with_422_naming_the_field() {
    let w = world().await;
    let before = w.ledger().await;
    for path in ["/v1/deployments", "/v1/deployments/validate"] {
        for bad in [json!("abc"), json!(42), json!(""), json!(["x"])] {
            let body = json!({"package_id": bad, "environment_id": w.env["id"]});
            expect_invalid_field(w.app.post(path, &w.acme.admin, body).await, "package_id").await;
            let body = json!({"package_id": w.package["id"], "environment_id": bad});
            expect_invalid_field(w.app.post(path, &w.acme.admin, body).await, "environment_id").await;
        }
    }
    assert_eq!(w.ledger().await, before);
    w.assert_no_job().await;
}

#[tokio::test]
async fn an_unknown_package_or_environment_is_refused_with_404() {
    let w = world().await;
    let before = w.ledger().await;
    let ghost = json!({"id": uuid::Uuid::new_v4()});
    for path in ["/v1/deployments", "/v1/deployments/validate"] {
        for body in [
            w.body(&ghost, &w.env),
            w.body(&w.package, &ghost),
            w.body(&ghost, &ghost),
            // A component's id is not a package's.
            w.body(&w.process, &w.env),
        ] {
            expect_problem(w.app.post(path, &w.acme.admin, body).await, StatusCode::NOT_FOUND, "not_found").await;
        }
    }
    assert_eq!(w.ledger().await, before);
    w.assert_no_job().await;
}

#[tokio::test]
async fn a_scheduled_at_that_is_not_rfc_3339_is_refused_with_422_on_scheduled_at() {
    let w = world().await;
    let before = w.ledger().await;
    for at in [json!("tomorrow"), json!("2030-01-01"), json!("2030-02-30T10:00:00Z"), json!("10:00"), json!(1_900_000_000), json!(true)] {
        let mut body = w.body(&w.package, &w.env);
        body["scheduled_at"] = at;
        expect_invalid_field(w.app.post("/v1/deployments", &w.acme.admin, body).await, "scheduled_at").await;
    }
    assert_eq!(w.ledger().await, before);
    w.assert_no_job().await;

    // An RFC 3339 time in the future holds the deployment as scheduled.
    let mut body = w.body(&w.package, &w.env);
    body["scheduled_at"] = json!("2099-01-01T09:30:00+02:00");
    let held = expect_status(w.app.post("/v1/deployments", &w.acme.admin, body).await, StatusCode::CREATED).await;
    assert_eq!(held["status"], "scheduled");
    assert_eq!(held["scheduled_at"], "2099-01-01T07:30:00Z");
}

#[tokio::test]
async fn notes_over_2000_characters_are_refused_with_422_and_2000_are_accepted() {
    let w = world().await;
    let before = w.ledger().await;
    for notes in ["x".repeat(2001), "é".repeat(2001), "🚢".repeat(2001)] {
        let mut body = w.body(&w.package, &w.env);
        body["notes"] = json!(notes);
        expect_invalid_field(w.app.post("/v1/deployments", &w.acme.admin, body).await, "notes").await;
    }
    let mut body = w.body(&w.package, &w.env);
    body["notes"] = json!(42);
    expect_invalid_field(w.app.post("/v1/deployments", &w.acme.admin, body).await, "notes").await;
    assert_eq!(w.ledger().await, before);
    w.assert_no_job().await;

    // 2000 characters (not bytes) is the limit, not past it.
    let mut body = w.body(&w.package, &w.env);
    body["notes"] = json!("é".repeat(2000));
    let d = expect_status(w.app.post("/v1/deployments", &w.acme.admin, body).await, StatusCode::CREATED).await;
    assert_eq!(d["notes"], "é".repeat(2000));
}

#[tokio::test]
async fn listing_deployments_with_an_unknown_status_a_bad_id_or_a_bad_limit_is_refused_with_422() {
    let w = world().await;
    let (done, _) = w.deploy_by_hand(&w.package).await;
    for (query, field) in [
        ("status=done", "status"),
        ("status=Succeeded", "status"),
        ("status=", "status"),
        ("environment_id=xyz", "environment_id"),
        ("component_id=xyz", "component_id"),
        ("component_id=", "component_id"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("cursor=garbage", "cursor"),
    ] {
        let problem = expect_invalid_field(w.app.get(&format!("/v1/deployments?{query}"), &w.acme.admin).await, field).await;
        assert!(!problem.to_string().contains(str_of(&w.package, "id")), "a refusal lists nothing: {problem}");
    }
    let events = format!("/v1/deployments/{}/events", id_of(&done));
    for (query, field) in [("limit=0", "limit"), ("limit=-1", "limit"), ("cursor=garbage", "cursor")] {
        expect_invalid_field(w.app.get(&format!("{events}?{query}"), &w.acme.admin).await, field).await;
    }
    // The same filters, well formed, work.
    for query in
        ["status=succeeded".to_string(), format!("environment_id={}", id_of(&w.env)), format!("component_id={}", id_of(&w.process)), "limit=1".to_string()]
    {
        let items = list_items(&w.app, &format!("/v1/deployments?{query}"), &w.acme.admin).await;
        assert_eq!(items.len(), 1, "{query}");
    }
    let none = list_items(&w.app, "/v1/deployments?status=failed", &w.acme.admin).await;
    assert!(none.is_empty(), "the status filter filters: {none:?}");
}

#[tokio::test]
async fn a_deployment_id_that_is_not_a_uuid_is_400_invalid_id_and_an_unknown_one_is_404() {
    let w = world().await;
    let before = w.ledger().await;
    let env = id_of(&w.env);
    let component = id_of(&w.process);
    for bad in ["not-a-uuid", "123"] {
        for (method, path) in [
            (Method::GET, format!("/v1/deployments/{bad}")),
            (Method::GET, format!("/v1/deployments/{bad}/targets")),
            (Method::GET, format!("/v1/deployments/{bad}/events")),
            (Method::POST, format!("/v1/deployments/{bad}/cancel")),
            (Method::POST, format!("/v1/deployments/{bad}/retry")),
            (Method::GET, format!("/v1/environments/{bad}/active")),
            (Method::DELETE, format!("/v1/environments/{bad}/active/{component}")),
            (Method::DELETE, format!("/v1/environments/{env}/active/{bad}")),
        ] {
            expect_problem(send(&w.app, method.clone(), &path, Some(&w.acme.admin)).await, StatusCode::BAD_REQUEST, "invalid_id").await;
        }
    }
    let ghost = uuid::Uuid::new_v4();
    for (method, path) in [
        (Method::GET, format!("/v1/deployments/{ghost}")),
        (Method::GET, format!("/v1/deployments/{ghost}/targets")),
        (Method::GET, format!("/v1/deployments/{ghost}/events")),
        (Method::POST, format!("/v1/deployments/{ghost}/cancel")),
        (Method::POST, format!("/v1/deployments/{ghost}/retry")),
        (Method::GET, format!("/v1/environments/{ghost}/active")),
        (Method::DELETE, format!("/v1/environments/{ghost}/active/{component}")),
        (Method::DELETE, format!("/v1/environments/{env}/active/{ghost}")),
        // A package's id is not a deployment's.
        (Method::GET, format!("/v1/deployments/{}", id_of(&w.package))),
    ] {
        expect_problem(send(&w.app, method, &path, Some(&w.acme.admin)).await, StatusCode::NOT_FOUND, "not_found").await;
    }
    assert_eq!(w.ledger().await, before);
    w.assert_no_job().await;
}

#[tokio::test]
async fn a_viewer_reads_deployments_but_cannot_deploy_cancel_retry_or_undeploy() {
    let w = world().await;
    let (active, _) = w.deploy_by_hand(&w.package).await;
    w.app.revise(&w.acme, &w.process, b"orders v2").await;
    let v2 = w.app.package(&w.acme, &w.process, Some("v2")).await;
    let (failed, _) = w.deploy_and_fail(&v2).await;
    let billing = w.app.component(&w.acme, "Billing", "process", b"billing", &[]).await;
    let billing_package = w.app.package(&w.acme, &billing, None).await;
    let mut body = w.body(&billing_package, &w.env);
    body["scheduled_at"] = json!("2099-01-01T00:00:00Z");
    let scheduled = expect_status(w.app.post("/v1/deployments", &w.acme.admin, body).await, StatusCode::CREATED).await;
    assert_eq!(scheduled["status"], "scheduled");
    let viewer = w.app.token(&w.acme.id, &["viewer"]);

    // A viewer reads everything.
    let listed = list_items(&w.app, "/v1/deployments", &viewer).await;
    assert_eq!(listed.len(), 3, "{listed:?}");
    for d in [&active, &failed, &scheduled] {
        let id = id_of(d);
        for path in [format!("/v1/deployments/{id}"), format!("/v1/deployments/{id}/targets"), format!("/v1/deployments/{id}/events")] {
            expect_status(w.app.get(&path, &viewer).await, StatusCode::OK).await;
        }
    }
    let seen = expect_status(w.app.get(&format!("/v1/environments/{}/active", id_of(&w.env)), &viewer).await, StatusCode::OK).await;
    assert_eq!(seen["items"][0]["package_id"], w.package["id"]);

    // But changes nothing.
    let before = w.ledger().await;
    expect_problem(w.app.post("/v1/deployments", &viewer, w.body(&w.package, &w.env)).await, StatusCode::FORBIDDEN, "forbidden").await;
    for (d, action) in [(&scheduled, "cancel"), (&failed, "retry")] {
        expect_problem(send(&w.app, Method::POST, &format!("/v1/deployments/{}/{action}", id_of(d)), Some(&viewer)).await, StatusCode::FORBIDDEN, "forbidden")
            .await;
    }
    let undeploy = format!("/v1/environments/{}/active/{}", id_of(&w.env), id_of(&w.process));
    expect_problem(w.app.delete(&undeploy, &viewer).await, StatusCode::FORBIDDEN, "forbidden").await;
    let report = expect_status(w.app.post("/v1/deployments/validate", &viewer, w.body(&w.package, &w.env)).await, StatusCode::OK).await;
    assert_eq!(codes(&report["errors"]), ["forbidden"], "{report}");
    assert_eq!(w.ledger().await, before);
    w.assert_no_job().await;

    // The same requests from an admin go through.
    let report = expect_status(w.app.post("/v1/deployments/validate", &w.acme.admin, w.body(&w.package, &w.env)).await, StatusCode::OK).await;
    assert_eq!(report["errors"], json!([]), "{report}");
    let cancelled =
        expect_status(send(&w.app, Method::POST, &format!("/v1/deployments/{}/cancel", id_of(&scheduled)), Some(&w.acme.admin)).await, StatusCode::OK).await;
    assert_eq!(cancelled["status"], "cancelled");
    let retried =
        expect_status(send(&w.app, Method::POST, &format!("/v1/deployments/{}/retry", id_of(&failed)), Some(&w.acme.admin)).await, StatusCode::OK).await;
    assert_eq!(retried["status"], "in_progress");
    assert_eq!(next_job(&w.app, &w.credential).await["deployment_id"], failed["id"]);
    // And neither can be done twice.
    for (d, action, code) in [
        (&scheduled, "cancel", "deployment_started"),
        (&scheduled, "retry", "not_retryable"),
        (&failed, "retry", "not_retryable"),
        (&failed, "cancel", "deployment_started"),
    ] {
        expect_problem(send(&w.app, Method::POST, &format!("/v1/deployments/{}/{action}", id_of(d)), Some(&w.acme.admin)).await, StatusCode::CONFLICT, code)
            .await;
    }
}

#[tokio::test]
async fn a_developer_cannot_deploy_and_validate_says_so() {
    let w = world().await;
    let developer = w.app.token(&w.acme.id, &["developer"]);
    let before = w.ledger().await;
    expect_problem(w.app.post("/v1/deployments", &developer, w.body(&w.package, &w.env)).await, StatusCode::FORBIDDEN, "forbidden").await;
    let report = expect_status(w.app.post("/v1/deployments/validate", &developer, w.body(&w.package, &w.env)).await, StatusCode::OK).await;
    assert_eq!(codes(&report["errors"]), ["forbidden"], "{report}");
    assert_eq!(w.ledger().await, before);
    w.assert_no_job().await;

    // A deployer may.
    let deployer = w.app.token(&w.acme.id, &["deployer"]);
    let report = expect_status(w.app.post("/v1/deployments/validate", &deployer, w.body(&w.package, &w.env)).await, StatusCode::OK).await;
    assert_eq!(report, json!({"errors": [], "warnings": [], "extensions_version": 0, "extensions_changed": null}));
    expect_status(w.app.post("/v1/deployments", &deployer, w.body(&w.package, &w.env)).await, StatusCode::CREATED).await;
}

#[tokio::test]
async fn jobs_next_with_a_wait_that_is_not_a_whole_number_of_seconds_is_refused_with_422_and_hands_out_nothing() {
    let w = world().await;
    let d = w.app.deploy(&w.acme, &w.package, &w.env, "").await;
    w.app.wait_for_status(&w.acme, &d, "in_progress").await;
    let before = w.ledger().await;
    // (A larger whole number is clamped to 2 s, not refused: see tests/api/sqs_jobs.rs.)
    for wait in ["-1", "abc", "1.5", "", "+3", "1e3"] {
        expect_invalid_field(poll(&w.app, &w.credential, wait).await, "wait").await;
    }
    expect_problem(send(&w.app, Method::GET, "/agent/v1/jobs/next?wait=0", None).await, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    expect_problem(send(&w.app, Method::GET, "/agent/v1/jobs/next?wait=0", Some(&w.acme.admin)).await, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    assert_eq!(w.ledger().await, before, "no job was delivered");
    assert_eq!(w.targets(&d).await[0]["state"], "pending");

    // A wait within bounds hands the job out.
    let job = next_job(&w.app, &w.credential).await;
    assert_eq!(job["deployment_id"], d["id"]);
    assert_eq!(w.targets(&d).await[0]["state"], "delivered");
}

#[tokio::test]
async fn a_job_event_with_a_bad_phase_body_or_job_id_is_refused_and_the_target_is_unchanged() {
    let w = world().await;
    let d = w.app.deploy(&w.acme, &w.package, &w.env, "").await;
    let job = next_job(&w.app, &w.credential).await;
    let job_id = str_of(&job, "job_id");
    let before = w.ledger().await;

    for (body, field) in [
        (json!({"phase": "done"}), "phase"),
        (json!({"phase": "pending"}), "phase"),
        (json!({"phase": "Deployed"}), "phase"),
        (json!({"phase": 3}), "phase"),
        (json!({"phase": null}), "phase"),
        (json!({"phase": "downloading", "progress": 50}), "progress"),
        (json!({"phase": "downloading", "message": 7}), "message"),
    ] {
        expect_invalid_field(report_body(&w.app, Some(&w.credential), job_id, body).await, field).await;
    }
    for body in [json!({}), json!({"message": "half way"})] {
        let problem = expect_problem(report_body(&w.app, Some(&w.credential), job_id, body).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert!(problem["errors"].to_string().contains("phase"), "{problem}");
    }
    expect_problem(
        post_raw(&w.app, &format!("/agent/v1/jobs/{job_id}/events"), &w.credential, r#"{"phase": "#).await,
        StatusCode::BAD_REQUEST,
        "malformed_json",
    )
    .await;
    for bad in ["not-a-uuid", "123"] {
        expect_problem(report(&w.app, &w.credential, bad, "downloading").await, StatusCode::BAD_REQUEST, "invalid_id").await;
    }
    // Neither an unknown job nor the deployment's id names the job.
    for unknown in [uuid::Uuid::new_v4().to_string(), id_of(&d)] {
        expect_problem(report(&w.app, &w.credential, &unknown, "downloading").await, StatusCode::NOT_FOUND, "not_found").await;
    }
    for token in [None, Some(w.acme.admin.as_str()), Some("brc_nonsense")] {
        expect_problem(report_body(&w.app, token, job_id, json!({"phase": "deployed"})).await, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
    assert_eq!(w.ledger().await, before);
    assert_eq!(w.targets(&d).await[0]["state"], "delivered");

    // The job itself was fine all along.
    let outcome = expect_status(report(&w.app, &w.credential, job_id, "downloading").await, StatusCode::OK).await;
    assert_eq!(outcome, json!({"job_status": "downloading", "proceed": true}));
}

#[tokio::test]
async fn a_runtime_is_neither_handed_nor_can_report_on_another_runtime_s_job() {
    let w = world().await;
    let staging = w.app.environment(&w.acme, "Staging", "test").await;
    let other = w.app.runtime(&w.acme, "atom-2").await;
    let other_credential = w.app.register_agent(&other).await;
    expect_status(w.app.heartbeat(&other_credential).await, StatusCode::OK).await;
    w.app.attach(&w.acme, &staging, &other).await;

    let d = w.app.deploy(&w.acme, &w.package, &w.env, "").await;
    let queue = w.app.runtime_queue_url(&w.runtime).await;
    let waiting = eventually("atom's job waits on its queue, there for the taking", || async {
        match w.app.queue_depth(&queue).await {
            (visible, 0) if visible > 0 => Ok((visible, 0)),
            seen => Err(format!("(visible, in flight) = {seen:?}")),
        }
    })
    .await;
    let before = w.ledger().await;
    let response = poll(&w.app, &other_credential, "1").await;
    let status = response.status();
    assert_eq!(status, StatusCode::NO_CONTENT, "atom-2 is not attached to Test: {}", response.text().await.unwrap_or_default());
    assert_eq!(w.app.queue_depth(&queue).await, waiting, "atom's job message was left untouched");
    assert_eq!(w.ledger().await, before);

    let job = next_job(&w.app, &w.credential).await;
    assert_eq!(job["deployment_id"], d["id"], "atom itself is handed its job");
    let job_id = str_of(&job, "job_id");
    let before = w.ledger().await;
    for phase in ["downloading", "deployed", "failed"] {
        expect_problem(report(&w.app, &other_credential, job_id, phase).await, StatusCode::NOT_FOUND, "not_found").await;
    }
    assert_eq!(w.ledger().await, before);
    assert_eq!(w.targets(&d).await[0]["state"], "delivered");
    assert_eq!(w.deployment(&d).await["status"], "in_progress");
}

#[tokio::test]
async fn an_impossible_phase_is_refused_with_409_invalid_phase_and_the_target_keeps_its_state() {
    let w = world().await;
    let d = w.app.deploy(&w.acme, &w.package, &w.env, "").await;
    let job = next_job(&w.app, &w.credential).await;
    let job_id = str_of(&job, "job_id");

    // Restored follows failed only.
    let before = w.ledger().await;
    expect_problem(report(&w.app, &w.credential, job_id, "restored").await, StatusCode::CONFLICT, "invalid_phase").await;
    assert_eq!(w.ledger().await, before);
    assert_eq!(w.targets(&d).await[0]["state"], "delivered");
    assert_eq!(w.deployment(&d).await["status"], "in_progress");

    for phase in ["downloading", "applying", "deployed"] {
        expect_status(report(&w.app, &w.credential, job_id, phase).await, StatusCode::OK).await;
    }
    w.app.wait_for_status(&w.acme, &d, "succeeded").await;

    // A job that ended deployed cannot fail afterwards.
    let before = w.ledger().await;
    expect_problem(report(&w.app, &w.credential, job_id, "failed").await, StatusCode::CONFLICT, "invalid_phase").await;
    assert_eq!(w.ledger().await, before);
    assert_eq!(w.targets(&d).await[0]["state"], "deployed");
    assert_eq!(w.deployment(&d).await["status"], "succeeded");
    assert_eq!(w.app.active(&w.acme, &w.env).await[0]["package_id"], w.package["id"]);

    // Nor can a job that ended failed be deployed afterwards; it may still be restored.
    w.app.revise(&w.acme, &w.process, b"orders v2").await;
    let v2 = w.app.package(&w.acme, &w.process, Some("v2")).await;
    let (failed, job) = w.deploy_and_fail(&v2).await;
    let job_id = str_of(&job, "job_id");
    let before = w.ledger().await;
    expect_problem(report(&w.app, &w.credential, job_id, "deployed").await, StatusCode::CONFLICT, "invalid_phase").await;
    assert_eq!(w.ledger().await, before);
    assert_eq!(w.targets(&failed).await[0]["state"], "failed");
    assert_eq!(w.app.active(&w.acme, &w.env).await[0]["package_id"], w.package["id"]);
    let outcome = expect_status(report(&w.app, &w.credential, job_id, "restored").await, StatusCode::OK).await;
    assert_eq!(outcome, json!({"job_status": "restored", "proceed": false}));
    w.app.wait_for_status(&w.acme, &failed, "rolled_back").await;
}

#[tokio::test]
async fn a_job_that_settled_is_not_handed_out_again_even_when_its_message_is_redelivered() {
    let w = world().await;
    let d = w.app.deploy(&w.acme, &w.package, &w.env, "").await;
    let job = next_job(&w.app, &w.credential).await;
    let job_id = str_of(&job, "job_id");

    // SQS delivers at least once: while the job runs, a duplicate of its
    // message is handed out again, the same job, so the agent carries on.
    w.redeliver(&job).await;
    let again = next_job(&w.app, &w.credential).await;
    assert_eq!(again["job_id"], job["job_id"], "{again}");
    assert_eq!(again["deployment_id"], d["id"], "{again}");
    assert_eq!(w.targets(&d).await[0]["state"], "delivered");

    for phase in ["downloading", "applying", "deployed"] {
        expect_status(report(&w.app, &w.credential, job_id, phase).await, StatusCode::OK).await;
    }
    w.app.wait_for_status(&w.acme, &d, "succeeded").await;
    w.assert_no_job().await;
    // A repeated report changes nothing and tells the agent the job is over.
    let repeated = expect_status(report(&w.app, &w.credential, job_id, "deployed").await, StatusCode::OK).await;
    assert_eq!(repeated, json!({"job_status": "deployed", "proceed": false}));

    // Once it settled, a duplicate is dropped.
    let before = w.ledger().await;
    w.redeliver(&job).await;
    let response = poll(&w.app, &w.credential, "3").await;
    let status = response.status();
    assert_eq!(status, StatusCode::NO_CONTENT, "the settled job is not handed out again: {}", response.text().await.unwrap_or_default());
    assert_eq!(w.ledger().await, before);
    assert_eq!(w.targets(&d).await[0]["state"], "deployed");
    w.assert_no_job().await;
}

#[tokio::test]
async fn a_runtime_that_never_heartbeated_is_a_warning_not_an_error() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let env = app.environment(&acme, "Test", "test").await;
    let runtime = app.runtime(&acme, "quiet-atom").await;
    let credential = app.register_agent(&runtime).await;
    app.attach(&acme, &env, &runtime).await;
    let process = app.component(&acme, "Orders", "process", b"p", &[]).await;
    let package = app.package(&acme, &process, None).await;
    let body = json!({"package_id": package["id"], "environment_id": env["id"]});

    let report = expect_status(app.post("/v1/deployments/validate", &acme.admin, body.clone()).await, StatusCode::OK).await;
    assert_eq!(report["errors"], json!([]), "{report}");
    assert_eq!(codes(&report["warnings"]), ["runtime_offline"], "{report}");
    assert!(report["warnings"][0]["message"].as_str().is_some_and(|m| m.contains("quiet-atom")), "the warning names the runtime: {report}");
    // A warning does not block: the job waits for the runtime.
    let d = expect_status(app.post("/v1/deployments", &acme.admin, body).await, StatusCode::CREATED).await;
    assert_eq!(d["status"], "queued");
    app.wait_for_status(&acme, &d, "in_progress").await;

    // Once the agent heartbeats, the warning is gone.
    expect_status(app.heartbeat(&credential).await, StatusCode::OK).await;
    let billing = app.component(&acme, "Billing", "process", b"b", &[]).await;
    let billing_package = app.package(&acme, &billing, None).await;
    let report = expect_status(
        app.post("/v1/deployments/validate", &acme.admin, json!({"package_id": billing_package["id"], "environment_id": env["id"]})).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(report, json!({"errors": [], "warnings": [], "extensions_version": 0, "extensions_changed": null}));
}

#[tokio::test]
async fn an_environment_without_runtimes_is_an_error_and_refuses_the_deployment_with_409_no_runtimes() {
    let w = world().await;
    let empty = w.app.environment(&w.acme, "Staging", "test").await;
    let before = w.ledger().await;
    let report = expect_status(w.app.post("/v1/deployments/validate", &w.acme.admin, w.body(&w.package, &empty)).await, StatusCode::OK).await;
    assert_eq!(codes(&report["errors"]), ["no_runtimes"], "{report}");
    expect_problem(w.app.post("/v1/deployments", &w.acme.admin, w.body(&w.package, &empty)).await, StatusCode::CONFLICT, "no_runtimes").await;
    assert_eq!(w.ledger().await, before);
    w.assert_no_job().await;
    assert!(list_items(&w.app, &format!("/v1/deployments?environment_id={}", id_of(&empty)), &w.acme.admin).await.is_empty());
}
