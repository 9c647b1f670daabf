//! Jobs straight from SQS: an agent gets one-hour credentials for its own
//! queue from the gateway, receives its job message from SQS with them, and
//! claims the job from the gateway; `jobs/next` stays as a short fallback.
//! (LocalStack does not enforce IAM: the session policy is checked as a
//! document by the domain's unit tests.)

use berth_tests::{TestApp, TestTenant, eventually, expect_problem, expect_status, id_of};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A tenant with a Test environment, one runtime registered by hand (its
/// credential plays the agent) and attached, and a packaged process.
struct World {
    app: TestApp,
    acme: TestTenant,
    env: Value,
    runtime: Value,
    credential: String,
    package: Value,
}

async fn world() -> World {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let env = app.environment(&acme, "Test", "test").await;
    let runtime = app.runtime(&acme, "atom").await;
    let credential = app.register_agent(&runtime).await;
    app.attach(&acme, &env, &runtime).await;
    let process = app.component(&acme, "Orders", "process", b"orders v1", &[]).await;
    let package = app.package(&acme, &process, Some("v1")).await;
    World { app, acme, env, runtime, credential, package }
}

async fn vend(app: &TestApp, credential: &str) -> Response {
    app.request(Method::POST, "/agent/v1/credentials/aws", Some(credential)).send().await.expect("the request is sent")
}

async fn claim(app: &TestApp, credential: &str, job_id: &str, receipt: &str) -> Response {
    let body = json!({"receipt_handle": receipt});
    app.request(Method::POST, &format!("/agent/v1/jobs/{job_id}/claim"), Some(credential)).json(&body).send().await.expect("the request is sent")
}

async fn report(app: &TestApp, credential: &str, job_id: &str, phase: &str) -> Value {
    let r = app.request(Method::POST, &format!("/agent/v1/jobs/{job_id}/events"), Some(credential)).json(&json!({"phase": phase})).send().await;
    expect_status(r.expect("the request is sent"), StatusCode::OK).await
}

/// An SQS client holding only what the gateway vended (region included), as an agent builds it.
fn agent_sqs(vended: &Value) -> aws_sdk_sqs::Client {
    let field = |k: &str| vended[k].as_str().unwrap_or_else(|| panic!("{k} in {vended}")).to_string();
    let credentials = aws_sdk_sqs::config::Credentials::new(field("access_key_id"), field("secret_access_key"), Some(field("session_token")), None, "berth");
    let mut config = aws_sdk_sqs::Config::builder()
        .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
        .region(aws_sdk_sqs::config::Region::new(field("region")))
        .credentials_provider(credentials);
    if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") {
        config = config.endpoint_url(endpoint);
    }
    aws_sdk_sqs::Client::from_conf(config.build())
}

/// One message from the queue, long-polling up to `wait` seconds: (body, receipt handle).
async fn receive(sqs: &aws_sdk_sqs::Client, queue_url: &str, wait: i32) -> Option<(Value, String)> {
    let out = sqs.receive_message().queue_url(queue_url).max_number_of_messages(1).wait_time_seconds(wait).visibility_timeout(30).send().await;
    let message = out.expect("the agent receives from its own queue").messages.unwrap_or_default().into_iter().next()?;
    let body = serde_json::from_str(message.body().expect("a body")).expect("a JSON body");
    Some((body, message.receipt_handle.expect("a receipt handle")))
}

/// Receives the job message the dispatcher puts on the queue (within 60 s).
async fn receive_job(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> (Value, String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(received) = receive(sqs, queue_url, 5).await {
            return received;
        }
        assert!(Instant::now() < deadline, "no job message in the runtime's queue within 60 s");
    }
}

async fn target_state(w: &World, deployment: &Value) -> Value {
    let list = expect_status(w.app.get(&format!("/v1/deployments/{}/targets", id_of(deployment)), &w.acme.admin).await, StatusCode::OK).await;
    list["items"][0]["state"].clone()
}

async fn timeline(w: &World, deployment: &Value) -> Vec<String> {
    let page = expect_status(w.app.get(&format!("/v1/deployments/{}/events?limit=100", id_of(deployment)), &w.acme.admin).await, StatusCode::OK).await;
    page["items"].as_array().expect("items").iter().map(|e| e["message"].as_str().unwrap_or_default().to_string()).collect()
}

#[tokio::test]
async fn an_agent_gets_one_hour_credentials_for_its_own_queue_and_the_answer_is_not_cached() {
    let w = world().await;
    let response = vend(&w.app, &w.credential).await;
    assert_eq!(response.headers().get("cache-control").and_then(|v| v.to_str().ok()), Some("no-store"));
    let vended = expect_status(response, StatusCode::OK).await;

    for field in ["access_key_id", "secret_access_key", "session_token", "region"] {
        assert!(vended[field].as_str().is_some_and(|v| !v.is_empty()), "{field} in {vended}");
    }
    assert_eq!(vended["queue_url"], w.app.runtime_queue_url(&w.runtime).await.as_str(), "the runtime's own queue");
    let expiration: chrono::DateTime<chrono::Utc> = vended["expiration"].as_str().expect("an expiration").parse().expect("an RFC 3339 time");
    let left = expiration - chrono::Utc::now();
    assert!(left > chrono::Duration::minutes(55) && left <= chrono::Duration::minutes(61), "valid about an hour: {left}");

    expect_problem(vend(&w.app, "brc_not-a-credential").await, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    expect_problem(vend(&w.app, &w.acme.admin).await, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

#[tokio::test]
async fn a_suspended_tenants_agent_gets_no_queue_credentials() {
    let w = world().await;
    expect_status(vend(&w.app, &w.credential).await, StatusCode::OK).await;
    let suspend = w.app.patch(&format!("/platform/v1/tenants/{}", w.acme.id), &w.app.platform_token(), json!({"suspended": true})).await;
    expect_status(suspend, StatusCode::OK).await;
    eventually("the suspended tenant's agent is refused credentials", || async {
        let r = vend(&w.app, &w.credential).await;
        match r.status() {
            StatusCode::FORBIDDEN => Ok(r.json::<Value>().await.map_err(|e| e.to_string())?),
            other => Err(format!("{other}")),
        }
    })
    .await
    .get("code")
    .filter(|c| *c == "tenant_suspended")
    .expect("refused as tenant_suspended");
}

#[tokio::test]
async fn a_job_received_from_sqs_with_vended_credentials_is_claimed_deployed_claimed_again_on_a_duplicate_delivery_and_refused_once_settled() {
    let w = world().await;
    let vended = expect_status(vend(&w.app, &w.credential).await, StatusCode::OK).await;
    let sqs = agent_sqs(&vended);
    let queue_url = vended["queue_url"].as_str().expect("a queue url").to_string();
    let d = w.app.deploy(&w.acme, &w.package, &w.env, "from SQS").await;

    let (message, receipt) = receive_job(&sqs, &queue_url).await;
    let mut keys: Vec<&str> = message.as_object().expect("an object").keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["deployment_id", "job_id", "runtime_id", "tenant_id"], "no secret and no URL in the message: {message}");
    assert_eq!(message["deployment_id"], d["id"]);
    let job_id = message["job_id"].as_str().expect("a job id").to_string();

    let bogus = expect_problem(claim(&w.app, &w.credential, &job_id, "AQEBnot-a-receipt").await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(bogus["errors"][0]["field"], "receipt_handle");
    assert_eq!(target_state(&w, &d).await, "pending", "a claim with a receipt SQS does not know writes nothing");

    let job = expect_status(claim(&w.app, &w.credential, &job_id, &receipt).await, StatusCode::OK).await;
    assert_eq!((job["job_id"].as_str(), &job["package_id"], &job["kind"]), (Some(job_id.as_str()), &w.package["id"], &json!("deploy")));
    let archive = w.app.http.get(job["download_url"].as_str().expect("a download URL")).send().await.expect("the download is sent");
    assert_eq!(archive.status(), StatusCode::OK, "the claimed job's URL downloads the package");
    assert_eq!(target_state(&w, &d).await, "delivered");
    assert_eq!(receive(&sqs, &queue_url, 1).await, None, "the claimed message stays hidden while the job runs");
    report(&w.app, &w.credential, &job_id, "downloading").await;

    // SQS delivers the same message again: the agent ends its hiding, as a lost visibility would.
    sqs.change_message_visibility().queue_url(&queue_url).receipt_handle(&receipt).visibility_timeout(0).send().await.expect("the agent may hide its message");
    let (again, second_receipt) = receive_job(&sqs, &queue_url).await;
    assert_eq!(again, message);
    let same = expect_status(claim(&w.app, &w.credential, &job_id, &second_receipt).await, StatusCode::OK).await;
    assert_eq!(same["job_id"], job["job_id"], "a job delivered to this runtime is handed out again");
    assert_eq!(target_state(&w, &d).await, "downloading", "claiming again applies nothing again: the job goes on where it was");

    report(&w.app, &w.credential, &job_id, "applying").await;
    let outcome = report(&w.app, &w.credential, &job_id, "deployed").await;
    assert_eq!(outcome, json!({"job_status": "deployed", "proceed": false}));
    w.app.wait_for_status(&w.acme, &d, "succeeded").await;
    let lines = timeline(&w, &d).await;
    assert_eq!(lines.iter().filter(|l| l.starts_with("Delivered")).count(), 1, "delivered once: {lines:?}");
    assert_eq!(lines.iter().filter(|l| l.contains(": Deployed")).count(), 1, "deployed once: {lines:?}");
    assert_eq!(w.app.queue_depth(&queue_url).await, (0, 0), "settling deleted the message");

    expect_problem(claim(&w.app, &w.credential, &job_id, &second_receipt).await, StatusCode::CONFLICT, "job_settled").await;
    expect_problem(claim(&w.app, &w.credential, &job_id, &receipt).await, StatusCode::CONFLICT, "job_settled").await;
}

#[tokio::test]
async fn a_claim_of_an_unknown_job_is_404_and_of_a_bad_body_is_refused() {
    let w = world().await;
    let unknown = uuid::Uuid::now_v7().to_string();
    expect_problem(claim(&w.app, &w.credential, &unknown, "receipt").await, StatusCode::NOT_FOUND, "not_found").await;
    expect_problem(claim(&w.app, &w.credential, &unknown, "").await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let extra = w.app.request(Method::POST, &format!("/agent/v1/jobs/{unknown}/claim"), Some(&w.credential)).json(&json!({"receipt_handle": "r", "x": 1}));
    assert!(extra.send().await.expect("sent").status().is_client_error(), "unknown fields are refused");
    expect_problem(claim(&w.app, &w.acme.admin, &unknown, "receipt").await, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

#[tokio::test]
async fn jobs_next_answers_within_two_seconds_whatever_wait_is_asked_and_still_hands_out_jobs() {
    let w = world().await;
    for wait in ["20", "3600", "99999999999999999999"] {
        let started = Instant::now();
        let r = w.app.request(Method::GET, &format!("/agent/v1/jobs/next?wait={wait}"), Some(&w.credential)).send().await.expect("sent");
        assert_eq!(r.status(), StatusCode::NO_CONTENT, "wait={wait}");
        assert!(started.elapsed() < Duration::from_secs(4), "wait={wait} answered after {:?}", started.elapsed());
    }
    let d = w.app.deploy(&w.acme, &w.package, &w.env, "fallback").await;
    let job = eventually("jobs/next hands out the job", || async {
        let r = w.app.request(Method::GET, "/agent/v1/jobs/next?wait=20", Some(&w.credential)).send().await.map_err(|e| e.to_string())?;
        match r.status() {
            StatusCode::OK => r.json::<Value>().await.map_err(|e| e.to_string()),
            other => Err(format!("{other}")),
        }
    })
    .await;
    assert_eq!(job["deployment_id"], d["id"]);
}

#[tokio::test]
async fn a_claim_and_a_report_may_name_their_deployment_and_one_naming_another_is_applied_to_its_own_job_all_the_same() {
    let w = world().await;
    let vended = expect_status(vend(&w.app, &w.credential).await, StatusCode::OK).await;
    let sqs = agent_sqs(&vended);
    let queue_url = vended["queue_url"].as_str().expect("a queue url").to_string();
    let d = w.app.deploy(&w.acme, &w.package, &w.env, "named reports").await;
    let (message, receipt) = receive_job(&sqs, &queue_url).await;
    let job_id = message["job_id"].as_str().expect("a job id").to_string();
    // A claim naming a deployment that is not the job's is handed the job all the same (looked up).
    let wrongly = json!({"receipt_handle": receipt, "deployment_id": uuid::Uuid::new_v4()});
    let claimed = w.app.request(Method::POST, &format!("/agent/v1/jobs/{job_id}/claim"), Some(&w.credential)).json(&wrongly).send().await;
    let job = expect_status(claimed.expect("the request is sent"), StatusCode::OK).await;
    assert_eq!(job["deployment_id"], d["id"]);
    // Named rightly, as the agent does, a duplicate delivery is handed the same job.
    let rightly = json!({"receipt_handle": receipt, "deployment_id": d["id"]});
    let again = w.app.request(Method::POST, &format!("/agent/v1/jobs/{job_id}/claim"), Some(&w.credential)).json(&rightly).send().await;
    assert_eq!(expect_status(again.expect("the request is sent"), StatusCode::OK).await["job_id"], job["job_id"]);

    let named = async |phase: &str, deployment: &Value| {
        let body = json!({"phase": phase, "deployment_id": deployment});
        let r = w.app.request(Method::POST, &format!("/agent/v1/jobs/{job_id}/events"), Some(&w.credential)).json(&body).send().await;
        expect_status(r.expect("the request is sent"), StatusCode::OK).await
    };
    named("downloading", &d["id"]).await;
    assert_eq!(target_state(&w, &d).await, "downloading", "named rightly");
    // Another deployment of the tenant (the first holds nothing of this runtime's), and one that does not exist.
    let other = w
        .app
        .deploy(&w.acme, &w.app.package(&w.acme, &w.app.component(&w.acme, "Invoices", "process", b"inv", &[]).await, Some("v1")).await, &w.env, "other")
        .await;
    named("backing_up", &other["id"]).await;
    assert_eq!(target_state(&w, &d).await, "backing_up", "named wrongly: the job's own deployment moves on");
    named("applying", &json!(uuid::Uuid::new_v4())).await;
    assert_eq!(target_state(&w, &d).await, "applying");
    let outcome = named("deployed", &d["id"]).await;
    assert_eq!(outcome, json!({"job_status": "deployed", "proceed": false}));
    w.app.wait_for_status(&w.acme, &d, "succeeded").await;
    let bad = w
        .app
        .request(Method::POST, &format!("/agent/v1/jobs/{job_id}/events"), Some(&w.credential))
        .json(&json!({"phase": "applying", "deployment_id": "nope"}));
    expect_problem(bad.send().await.expect("the request is sent"), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
}
