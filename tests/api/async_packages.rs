//! Packages whose content exceeds `BERTH_SYNC_PACKAGE_MAX_BYTES` are accepted
//! `building` and built by the packager (the local runner's poller of the
//! package-builds queue, as the Lambda would); nothing deploys or downloads
//! them until they are ready.

use berth_aws::S3BlobStore;
use berth_domain::ids::{PackageId, TenantId};
use berth_domain::package::Manifest;
use berth_domain::ports::BlobStore;
use berth_domain::usecases::Settings;
use berth_tests::{Agent, TestApp, TestTenant, expect_problem, expect_status, id_of, sha256, unpack};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A small limit, so a few KiB of content goes to the packager.
const LIMIT: u64 = 1024;

async fn app() -> TestApp {
    TestApp::spawn_with(Settings { sync_package_max_bytes: LIMIT, ..Settings::default() }).await
}

/// `content` bytes that do not compress to nothing.
fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8).collect()
}

async fn create_package(app: &TestApp, t: &TestTenant, component: &Value) -> reqwest::Response {
    app.post("/v1/packages", &t.admin, json!({"component_id": component["id"]})).await
}

#[tokio::test]
async fn content_above_the_limit_is_accepted_building_then_built_ready_with_the_digest_a_synchronous_build_gives() {
    let app = app().await;
    let acme = app.tenant("Acme").await;
    let test = app.environment(&acme, "Test", "test").await;
    let map = app.component(&acme, "Map", "map", &content(600, 1), &[]).await;
    let nightly = app.component(&acme, "Nightly", "process", &content(3000, 2), &[&map]).await;

    app.pause_package_builds().await;
    let response = create_package(&app, &acme, &nightly).await;
    let location = response.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
    let building = expect_status(response, StatusCode::ACCEPTED).await;
    let id = building["id"].as_str().unwrap().to_string();
    assert_eq!(location.as_deref(), Some(format!("/v1/packages/{id}").as_str()));
    assert_eq!((&building["status"], &building["digest"], &building["size"], &building["version"]), (&json!("building"), &json!(null), &json!(0), &json!("1")));
    let read = expect_status(app.get(&format!("/v1/packages/{id}"), &acme.admin).await, StatusCode::OK).await;
    assert_eq!(read["status"], "building", "{read}");

    // Not ready: no download, no deployment, and the dry run says why.
    expect_problem(app.get(&format!("/v1/packages/{id}/download"), &acme.admin).await, StatusCode::CONFLICT, "package_not_ready").await;
    let deploy = json!({"package_id": id, "environment_id": test["id"]});
    expect_problem(app.post("/v1/deployments", &acme.admin, deploy.clone()).await, StatusCode::CONFLICT, "package_not_ready").await;
    let report = expect_status(app.post("/v1/deployments/validate", &acme.admin, deploy.clone()).await, StatusCode::OK).await;
    assert_eq!(report["errors"][0]["code"], "package_not_ready", "{report}");
    let deployments = expect_status(app.get("/v1/deployments", &acme.admin).await, StatusCode::OK).await;
    assert_eq!(deployments["items"], json!([]), "nothing was recorded");

    app.resume_package_builds();
    let ready = app.wait_for_package(&acme, &building, "ready").await;
    assert_eq!((&ready["version"], &ready["manifest"], ready.get("failure")), (&json!("1"), &building["manifest"], None));
    let archive = app.download(&acme, &ready).await;
    assert_eq!(sha256(&archive), ready["digest"].as_str().unwrap(), "the digest is the archive's SHA-256");
    assert_eq!(archive.len() as u64, ready["size"].as_u64().unwrap());
    let files = unpack(&archive);
    assert_eq!(files[&format!("components/{}/content", nightly["id"].as_str().unwrap())], content(3000, 2));
    assert_eq!(files[&format!("components/{}/content", map["id"].as_str().unwrap())], content(600, 1));

    // What `POST /v1/packages` writes inside the request for the same manifest.
    let s3 = S3BlobStore::new(app.clients.s3.clone(), app.names.bucket.clone());
    let manifest: Manifest = serde_json::from_value(ready["manifest"].clone()).unwrap();
    let sync = s3.write_package_archive(acme.id.parse::<TenantId>().unwrap(), PackageId::new(), &manifest).await.expect("an archive is written");
    assert_eq!((sync.digest.as_str(), sync.size), (ready["digest"].as_str().unwrap(), ready["size"].as_u64().unwrap()));

    let listed = expect_status(app.get("/v1/packages", &acme.admin).await, StatusCode::OK).await;
    assert_eq!(listed["items"][0]["status"], "ready", "{listed}");
    let report = expect_status(app.post("/v1/deployments/validate", &acme.admin, deploy).await, StatusCode::OK).await;
    let codes: Vec<&str> = report["errors"].as_array().unwrap().iter().map(|e| e["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["no_runtimes"], "only what is true of any package now");
    let audit = expect_status(app.get(&format!("/v1/audit?entity_id={id}&limit=100"), &acme.admin).await, StatusCode::OK).await;
    let actions: Vec<&str> = audit["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["package.created"], "recorded once, when it was accepted");
}

#[tokio::test]
async fn content_at_the_limit_is_built_in_the_request_as_before() {
    let app = app().await;
    let acme = app.tenant("Acme").await;
    let small = app.component(&acme, "Small", "process", &content(LIMIT as usize, 3), &[]).await;
    let package = expect_status(create_package(&app, &acme, &small).await, StatusCode::CREATED).await;
    assert_eq!(package["status"], "ready", "{package}");
    assert_eq!(sha256(&app.download(&acme, &package).await), package["digest"].as_str().unwrap());
}

#[tokio::test]
async fn a_package_whose_content_is_gone_fails_with_the_reason_is_audited_and_is_never_deployed() {
    let app = app().await;
    let acme = app.tenant("Acme").await;
    let test = app.environment(&acme, "Test", "test").await;
    let bytes = content(4096, 4);
    let lost = app.component(&acme, "Lost", "process", &bytes, &[]).await;
    // The content object disappears from the bucket before the build reads it.
    let hex = sha256(&bytes).trim_start_matches("sha256:").to_string();
    let key = berth_aws::keys::content_object(acme.id.parse::<TenantId>().unwrap(), &hex);
    app.clients.s3.delete_object().bucket(&app.names.bucket).key(key).send().await.expect("the content object is deleted");

    let building = expect_status(create_package(&app, &acme, &lost).await, StatusCode::ACCEPTED).await;
    let failed = app.wait_for_package(&acme, &building, "failed").await;
    assert_eq!(failed["failure"], format!("bundled content sha256:{hex} is missing"), "{failed}");
    assert_eq!(failed["digest"], json!(null));
    let id = building["id"].as_str().unwrap();
    let problem = expect_problem(
        app.post("/v1/deployments", &acme.admin, json!({"package_id": id, "environment_id": test["id"]})).await,
        StatusCode::CONFLICT,
        "package_not_ready",
    )
    .await;
    assert!(problem["detail"].as_str().is_some_and(|d| d.contains("failed to build")), "{problem}");
    expect_problem(app.get(&format!("/v1/packages/{id}/download"), &acme.admin).await, StatusCode::CONFLICT, "package_not_ready").await;
    let audit = expect_status(app.get(&format!("/v1/audit?entity_id={id}&limit=100"), &acme.admin).await, StatusCode::OK).await;
    let actions: Vec<&str> = audit["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["package.created", "package.build_failed"]);
}

/// Acme's Test environment with the runtime `atom` attached, and a
/// `package_and_deploy` webhook of a process whose content is above the limit.
async fn webhook_world(app: &TestApp, bytes: &[u8]) -> (TestTenant, Value, Value, Value, Value, String) {
    let acme = app.tenant("Acme").await;
    let test = app.environment(&acme, "Test", "test").await;
    let runtime = app.runtime(&acme, "atom").await;
    app.attach(&acme, &test, &runtime).await;
    let orders = app.component(&acme, "Orders", "process", bytes, &[]).await;
    let hook = app.webhook(&acme, &test, &orders, "package_and_deploy").await;
    let secret = hook["secret"].as_str().expect("the secret, shown once").to_string();
    (acme, test, runtime, orders, hook, secret)
}

#[tokio::test]
async fn a_webhook_deploy_whose_package_goes_to_the_builder_is_recorded_at_once_and_reaches_the_agent_once_the_package_is_built() {
    let app = app().await;
    let (acme, test, runtime, orders, hook, secret) = webhook_world(&app, &content(4096, 5)).await;
    let agent = Agent::start(&app, &runtime, None);

    app.pause_package_builds().await;
    let body = json!({"version": "1.0.0", "notes": "nightly"}).to_string();
    let receipt = expect_status(app.deliver(&hook, &secret, "build-1", &body).await, StatusCode::ACCEPTED).await;
    let deployment = format!("/v1/deployments/{}", receipt["deployment_id"].as_str().unwrap_or_else(|| panic!("a deployment id: {receipt}")));
    let waiting = expect_status(app.get(&deployment, &acme.admin).await, StatusCode::OK).await;
    assert_eq!((&waiting["status"], &waiting["waiting_for_package"]), (&json!("queued"), &json!(true)), "{waiting}");
    let package = format!("/v1/packages/{}", receipt["package_id"].as_str().expect("a package id"));
    assert_eq!(expect_status(app.get(&package, &acme.admin).await, StatusCode::OK).await["status"], "building");

    app.resume_package_builds();
    let done = app.wait_for_status(&acme, &waiting, "succeeded").await;
    let built = expect_status(app.get(&package, &acme.admin).await, StatusCode::OK).await;
    assert_eq!((&done["waiting_for_package"], &done["digest"]), (&json!(false), &built["digest"]), "it deployed the built archive: {done}");
    let installed = agent.installed(&test, &orders).expect("the agent runs Orders in Test");
    assert_eq!(installed["version"], "1.0.0", "{installed}");
}

#[tokio::test]
async fn a_webhook_deploy_waiting_for_a_package_whose_build_fails_fails_with_package_failed() {
    let app = app().await;
    let bytes = content(4096, 6);
    let (acme, _test, _runtime, _orders, hook, secret) = webhook_world(&app, &bytes).await;
    let hex = sha256(&bytes).trim_start_matches("sha256:").to_string();
    let key = berth_aws::keys::content_object(acme.id.parse::<TenantId>().unwrap(), &hex);
    app.clients.s3.delete_object().bucket(&app.names.bucket).key(key).send().await.expect("the content object is deleted");

    let receipt = expect_status(app.deliver(&hook, &secret, "build-1", &json!({"version": "1.0.0"}).to_string()).await, StatusCode::ACCEPTED).await;
    let failed = app.wait_for_status(&acme, &json!({"id": receipt["deployment_id"]}), "failed").await;
    let events = expect_status(app.get(&format!("/v1/deployments/{}/events", id_of(&failed)), &acme.admin).await, StatusCode::OK).await;
    let lines: Vec<&str> = events["items"].as_array().unwrap().iter().filter_map(|e| e["message"].as_str()).collect();
    assert!(lines.iter().any(|l| l.contains(&format!("package_failed: bundled content sha256:{hex} is missing"))), "{lines:?}");
    let status = expect_status(app.delivery_status(&hook, &secret, "build-1").await, StatusCode::OK).await;
    assert_eq!(status["status"], "failed", "the pipeline is told: {status}");
}
