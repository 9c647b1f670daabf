//! Metrics as CloudWatch sees them: every function writes one embedded
//! metric format (EMF) line per event, which CloudWatch Logs turns into
//! metrics in the `Berth` namespace. The capture stands in for stdout.

use berth_tests::{Agent, CapturedLogs, TestApp, berth_signature, eventually, expect_problem, expect_status, id_of, unix_now};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Units CloudWatch accepts that Berth uses.
const UNITS: &[&str] = &["Count", "Milliseconds"];

/// Every captured line, each parsed and checked as a valid EMF document:
/// the `_aws` block, and each dimension and metric it names present at the top level.
fn emf_documents(metrics: &CapturedLogs) -> Vec<Value> {
    let now_ms = unix_now() * 1000;
    let text = metrics.text();
    let mut documents = Vec::new();
    for line in text.lines() {
        let doc: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        let timestamp = doc["_aws"]["Timestamp"].as_i64().unwrap_or_else(|| panic!("no integer Timestamp: {line}"));
        assert!((now_ms - 600_000..=now_ms + 1000).contains(&timestamp), "a timestamp in ms of now: {line}");
        let directives = doc["_aws"]["CloudWatchMetrics"].as_array().unwrap_or_else(|| panic!("no CloudWatchMetrics: {line}"));
        assert_eq!(directives.len(), 1, "{line}");
        let directive = &directives[0];
        assert_eq!(directive["Namespace"], "Berth", "{line}");
        assert_eq!(directive["Dimensions"], json!([["function"]]), "one small, fixed dimension set: {line}");
        assert!(doc["function"].is_string(), "the dimension's value: {line}");
        for metric in directive["Metrics"].as_array().unwrap_or_else(|| panic!("no Metrics: {line}")) {
            let name = metric["Name"].as_str().unwrap_or_else(|| panic!("a metric without a Name: {line}"));
            assert!(UNITS.contains(&metric["Unit"].as_str().unwrap_or("")), "unit of {name}: {line}");
            assert!(doc[name].is_number(), "the value of {name}: {line}");
        }
        documents.push(doc);
    }
    documents
}

fn metric_name(doc: &Value) -> &str {
    doc["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"].as_str().unwrap_or("")
}

fn named<'a>(documents: &'a [Value], name: &str) -> Vec<&'a Value> {
    documents.iter().filter(|d| metric_name(d) == name).collect()
}

#[tokio::test]
async fn a_deploy_is_counted_in_valid_emf_lines_requested_once_succeeded_once_with_its_job_latency_and_the_agents_heartbeats() {
    let (app, metrics) = TestApp::spawn_with_metrics().await;
    let acme = app.tenant("Acme").await;
    let env = app.environment(&acme, "Test", "test").await;
    let runtime = app.runtime(&acme, "atom").await;
    app.attach(&acme, &env, &runtime).await;
    let _agent = Agent::start(&app, &runtime, None);
    let process = app.component(&acme, "Orders", "process", b"orders v1", &[]).await;
    let package = app.package(&acme, &process, Some("v1")).await;

    let d = app.deploy(&acme, &package, &env, "counted").await;
    app.wait_for_status(&acme, &d, "succeeded").await;
    // The status reads `succeeded` as soon as it is stored; the request that settled it writes its lines just after.
    let documents = eventually("the heartbeat and the settled deployment are counted", || async {
        let documents = emf_documents(&metrics);
        let written = ["AgentHeartbeat", "DeploymentSucceeded", "JobLatency"].iter().all(|name| !named(&documents, name).is_empty());
        if written { Ok(documents) } else { Err(metrics.text()) }
    })
    .await;

    let deployment = id_of(&d);
    for doc in &documents {
        assert_eq!(doc["tenant_id"], acme.id.as_str(), "the tenant is a property of every line: {doc}");
    }
    let requested = named(&documents, "DeploymentRequested");
    assert_eq!(requested.len(), 1, "{}", metrics.text());
    assert_eq!((&requested[0]["DeploymentRequested"], &requested[0]["function"]), (&json!(1.0), &json!("api")));
    assert_eq!((&requested[0]["deployment_id"], &requested[0]["kind"]), (&json!(deployment), &json!("deploy")));

    let succeeded = named(&documents, "DeploymentSucceeded");
    assert_eq!(succeeded.len(), 1, "{}", metrics.text());
    assert_eq!((&succeeded[0]["DeploymentSucceeded"], &succeeded[0]["deployment_id"]), (&json!(1.0), &json!(deployment)));
    assert_eq!(succeeded[0]["function"], "agent-gateway", "settled when the agent reported: {}", succeeded[0]);
    assert!(named(&documents, "DeploymentFailed").is_empty() && named(&documents, "DeploymentRolledBack").is_empty(), "{}", metrics.text());

    let latency = named(&documents, "JobLatency");
    assert_eq!(latency.len(), 1, "one job: {}", metrics.text());
    assert_eq!(latency[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"], "Milliseconds");
    let ms = latency[0]["JobLatency"].as_f64().expect("a number");
    assert!((0.0..60_000.0).contains(&ms), "delivered to finished within the test: {ms} ms");
    assert_eq!((&latency[0]["deployment_id"], &latency[0]["runtime_id"], &latency[0]["outcome"]), (&json!(deployment), &runtime["id"], &json!("succeeded")));

    let heartbeats = named(&documents, "AgentHeartbeat");
    assert!(heartbeats.iter().all(|h| h["runtime_id"] == runtime["id"] && h["function"] == "agent-gateway" && h["AgentHeartbeat"] == 1.0), "{heartbeats:?}");
}

#[tokio::test]
async fn webhook_deliveries_are_counted_accepted_or_refused_with_the_refusals_code() {
    let (app, metrics) = TestApp::spawn_with_metrics().await;
    let acme = app.tenant("Acme").await;
    let env = app.environment(&acme, "Test", "test").await;
    let runtime = app.runtime(&acme, "atom").await;
    app.attach(&acme, &env, &runtime).await;
    let orders = app.component(&acme, "Orders", "process", b"orders v1", &[]).await;
    app.package(&acme, &orders, Some("1.0.0")).await;
    let hook = app.webhook(&acme, &env, &orders, "deploy_version").await;
    let secret = hook["secret"].as_str().expect("the secret, shown once");

    let body = json!({"version": "1.0.0"}).to_string();
    expect_status(app.deliver(&hook, secret, "build-1", &body).await, StatusCode::ACCEPTED).await;
    let forged = berth_signature("whsec_not-the-secret", unix_now(), body.as_bytes());
    expect_problem(app.deliver_signed(&hook, "build-2", &forged, body.into_bytes()).await, StatusCode::UNAUTHORIZED, "bad_signature").await;

    let documents = emf_documents(&metrics);
    let accepted = named(&documents, "WebhookDeliveryAccepted");
    let refused = named(&documents, "WebhookDeliveryRefused");
    assert_eq!((accepted.len(), refused.len()), (1, 1), "{}", metrics.text());
    assert_eq!((&accepted[0]["function"], &accepted[0]["code"], &accepted[0]["tenant_id"]), (&json!("webhooks"), &json!("accepted"), &json!(acme.id)));
    assert_eq!((&refused[0]["function"], &refused[0]["code"], &refused[0]["tenant_id"]), (&json!("webhooks"), &json!("bad_signature"), &json!(acme.id)));
    assert_eq!(named(&documents, "DeploymentRequested").len(), 1, "the accepted delivery requested a deployment: {}", metrics.text());
}
