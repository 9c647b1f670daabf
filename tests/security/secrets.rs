//! Secrets are shown once and stored nowhere: not replayed by idempotency,
//! not in any timeline line or target message, not in any log line; and a
//! deleted package cannot be downloaded.

use crate::{id_of, world};
use berth_domain::redact::{CREDENTIAL_PREFIXES, PRESIGNED_SECRETS};
use berth_tests::{Agent, CapturedLogs, TestApp, eventually, expect_problem, expect_status};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn a_replayed_runtime_creation_returns_the_runtime_without_its_registration_token() {
    let w = world().await;
    let create =
        || w.app.request(Method::POST, "/v1/runtimes", Some(&w.acme.admin)).header("idempotency-key", "rt-once").json(&json!({"name": "atom-2"})).send();
    let first = expect_status(create().await.expect("sent"), StatusCode::CREATED).await;
    assert!(first["registration_token"].as_str().is_some_and(|t| t.starts_with("brr_")), "shown once: {first}");
    let credential = w.app.register_agent(&first).await;
    assert!(credential.starts_with("brc_"));

    let replay = create().await.expect("sent");
    assert_eq!(replay.headers().get("idempotent-replayed").and_then(|v| v.to_str().ok()), Some("true"));
    let replayed = expect_status(replay, StatusCode::CREATED).await;
    assert_eq!(replayed["id"], first["id"], "the same runtime");
    assert!(replayed.get("registration_token").is_none(), "the token is never shown again: {replayed}");
}

#[tokio::test]
async fn a_deleted_package_cannot_be_downloaded() {
    let w = world().await;
    let download = format!("/v1/packages/{}/download", id_of(&w.v2));
    expect_status(w.app.get(&download, &w.acme.admin).await, StatusCode::OK).await;
    expect_status(w.app.delete(&format!("/v1/packages/{}", id_of(&w.v2)), &w.acme.admin).await, StatusCode::NO_CONTENT).await;
    expect_problem(w.app.get(&download, &w.acme.admin).await, StatusCode::NOT_FOUND, "not_found").await;
    let package = expect_status(w.app.get(&format!("/v1/packages/{}", id_of(&w.v2)), &w.acme.admin).await, StatusCode::OK).await;
    assert_eq!(package["deleted"], true, "its record stays, for history");
}

/// The server's log lines in this test process, at the level a deployment
/// logs (infra/template.yaml's `RUST_LOG`).
fn server_logs() -> &'static CapturedLogs {
    server_logs_at("info,aws_config=warn,aws_smithy_runtime=warn")
}

/// The server's log lines at `filter`. The subscriber is global and set once,
/// so the first test of a process chooses the filter: nextest runs each test
/// in a process of its own; under `cargo test` they share the capture.
fn server_logs_at(filter: &str) -> &'static CapturedLogs {
    use tracing_subscriber::util::SubscriberInitExt;
    static LOGS: std::sync::OnceLock<CapturedLogs> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = CapturedLogs::default();
        logs.subscriber(filter).init();
        logs
    })
}

fn markers_in(text: &str) -> Vec<&'static str> {
    let lower = text.to_ascii_lowercase();
    CREDENTIAL_PREFIXES.iter().chain(PRESIGNED_SECRETS.iter()).copied().filter(|m| lower.contains(&m.to_ascii_lowercase())).collect()
}

#[tokio::test]
async fn no_stored_message_and_no_log_line_of_a_deployment_run_holds_a_secret() {
    let logs = server_logs();
    let w = world().await;
    w.deploy_active(&w.v1).await;

    // A second runtime speaks the protocol by hand and reports a message full of secrets.
    let probe = w.app.runtime(&w.acme, "probe").await;
    let credential = w.app.register_agent(&probe).await;
    w.app.attach(&w.acme, &w.prod, &probe).await;
    // The archive of v2 is gone from S3: the real agent's download fails.
    let key = berth_aws::keys::package_object(w.acme.id.parse().expect("a tenant id"), id_of(&w.v2).parse().expect("a package id"));
    w.app.clients.s3.delete_object().bucket(&w.app.names.bucket).key(key).send().await.expect("the archive is deleted");
    let d = w.app.deploy(&w.acme, &w.v2, &w.prod, "v2").await;

    let job = loop {
        let r = w.app.request(Method::GET, "/agent/v1/jobs/next?wait=2", Some(&credential)).send().await.expect("sent");
        if r.status() == StatusCode::OK {
            break r.json::<Value>().await.expect("a job");
        }
    };
    let url = job["download_url"].as_str().expect("a download URL");
    assert!(!markers_in(url).is_empty(), "the URL is presigned: {url}");
    let events = format!("/agent/v1/jobs/{}/events", job["job_id"].as_str().expect("a job id"));
    let leaky = format!("GET {url} failed with credential {credential} and Authorization: Bearer {credential}");
    for (phase, message) in [("downloading", String::new()), ("failed", leaky), ("restored", String::new())] {
        let r = w.app.request(Method::POST, &events, Some(&credential)).json(&json!({"phase": phase, "message": message})).send().await.expect("sent");
        expect_status(r, StatusCode::OK).await;
    }
    let d = w.app.wait_for_status(&w.acme, &d, "rolled_back").await;

    let timeline = w.timeline(&d).await;
    let reported = timeline.iter().find(|l| l.contains("\"probe\": Failed")).expect("the probe's failure is in the timeline");
    assert!(reported.contains("?[redacted]") && reported.contains("credential [redacted]"), "the server redacted it: {reported}");

    // Every stored line of every deployment, every target message, the agent's log and the server's.
    let mut stored = vec![];
    let list = expect_status(w.app.get("/v1/deployments?limit=100", &w.acme.admin).await, StatusCode::OK).await;
    for deployment in list["items"].as_array().expect("items") {
        stored.extend(w.timeline(deployment).await);
        stored.extend(w.targets(deployment).await.iter().map(|t| t["message"].as_str().unwrap_or_default().to_string()));
    }
    assert!(stored.iter().any(|m| m.contains("Failed")), "the failures are in the timeline: {stored:?}");
    for line in &stored {
        assert!(markers_in(line).is_empty(), "a stored message holds a secret: {line}");
    }
    let agent_log = w.agent.log();
    assert!(agent_log.contains("job failed"), "the agent logged its failure: {agent_log}");
    for line in agent_log.lines() {
        assert!(markers_in(line).is_empty(), "an agent log line holds a secret: {line}");
    }
    let server_log = logs.text();
    assert!(server_log.contains("agent registered"), "the server's log was captured:\n{server_log}");
    for line in server_log.lines() {
        assert!(markers_in(line).is_empty(), "a server log line holds a secret: {line}");
    }
}

#[tokio::test]
async fn a_webhook_secret_is_shown_by_its_create_and_rotate_only_never_in_another_response_a_log_line_or_the_table() {
    let logs = server_logs();
    let w = world().await;
    // Every answer read below, to search for the secret at the end.
    let answers: std::cell::RefCell<Vec<(String, String)>> = Default::default();
    let seen = |what: &str, text: String| answers.borrow_mut().push((what.to_string(), text));
    let answer = async |what: &str, response: reqwest::Response| -> Value {
        let status = response.status();
        let text = response.text().await.expect("a body");
        seen(what, text.clone());
        assert!(status.is_success() || status.is_client_error(), "{what}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    };

    let body = json!({"name": "main to Production", "action": "package_and_deploy", "environment_id": w.prod["id"], "component_id": w.orders["id"]});
    let create = || w.app.request(Method::POST, "/v1/webhooks", Some(&w.acme.admin)).header("idempotency-key", "wh-once").json(&body).send();
    let created = expect_status(create().await.expect("sent"), StatusCode::CREATED).await;
    let secret = created["secret"].as_str().filter(|s| s.starts_with("whsec_")).unwrap_or_else(|| panic!("shown once: {created}")).to_string();
    let replay = create().await.expect("sent");
    assert_eq!(replay.headers().get("idempotent-replayed").and_then(|v| v.to_str().ok()), Some("true"));
    let replayed = answer("the create's replay", replay).await;
    assert_eq!(replayed["id"], created["id"], "the same webhook");
    assert!(replayed.get("secret").is_none(), "the secret is never shown again: {replayed}");

    let path = format!("/v1/webhooks/{}", id_of(&created));
    answer("GET", w.app.get(&path, &w.acme.admin).await).await;
    answer("the list", w.app.get("/v1/webhooks", &w.acme.admin).await).await;
    answer("PATCH", w.app.patch(&path, &w.acme.admin, json!({"name": "main to Prod"})).await).await;

    // A delivery deploys with the real agent; a forged one is refused; the pipeline asks how it went.
    let receipt = answer("a delivery", w.app.deliver(&created, &secret, "sec-1", r#"{"commit":"abc1234"}"#).await).await;
    assert_eq!(receipt["outcome"], "accepted", "{receipt}");
    answer("a forged delivery", w.app.deliver(&created, "whsec_forged", "sec-2", "{}").await).await;
    let status_call = async |secret: &str| {
        eventually("the delivery's deployment succeeds", || async {
            let status = expect_status(w.app.delivery_status(&created, secret, "sec-1").await, StatusCode::OK).await;
            if status["status"] == "succeeded" { Ok(status) } else { Err(status.to_string()) }
        })
        .await
    };
    seen("the status call", status_call(&secret).await.to_string());
    seen("the deployment", w.deployment(&json!({"id": receipt["deployment_id"]})).await.to_string());
    seen("its timeline", w.timeline(&json!({"id": receipt["deployment_id"]})).await.join("\n"));

    let rotate =
        || w.app.request(Method::POST, &format!("{path}/rotate-secret"), Some(&w.acme.admin)).header("idempotency-key", "rot-once").json(&json!({})).send();
    let rotated = expect_status(rotate().await.expect("sent"), StatusCode::OK).await;
    let new = rotated["secret"].as_str().filter(|s| s.starts_with("whsec_") && *s != secret).unwrap_or_else(|| panic!("a new secret: {rotated}")).to_string();
    let replayed = answer("the rotation's replay", rotate().await.expect("sent")).await;
    assert!(replayed.get("secret").is_none(), "the new secret is never shown again: {replayed}");
    seen("the status call after the rotation", status_call(&new).await.to_string());
    answer("GET after the rotation", w.app.get(&path, &w.acme.admin).await).await;
    answer("the deliveries", w.app.get(&format!("{path}/deliveries"), &w.acme.admin).await).await;
    seen("the audit trail", serde_json::to_string(&w.app.audit(&w.acme).await).expect("JSON"));
    let answers = answers.take();
    assert!(answers.iter().any(|(what, text)| what == "the audit trail" && text.contains("webhook.secret_rotated")), "the audit trail was read");

    for (what, text) in &answers {
        assert!(!text.contains(&secret) && !text.contains(&new), "{what} shows a secret: {text}");
        assert!(markers_in(text).is_empty(), "{what} holds a credential: {text}");
    }
    let mut start = None;
    loop {
        let page = w.app.clients.dynamo.scan().table_name(&w.app.names.table).set_exclusive_start_key(start).send().await.expect("the table is scanned");
        for item in page.items() {
            let item = format!("{item:?}");
            assert!(!item.contains(&secret) && !item.contains(&new) && !item.contains("whsec_"), "an item holds a webhook secret in clear: {item}");
        }
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            break;
        }
    }
    let server_log = logs.text();
    assert!(server_log.contains("agent registered"), "the server's log was captured:\n{server_log}");
    for line in server_log.lines() {
        assert!(!line.contains(&secret) && !line.contains(&new), "a server log line holds the webhook's secret: {line}");
        assert!(markers_in(line).is_empty(), "a server log line holds a secret: {line}");
    }
}

#[tokio::test]
async fn an_extension_secret_is_in_no_server_log_line_from_its_write_through_its_delivery_to_a_connection_test_that_echoes_it() {
    // Debug, a level above what a deployment logs: every request's line, and the SDK's, are searched too.
    let logs = server_logs_at("debug,hyper=info,hyper_util=info,h2=info,rustls=info,reqwest=info");
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let prod = app.environment(&acme, "Production", "production").await;
    let points = json!({"connection_fields": [{"name": "password", "secret": true, "required": true}]});
    let body = json!({"name": "CRM", "type": "connection", "content": berth_tests::b64(b"crm"), "extensions": points});
    let crm = expect_status(app.post("/v1/components", &acme.admin, body).await, StatusCode::CREATED).await;
    let sync = app.component(&acme, "Sync", "process", b"sync", &[&crm]).await;
    let v1 = app.package(&acme, &sync, Some("v1")).await;
    let atom = app.runtime(&acme, "atom").await;
    app.attach(&acme, &prod, &atom).await;
    // Both commands read the values file; the connection test prints all of it and fails.
    let apply = r#"grep -q password "$BERTH_EXTENSIONS_FILE""#;
    let echo = r#"cat "$BERTH_EXTENSIONS_FILE"; exit 2"#;
    let agent = Agent::start_with_env(&app, &atom, Some(apply), &[("BERTH_TEST_CONNECTION_COMMAND", echo)]);

    let secret = format!("ext-pw-{}", uuid::Uuid::new_v4().simple());
    let path = format!("/v1/environments/{}/extensions", id_of(&prod));
    let values = json!({"components": {id_of(&crm): {"connection": {"password": secret}}}});
    let put = |etag: &str| app.request(Method::PUT, &path, Some(&acme.admin)).header("If-Match", etag).json(&values).send();
    // Refused writes carry the secret too: a stale version, and an unknown field beside it.
    let stale = put("\"999\"").await.expect("sent");
    assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
    assert!(!stale.text().await.expect("a body").contains(&secret));
    let read = app.get(&path, &acme.admin).await;
    let etag = read.headers().get("etag").and_then(|v| v.to_str().ok()).expect("an ETag").to_string();
    let unknown = json!({"components": {id_of(&crm): {"connection": {"password": secret, "pasword": secret}}}});
    let refused = app.request(Method::PUT, &path, Some(&acme.admin)).header("If-Match", &etag).json(&unknown).send().await.expect("sent");
    assert!(refused.status().is_client_error(), "an unknown field is refused");
    assert!(!refused.text().await.expect("a body").contains(&secret));
    expect_status(put(&etag).await.expect("sent"), StatusCode::OK).await;

    // Delivered to the agent at the job's start, and to its connection test.
    let d = app.deploy(&acme, &v1, &prod, "with the password").await;
    app.wait_for_status(&acme, &d, "succeeded").await;
    let connection = format!("/v1/environments/{}/connections/{}", id_of(&prod), id_of(&crm));
    let started = eventually("the runtime is online", || async {
        let r = app.post(&format!("{connection}/test"), &acme.admin, json!({})).await;
        if r.status() == StatusCode::CREATED { Ok(r.json::<Value>().await.expect("JSON")) } else { Err(r.text().await.unwrap_or_default()) }
    })
    .await;
    let ended = eventually("the connection test fails", || async {
        let now = expect_status(app.get(&connection, &acme.admin).await, StatusCode::OK).await;
        if now["last_test"]["id"] == started["last_test"]["id"] && now["last_test"]["status"] == "failed" { Ok(now) } else { Err(now.to_string()) }
    })
    .await;
    assert!(ended["last_test"]["message"].as_str().is_some_and(|m| m.contains("[redacted]") && !m.contains(&secret)), "{ended}");

    let server_log = logs.text();
    let fetched = server_log.lines().any(|l| l.contains("path=/agent/v1/jobs/") && l.contains("/extensions"));
    let tested = server_log.lines().any(|l| l.contains(&format!("path={connection}/test")));
    assert!(fetched && tested, "the server logged the values being fetched and the test:\n{server_log}");
    for line in server_log.lines() {
        assert!(!line.contains(&secret), "a server log line holds an extension secret: {line}");
    }
    assert!(!agent.log().contains(&secret), "{}", agent.log());
}
