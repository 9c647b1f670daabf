//! Issue 14 (item 4): each job's extension values reach the apply command
//! through a file only the agent's user can read, fetched at the job's start
//! (never in SQS), and changed values alone can be deployed: over HTTP, with a
//! real agent.

use berth_tests::{Agent, TestApp, TestTenant, eventually, expect_problem, expect_status, id_of};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Records what the apply command was given: the file's mode while it runs, its path, and a copy of it.
const APPLY: &str = r#"stat -c %a "$BERTH_EXTENSIONS_FILE" > extensions.mode && echo "$BERTH_EXTENSIONS_FILE" > extensions.path && cp "$BERTH_EXTENSIONS_FILE" extensions.seen"#;

fn crm_points() -> Value {
    json!({
        "connection_fields": [{"name": "url", "secret": false, "required": true}, {"name": "password", "secret": true, "required": true}],
        "properties": [{"name": "batch_size", "type": "number", "default": 100}],
        "lookups": [{"table": "countries", "keys": ["DE"]}]
    })
}

async fn put_values(app: &TestApp, t: &TestTenant, env: &Value, crm: &Value, url: &str, password: &str, germany: &str) {
    let path = format!("/v1/environments/{}/extensions", id_of(env));
    let read = app.get(&path, &t.admin).await;
    let etag = read.headers().get("etag").and_then(|v| v.to_str().ok()).expect("an ETag").to_string();
    let body = json!({"components": {id_of(crm): {"connection": {"url": url, "password": password}, "lookups": {"countries": {"DE": germany}}}}});
    let written = app.request(Method::PUT, &path, Some(&t.admin)).header("If-Match", etag).json(&body).send().await.expect("sent");
    expect_status(written, StatusCode::OK).await;
}

/// What the apply command of the job that made `component` active in `env` saw: (the values, the file's mode, the file's path).
fn seen(agent: &Agent, env: &Value, component: &Value) -> (Value, String, std::path::PathBuf) {
    let dir = agent.state.path().join("active").join(id_of(env)).join(id_of(component));
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name} in {}: {e}\n{}", dir.display(), agent.log()));
    let values = serde_json::from_str(&read("extensions.seen")).expect("the file is JSON");
    (values, read("extensions.mode").trim().to_string(), read("extensions.path").trim().into())
}

#[tokio::test]
async fn each_environments_values_reach_the_apply_command_in_a_private_file_and_changed_values_deploy_alone() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let (test, prod, atom) = app.test_and_production(&acme).await;
    let body = json!({"name": "CRM", "type": "connection", "content": berth_tests::b64(b"crm"), "extensions": crm_points()});
    let crm = expect_status(app.post("/v1/components", &acme.admin, body).await, StatusCode::CREATED).await;
    let sync = app.component(&acme, "Sync", "process", b"sync", &[&crm]).await;
    let v1 = app.package(&acme, &sync, Some("v1")).await;
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let (test_secret, prod_secret, new_secret) = (format!("test-pw-{suffix}"), format!("prod-pw-{suffix}"), format!("new-pw-{suffix}"));
    put_values(&app, &acme, &test, &crm, "https://crm.test.example", &test_secret, "Deutschland").await;
    put_values(&app, &acme, &prod, &crm, "https://crm.example", &prod_secret, "Germany").await;

    // Queued before any agent runs: the job's message in the runtime's queue carries no value.
    let first = app.deploy(&acme, &v1, &test, "to Test").await;
    let queue = app.runtime_queue_url(&atom).await;
    let peeked = app.clients.sqs.receive_message().queue_url(&queue).visibility_timeout(0).wait_time_seconds(5).send().await.expect("received");
    let bodies: Vec<String> = peeked.messages().iter().filter_map(|m| m.body().map(str::to_string)).collect();
    assert!(!bodies.is_empty(), "the job is queued");
    assert!(bodies.iter().all(|b| !b.contains(&test_secret) && !b.contains("crm.test.example")), "no value in SQS: {bodies:?}");

    let agent = Agent::start(&app, &atom, Some(APPLY));
    let first = app.wait_for_status(&acme, &first, "succeeded").await;
    let (values, mode, path) = seen(&agent, &test, &sync);
    let expected = |url: &str, password: &str, germany: &str| json!({"connection": {"url": url, "password": password}, "properties": {"batch_size": 100}, "lookups": {"countries": {"DE": germany}}});
    assert_eq!(values["components"][id_of(&crm)], expected("https://crm.test.example", &test_secret, "Deutschland"), "{values}");
    assert_eq!(values["version"], 1);
    assert_eq!(mode, "600", "only the agent's user reads the file while the command runs");
    assert!(!path.exists(), "the file is removed once the apply command ended: {}", path.display());
    assert!(path.starts_with(agent.state.path()), "it lives in the agent's state directory: {}", path.display());

    let second = app.deploy(&acme, &v1, &prod, "to Production").await;
    app.wait_for_status(&acme, &second, "succeeded").await;
    let (values, _, _) = seen(&agent, &prod, &sync);
    assert_eq!(values["components"][id_of(&crm)], expected("https://crm.example", &prod_secret, "Germany"), "Production applies its own values");

    // A job that ended no longer hands out its values; nor does a job of another runtime.
    let credential = std::fs::read_to_string(agent.state.path().join("credential")).expect("the agent's credential");
    let targets = expect_status(app.get(&format!("/v1/deployments/{}/targets", id_of(&first)), &acme.admin).await, StatusCode::OK).await;
    let job = targets["items"][0]["job_id"].as_str().expect("a job id").to_string();
    let ended = app.request(Method::GET, &format!("/agent/v1/jobs/{job}/extensions"), Some(credential.trim())).send().await.expect("sent");
    expect_problem(ended, StatusCode::NOT_FOUND, "not_found").await;

    // Changing a value and deploying the extensions alone: the same package again, with the new value.
    put_values(&app, &acme, &test, &crm, "https://crm.test.example", &new_secret, "Deutschland").await;
    let path = format!("/v1/environments/{}/extensions/deploy", id_of(&test));
    let deploy_extensions = |component: &Value| app.post(&path, &acme.admin, json!({"component_id": component["id"]}));
    let third = expect_status(deploy_extensions(&sync).await, StatusCode::CREATED).await;
    assert_eq!((third["package_id"].clone(), third["extensions_changed"].clone()), (v1["id"].clone(), json!(true)), "{third}");
    app.wait_for_status(&acme, &third, "succeeded").await;
    let (values, _, _) = seen(&agent, &test, &sync);
    assert_eq!(values["components"][id_of(&crm)]["connection"]["password"], new_secret.as_str(), "the apply command sees the new value");
    expect_problem(deploy_extensions(&crm).await, StatusCode::CONFLICT, "not_deployed").await;
    let viewer = app.token(&acme.id, &["viewer"]);
    expect_problem(app.post(&path, &viewer, json!({"component_id": sync["id"]})).await, StatusCode::FORBIDDEN, "forbidden").await;

    // No value in the agent's log or in anything it reported.
    let log = agent.log();
    for secret in [&test_secret, &prod_secret, &new_secret] {
        assert!(!log.contains(secret.as_str()), "the agent never logs a value: {log}");
    }
    for d in [&first, &second, &third] {
        let events = app.get(&format!("/v1/deployments/{}/events?limit=100", id_of(d)), &acme.admin).await.text().await.expect("events");
        assert!(![&test_secret, &prod_secret, &new_secret].iter().any(|s| events.contains(s.as_str())), "{events}");
    }
}

#[tokio::test]
async fn a_connection_test_runs_on_an_attached_runtime_with_the_environments_values_and_shows_success_or_failure() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let test = app.environment(&acme, "Test", "test").await;
    let body = json!({"name": "CRM", "type": "connection", "content": berth_tests::b64(b"crm"), "extensions": crm_points()});
    let crm = expect_status(app.post("/v1/components", &acme.admin, body).await, StatusCode::CREATED).await;
    let connection = format!("/v1/environments/{}/connections/{}", id_of(&test), id_of(&crm));
    let test_path = format!("{connection}/test");
    let run_test = || app.post(&test_path, &acme.admin, json!({}));
    expect_problem(run_test().await, StatusCode::CONFLICT, "no_runtime_online").await;
    let never = expect_status(app.get(&connection, &acme.admin).await, StatusCode::OK).await;
    assert_eq!(never["last_test"], Value::Null);

    // The command succeeds when the password it reads is the right one, and says so; otherwise it fails, echoing
    // what it read (the agent replaces every connection value in what it reports: it cannot tell secrets apart).
    let secret = format!("pw-{}", uuid::Uuid::new_v4().simple());
    let command = format!(
        r#"f="$BERTH_EXTENSIONS_FILE"; p=$(sed -E 's/.*"password":"([^"]*)".*/\1/' "$f"); if [ "$p" = "{secret}" ]; then echo "logged in, batches of $(sed -E 's/.*"batch_size":([0-9]+).*/\1/' "$f")"; else echo "login refused for password $p" >&2; exit 3; fi"#
    );
    let atom = app.runtime(&acme, "atom").await;
    app.attach(&acme, &test, &atom).await;
    let agent = Agent::start_with_env(&app, &atom, None, &[("BERTH_TEST_CONNECTION_COMMAND", &command)]);
    put_values(&app, &acme, &test, &crm, "https://crm.test.example", &secret, "Deutschland").await;

    let ended = async |expected: &str| {
        let started = eventually("the runtime is online", || async {
            let r = run_test().await;
            if r.status() == StatusCode::CREATED { Ok(r.json::<Value>().await.expect("JSON")) } else { Err(r.text().await.unwrap_or_default()) }
        })
        .await;
        assert_eq!((started["last_test"]["status"].as_str(), started["last_test"]["runtime_id"].as_str()), (Some("pending"), atom["id"].as_str()));
        eventually("the test ends", || async {
            let now = expect_status(app.get(&connection, &acme.admin).await, StatusCode::OK).await;
            if now["last_test"]["id"] == started["last_test"]["id"] && now["last_test"]["status"] == expected { Ok(now) } else { Err(now.to_string()) }
        })
        .await
    };
    let succeeded = ended("succeeded").await;
    let last = &succeeded["last_test"];
    assert_eq!(last["message"], "logged in, batches of 100", "{succeeded}");
    assert!(last["at"].is_string() && last["runtime_id"] == atom["id"], "{succeeded}");

    put_values(&app, &acme, &test, &crm, "https://crm.test.example", "wrong-password-123", "Deutschland").await;
    let failed = ended("failed").await;
    assert_eq!(failed["last_test"]["message"], "login refused for password [redacted]", "the agent never reports a value: {failed}");
    assert!(!agent.log().contains(&secret) && !agent.log().contains("wrong-password-123"), "{}", agent.log());

    // Another tenant sees nothing; a viewer may read the result but not run a test.
    let globex = app.tenant("Globex").await;
    expect_problem(app.get(&connection, &globex.admin).await, StatusCode::NOT_FOUND, "not_found").await;
    expect_problem(app.post(&format!("{connection}/test"), &globex.admin, json!({})).await, StatusCode::NOT_FOUND, "not_found").await;
    let viewer = app.token(&acme.id, &["viewer"]);
    expect_status(app.get(&connection, &viewer).await, StatusCode::OK).await;
    expect_problem(app.post(&format!("{connection}/test"), &viewer, json!({})).await, StatusCode::FORBIDDEN, "forbidden").await;
}

#[tokio::test]
async fn a_jobs_values_are_handed_only_to_its_runtime_while_the_job_is_under_way_and_never_kept_by_a_cache() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let globex = app.tenant("Globex").await;
    let test = app.environment(&acme, "Test", "test").await;
    let atom = app.runtime(&acme, "atom").await;
    let spare = app.runtime(&acme, "spare").await;
    let stranger = app.runtime(&globex, "stranger").await;
    app.attach(&acme, &test, &atom).await;
    let (credential, spare_credential, stranger_credential) =
        (app.register_agent(&atom).await, app.register_agent(&spare).await, app.register_agent(&stranger).await);
    expect_status(app.heartbeat(&credential).await, StatusCode::OK).await;
    let body = json!({"name": "CRM", "type": "connection", "content": berth_tests::b64(b"crm"), "extensions": crm_points()});
    let crm = expect_status(app.post("/v1/components", &acme.admin, body).await, StatusCode::CREATED).await;
    let sync = app.component(&acme, "Sync", "process", b"sync", &[&crm]).await;
    let v1 = app.package(&acme, &sync, Some("v1")).await;
    let secret = format!("pw-{}", uuid::Uuid::new_v4().simple());
    put_values(&app, &acme, &test, &crm, "https://crm.test.example", &secret, "Deutschland").await;
    let d = app.deploy(&acme, &v1, &test, "by hand").await;

    let job = eventually("the job is handed out", || async {
        let r = app.request(Method::GET, "/agent/v1/jobs/next?wait=1", Some(&credential)).send().await.expect("sent");
        if r.status() == StatusCode::OK { Ok(r.text().await.expect("the job")) } else { Err(r.status().to_string()) }
    })
    .await;
    assert!(!job.contains(&secret) && !job.contains("crm.test.example"), "the job carries no value: {job}");
    let job: Value = serde_json::from_str(&job).expect("JSON");
    let path = format!("/agent/v1/jobs/{}/extensions", job["job_id"].as_str().expect("a job id"));
    let fetch = async |credential: &str| app.request(Method::GET, &path, Some(credential)).send().await.expect("sent");

    let answer = fetch(&credential).await;
    assert_eq!(answer.headers().get("cache-control").and_then(|v| v.to_str().ok()), Some("no-store"));
    let values = expect_status(answer, StatusCode::OK).await;
    assert_eq!(values["components"][id_of(&crm)]["connection"]["password"], secret.as_str());
    assert_eq!(values["components"].as_object().map(|c| c.len()), Some(1), "only the components that declare points: {values}");
    expect_problem(fetch(&spare_credential).await, StatusCode::NOT_FOUND, "not_found").await;
    expect_problem(fetch(&stranger_credential).await, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(fetch("brc_not-a-credential").await.status(), StatusCode::UNAUTHORIZED);

    let events = format!("/agent/v1/jobs/{}/events", job["job_id"].as_str().expect("a job id"));
    for phase in ["applying", "deployed"] {
        let reported = app.request(Method::POST, &events, Some(&credential)).json(&json!({"phase": phase})).send().await.expect("sent");
        expect_status(reported, StatusCode::OK).await;
    }
    app.wait_for_status(&acme, &d, "succeeded").await;
    expect_problem(fetch(&credential).await, StatusCode::NOT_FOUND, "not_found").await;
}
