//! The agent as a customer installs it: configured by a file (environment
//! variables over it), `status`, `--version`, and stopping on SIGTERM.

use berth_tests::{Agent, TestApp, TestTenant, agent_binary, eventually, expect_status, id_of};
use reqwest::StatusCode;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

/// Every variable the agent reads: the tests set what they mean to, nothing leaks in.
const AGENT_VARIABLES: &[&str] = &[
    "BERTH_AGENT_CONFIG",
    "BERTH_AGENT_STATE_DIR",
    "BERTH_API_URL",
    "BERTH_REGISTRATION_TOKEN",
    "BERTH_AGENT_NAME",
    "BERTH_POLL_WAIT",
    "BERTH_HEARTBEAT_SECS",
    "BERTH_APPLY_COMMAND",
    "BERTH_STOP_GRACE_SECS",
];

fn agent_command(args: &[&str], env: &[(&str, &str)]) -> std::process::Command {
    let mut cmd = std::process::Command::new(agent_binary());
    for var in AGENT_VARIABLES {
        cmd.env_remove(var);
    }
    cmd.args(args).envs(env.iter().copied()).env("RUST_LOG", "info");
    cmd
}

/// A `berth-agent run` process logging to `<dir>/agent.log`.
fn spawn_agent(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> tokio::process::Child {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("agent.log")).unwrap();
    let mut cmd = tokio::process::Command::from(agent_command(args, env));
    cmd.stdout(log.try_clone().unwrap()).stderr(log).kill_on_drop(true);
    cmd.spawn().expect("the agent starts")
}

/// Sends SIGTERM and waits (at most 30 s) for the process to exit.
async fn terminate(child: &mut tokio::process::Child, log: &Path) -> ExitStatus {
    let pid = child.id().expect("the agent is running").to_string();
    let sent = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs");
    assert!(sent.success(), "SIGTERM was sent");
    match tokio::time::timeout(Duration::from_secs(30), child.wait()).await {
        Ok(status) => status.expect("the agent's exit status"),
        Err(_) => panic!("the agent did not exit within 30 s of SIGTERM; log:\n{}", std::fs::read_to_string(log).unwrap_or_default()),
    }
}

/// `berth-agent status --json` on `state_dir`.
fn status_json(state_dir: &Path) -> Value {
    let out = agent_command(&["status", "--json"], &[("BERTH_AGENT_STATE_DIR", state_dir.to_str().unwrap())]).output().expect("status runs");
    assert!(out.status.success(), "status fails: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("status --json is not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn installed(state_dir: &Path, env: &Value, component: &Value) -> Option<Value> {
    let path = state_dir.join("active").join(id_of(env)).join(id_of(component)).join(".berth.json");
    std::fs::read(path).ok().map(|b| serde_json::from_slice(&b).expect("the agent's JSON"))
}

fn journals(state_dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(state_dir.join("jobs")).unwrap().map(|e| e.unwrap().path()).collect()
}

async fn targets(app: &TestApp, t: &TestTenant, d: &Value) -> Vec<Value> {
    let list = expect_status(app.get(&format!("/v1/deployments/{}/targets", id_of(d)), &t.admin).await, StatusCode::OK).await;
    list["items"].as_array().unwrap().clone()
}

/// A tenant with a test environment, a runtime attached to it and a component.
async fn setup(app: &TestApp) -> (TestTenant, Value, Value, Value) {
    let acme = app.tenant("Acme").await;
    let env = app.environment(&acme, "Test", "test").await;
    let runtime = app.runtime(&acme, "atom").await;
    app.attach(&acme, &env, &runtime).await;
    let process = app.component(&acme, "Orders", "process", b"v1", &[]).await;
    (acme, env, runtime, process)
}

async fn wait_for_file(path: &Path, log: &Path) {
    let what = format!("{} exists", path.display());
    eventually(&what, || async { if path.exists() { Ok(()) } else { Err(std::fs::read_to_string(log).unwrap_or_default()) } }).await
}

#[tokio::test]
async fn an_agent_configured_by_its_file_registers_and_deploys_and_an_environment_variable_overrides_the_file() {
    let app = TestApp::spawn().await;
    let (acme, env, runtime, process) = setup(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("state");
    let config = dir.path().join("agent.toml");
    let file = format!(
        "# Nothing listens on port 9: the environment gives the real URL.\napi_url = \"http://127.0.0.1:9\"\nregistration_token = \"{}\"\nname = \"edge-1\"\npoll_wait = 1\nheartbeat_secs = 1\nstate_dir = \"{}\"\n",
        runtime["registration_token"].as_str().unwrap(),
        state_dir.display()
    );
    std::fs::write(&config, file).unwrap();

    let _agent = spawn_agent(dir.path(), &["run"], &[("BERTH_AGENT_CONFIG", config.to_str().unwrap()), ("BERTH_API_URL", &app.base)]);
    let package = app.package(&acme, &process, Some("v1")).await;
    let d = app.deploy(&acme, &package, &env, "").await;
    app.wait_for_status(&acme, &d, "succeeded").await;

    let running = installed(&state_dir, &env, &process).unwrap_or_else(|| {
        panic!("the state directory named in the file holds the version; log:\n{}", std::fs::read_to_string(dir.path().join("agent.log")).unwrap_or_default())
    });
    assert_eq!(running["digest"], package["digest"]);
    assert_eq!(status_json(&state_dir)["runtime"]["api_url"], app.base.as_str(), "the URL in use is the environment's, not the file's");
}

#[test]
fn a_config_file_with_an_unknown_key_is_refused_naming_the_key_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    std::fs::write(&config, "api_url = \"http://127.0.0.1:9\"\npoll_wiat = 5\n").unwrap();

    let out = agent_command(&["--config", config.to_str().unwrap(), "run"], &[]).output().expect("the agent runs");

    assert!(!out.status.success(), "a typo in the config file stops the agent");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown field `poll_wiat`"), "names the key: {stderr}");
    assert!(stderr.contains(config.to_str().unwrap()), "names the file: {stderr}");
}

#[test]
fn the_agent_prints_its_version() {
    let manifest = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../agent/Cargo.toml")).unwrap();
    let version = manifest.lines().find_map(|l| l.strip_prefix("version = \"")).and_then(|v| v.strip_suffix('"')).expect("the agent's version");

    let out = agent_command(&["--version"], &[]).output().expect("the agent runs");

    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("berth-agent {version}"));
}

#[tokio::test]
async fn status_prints_the_registered_runtime_what_is_deployed_and_the_last_job() {
    let app = TestApp::spawn().await;
    let (acme, env, runtime, process) = setup(&app).await;
    let agent = Agent::start(&app, &runtime, None);
    let package = app.package(&acme, &process, Some("v1")).await;
    let d = app.deploy(&acme, &package, &env, "").await;
    app.wait_for_status(&acme, &d, "succeeded").await;
    let job_id = targets(&app, &acme, &d).await[0]["job_id"].as_str().unwrap().to_string();

    let status = status_json(agent.state.path());
    assert_eq!(status["registered"], true);
    assert_eq!(status["runtime"]["runtime_id"], runtime["id"]);
    assert_eq!(status["runtime"]["api_url"], app.base.as_str());
    let deployed = status["deployed"].as_array().unwrap();
    assert_eq!(deployed.len(), 1, "{status}");
    assert_eq!(deployed[0]["environment_id"], env["id"]);
    assert_eq!(deployed[0]["component_id"], process["id"]);
    assert_eq!(deployed[0]["version"], "v1");
    assert_eq!(deployed[0]["digest"], package["digest"]);
    assert!(deployed[0]["since"].as_str().is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok()), "{status}");
    assert_eq!(status["last_job"]["job_id"], job_id.as_str());
    assert_eq!(status["last_job"]["deployment_id"], d["id"]);
    assert_eq!(status["last_job"]["outcome"], "deployed");

    let out = agent_command(&["status"], &[("BERTH_AGENT_STATE_DIR", agent.state.path().to_str().unwrap())]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for expected in [runtime["id"].as_str().unwrap(), &app.base, "version v1", package["digest"].as_str().unwrap(), &job_id, "deployed"] {
        assert!(text.contains(expected), "the text shows {expected}:\n{text}");
    }
}

#[tokio::test]
async fn sigterm_during_a_long_apply_abandons_the_job_restores_the_previous_version_and_exits_0() {
    let app = TestApp::spawn().await;
    let (acme, env, runtime, process) = setup(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let (state_dir, log, started) = (dir.path().join("state"), dir.path().join("agent.log"), dir.path().join("v2-apply-started"));
    let apply = format!("if [ \"$BERTH_VERSION\" = v2 ]; then touch {}; sleep 120; fi", started.display());
    let env_vars = [
        ("BERTH_API_URL", app.base.as_str()),
        ("BERTH_REGISTRATION_TOKEN", runtime["registration_token"].as_str().unwrap()),
        ("BERTH_AGENT_STATE_DIR", state_dir.to_str().unwrap()),
        ("BERTH_POLL_WAIT", "1"),
        ("BERTH_HEARTBEAT_SECS", "1"),
        ("BERTH_APPLY_COMMAND", apply.as_str()),
        ("BERTH_STOP_GRACE_SECS", "1"),
    ];
    let mut agent = spawn_agent(dir.path(), &["run"], &env_vars);
    let v1 = app.package(&acme, &process, Some("v1")).await;
    let d1 = app.deploy(&acme, &v1, &env, "").await;
    app.wait_for_status(&acme, &d1, "succeeded").await;
    app.revise(&acme, &process, b"v2").await;
    let v2 = app.package(&acme, &process, Some("v2")).await;
    let d2 = app.deploy(&acme, &v2, &env, "").await;
    wait_for_file(&started, &log).await;

    let exit = terminate(&mut agent, &log).await;

    assert!(exit.success(), "the agent exits 0: {exit}; log:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
    assert_eq!(installed(&state_dir, &env, &process).unwrap()["version"], "v1", "the previous version is back");
    assert!(journals(&state_dir).is_empty(), "nothing is left to recover: {:?}", journals(&state_dir));
    app.wait_for_status(&acme, &d2, "rolled_back").await;
    assert_eq!(targets(&app, &acme, &d2).await[0]["state"], "restored");
    assert_eq!(app.active(&acme, &env).await[0]["version"], "v1");
    let status = status_json(&state_dir);
    assert_eq!(status["last_job"]["deployment_id"], d2["id"]);
    assert_eq!(status["last_job"]["outcome"], "restored");

    // Started again, it has nothing to undo and keeps serving; stopped idle, it exits 0 too.
    let mut again = spawn_agent(dir.path(), &["run"], &env_vars);
    let v3 = app.package(&acme, &process, Some("v3")).await;
    let d3 = app.deploy(&acme, &v3, &env, "").await;
    app.wait_for_status(&acme, &d3, "succeeded").await;
    assert_eq!(installed(&state_dir, &env, &process).unwrap()["version"], "v3");
    let exit = terminate(&mut again, &log).await;
    assert!(exit.success(), "an idle agent exits 0: {exit}");
}

#[tokio::test]
async fn sigterm_during_a_short_job_lets_it_finish_and_exits_0() {
    let app = TestApp::spawn().await;
    let (acme, env, runtime, process) = setup(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let (state_dir, log, started) = (dir.path().join("state"), dir.path().join("agent.log"), dir.path().join("apply-started"));
    let apply = format!("touch {}; sleep 2", started.display());
    let mut agent = spawn_agent(
        dir.path(),
        &["run"],
        &[
            ("BERTH_API_URL", app.base.as_str()),
            ("BERTH_REGISTRATION_TOKEN", runtime["registration_token"].as_str().unwrap()),
            ("BERTH_AGENT_STATE_DIR", state_dir.to_str().unwrap()),
            ("BERTH_POLL_WAIT", "1"),
            ("BERTH_HEARTBEAT_SECS", "1"),
            ("BERTH_APPLY_COMMAND", apply.as_str()),
            ("BERTH_STOP_GRACE_SECS", "20"),
        ],
    );
    let package = app.package(&acme, &process, Some("v1")).await;
    let d = app.deploy(&acme, &package, &env, "").await;
    wait_for_file(&started, &log).await;

    let exit = terminate(&mut agent, &log).await;

    assert!(exit.success(), "the agent exits 0: {exit}; log:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
    assert_eq!(installed(&state_dir, &env, &process).unwrap()["digest"], package["digest"], "the job finished before the agent stopped");
    assert!(journals(&state_dir).is_empty());
    app.wait_for_status(&acme, &d, "succeeded").await;
}
