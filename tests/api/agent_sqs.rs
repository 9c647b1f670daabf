//! The reference agent receives its jobs straight from its runtime's queue in
//! SQS, with credentials the gateway vends, and claims each job: real
//! `berth-agent` processes against the local runner and LocalStack.

use berth_tests::{Agent, TestApp, TestTenant, eventually, expect_status, id_of};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Every line of the deployment's timeline, page after page.
async fn timeline(app: &TestApp, t: &TestTenant, deployment: &Value) -> Vec<String> {
    let mut lines = vec![];
    let mut cursor: Option<String> = None;
    loop {
        let mut params = vec![("limit", "100".to_string())];
        params.extend(cursor.map(|c| ("cursor", c)));
        let url = reqwest::Url::parse_with_params("http://x/", &params).expect("a query");
        let path = format!("/v1/deployments/{}/events?{}", id_of(deployment), url.query().unwrap_or_default());
        let page = expect_status(app.get(&path, &t.admin).await, StatusCode::OK).await;
        lines.extend(page["items"].as_array().expect("items").iter().map(|e| e["message"].as_str().unwrap_or_default().to_string()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return lines,
        }
    }
}

/// The agent's log without its colours.
fn log(agent: &Agent) -> String {
    let mut plain = String::new();
    let mut rest = agent.log();
    while let Some(start) = rest.find('\x1b') {
        plain.push_str(&rest[..start]);
        let tail = &rest[start..];
        rest = tail.find('m').map_or_else(String::new, |end| tail[end + 1..].to_string());
    }
    plain.push_str(&rest);
    plain
}

/// The agent's log says it took `job_id` from its queue through a claim.
fn claimed_from_the_queue(agent: &Agent, job_id: &str) -> bool {
    log(agent).lines().any(|l| l.contains("job claimed from the queue") && l.contains(job_id))
}

/// The jobs the agent started, in order.
fn job_ids_received(agent: &Agent) -> Vec<String> {
    let log = log(agent);
    let ids = log.lines().filter(|l| l.contains("job received")).filter_map(|l| l.split("job_id=").nth(1)?.split_whitespace().next().map(str::to_string));
    ids.collect()
}

#[tokio::test]
async fn twenty_agents_receive_a_deployment_from_their_queues_with_vended_credentials_and_claim_it() {
    let app = TestApp::spawn().await;
    let acme = app.tenant_with_plan("Acme", json!({"max_runtimes": 20})).await;
    let env = app.environment(&acme, "Test", "test").await;
    let mut agents = vec![];
    for i in 0..20 {
        let runtime = app.runtime(&acme, &format!("atom-{i}")).await;
        app.attach(&acme, &env, &runtime).await;
        agents.push(Agent::start(&app, &runtime, None));
    }
    let process = app.component(&acme, "Orders", "process", b"orders v1", &[]).await;
    let package = app.package(&acme, &process, Some("v1")).await;

    let d = app.deploy(&acme, &package, &env, "to the fleet").await;
    app.wait_for_status(&acme, &d, "succeeded").await;

    let targets = expect_status(app.get(&format!("/v1/deployments/{}/targets", id_of(&d)), &acme.admin).await, StatusCode::OK).await;
    let states: Vec<&str> = targets["items"].as_array().expect("items").iter().map(|t| t["state"].as_str().unwrap_or_default()).collect();
    assert_eq!(states, vec!["deployed"; 20], "{targets}");
    let lines = timeline(&app, &acme, &d).await;
    assert_eq!(lines.iter().filter(|l| l.starts_with("Delivered")).count(), 20, "each runtime delivered once: {lines:?}");
    for agent in &agents {
        assert_eq!(agent.installed(&env, &process).expect("installed")["digest"], package["digest"]);
        let received = job_ids_received(agent);
        assert_eq!(received.len(), 1, "one job each: {}", agent.log());
        assert!(claimed_from_the_queue(agent, &received[0]), "delivered through a claim: {}", agent.log());
        assert!(!agent.log().contains("polling jobs/next"), "never fell back to jobs/next: {}", agent.log());
    }
}

#[tokio::test]
async fn an_agent_renews_its_queue_credentials_before_they_expire_and_keeps_receiving() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let env = app.environment(&acme, "Test", "test").await;
    let runtime = app.runtime(&acme, "atom").await;
    app.attach(&acme, &env, &runtime).await;
    // Vended credentials last an hour: with a margin of two hours they are always due for renewal.
    let agent = Agent::start_with_env(&app, &runtime, None, &[("BERTH_QUEUE_CREDENTIAL_RENEW_MARGIN_SECS", "7200")]);

    eventually("the agent renews its queue credentials again and again", || async {
        let renewals = agent.log().matches("queue credentials renewed").count();
        if renewals >= 3 { Ok(renewals) } else { Err(format!("{renewals} renewals so far:\n{}", agent.log())) }
    })
    .await;

    let process = app.component(&acme, "Orders", "process", b"orders v1", &[]).await;
    let package = app.package(&acme, &process, Some("v1")).await;
    let d = app.deploy(&acme, &package, &env, "with renewed credentials").await;
    app.wait_for_status(&acme, &d, "succeeded").await;
    let received = job_ids_received(&agent);
    assert_eq!(received.len(), 1, "{}", agent.log());
    assert!(claimed_from_the_queue(&agent, &received[0]), "received from the queue with renewed credentials: {}", agent.log());
    assert!(!agent.log().contains("polling jobs/next"), "{}", agent.log());
}

#[tokio::test]
async fn a_job_sqs_delivers_twice_is_applied_once_and_the_second_message_is_deleted() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let env = app.environment(&acme, "Test", "test").await;
    let runtime = app.runtime(&acme, "atom").await;
    app.attach(&acme, &env, &runtime).await;
    let process = app.component(&acme, "Orders", "process", b"orders v1", &[]).await;
    let package = app.package(&acme, &process, Some("v1")).await;
    let queue_url = app.runtime_queue_url(&runtime).await;

    // Deployed before the agent runs, so the job message waits in the queue; SQS then holds it twice.
    let d = app.deploy(&acme, &package, &env, "delivered twice").await;
    let body = eventually("the job message is in the runtime's queue", || async {
        let out = app.clients.sqs.receive_message().queue_url(&queue_url).max_number_of_messages(1).visibility_timeout(0).send().await;
        let message = out.map_err(|e| e.to_string())?.messages.unwrap_or_default().into_iter().next().ok_or("no message yet")?;
        message.body.ok_or_else(|| "a message without a body".to_string())
    })
    .await;
    app.clients.sqs.send_message().queue_url(&queue_url).message_body(&body).send().await.expect("the duplicate is queued");
    eventually("SQS holds two copies of the job message", || async {
        let depth = app.queue_depth(&queue_url).await;
        if depth == (2, 0) { Ok(()) } else { Err(format!("{depth:?}")) }
    })
    .await;

    let agent = Agent::start(&app, &runtime, None);
    app.wait_for_status(&acme, &d, "succeeded").await;
    eventually("the second delivery is claimed, refused as settled, and deleted", || async {
        let depth = app.queue_depth(&queue_url).await;
        if depth == (0, 0) && agent.log().contains("the job is settled") { Ok(()) } else { Err(format!("queue {depth:?}:\n{}", agent.log())) }
    })
    .await;

    let job: Value = serde_json::from_str(&body).expect("a JSON message");
    let job_id = job["job_id"].as_str().expect("a job id");
    assert_eq!(job_ids_received(&agent), vec![job_id.to_string()], "run once: {}", agent.log());
    let lines = timeline(&app, &acme, &d).await;
    assert_eq!(lines.iter().filter(|l| l.starts_with("Delivered")).count(), 1, "delivered once: {lines:?}");
    assert_eq!(lines.iter().filter(|l| l.contains(": Deployed")).count(), 1, "deployed once: {lines:?}");
    assert_eq!(agent.installed(&env, &process).expect("installed")["digest"], package["digest"]);
}

#[tokio::test]
async fn an_agent_told_to_use_http_receives_its_job_from_jobs_next_and_never_asks_for_queue_credentials() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let env = app.environment(&acme, "Test", "test").await;
    let runtime = app.runtime(&acme, "atom").await;
    app.attach(&acme, &env, &runtime).await;
    let agent = Agent::start_with_env(&app, &runtime, None, &[("BERTH_AGENT_JOB_SOURCE", "http")]);
    let process = app.component(&acme, "Orders", "process", b"orders v1", &[]).await;
    let package = app.package(&acme, &process, Some("v1")).await;

    let d = app.deploy(&acme, &package, &env, "over jobs/next").await;
    app.wait_for_status(&acme, &d, "succeeded").await;

    assert_eq!(agent.installed(&env, &process).expect("installed")["digest"], package["digest"]);
    let received = job_ids_received(&agent);
    assert_eq!(received.len(), 1, "{}", log(&agent));
    assert!(!claimed_from_the_queue(&agent, &received[0]), "not through a claim: {}", log(&agent));
    assert!(!log(&agent).contains("receiving jobs from the runtime's queue"), "{}", log(&agent));
}
