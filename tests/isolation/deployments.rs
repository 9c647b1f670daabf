//! Deployments and agent jobs: tenant B can neither read, start, stop nor
//! report on anything of tenant A's deployments, and B's agent is never handed
//! A's jobs or A's download URLs.

use crate::{MALLORY, ids, send};
use berth_tests::{Agent, TestApp, TestTenant, expect_problem, expect_status};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Tenant A (Acme) with a real agent that deployed `Orders` v1 to Production;
/// tenant B (Globex, whose admin is `MALLORY`) with its own Production, a
/// runtime registered by hand (B's agent is `b_credential`) and a package.
struct Deployed {
    app: TestApp,
    a: TestTenant,
    a_env: Value,
    a_runtime: Value,
    a_agent: Agent,
    a_process: Value,
    a_package: Value,
    a_deployment: Value,
    b: TestTenant,
    b_env: Value,
    b_runtime: Value,
    b_credential: String,
    b_package: Value,
}

async fn deployed() -> Deployed {
    let app = TestApp::spawn().await;
    let a = app.tenant("Acme").await;
    let a_env = app.environment(&a, "Production", "production").await;
    let a_runtime = app.runtime(&a, "acme-atom").await;
    app.attach(&a, &a_env, &a_runtime).await;
    let a_agent = Agent::start(&app, &a_runtime, None);
    let a_process = app.component(&a, "Orders", "process", b"acme orders v1", &[]).await;
    let a_package = app.package(&a, &a_process, Some("v1")).await;
    let d = app.deploy(&a, &a_package, &a_env, "acme's first").await;
    let a_deployment = app.wait_for_status(&a, &d, "succeeded").await;

    let mut b = app.tenant("Globex").await;
    b.admin = app.user_token(&b.id, MALLORY, &["admin"]);
    let b_env = app.environment(&b, "Production", "production").await;
    let b_runtime = app.runtime(&b, "globex-atom").await;
    let b_credential = app.register_agent(&b_runtime).await;
    expect_status(app.heartbeat(&b_credential).await, StatusCode::OK).await;
    app.attach(&b, &b_env, &b_runtime).await;
    let b_process = app.component(&b, "Orders", "process", b"globex orders", &[]).await;
    let b_package = app.package(&b, &b_process, Some("v1")).await;
    Deployed { app, a, a_env, a_runtime, a_agent, a_process, a_package, a_deployment, b, b_env, b_runtime, b_credential, b_package }
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap_or_else(|| panic!("an id in {v}")).to_string()
}

fn body(package: &Value, env: &Value) -> Value {
    json!({"package_id": package["id"], "environment_id": env["id"]})
}

/// `GET /agent/v1/jobs/next?wait=<wait>` as the agent holding `credential`.
async fn poll(app: &TestApp, credential: &str, wait: u64) -> Response {
    send(app, Method::GET, &format!("/agent/v1/jobs/next?wait={wait}"), credential, None).await
}

/// Polls as an agent does until a job comes (at most 30 s).
async fn next_job(app: &TestApp, credential: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let response = poll(app, credential, 5).await;
        let status = response.status();
        if status == StatusCode::OK {
            return response.json().await.expect("a job");
        }
        let text = response.text().await.unwrap_or_default();
        assert_eq!(status, StatusCode::NO_CONTENT, "jobs/next: {text}");
        assert!(Instant::now() < deadline, "no job within 30 s");
    }
}

/// Asserts the agent holding `credential` is handed no job now.
async fn assert_no_job(app: &TestApp, credential: &str, wait: u64) {
    let response = poll(app, credential, wait).await;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert_eq!(status, StatusCode::NO_CONTENT, "B's agent is handed nothing: {text}");
}

async fn report(app: &TestApp, credential: &str, job_id: &str, phase: &str) -> Response {
    send(app, Method::POST, &format!("/agent/v1/jobs/{job_id}/events"), credential, Some(&json!({"phase": phase, "message": "reported by globex"}))).await
}

/// Asserts a 404 `not_found` that names nothing of A's.
async fn expect_hidden(response: Response, what: &str, secrets: &[String]) {
    let problem = expect_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    for secret in secrets {
        assert!(!problem.to_string().contains(secret.as_str()), "{what}: the refusal reveals nothing of A's: {problem}");
    }
}

impl Deployed {
    async fn a_get(&self, path: &str) -> Value {
        expect_status(self.app.get(path, &self.a.admin).await, StatusCode::OK).await
    }

    /// Everything A sees of its deployments: the list, each one's targets
    /// and timeline, what Production runs, and A's audit trail.
    async fn a_ledger(&self) -> Value {
        let list = self.a_get("/v1/deployments?limit=100").await;
        let mut details = vec![];
        for d in list["items"].as_array().expect("items") {
            let d = id(d);
            details.push(json!({
                "targets": self.a_get(&format!("/v1/deployments/{d}/targets")).await["items"],
                "events": self.a_get(&format!("/v1/deployments/{d}/events?limit=100")).await["items"],
            }));
        }
        let mut active = self.app.active(&self.a, &self.a_env).await;
        for a in &mut active {
            // Derived from A's agent's heartbeats, which go on meanwhile.
            a.as_object_mut().expect("an object").remove("out_of_sync");
        }
        json!({"deployments": list["items"], "details": details, "active": active, "audit": self.app.audit(&self.a).await})
    }

    /// What B sees of deployments.
    async fn b_ledger(&self) -> Value {
        let list = expect_status(self.app.get("/v1/deployments?limit=100", &self.b.admin).await, StatusCode::OK).await;
        json!({"deployments": list["items"], "audit": self.app.audit(&self.b).await})
    }

    /// A's ids that nothing B receives may contain.
    fn a_secrets(&self) -> Vec<String> {
        [&self.a_deployment, &self.a_env, &self.a_runtime, &self.a_process, &self.a_package].iter().map(|v| id(v)).chain([self.a.id.clone()]).collect()
    }

    async fn a_target(&self, deployment: &Value) -> Value {
        let targets = self.a_get(&format!("/v1/deployments/{}/targets", id(deployment))).await;
        let items = targets["items"].as_array().expect("items");
        assert_eq!(items.len(), 1, "A's one runtime has the one target: {targets}");
        items[0].clone()
    }
}

#[tokio::test]
async fn tenant_b_can_neither_read_nor_change_tenant_a_s_deployments() {
    let w = deployed().await;
    let before = w.a_ledger().await;
    let secrets = w.a_secrets();
    let (d, env, component) = (id(&w.a_deployment), id(&w.a_env), id(&w.a_process));

    for (method, path) in [
        (Method::GET, format!("/v1/deployments/{d}")),
        (Method::GET, format!("/v1/deployments/{d}/targets")),
        (Method::GET, format!("/v1/deployments/{d}/events")),
        (Method::POST, format!("/v1/deployments/{d}/cancel")),
        (Method::POST, format!("/v1/deployments/{d}/retry")),
        (Method::GET, format!("/v1/environments/{env}/active")),
        (Method::DELETE, format!("/v1/environments/{env}/active/{component}")),
    ] {
        expect_hidden(send(&w.app, method.clone(), &path, &w.b.admin, None).await, &format!("{method} {path}"), &secrets).await;
    }

    // B's lists show nothing of A's, however they are filtered.
    for query in [String::new(), format!("?environment_id={env}"), format!("?component_id={component}"), "?status=succeeded".to_string()] {
        let list = expect_status(w.app.get(&format!("/v1/deployments{query}"), &w.b.admin).await, StatusCode::OK).await;
        assert_eq!(ids(&list), Vec::<String>::new(), "B lists nothing with {query:?}: {list}");
    }

    // A's world is as it was.
    assert_eq!(w.a_ledger().await, before);
    let still = w.a_get(&format!("/v1/deployments/{d}")).await;
    assert_eq!(still["status"], "succeeded");
    let active = w.app.active(&w.a, &w.a_env).await;
    assert_eq!(active.len(), 1);
    assert_eq!(active[0]["package_id"], w.a_package["id"]);
    assert_eq!(w.a_agent.installed(&w.a_env, &w.a_process).expect("A's agent runs Orders")["digest"], w.a_package["digest"], "A's agent still runs v1");
    let audit = w.app.audit(&w.a).await;
    assert!(!audit.iter().any(|e| e["actor"]["id"] == MALLORY), "B's attempts left nothing in A's trail: {audit:?}");
}

#[tokio::test]
async fn tenant_b_cannot_deploy_or_validate_with_tenant_a_s_package_or_environment() {
    let w = deployed().await;
    let a_before = w.a_ledger().await;
    let b_before = w.b_ledger().await;
    let secrets = w.a_secrets();

    for (package, env) in [(&w.a_package, &w.b_env), (&w.b_package, &w.a_env), (&w.a_package, &w.a_env)] {
        for path in ["/v1/deployments", "/v1/deployments/validate"] {
            let mut attempt = body(package, env);
            if path == "/v1/deployments" {
                attempt["notes"] = json!("globex was here");
            }
            expect_hidden(w.app.post(path, &w.b.admin, attempt).await, &format!("POST {path} with {package} to {env}"), &secrets).await;
        }
    }
    assert_eq!(w.a_ledger().await, a_before);
    assert_eq!(w.b_ledger().await, b_before);
    assert_no_job(&w.app, &w.b_credential, 1).await;

    // B's own package to B's own environment is fine: only A's ids were refused.
    let report = expect_status(w.app.post("/v1/deployments/validate", &w.b.admin, body(&w.b_package, &w.b_env)).await, StatusCode::OK).await;
    assert_eq!(report, json!({"errors": [], "warnings": [], "extensions_version": 0, "extensions_changed": null}));
}

#[tokio::test]
async fn tenant_b_s_agent_is_never_handed_nor_can_report_on_tenant_a_s_jobs() {
    let mut w = deployed().await;
    // A's agent is away, so A's next job waits in A's queue.
    w.a_agent.kill().await;
    // Let any long poll it had open (at most 1 s) end first.
    tokio::time::sleep(Duration::from_secs(2)).await;
    w.app.revise(&w.a, &w.a_process, b"acme orders v2").await;
    let a_v2 = w.app.package(&w.a, &w.a_process, Some("v2")).await;
    let a_d2 = w.app.deploy(&w.a, &a_v2, &w.a_env, "acme's second").await;
    w.app.wait_for_status(&w.a, &a_d2, "in_progress").await;
    let pending = w.a_target(&a_d2).await;
    assert_eq!(pending["state"], "pending");
    let a_jobs =
        [w.a_target(&w.a_deployment).await["job_id"].as_str().expect("a job id").to_string(), pending["job_id"].as_str().expect("a job id").to_string()];

    // B's agent asks for work and reports on A's jobs, settled or waiting.
    assert_no_job(&w.app, &w.b_credential, 2).await;
    let before = w.a_ledger().await;
    for job in &a_jobs {
        for phase in ["delivered", "downloading", "applying", "deployed", "failed", "restored"] {
            expect_hidden(report(&w.app, &w.b_credential, job, phase).await, &format!("B reports {phase} on A's job {job}"), &w.a_secrets()).await;
        }
    }
    assert_eq!(w.a_ledger().await, before, "A's targets and timeline are untouched");
    assert_eq!(w.a_target(&a_d2).await["state"], "pending");

    // Even A's job message, were it to land on B's queue, is not handed to B.
    let (queue, _) = berth_aws::keys::runtime_queue_names(&w.app.names.queue_prefix, id(&w.b_runtime).parse().expect("a runtime id"));
    let b_queue =
        w.app.clients.sqs.get_queue_url().queue_name(&queue).send().await.expect("B's runtime queue exists").queue_url().expect("a queue url").to_string();
    for message in [
        json!({"tenant_id": w.a.id, "deployment_id": a_d2["id"], "runtime_id": w.a_runtime["id"], "job_id": pending["job_id"]}),
        json!({"tenant_id": w.b.id, "deployment_id": a_d2["id"], "runtime_id": w.b_runtime["id"], "job_id": pending["job_id"]}),
    ] {
        w.app.clients.sqs.send_message().queue_url(&b_queue).message_body(message.to_string()).send().await.expect("the message is sent");
    }
    assert_no_job(&w.app, &w.b_credential, 2).await;
    assert_no_job(&w.app, &w.b_credential, 1).await;
    assert_eq!(w.a_target(&a_d2).await["state"], "pending");

    // A's agent comes back and completes A's job while B's agent keeps asking.
    w.a_agent.restart();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert_no_job(&w.app, &w.b_credential, 1).await;
        let now = w.a_get(&format!("/v1/deployments/{}", id(&a_d2))).await;
        if now["status"] == "succeeded" {
            break;
        }
        assert!(Instant::now() < deadline, "A's v2 is {} after 60 s; agent log: {}", now["status"], w.a_agent.log());
    }
    assert_eq!(w.a_target(&a_d2).await["state"], "deployed");
    assert_eq!(w.a_agent.installed(&w.a_env, &w.a_process).expect("A's agent runs Orders")["digest"], a_v2["digest"]);

    // A's list cursor opens nothing of A's for B.
    let first = w.a_get("/v1/deployments?limit=1").await;
    let cursor = first["next_cursor"].as_str().expect("A has two pages");
    let refused =
        expect_problem(w.app.get(&format!("/v1/deployments?limit=1&cursor={cursor}"), &w.b.admin).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
            .await;
    assert_eq!(refused["errors"][0]["field"], "cursor", "{refused}");

    // B's own job carries B's own download URL only.
    let b_d = w.app.deploy(&w.b, &w.b_package, &w.b_env, "").await;
    let job = next_job(&w.app, &w.b_credential).await;
    assert_eq!(job["deployment_id"], b_d["id"]);
    assert_eq!(job["package_id"], w.b_package["id"]);
    let url = job["download_url"].as_str().expect("a download URL");
    for secret in w.a_secrets().iter().chain([id(&a_v2)].iter()) {
        assert!(!url.contains(secret.as_str()), "B's URL names nothing of A's: {url}");
    }
    assert!(url.contains(&w.b.id), "B's URL is under B's tenant: {url}");
    let bytes = w.app.http.get(url).send().await.expect("the download is sent");
    assert_eq!(bytes.status(), StatusCode::OK);
    let bytes = bytes.bytes().await.expect("archive bytes");
    assert_eq!(berth_tests::sha256(&bytes), w.b_package["digest"], "B downloads B's package");
    assert_no_job(&w.app, &w.b_credential, 1).await;
}
