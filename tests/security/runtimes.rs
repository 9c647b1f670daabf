//! Detach and suspension take effect at once: jobs for a runtime no longer
//! attached are withdrawn, retries go to attached runtimes only, and a
//! suspended tenant's agents may do nothing.

use crate::{World, id_of, world, world_with_apply};
use berth_tests::{Agent, eventually, expect_problem, expect_status};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A second runtime, registered but not polling yet, attached to Production;
/// a deployment of v1 dispatched to both runtimes. Returns the runtime, its
/// credential and the deployment.
async fn late_runtime_with_a_pending_job(w: &World) -> (Value, String, Value) {
    let late = w.app.runtime(&w.acme, "late").await;
    let credential = w.app.register_agent(&late).await;
    w.app.attach(&w.acme, &w.prod, &late).await;
    let d = w.app.deploy(&w.acme, &w.v1, &w.prod, "two runtimes").await;
    eventually("both runtimes have a target", || async {
        let targets = w.targets(&d).await;
        if targets.len() == 2 { Ok(()) } else { Err(format!("{targets:?}")) }
    })
    .await;
    (late, credential, d)
}

#[tokio::test]
async fn a_job_queued_before_its_runtime_was_detached_is_withdrawn_and_never_handed_out() {
    let w = world().await;
    let (late, credential, d) = late_runtime_with_a_pending_job(&w).await;
    eventually("the polling agent deployed", || async {
        let targets = w.targets(&d).await;
        if targets.iter().any(|t| t["state"] == "deployed") { Ok(()) } else { Err(format!("{targets:?}")) }
    })
    .await;
    assert_eq!(w.deployment(&d).await["status"], "in_progress", "the late runtime's job is still pending");

    expect_status(w.app.delete(&format!("/v1/environments/{}/runtimes/{}", id_of(&w.prod), id_of(&late)), &w.acme.admin).await, StatusCode::NO_CONTENT).await;
    let target = w.targets(&d).await.into_iter().find(|t| t["runtime_id"] == late["id"]).expect("the late runtime's target");
    assert_eq!(target["state"], "skipped", "withdrawn at once: {target}");
    assert!(w.timeline(&d).await.iter().any(|l| l.starts_with("Skipped") && l.contains("detached")), "the timeline says why");
    assert_eq!(w.app.wait_for_status(&w.acme, &d, "succeeded").await["status"], "succeeded", "the attached runtime carried it");

    // The detached runtime now polls: the withdrawn job is never handed out.
    let next = w.app.request(Method::GET, "/agent/v1/jobs/next?wait=2", Some(&credential)).send().await.expect("sent");
    assert_eq!(next.status(), StatusCode::NO_CONTENT, "no job for a detached runtime: {}", next.text().await.unwrap_or_default());
}

#[tokio::test]
async fn a_job_whose_runtime_was_detached_while_the_message_waited_is_skipped_when_the_runtime_asks() {
    let w = world().await;
    let (late, credential, d) = late_runtime_with_a_pending_job(&w).await;
    // Detach behind the API's back (as a race would leave it): only the attachment goes.
    let key =
        berth_aws::keys::attachment(w.acme.id.parse().expect("a tenant"), id_of(&w.prod).parse().expect("an env"), id_of(&late).parse().expect("a runtime"));
    let table = &w.app.names.table;
    w.app
        .clients
        .dynamo
        .delete_item()
        .table_name(table)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(key.0))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S(key.1))
        .send()
        .await
        .expect("the attachment is removed");
    let runtime_key = berth_aws::keys::runtime(w.acme.id.parse().expect("a tenant"), id_of(&late).parse().expect("a runtime"));
    w.app
        .clients
        .dynamo
        .update_item()
        .table_name(table)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(runtime_key.0))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S(runtime_key.1))
        .update_expression("SET envs = :none")
        .expression_attribute_values(":none", aws_sdk_dynamodb::types::AttributeValue::M(Default::default()))
        .send()
        .await
        .expect("the runtime forgets the environment");

    let next = w.app.request(Method::GET, "/agent/v1/jobs/next?wait=2", Some(&credential)).send().await.expect("sent");
    assert_eq!(next.status(), StatusCode::NO_CONTENT, "the job is not handed out");
    let target = w.targets(&d).await.into_iter().find(|t| t["runtime_id"] == late["id"]).expect("its target");
    assert_eq!(target["state"], "skipped");
}

#[tokio::test]
async fn a_retry_goes_to_attached_runtimes_only() {
    let flag = tempfile::tempdir().expect("a dir");
    let fail = flag.path().join("fail");
    std::fs::write(&fail, b"").expect("the flag");
    let apply = format!("test ! -f {}", fail.display());
    let w = world_with_apply(Some(&apply)).await;
    let second = w.app.runtime(&w.acme, "second").await;
    w.app.attach(&w.acme, &w.prod, &second).await;
    let _second_agent = Agent::start(&w.app, &second, Some(&apply));
    let d = w.app.deploy(&w.acme, &w.v1, &w.prod, "fails everywhere").await;
    w.app.wait_for_status(&w.acme, &d, "rolled_back").await;

    expect_status(w.app.delete(&format!("/v1/environments/{}/runtimes/{}", id_of(&w.prod), id_of(&second)), &w.acme.admin).await, StatusCode::NO_CONTENT).await;
    std::fs::remove_file(&fail).expect("the flag goes");
    expect_status(w.app.post(&format!("/v1/deployments/{}/retry", id_of(&d)), &w.ann, json!({})).await, StatusCode::OK).await;
    w.app.wait_for_status(&w.acme, &d, "succeeded").await;
    let targets = w.targets(&d).await;
    let state_of = |r: &Value| targets.iter().find(|t| t["runtime_id"] == r["id"]).map(|t| t["state"].clone()).expect("a target");
    assert_eq!(state_of(&w.runtime), "deployed");
    assert_eq!(state_of(&second), "skipped", "the detached runtime was not sent the job again");
}

#[tokio::test]
async fn a_suspended_tenant_s_agents_get_403_on_every_agent_route_until_reinstated() {
    let w = world().await;
    let spare = w.app.runtime(&w.acme, "spare").await;
    let probe = w.app.runtime(&w.acme, "probe").await;
    let credential = w.app.register_agent(&probe).await;
    let tenant = format!("/platform/v1/tenants/{}", w.acme.id);
    expect_status(w.app.patch(&tenant, &w.app.platform_token(), json!({"suspended": true})).await, StatusCode::OK).await;

    let register = json!({"registration_token": spare["registration_token"], "agent_version": "1.0.0"});
    expect_problem(
        w.app.request(Method::POST, "/agent/v1/register", None).json(&register).send().await.expect("sent"),
        StatusCode::FORBIDDEN,
        "tenant_suspended",
    )
    .await;
    expect_problem(w.app.heartbeat(&credential).await, StatusCode::FORBIDDEN, "tenant_suspended").await;
    let next = w.app.request(Method::GET, "/agent/v1/jobs/next?wait=0", Some(&credential)).send().await.expect("sent");
    expect_problem(next, StatusCode::FORBIDDEN, "tenant_suspended").await;
    let event = format!("/agent/v1/jobs/{}/events", uuid::Uuid::now_v7());
    let report = w.app.request(Method::POST, &event, Some(&credential)).json(&json!({"phase": "delivered"})).send().await.expect("sent");
    expect_problem(report, StatusCode::FORBIDDEN, "tenant_suspended").await;

    expect_status(w.app.patch(&tenant, &w.app.platform_token(), json!({"suspended": false})).await, StatusCode::OK).await;
    expect_status(w.app.heartbeat(&credential).await, StatusCode::OK).await;
    expect_status(w.app.request(Method::POST, "/agent/v1/register", None).json(&register).send().await.expect("sent"), StatusCode::CREATED).await;
}

#[tokio::test]
async fn an_agent_whose_journaled_job_the_server_no_longer_knows_closes_it_and_keeps_serving() {
    let mut w = world().await;
    w.deploy_active(&w.v1).await;
    w.agent.kill().await;
    // A job the agent journaled as swapped, which the server refuses to hear about (404).
    let job_id = uuid::Uuid::now_v7().to_string();
    let journal = w.agent.state.path().join("jobs").join(format!("{job_id}.json"));
    let job = json!({
        "job_id": job_id, "deployment_id": uuid::Uuid::now_v7().to_string(), "kind": "deploy",
        "environment_id": uuid::Uuid::now_v7().to_string(), "component_id": uuid::Uuid::now_v7().to_string(),
        "package_id": uuid::Uuid::now_v7().to_string(), "version": "x", "digest": format!("sha256:{}", "0".repeat(64)), "size": 0,
        "download_url": "http://127.0.0.1:9/none", "deadline": chrono::Utc::now().to_rfc3339(),
    });
    std::fs::write(&journal, serde_json::to_vec(&json!({"job": job, "step": "swapped", "had_previous": false})).expect("JSON")).expect("the journal");
    w.agent.restart();

    // It closes the refused job and goes on serving: the next deployment is applied.
    let d = w.app.deploy(&w.acme, &w.v2, &w.prod, "after the restart").await;
    w.app.wait_for_status(&w.acme, &d, "succeeded").await;
    assert!(!journal.exists(), "the refused job's journal is closed");
    assert_eq!(w.installed_version().as_deref(), Some("v2"));
}
