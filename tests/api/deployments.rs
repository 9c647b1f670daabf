//! Seed scenarios 1, 2, 3, 4, 7 and 8 (docs/scenarios.md), with real agents.

use berth_tests::{Agent, TestApp, TestTenant, expect_problem, expect_status};
use reqwest::StatusCode;
use serde_json::{Value, json};

struct World {
    app: TestApp,
    acme: TestTenant,
    test: Value,
    prod: Value,
}

async fn world() -> World {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let test = app.environment(&acme, "Test", "test").await;
    let prod = app.environment(&acme, "Production", "production").await;
    World { app, acme, test, prod }
}

impl World {
    /// A runtime attached to `envs`, with its agent running.
    async fn runtime_with_agent(&self, name: &str, envs: &[&Value], apply: Option<&str>) -> (Value, Agent) {
        let runtime = self.app.runtime(&self.acme, name).await;
        for env in envs {
            self.app.attach(&self.acme, env, &runtime).await;
        }
        let agent = Agent::start(&self.app, &runtime, apply);
        (runtime, agent)
    }

    async fn deploy_and_wait(&self, package: &Value, env: &Value, notes: &str, status: &str) -> Value {
        let d = self.app.deploy(&self.acme, package, env, notes).await;
        self.app.wait_for_status(&self.acme, &d, status).await
    }
}

#[tokio::test]
async fn scenario_1_versions_move_from_test_to_production_and_production_shows_outdated_when_the_process_changes() {
    let w = world().await;
    let (_, test_agent) = w.runtime_with_agent("test-atom", &[&w.test], None).await;
    let (_, prod_agent) = w.runtime_with_agent("prod-atom", &[&w.prod], None).await;
    let connection = w.app.component(&w.acme, "Orders DB", "connection", b"jdbc:orders", &[]).await;
    let map = w.app.component(&w.acme, "Order map", "map", b"map v1", &[&connection]).await;
    let process = w.app.component(&w.acme, "Orders", "process", b"process v1", &[&map]).await;

    let v1 = w.app.package(&w.acme, &process, Some("v1")).await;
    let d1 = w.deploy_and_wait(&v1, &w.test, "first cut", "succeeded").await;
    assert_eq!(d1["kind"], "deploy");
    assert_eq!(test_agent.installed(&w.test, &process).unwrap()["digest"], v1["digest"]);
    assert_eq!(test_agent.file(&w.test, &process, &map).unwrap(), b"map v1", "the agent unpacked the bundled map");
    let targets = expect_status(w.app.get(&format!("/v1/deployments/{}/targets", d1["id"].as_str().unwrap()), &w.acme.admin).await, StatusCode::OK).await;
    assert_eq!(targets["items"][0]["state"], "deployed");

    w.app.revise(&w.acme, &map, b"map v2").await;
    let v2 = w.app.package(&w.acme, &process, Some("v2")).await;
    w.deploy_and_wait(&v2, &w.test, "new map", "succeeded").await;
    assert_eq!(
        expect_status(w.app.get(&format!("/v1/deployments/{}", d1["id"].as_str().unwrap()), &w.acme.admin).await, StatusCode::OK).await["status"],
        "superseded"
    );
    w.deploy_and_wait(&v2, &w.prod, "promote", "succeeded").await;
    assert_eq!(prod_agent.file(&w.prod, &process, &map).unwrap(), b"map v2");

    w.app.revise(&w.acme, &process, b"process v2").await;
    let active = w.app.active(&w.acme, &w.prod).await;
    assert_eq!(active.len(), 1);
    assert_eq!(active[0]["version"], "v2");
    assert_eq!(active[0]["digest"], v2["digest"]);
    assert_eq!(active[0]["outdated"], true);
    assert_eq!(active[0]["outdated_components"][0]["id"], process["id"]);
    assert_eq!(prod_agent.installed(&w.prod, &process).unwrap()["version"], "v2", "production still runs v2");
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await; // a heartbeat reports what runs
    let active = w.app.active(&w.acme, &w.prod).await;
    assert_eq!(active[0]["out_of_sync"], false, "the agent reports the active digest; log: {}", prod_agent.log());
}

#[tokio::test]
async fn scenario_2_an_earlier_version_is_redeployed_and_history_shows_every_version_with_who_when_and_notes() {
    let w = world().await;
    let (_, agent) = w.runtime_with_agent("atom", &[&w.test], None).await;
    let process = w.app.component(&w.acme, "Orders", "process", b"v1", &[]).await;
    let v1 = w.app.package(&w.acme, &process, Some("v1")).await;
    w.deploy_and_wait(&v1, &w.test, "first", "succeeded").await;
    w.app.revise(&w.acme, &process, b"v2").await;
    let v2 = w.app.package(&w.acme, &process, Some("v2")).await;
    w.deploy_and_wait(&v2, &w.test, "second", "succeeded").await;

    let again = w.deploy_and_wait(&v1, &w.test, "back to v1", "succeeded").await;
    assert_eq!(again["kind"], "redeploy");
    assert_eq!(w.app.active(&w.acme, &w.test).await[0]["version"], "v1");
    assert_eq!(agent.installed(&w.test, &process).unwrap()["digest"], v1["digest"]);

    let path = format!("/v1/deployments?environment_id={}&component_id={}", w.test["id"].as_str().unwrap(), process["id"].as_str().unwrap());
    let history = expect_status(w.app.get(&path, &w.acme.admin).await, StatusCode::OK).await;
    let rows: Vec<(&str, &str, &str)> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["version"].as_str().unwrap(), d["notes"].as_str().unwrap(), d["status"].as_str().unwrap()))
        .collect();
    assert_eq!(rows, [("v1", "back to v1", "succeeded"), ("v2", "second", "superseded"), ("v1", "first", "superseded")]);
    for d in history["items"].as_array().unwrap() {
        assert!(d["requested_by"].as_str().unwrap().starts_with("user-"), "who: {d}");
        assert!(d["created_at"].is_string() && d["finished_at"].is_string(), "when: {d}");
    }
}

#[tokio::test]
async fn scenario_3_only_the_parent_is_deployed_the_child_is_bundled_and_changing_the_child_marks_the_parent_outdated() {
    let w = world().await;
    let (_, agent) = w.runtime_with_agent("atom", &[&w.test], None).await;
    let child = w.app.component(&w.acme, "Child", "process", b"child v1", &[]).await;
    let parent = w.app.component(&w.acme, "Parent", "process", b"parent", &[&child]).await;
    let package = w.app.package(&w.acme, &parent, None).await;
    w.deploy_and_wait(&package, &w.test, "", "succeeded").await;

    let active = w.app.active(&w.acme, &w.test).await;
    assert_eq!(active.len(), 1, "only the parent is an active deployment");
    assert_eq!(active[0]["component_id"], parent["id"]);
    assert_eq!(agent.file(&w.test, &parent, &child).unwrap(), b"child v1", "the child is bundled");
    assert_eq!(active[0]["outdated"], false);

    w.app.revise(&w.acme, &child, b"child v2").await;
    let active = w.app.active(&w.acme, &w.test).await;
    assert_eq!(active[0]["outdated"], true);
    assert_eq!(active[0]["outdated_components"][0]["id"], child["id"]);
}

#[tokio::test]
async fn scenario_4_a_referenced_certificate_is_not_bundled_and_blocks_until_its_own_package_is_deployed() {
    let w = world().await;
    let (_, _agent) = w.runtime_with_agent("atom", &[&w.test], None).await;
    let cert = w.app.component(&w.acme, "TLS", "certificate", b"-----BEGIN CERTIFICATE-----", &[]).await;
    let process = w.app.component(&w.acme, "Orders", "process", b"p", &[&cert]).await;
    let package = w.app.package(&w.acme, &process, None).await;
    let body = json!({"package_id": package["id"], "environment_id": w.test["id"]});

    let report = expect_status(w.app.post("/v1/deployments/validate", &w.acme.admin, body.clone()).await, StatusCode::OK).await;
    assert_eq!(report["errors"][0]["code"], "requirement_missing", "{report}");
    expect_problem(w.app.post("/v1/deployments", &w.acme.admin, body.clone()).await, StatusCode::CONFLICT, "requirement_missing").await;

    let cert_package = w.app.package(&w.acme, &cert, None).await;
    w.deploy_and_wait(&cert_package, &w.test, "the certificate first", "succeeded").await;
    let report = expect_status(w.app.post("/v1/deployments/validate", &w.acme.admin, body.clone()).await, StatusCode::OK).await;
    assert_eq!(report["errors"], json!([]));
    w.deploy_and_wait(&package, &w.test, "", "succeeded").await;
    assert_eq!(w.app.active(&w.acme, &w.test).await.len(), 2);
}

#[tokio::test]
async fn scenario_7_when_the_apply_fails_the_agent_restores_and_the_environment_keeps_the_previous_version() {
    let w = world().await;
    // The apply command fails for version v2 only.
    let apply = r#"if [ "$BERTH_VERSION" = "v2" ]; then echo "broken mapping" >&2; exit 3; fi"#;
    let (_, agent) = w.runtime_with_agent("atom", &[&w.test], Some(apply)).await;
    let process = w.app.component(&w.acme, "Orders", "process", b"v1", &[]).await;
    let v1 = w.app.package(&w.acme, &process, Some("v1")).await;
    w.deploy_and_wait(&v1, &w.test, "", "succeeded").await;
    w.app.revise(&w.acme, &process, b"v2").await;
    let v2 = w.app.package(&w.acme, &process, Some("v2")).await;

    let failed = w.deploy_and_wait(&v2, &w.test, "", "rolled_back").await;
    let targets = expect_status(w.app.get(&format!("/v1/deployments/{}/targets", failed["id"].as_str().unwrap()), &w.acme.admin).await, StatusCode::OK).await;
    assert_eq!(targets["items"][0]["state"], "restored");
    let active = w.app.active(&w.acme, &w.test).await;
    assert_eq!(active[0]["version"], "v1", "the environment still runs v1");
    assert_eq!(agent.installed(&w.test, &process).unwrap()["digest"], v1["digest"], "the agent runs v1 again");
    let events = expect_status(w.app.get(&format!("/v1/deployments/{}/events", failed["id"].as_str().unwrap()), &w.acme.admin).await, StatusCode::OK).await;
    let lines: Vec<&str> = events["items"].as_array().unwrap().iter().map(|e| e["message"].as_str().unwrap()).collect();
    assert!(lines.iter().any(|l| l.contains("Failed") && l.contains("apply command failed")), "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("Restored")), "{lines:?}");
    // The package that is still active cannot be deleted; the failed one can.
    expect_problem(w.app.delete(&format!("/v1/packages/{}", v1["id"].as_str().unwrap()), &w.acme.admin).await, StatusCode::CONFLICT, "package_active").await;
    expect_status(w.app.delete(&format!("/v1/packages/{}", v2["id"].as_str().unwrap()), &w.acme.admin).await, StatusCode::NO_CONTENT).await;
}

#[tokio::test]
async fn scenario_8_a_disabled_environment_and_a_deployment_in_flight_refuse_a_new_deployment() {
    let w = world().await;
    let runtime = w.app.runtime(&w.acme, "atom").await; // no agent: jobs wait
    w.app.attach(&w.acme, &w.test, &runtime).await;
    w.app.attach(&w.acme, &w.prod, &runtime).await;
    let process = w.app.component(&w.acme, "Orders", "process", b"p", &[]).await;
    let package = w.app.package(&w.acme, &process, None).await;

    let disabled = w.app.patch(&format!("/v1/environments/{}", w.prod["id"].as_str().unwrap()), &w.acme.admin, json!({"enabled": false})).await;
    expect_status(disabled, StatusCode::OK).await;
    let body = json!({"package_id": package["id"], "environment_id": w.prod["id"]});
    expect_problem(w.app.post("/v1/deployments", &w.acme.admin, body).await, StatusCode::CONFLICT, "environment_not_enabled").await;

    let first = w.app.deploy(&w.acme, &package, &w.test, "").await;
    let body = json!({"package_id": package["id"], "environment_id": w.test["id"]});
    expect_problem(w.app.post("/v1/deployments", &w.acme.admin, body).await, StatusCode::CONFLICT, "deployment_in_progress").await;
    let listed = expect_status(w.app.get("/v1/deployments", &w.acme.admin).await, StatusCode::OK).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "the refused deployments were not recorded");
    assert_eq!(listed["items"][0]["id"], first["id"]);
}
