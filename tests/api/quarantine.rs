//! Quarantine (issue 11): a version rolled back in an environment is refused
//! there (409 `quarantined`) unless the request overrides it, which the audit
//! shows; `GET .../active` lists it; `DELETE .../quarantine/{package_id}`
//! lifts it. With the real agent.

use berth_tests::{Agent, TestApp, TestTenant, expect_problem, expect_status, id_of};
use reqwest::StatusCode;
use serde_json::{Value, json};

struct World {
    app: TestApp,
    acme: TestTenant,
    env: Value,
    process: Value,
    v1: Value,
    _agent: Agent,
}

/// Acme's Test environment runs Orders v1 on a runtime whose agent applies
/// with `apply`; v2 is packaged.
async fn world(apply: Option<&str>) -> (World, Value) {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let env = app.environment(&acme, "Test", "test").await;
    let runtime = app.runtime(&acme, "atom").await;
    app.attach(&acme, &env, &runtime).await;
    let agent = Agent::start(&app, &runtime, apply);
    let process = app.component(&acme, "Orders", "process", b"v1", &[]).await;
    let v1 = app.package(&acme, &process, Some("v1")).await;
    let d = app.deploy(&acme, &v1, &env, "").await;
    app.wait_for_status(&acme, &d, "succeeded").await;
    app.revise(&acme, &process, b"v2").await;
    let v2 = app.package(&acme, &process, Some("v2")).await;
    (World { app, acme, env, process, v1, _agent: agent }, v2)
}

/// The `deployment.requested` event of `d` in `audit`.
fn requested(audit: &[Value], d: &Value) -> Value {
    audit.iter().find(|e| e["action"] == "deployment.requested" && e["entity_id"] == d["id"]).cloned().expect("the request is audited")
}

impl World {
    fn body(&self, package: &Value, extra: Value) -> Value {
        let mut body = json!({"package_id": package["id"], "environment_id": self.env["id"]});
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        body
    }

    async fn active(&self) -> Value {
        expect_status(self.app.get(&format!("/v1/environments/{}/active", id_of(&self.env)), &self.acme.admin).await, StatusCode::OK).await
    }

    fn lift_path(&self, package: &Value) -> String {
        format!("/v1/environments/{}/quarantine/{}", id_of(&self.env), id_of(package))
    }
}

#[tokio::test]
async fn a_rolled_back_version_is_refused_accepted_with_the_override_audited_listed_as_quarantined_and_deployable_again_once_lifted() {
    // v2's apply fails while the flag exists: the agent restores v1.
    let flag = tempfile::tempdir().expect("a dir");
    let broken = flag.path().join("broken");
    std::fs::write(&broken, b"").expect("the flag");
    let apply = format!(r#"if [ "$BERTH_VERSION" = "v2" ] && [ -f {} ]; then echo "broken mapping" >&2; exit 3; fi"#, broken.display());
    let (w, v2) = world(Some(&apply)).await;
    let failed = w.app.deploy(&w.acme, &v2, &w.env, "").await;
    let failed = w.app.wait_for_status(&w.acme, &failed, "rolled_back").await;

    let active = w.active().await;
    assert_eq!(active["items"][0]["version"], "v1", "the environment still runs v1: {active}");
    let quarantined = active["quarantined"].as_array().expect("quarantined versions are listed beside items");
    assert_eq!(quarantined.len(), 1, "{active}");
    let q = &quarantined[0];
    assert_eq!((&q["package_id"], &q["component_id"], &q["version"], &q["deployment_id"]), (&v2["id"], &w.process["id"], &json!("v2"), &failed["id"]));
    assert!(q["quarantined_at"].is_string(), "{q}");

    // Refused, as a webhook's delivery would be, and by the dry run.
    let problem = expect_problem(w.app.post("/v1/deployments", &w.acme.admin, w.body(&v2, json!({}))).await, StatusCode::CONFLICT, "quarantined").await;
    let detail = problem["detail"].as_str().unwrap_or_default();
    for part in ["\"v2\"", "\"Test\"", "override_quarantine", &w.lift_path(&v2)] {
        assert!(detail.contains(part), "{problem} names {part}");
    }
    let report = expect_status(w.app.post("/v1/deployments/validate", &w.acme.admin, w.body(&v2, json!({}))).await, StatusCode::OK).await;
    assert_eq!(report["errors"][0]["code"], "quarantined", "{report}");
    let report =
        expect_status(w.app.post("/v1/deployments/validate", &w.acme.admin, w.body(&v2, json!({"override_quarantine": true}))).await, StatusCode::OK).await;
    assert_eq!(report["errors"], json!([]), "{report}");
    assert!(report["warnings"].as_array().expect("warnings").iter().any(|i| i["code"] == "quarantine_overridden"), "{report}");

    // A person overrides it (the cause fixed meanwhile): deployed, and the audit says so.
    std::fs::remove_file(&broken).expect("the flag goes");
    let deployer = w.app.token(&w.acme.id, &["deployer"]);
    let overridden =
        expect_status(w.app.post("/v1/deployments", &deployer, w.body(&v2, json!({"override_quarantine": true, "notes": "fixed"}))).await, StatusCode::CREATED)
            .await;
    w.app.wait_for_status(&w.acme, &overridden, "succeeded").await;
    let event = requested(&w.app.audit(&w.acme).await, &overridden);
    assert_eq!(event["summary"]["quarantine_overridden"], true, "{event}");
    assert_eq!(w.active().await["quarantined"].as_array().map(Vec::len), Some(1), "an override deploys once; the quarantine stays");

    // Lifting: deployers and admins only, this tenant only, what is quarantined only.
    let viewer = w.app.token(&w.acme.id, &["viewer"]);
    expect_problem(w.app.delete(&w.lift_path(&v2), &viewer).await, StatusCode::FORBIDDEN, "forbidden").await;
    let globex = w.app.tenant("Globex").await;
    expect_problem(w.app.delete(&w.lift_path(&v2), &globex.admin).await, StatusCode::NOT_FOUND, "not_found").await;
    expect_problem(w.app.delete(&w.lift_path(&w.v1), &w.acme.admin).await, StatusCode::NOT_FOUND, "not_found").await;
    expect_status(w.app.delete(&w.lift_path(&v2), &deployer).await, StatusCode::NO_CONTENT).await;
    assert_eq!(w.active().await["quarantined"], json!([]));
    let audit = w.app.audit(&w.acme).await;
    let lifted: Vec<&Value> = audit.iter().filter(|e| e["action"] == "quarantine.lifted").collect();
    assert_eq!(lifted.len(), 1, "{lifted:?}");
    assert_eq!((&lifted[0]["entity_type"], &lifted[0]["entity_id"]), (&json!("environment"), &w.env["id"]));
    assert_eq!((&lifted[0]["summary"]["package_id"], &lifted[0]["summary"]["version"]), (&v2["id"], &json!("v2")));
    expect_problem(w.app.delete(&w.lift_path(&v2), &deployer).await, StatusCode::NOT_FOUND, "not_found").await;

    let again = expect_status(w.app.post("/v1/deployments", &deployer, w.body(&v2, json!({}))).await, StatusCode::CREATED).await;
    w.app.wait_for_status(&w.acme, &again, "succeeded").await;
    let event = requested(&w.app.audit(&w.acme).await, &again);
    assert_eq!(event["summary"].get("quarantine_overridden"), None, "no override needed any more: {event}");
}

#[tokio::test]
async fn a_persons_rollback_quarantines_the_version_it_rolled_back_from() {
    let (w, v2) = world(None).await;
    let d = w.app.deploy(&w.acme, &v2, &w.env, "").await;
    w.app.wait_for_status(&w.acme, &d, "succeeded").await;
    let path = format!("/v1/environments/{}/active/{}/rollback", id_of(&w.env), id_of(&w.process));
    let rollback = expect_status(w.app.post(&path, &w.acme.admin, json!({"notes": "v2 is slow"})).await, StatusCode::CREATED).await;
    w.app.wait_for_status(&w.acme, &rollback, "succeeded").await;

    let active = w.active().await;
    assert_eq!(active["items"][0]["version"], "v1", "{active}");
    assert_eq!(active["quarantined"].as_array().map(Vec::len), Some(1), "{active}");
    assert_eq!((&active["quarantined"][0]["package_id"], &active["quarantined"][0]["deployment_id"]), (&v2["id"], &rollback["id"]));
    expect_problem(w.app.post("/v1/deployments", &w.acme.admin, w.body(&v2, json!({}))).await, StatusCode::CONFLICT, "quarantined").await;
}

#[tokio::test]
async fn the_openapi_document_describes_the_quarantine_routes_and_fields() {
    let app = TestApp::spawn().await;
    let doc = expect_status(app.request(reqwest::Method::GET, "/v1/openapi.json", None).send().await.expect("answered"), StatusCode::OK).await;
    assert!(doc["paths"]["/v1/environments/{id}/quarantine/{package_id}"]["delete"].is_object(), "the lift is documented");
    let schemas = &doc["components"]["schemas"];
    assert!(schemas["CreateDeployment"]["properties"]["override_quarantine"].is_object(), "{}", schemas["CreateDeployment"]);
    let active = &schemas["ActiveVersionsView"]["properties"];
    for field in ["items", "next_cursor", "quarantined"] {
        assert!(active[field].is_object(), "GET .../active has {field}: {active}");
    }
    let quarantined = &schemas["QuarantinedVersionView"]["properties"];
    for field in ["package_id", "component_id", "version", "deployment_id", "quarantined_at"] {
        assert!(quarantined[field].is_object(), "a quarantined version has {field}: {quarantined}");
    }
}
