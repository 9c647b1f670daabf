//! Late attach (issue 10, item 3), with real agents: a runtime attached to an
//! environment that already runs components is sent a `sync` of each active
//! version and converges on them, without anyone deploying again.

use berth_tests::{Agent, TestApp, eventually, expect_problem, expect_status, id_of};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn late_attach_syncs_a_new_runtime_to_the_two_active_components_and_leaves_the_environment_s_versions_alone() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let prod = app.environment(&acme, "Production", "production").await;
    let atom = app.runtime(&acme, "atom").await;
    app.attach(&acme, &prod, &atom).await;
    let _atom_agent = Agent::start(&app, &atom, None);

    let orders = app.component(&acme, "Orders", "process", b"orders v1", &[]).await;
    let billing = app.component(&acme, "Billing", "process", b"billing b1", &[]).await;
    let v1 = app.package(&acme, &orders, Some("v1")).await;
    let b1 = app.package(&acme, &billing, Some("b1")).await;
    for package in [&v1, &b1] {
        let d = app.deploy(&acme, package, &prod, "before the new runtime").await;
        app.wait_for_status(&acme, &d, "succeeded").await;
    }
    let active_before = active_deployments(&app, &acme, &prod).await;

    // The new runtime's agent registers and reports that it runs nothing; it is
    // then stopped, so what Berth shows before the syncs land can be read.
    let spare = app.runtime(&acme, "spare").await;
    let spare_path = format!("/v1/runtimes/{}", id_of(&spare));
    let mut spare_agent = Agent::start(&app, &spare, None);
    eventually("spare's agent heartbeats", || async {
        let r = expect_status(app.get(&spare_path, &acme.admin).await, StatusCode::OK).await;
        if r["status"] == "online" { Ok(()) } else { Err(r.to_string()) }
    })
    .await;
    spare_agent.kill().await;

    let attach = format!("/v1/environments/{}/runtimes/{}", id_of(&prod), id_of(&spare));
    let attached = expect_status(app.put(&attach, &acme.admin).await, StatusCode::CREATED).await;
    let syncing = attached["syncing"].as_array().expect("the attach lists the syncs it sent").clone();
    assert_eq!(syncing.len(), 2, "one sync per active component: {attached}");
    let mut components: Vec<&str> = syncing.iter().map(|s| s["component_id"].as_str().expect("a component id")).collect();
    components.sort_unstable();
    let mut want = vec![orders["id"].as_str().unwrap(), billing["id"].as_str().unwrap()];
    want.sort_unstable();
    assert_eq!(components, want);
    assert!(syncing.iter().all(|s| s["environment_id"] == prod["id"] && s["deployment_id"].is_string()), "{syncing:?}");

    let detail = expect_status(app.get(&spare_path, &acme.admin).await, StatusCode::OK).await;
    assert_eq!(detail["syncing"].as_array().map(Vec::len), Some(2), "the runtime's detail shows the syncs until they succeed: {detail}");
    for active in app.active(&acme, &prod).await {
        assert_eq!(active["out_of_sync"], true, "{active}");
        assert!(active["out_of_sync_runtimes"].as_array().unwrap().contains(&spare["id"]), "spare does not run it yet: {active}");
    }
    let sync_ids: Vec<String> = syncing.iter().map(|s| s["deployment_id"].as_str().unwrap().to_string()).collect();
    for id in &sync_ids {
        let d = expect_status(app.get(&format!("/v1/deployments/{id}"), &acme.admin).await, StatusCode::OK).await;
        assert_eq!((d["kind"].as_str(), d["required_approvals"].as_u64()), (Some("sync"), Some(0)), "{d}");
    }

    spare_agent.restart();
    for id in &sync_ids {
        app.wait_for_status(&acme, &json!({"id": id}), "succeeded").await;
    }
    for (component, package) in [(&orders, &v1), (&billing, &b1)] {
        let installed = spare_agent.installed(&prod, component).unwrap_or_else(|| panic!("spare runs {}; log:\n{}", component["name"], spare_agent.log()));
        assert_eq!((&installed["package_id"], &installed["digest"]), (&package["id"], &package["digest"]), "spare runs the exact version");
    }
    assert_eq!(active_deployments(&app, &acme, &prod).await, active_before, "the environment's active versions are unchanged");
    let detail = expect_status(app.get(&spare_path, &acme.admin).await, StatusCode::OK).await;
    assert_eq!(detail["syncing"], json!([]), "nothing is syncing once both succeeded");
    eventually("spare's heartbeat reports both versions", || async {
        let actives = app.active(&acme, &prod).await;
        if actives.iter().all(|a| a["out_of_sync"] == false) { Ok(()) } else { Err(format!("{actives:?}")) }
    })
    .await;

    let requested: Vec<Value> = app.audit(&acme).await.into_iter().filter(|e| e["action"] == "deployment.sync_requested").collect();
    assert_eq!(requested.len(), 2, "each sync is audited");
    for event in &requested {
        assert!(sync_ids.contains(&event["entity_id"].as_str().unwrap().to_string()), "{event}");
        assert_eq!((&event["summary"]["kind"], &event["summary"]["only_runtime"]), (&Value::from("sync"), &spare["id"]), "{event}");
    }
}

#[tokio::test]
async fn inside_a_freeze_window_an_attach_is_refused_unless_held_and_then_its_syncs_wait_for_the_window_s_end() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let prod = app.environment(&acme, "Production", "production").await;
    let atom = app.runtime(&acme, "atom").await;
    app.attach(&acme, &prod, &atom).await;
    let _atom_agent = Agent::start(&app, &atom, None);
    let orders = app.component(&acme, "Orders", "process", b"orders v1", &[]).await;
    let v1 = app.package(&acme, &orders, Some("v1")).await;
    let d = app.deploy(&acme, &v1, &prod, "before the freeze").await;
    app.wait_for_status(&acme, &d, "succeeded").await;

    let end = (chrono::Utc::now() + chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let policy_path = format!("/v1/environments/{}/policy", id_of(&prod));
    let etag = app.get(&policy_path, &acme.admin).await.headers().get("etag").and_then(|v| v.to_str().ok()).expect("an ETag").to_string();
    let freeze = json!({"freeze_windows": [{"start": chrono::Utc::now() - chrono::Duration::hours(1), "end": end}]});
    let response = app.request(Method::PUT, &policy_path, Some(&acme.admin)).header("if-match", etag).json(&freeze).send().await.expect("sent");
    expect_status(response, StatusCode::OK).await;

    let spare = app.runtime(&acme, "spare").await;
    let attach = format!("/v1/environments/{}/runtimes/{}", id_of(&prod), id_of(&spare));
    expect_problem(app.put(&attach, &acme.admin).await, StatusCode::CONFLICT, "freeze_window").await;
    let held = expect_status(app.put(&format!("{attach}?hold_if_frozen=true"), &acme.admin).await, StatusCode::CREATED).await;
    assert_eq!(held["environments"], json!([prod["id"]]), "the attach itself is made at once");
    let syncing = held["syncing"].as_array().expect("the syncs it sent");
    assert_eq!(syncing.len(), 1, "{held}");
    assert_eq!(syncing[0]["status"], "scheduled", "held by the window: {held}");
    let sync = expect_status(app.get(&format!("/v1/deployments/{}", syncing[0]["deployment_id"].as_str().unwrap()), &acme.admin).await, StatusCode::OK).await;
    assert_eq!((&sync["kind"], &sync["status"], &sync["scheduled_at"]), (&json!("sync"), &json!("scheduled"), &json!(end)), "{sync}");
    assert_eq!(sync["runtime_id"], spare["id"], "to spare only");
}

/// (component, deployment) of each active version of `env`, sorted.
async fn active_deployments(app: &TestApp, t: &berth_tests::TestTenant, env: &Value) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> =
        app.active(t, env).await.iter().map(|a| (a["component_id"].as_str().unwrap().to_string(), a["deployment_id"].as_str().unwrap().to_string())).collect();
    pairs.sort();
    pairs
}
