//! Deployments under duress: offline runtimes, duplicate deliveries, killed
//! agents, deadlines, cancellation, schedules, retries, undeploys, detaches.

use berth_domain::usecases::Settings;
use berth_tests::{Agent, TestApp, TestTenant, eventually, expect_problem, expect_status};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

async fn setup(app: &TestApp) -> (TestTenant, Value, Value) {
    let acme = app.tenant("Acme").await;
    let env = app.environment(&acme, "Test", "test").await;
    let process = app.component(&acme, "Orders", "process", b"v1", &[]).await;
    (acme, env, process)
}

async fn targets(app: &TestApp, t: &TestTenant, d: &Value) -> Vec<Value> {
    let list = expect_status(app.get(&format!("/v1/deployments/{}/targets", d["id"].as_str().unwrap()), &t.admin).await, StatusCode::OK).await;
    list["items"].as_array().unwrap().clone()
}

async fn wait_for_target(app: &TestApp, t: &TestTenant, d: &Value, state: &str) {
    for _ in 0..300 {
        if targets(app, t, d).await.iter().any(|x| x["state"] == state) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no target reached {state}: {:?}", targets(app, t, d).await);
}

#[tokio::test]
async fn a_runtime_attached_to_two_environments_runs_each_environments_version() {
    let app = TestApp::spawn().await;
    let (acme, test, process) = setup(&app).await;
    let prod = app.environment(&acme, "Production", "production").await;
    let runtime = app.runtime(&acme, "shared-atom").await;
    app.attach(&acme, &test, &runtime).await;
    app.attach(&acme, &prod, &runtime).await;
    let agent = Agent::start(&app, &runtime, None);

    let v1 = app.package(&acme, &process, Some("v1")).await;
    let d = app.deploy(&acme, &v1, &prod, "").await;
    app.wait_for_status(&acme, &d, "succeeded").await;
    app.revise(&acme, &process, b"v2").await;
    let v2 = app.package(&acme, &process, Some("v2")).await;
    let d = app.deploy(&acme, &v2, &test, "").await;
    app.wait_for_status(&acme, &d, "succeeded").await;

    assert_eq!(agent.installed(&prod, &process).unwrap()["version"], "v1");
    assert_eq!(agent.installed(&test, &process).unwrap()["version"], "v2");
    assert_eq!(app.active(&acme, &prod).await[0]["version"], "v1");
    assert_eq!(app.active(&acme, &test).await[0]["version"], "v2");
}

#[tokio::test]
async fn a_job_for_an_offline_runtime_waits_and_completes_when_its_agent_comes_back() {
    let app = TestApp::spawn().await;
    let (acme, env, process) = setup(&app).await;
    let runtime = app.runtime(&acme, "atom").await;
    app.attach(&acme, &env, &runtime).await;
    let package = app.package(&acme, &process, None).await;

    let body = json!({"package_id": package["id"], "environment_id": env["id"]});
    let report = expect_status(app.post("/v1/deployments/validate", &acme.admin, body).await, StatusCode::OK).await;
    assert_eq!(report["errors"], json!([]));
    assert_eq!(report["warnings"][0]["code"], "runtime_offline");

    let d = app.deploy(&acme, &package, &env, "").await;
    app.wait_for_status(&acme, &d, "in_progress").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(targets(&app, &acme, &d).await[0]["state"], "pending", "the job waits for the runtime");

    let agent = Agent::start(&app, &runtime, None);
    app.wait_for_status(&acme, &d, "succeeded").await;
    assert_eq!(agent.installed(&env, &process).unwrap()["digest"], package["digest"]);
}

#[tokio::test]
async fn a_duplicated_deployments_message_creates_no_duplicate_target_or_job() {
    let app = TestApp::spawn().await;
    let (acme, env, process) = setup(&app).await;
    let runtimes = [app.runtime(&acme, "atom-1").await, app.runtime(&acme, "atom-2").await];
    for runtime in &runtimes {
        app.attach(&acme, &env, runtime).await;
    }
    let package = app.package(&acme, &process, None).await;
    let d = app.deploy(&acme, &package, &env, "").await;
    app.wait_for_status(&acme, &d, "in_progress").await;
    let jobs = jobs_by_runtime(&targets(&app, &acme, &d).await);
    assert_eq!(jobs.len(), 2, "one target per runtime: {jobs:?}");

    // SQS delivers at least once: the same message twice more, handled once the queue is empty.
    let tenant: berth_domain::ids::TenantId = acme.id.parse().unwrap();
    let id: berth_domain::ids::DeploymentId = d["id"].as_str().unwrap().parse().unwrap();
    let deployments = berth_aws::SqsRuntimeQueues::new(
        app.clients.sqs.clone(),
        app.names.queue_prefix.clone(),
        app.names.deployments_queue.clone(),
        Some(app.local.resources.deployments_queue_url.clone()),
    );
    for _ in 0..2 {
        berth_domain::ports::JobQueues::enqueue_deployment(&deployments, tenant, id).await.unwrap();
    }
    let deployments_queue = app.local.resources.deployments_queue_url.as_str();
    eventually("the dispatcher handled every deployments message", || async {
        match app.queue_depth(deployments_queue).await {
            (0, 0) => Ok(()),
            (visible, in_flight) => Err(format!("{visible} waiting, {in_flight} in flight")),
        }
    })
    .await;
    assert_eq!(jobs_by_runtime(&targets(&app, &acme, &d).await), jobs, "the duplicates made no new target and no new job");

    let agents: Vec<Agent> = runtimes.iter().map(|r| Agent::start(&app, r, None)).collect();
    app.wait_for_status(&acme, &d, "succeeded").await;
    // Each runtime was sent its job once per message; every copy has now been taken off its queue.
    for runtime in &runtimes {
        let queue = app.runtime_queue_url(runtime).await;
        eventually(&format!("{} took every job message", runtime["name"]), || async {
            match app.queue_depth(&queue).await {
                (0, _) => Ok(()),
                (visible, _) => Err(format!("{visible} waiting")),
            }
        })
        .await;
    }
    let events = expect_status(app.get(&format!("/v1/deployments/{}/events?limit=100", d["id"].as_str().unwrap()), &acme.admin).await, StatusCode::OK).await;
    let events = events["items"].as_array().unwrap();
    let logs: Vec<String> = agents.iter().map(Agent::log).collect();
    for runtime in &runtimes {
        let lines: Vec<&str> = events.iter().filter(|e| e["runtime_id"] == runtime["id"]).map(|e| e["message"].as_str().unwrap()).collect();
        let delivered = lines.iter().filter(|m| m.starts_with("Delivered")).count();
        assert_eq!(delivered, 1, "{}'s job was delivered once: {lines:?}; agent logs: {logs:?}", runtime["name"]);
        let deployed = lines.iter().filter(|m| m.ends_with(": Deployed")).count();
        assert_eq!(deployed, 1, "{} deployed it once: {lines:?}", runtime["name"]);
    }
    assert_eq!(jobs_by_runtime(&targets(&app, &acme, &d).await), jobs, "the targets kept their one job each");
    let started = app.audit(&acme).await.iter().filter(|e| e["action"] == "deployment.started" && e["entity_id"] == d["id"]).count();
    assert_eq!(started, 1, "the deployment started once");
}

/// Each target's runtime and job.
fn jobs_by_runtime(targets: &[Value]) -> std::collections::BTreeMap<String, String> {
    targets.iter().map(|t| (t["runtime_id"].as_str().unwrap().to_string(), t["job_id"].as_str().unwrap().to_string())).collect()
}

#[tokio::test]
async fn an_agent_killed_while_applying_restores_the_previous_version_when_it_restarts() {
    let app = TestApp::spawn().await;
    let (acme, env, process) = setup(&app).await;
    let runtime = app.runtime(&acme, "atom").await;
    app.attach(&acme, &env, &runtime).await;
    let slow = tempfile::tempdir().unwrap();
    let marker = slow.path().join("slow");
    let apply = format!("if [ -f {} ]; then sleep 60; fi", marker.display());
    let mut agent = Agent::start(&app, &runtime, Some(&apply));
    let v1 = app.package(&acme, &process, Some("v1")).await;
    let d1 = app.deploy(&acme, &v1, &env, "").await;
    app.wait_for_status(&acme, &d1, "succeeded").await;

    app.revise(&acme, &process, b"v2").await;
    let v2 = app.package(&acme, &process, Some("v2")).await;
    std::fs::write(&marker, b"").unwrap();
    let d2 = app.deploy(&acme, &v2, &env, "").await;
    wait_for_target(&app, &acme, &d2, "applying").await;
    agent.kill().await;
    assert_eq!(agent.installed(&env, &process).unwrap()["version"], "v1", "the swap had not happened");

    std::fs::remove_file(&marker).unwrap();
    agent.restart();
    app.wait_for_status(&acme, &d2, "rolled_back").await;
    assert_eq!(targets(&app, &acme, &d2).await[0]["state"], "restored");
    assert_eq!(agent.installed(&env, &process).unwrap()["version"], "v1");
    assert_eq!(app.active(&acme, &env).await[0]["version"], "v1", "the environment never lost its working version");
}

#[tokio::test]
async fn undeploying_removes_the_component_from_every_runtime_and_frees_its_package() {
    let app = TestApp::spawn().await;
    let (acme, env, process) = setup(&app).await;
    let runtimes = [app.runtime(&acme, "atom-1").await, app.runtime(&acme, "atom-2").await];
    for runtime in &runtimes {
        app.attach(&acme, &env, runtime).await;
    }
    let agents: Vec<Agent> = runtimes.iter().map(|r| Agent::start(&app, r, None)).collect();
    let package = app.package(&acme, &process, None).await;
    let d = app.deploy(&acme, &package, &env, "").await;
    app.wait_for_status(&acme, &d, "succeeded").await;
    for (agent, runtime) in agents.iter().zip(&runtimes) {
        let installed = agent.installed(&env, &process).unwrap_or_else(|| panic!("{} runs it; log: {}", runtime["name"], agent.log()));
        assert_eq!(installed["digest"], package["digest"]);
    }
    let package_path = format!("/v1/packages/{}", package["id"].as_str().unwrap());
    expect_problem(app.delete(&package_path, &acme.admin).await, StatusCode::CONFLICT, "package_active").await;

    let path = format!("/v1/environments/{}/active/{}", env["id"].as_str().unwrap(), process["id"].as_str().unwrap());
    let undeploy = expect_status(app.delete(&path, &acme.admin).await, StatusCode::ACCEPTED).await;
    assert_eq!(undeploy["kind"], "undeploy");
    app.wait_for_status(&acme, &undeploy, "succeeded").await;
    let sent = targets(&app, &acme, &undeploy).await;
    assert_eq!(sent.len(), 2, "every runtime was sent the undeploy: {sent:?}");
    assert!(sent.iter().all(|t| t["state"] == "deployed"), "{sent:?}");
    assert_eq!(app.active(&acme, &env).await, Vec::<Value>::new());
    for (agent, runtime) in agents.iter().zip(&runtimes) {
        assert!(agent.installed(&env, &process).is_none(), "{} removed it; log: {}", runtime["name"], agent.log());
    }
    expect_status(app.delete(&package_path, &acme.admin).await, StatusCode::NO_CONTENT).await;
}

#[tokio::test]
async fn a_detached_runtime_is_sent_undeploys_while_the_environment_keeps_its_versions() {
    let app = TestApp::spawn().await;
    let (acme, env, process) = setup(&app).await;
    let (leaving, staying) = (app.runtime(&acme, "leaving").await, app.runtime(&acme, "staying").await);
    app.attach(&acme, &env, &leaving).await;
    app.attach(&acme, &env, &staying).await;
    let (leaving_agent, staying_agent) = (Agent::start(&app, &leaving, None), Agent::start(&app, &staying, None));
    let package = app.package(&acme, &process, None).await;
    let d = app.deploy(&acme, &package, &env, "").await;
    app.wait_for_status(&acme, &d, "succeeded").await;
    for agent in [&leaving_agent, &staying_agent] {
        assert_eq!(agent.installed(&env, &process).expect("both runtimes run it")["digest"], package["digest"]);
    }

    let path = format!("/v1/environments/{}/runtimes/{}", env["id"].as_str().unwrap(), leaving["id"].as_str().unwrap());
    expect_status(app.delete(&path, &acme.admin).await, StatusCode::NO_CONTENT).await;
    let undeploy = eventually("an undeploy is requested for the detached runtime", || async {
        let all = expect_status(app.get("/v1/deployments", &acme.admin).await, StatusCode::OK).await;
        let items = all["items"].as_array().unwrap();
        items.iter().find(|x| x["kind"] == "undeploy").cloned().ok_or_else(|| format!("{items:?}"))
    })
    .await;
    assert_eq!(undeploy["runtime_id"], leaving["id"]);
    assert_eq!(undeploy["component_id"], process["id"]);
    app.wait_for_status(&acme, &undeploy, "succeeded").await;
    let sent = targets(&app, &acme, &undeploy).await;
    assert_eq!(sent.iter().map(|t| &t["runtime_id"]).collect::<Vec<_>>(), [&leaving["id"]], "only the detached runtime was sent it");
    assert!(leaving_agent.installed(&env, &process).is_none(), "the detached runtime stopped running it; log: {}", leaving_agent.log());
    assert_eq!(staying_agent.installed(&env, &process).expect("the attached runtime runs it still")["digest"], package["digest"]);

    // Read once the undeploy has finished: it took nothing from the environment.
    let original = expect_status(app.get(&format!("/v1/deployments/{}", d["id"].as_str().unwrap()), &acme.admin).await, StatusCode::OK).await;
    assert_eq!(original["status"], "succeeded", "the original deployment is still succeeded, not superseded");
    let active = app.active(&acme, &env).await;
    assert_eq!(active.len(), 1, "the environment's active version stays: {active:?}");
    assert_eq!(active[0]["deployment_id"], d["id"]);
}

#[tokio::test]
async fn a_scheduled_deployment_waits_for_its_time_and_can_be_cancelled_before() {
    let app = TestApp::spawn().await;
    let (acme, env, process) = setup(&app).await;
    let runtime = app.runtime(&acme, "atom").await;
    app.attach(&acme, &env, &runtime).await;
    let _agent = Agent::start(&app, &runtime, None);
    let package = app.package(&acme, &process, None).await;

    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let body = json!({"package_id": package["id"], "environment_id": env["id"], "scheduled_at": later});
    let scheduled = expect_status(app.post("/v1/deployments", &acme.admin, body).await, StatusCode::CREATED).await;
    assert_eq!(scheduled["status"], "scheduled");
    let cancel = format!("/v1/deployments/{}/cancel", scheduled["id"].as_str().unwrap());
    let cancelled = expect_status(app.request(reqwest::Method::POST, &cancel, Some(&acme.admin)).send().await.unwrap(), StatusCode::OK).await;
    assert_eq!(cancelled["status"], "cancelled");

    let soon = (chrono::Utc::now() + chrono::Duration::seconds(4)).to_rfc3339();
    let body = json!({"package_id": package["id"], "environment_id": env["id"], "scheduled_at": soon});
    let d = expect_status(app.post("/v1/deployments", &acme.admin, body).await, StatusCode::CREATED).await;
    assert_eq!(d["status"], "scheduled", "the cancelled one released the lock");
    let done = app.wait_for_status(&acme, &d, "succeeded").await;
    let (scheduled_at, started_at) = (at(&done["scheduled_at"]), at(&done["started_at"]));
    assert!(started_at >= scheduled_at, "it started at {started_at}, before its time {scheduled_at}");
    let events = expect_status(app.get(&format!("/v1/deployments/{}/events", d["id"].as_str().unwrap()), &acme.admin).await, StatusCode::OK).await;
    let released = events["items"].as_array().unwrap().iter().find(|e| e["message"] == "Scheduled time reached: queued").expect("a release in the timeline");
    assert!(at(&released["at"]) >= scheduled_at, "released at {}, before its time {scheduled_at}", released["at"]);
    expect_problem(
        app.request(reqwest::Method::POST, &format!("/v1/deployments/{}/cancel", d["id"].as_str().unwrap()), Some(&acme.admin)).send().await.unwrap(),
        StatusCode::CONFLICT,
        "deployment_started",
    )
    .await;
}

#[tokio::test]
async fn retrying_a_failed_deployment_sends_the_failed_targets_a_new_job() {
    let app = TestApp::spawn().await;
    let (acme, env, process) = setup(&app).await;
    let runtime = app.runtime(&acme, "atom").await;
    app.attach(&acme, &env, &runtime).await;
    let broken = tempfile::tempdir().unwrap();
    let marker = broken.path().join("broken");
    std::fs::write(&marker, b"").unwrap();
    let _agent = Agent::start(&app, &runtime, Some(&format!("test ! -f {}", marker.display())));
    let package = app.package(&acme, &process, None).await;
    let d = app.deploy(&acme, &package, &env, "").await;
    app.wait_for_status(&acme, &d, "rolled_back").await;
    let first_job = targets(&app, &acme, &d).await[0]["job_id"].clone();

    std::fs::remove_file(&marker).unwrap();
    let retry = format!("/v1/deployments/{}/retry", d["id"].as_str().unwrap());
    let retried = expect_status(app.request(reqwest::Method::POST, &retry, Some(&acme.admin)).send().await.unwrap(), StatusCode::OK).await;
    assert_eq!(retried["status"], "in_progress");
    app.wait_for_status(&acme, &d, "succeeded").await;
    let now = targets(&app, &acme, &d).await;
    assert_eq!(now[0]["state"], "deployed");
    assert_ne!(now[0]["job_id"], first_job, "a retry is a new job");
    assert_eq!(app.active(&acme, &env).await[0]["package_id"], package["id"]);
}

#[tokio::test]
async fn a_job_past_its_deadline_is_failed_by_the_sweeper() {
    let settings = Settings { job_deadline: chrono::Duration::seconds(2), ..Settings::default() };
    let app = TestApp::spawn_with(settings).await;
    let (acme, env, process) = setup(&app).await;
    let runtime = app.runtime(&acme, "atom").await;
    app.attach(&acme, &env, &runtime).await;
    let _agent = Agent::start(&app, &runtime, Some("sleep 30"));
    let package = app.package(&acme, &process, None).await;
    let d = app.deploy(&acme, &package, &env, "").await;
    app.wait_for_status(&acme, &d, "failed").await;
    let t = &targets(&app, &acme, &d).await[0];
    assert_eq!(t["state"], "failed");
    assert!(t["message"].as_str().unwrap().contains("deadline"), "{t}");
    assert_eq!(app.active(&acme, &env).await, Vec::<Value>::new());
    // The lock is released: nothing is in flight any more, and another deployment is accepted.
    let body = json!({"package_id": package["id"], "environment_id": env["id"]});
    let report = expect_status(app.post("/v1/deployments/validate", &acme.admin, body.clone()).await, StatusCode::OK).await;
    assert_eq!(report["errors"], json!([]), "{report}");
    let next = expect_status(app.post("/v1/deployments", &acme.admin, body).await, StatusCode::CREATED).await;
    assert_eq!(next["status"], "queued", "{next}");
}

fn at(time: &Value) -> chrono::DateTime<chrono::Utc> {
    time.as_str().and_then(|t| t.parse().ok()).unwrap_or_else(|| panic!("a time: {time}"))
}

#[tokio::test]
async fn an_unreadable_deployments_message_is_reported_for_retry_never_dropped() {
    let app = TestApp::spawn().await;
    let garbage = berth_dispatcher::QueueMessage { message_id: "m-1".into(), body: "{not json".into(), receive_count: 1 };
    let unknown = berth_dispatcher::QueueMessage {
        message_id: "m-2".into(),
        body: json!({"tenant_id": uuid::Uuid::now_v7(), "deployment_id": uuid::Uuid::now_v7()}).to_string(),
        receive_count: 1,
    };
    let failed = berth_dispatcher::handle_batch(&app.local.berth, vec![garbage, unknown]).await;
    assert_eq!(failed, ["m-1"], "the unreadable one is retried (and ends in the DLQ); the one for no deployment is done");
}

#[tokio::test]
async fn a_deployment_that_cannot_be_dispatched_is_marked_failed_on_its_last_delivery() {
    let app = TestApp::spawn().await;
    let (acme, env, process) = setup(&app).await;
    let runtime = app.runtime(&acme, "atom").await;
    app.attach(&acme, &env, &runtime).await;
    // The runtime's queue is gone: sending it its job fails every time.
    let (queue, _) = berth_aws::keys::runtime_queue_names(&app.names.queue_prefix, runtime["id"].as_str().unwrap().parse().unwrap());
    let url = app.clients.sqs.get_queue_url().queue_name(&queue).send().await.unwrap().queue_url.unwrap();
    app.clients.sqs.delete_queue().queue_url(&url).send().await.unwrap();
    let package = app.package(&acme, &process, None).await;
    let d = app.deploy(&acme, &package, &env, "").await;

    let body = json!({"tenant_id": acme.id, "deployment_id": d["id"]}).to_string();
    let early = berth_dispatcher::QueueMessage { message_id: "m".into(), body: body.clone(), receive_count: 1 };
    assert_eq!(berth_dispatcher::handle_batch(&app.local.berth, vec![early]).await, ["m"], "retried while deliveries remain");
    let last = berth_dispatcher::QueueMessage { message_id: "m".into(), body, receive_count: berth_aws::bootstrap::MAX_RECEIVES };
    assert_eq!(berth_dispatcher::handle_batch(&app.local.berth, vec![last]).await, ["m"], "still reported: SQS moves it to the DLQ");
    let now = app.wait_for_status(&acme, &d, "failed").await;
    assert!(now["finished_at"].is_string());
}

#[tokio::test]
async fn a_runtime_reporting_another_digest_than_the_active_one_is_out_of_sync() {
    let app = TestApp::spawn().await;
    let (acme, env, process) = setup(&app).await;
    let runtime = app.runtime(&acme, "atom").await;
    app.attach(&acme, &env, &runtime).await;
    let mut agent = Agent::start(&app, &runtime, None);
    let package = app.package(&acme, &process, None).await;
    let d = app.deploy(&acme, &package, &env, "").await;
    app.wait_for_status(&acme, &d, "succeeded").await;
    agent.kill().await;

    // What the runtime says it runs is not what the environment should run.
    let credential = std::fs::read_to_string(agent.state.path().join("credential")).unwrap();
    let stale = format!("sha256:{}", "0".repeat(64));
    let beat = json!({"agent_version": "1.0.0", "status": "ok", "running": [{"component_id": process["id"], "package_id": package["id"], "digest": stale}]});
    let response = app.request(reqwest::Method::POST, "/agent/v1/heartbeat", Some(credential.trim())).json(&beat).send().await.unwrap();
    expect_status(response, StatusCode::OK).await;
    let active = app.active(&acme, &env).await;
    assert_eq!(active[0]["out_of_sync"], true);
    assert_eq!(active[0]["out_of_sync_runtimes"], json!([runtime["id"]]));

    let beat = json!({"agent_version": "1.0.0", "status": "ok", "running": [{"component_id": process["id"], "package_id": package["id"], "digest": package["digest"]}]});
    let response = app.request(reqwest::Method::POST, "/agent/v1/heartbeat", Some(credential.trim())).json(&beat).send().await.unwrap();
    expect_status(response, StatusCode::OK).await;
    assert_eq!(app.active(&acme, &env).await[0]["out_of_sync"], false);
}
