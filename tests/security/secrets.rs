//! Secrets are shown once and stored nowhere: not replayed by idempotency,
//! not in any timeline line or target message, not in any log line; and a
//! deleted package cannot be downloaded.

use crate::{id_of, world};
use berth_domain::redact::{CREDENTIAL_PREFIXES, PRESIGNED_SECRETS};
use berth_tests::{expect_problem, expect_status};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

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

/// Log lines of this test process, as the server writes them.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("the log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn markers_in(text: &str) -> Vec<&'static str> {
    let lower = text.to_ascii_lowercase();
    CREDENTIAL_PREFIXES.iter().chain(PRESIGNED_SECRETS.iter()).copied().filter(|m| lower.contains(&m.to_ascii_lowercase())).collect()
}

#[tokio::test]
async fn no_stored_message_and_no_log_line_of_a_deployment_run_holds_a_secret() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info,aws_config=warn,aws_smithy_runtime=warn"))
        .with_writer(move || writer.clone())
        .init();

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
    let server_log = String::from_utf8(logs.0.lock().expect("the log buffer").clone()).expect("UTF-8 logs");
    assert!(server_log.contains("agent registered"), "the server's log was captured:\n{server_log}");
    for line in server_log.lines() {
        assert!(markers_in(line).is_empty(), "a server log line holds a secret: {line}");
    }
}
