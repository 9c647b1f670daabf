//! In-flight executions finish on the version they started with (Boomi's
//! behaviour): `berth-agent exec` holds the component's lock shared, and a
//! deployment's swap waits for it.

use berth_tests::{Agent, TestApp, agent_binary, eventually};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// One `berth-agent exec` of the component: it records the content it sees
/// when it starts, waits until the test releases it, then records what it
/// sees again, from its own working directory, the active version.
struct Execution {
    dir: tempfile::TempDir,
    child: tokio::process::Child,
}

impl Execution {
    fn start(agent: &Agent, env: &Value, component: &Value) -> Execution {
        let dir = tempfile::tempdir().expect("a scratch dir");
        let content = format!("components/{}/content", component["id"].as_str().expect("a component id"));
        let out = dir.path().display().to_string();
        let script =
            format!("cat {content} > {out}/at-start; touch {out}/started; while [ ! -f {out}/release ]; do sleep 0.05; done; cat {content} > {out}/at-end");
        let child = tokio::process::Command::new(agent_binary())
            .args(["exec", env["id"].as_str().expect("an environment id"), component["id"].as_str().expect("a component id"), "--", "sh", "-c", &script])
            .env("BERTH_AGENT_STATE_DIR", agent.state.path())
            .kill_on_drop(true)
            .spawn()
            .expect("berth-agent exec starts");
        Execution { dir, child }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn seen(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_else(|e| panic!("the execution wrote {name}: {e}"))
    }

    async fn started(&self) {
        let started = self.path("started");
        eventually("the execution has started", || {
            let started = started.clone();
            async move { if started.exists() { Ok(()) } else { Err("not yet".to_string()) } }
        })
        .await;
    }

    async fn release_and_finish(mut self) -> (String, String) {
        std::fs::write(self.path("release"), b"").expect("release the execution");
        let status = self.child.wait().await.expect("the execution ends");
        assert!(status.success(), "the execution succeeded: {status}");
        (self.seen("at-start"), self.seen("at-end"))
    }
}

/// True when one of the agent's job journals says a swap is under way (the
/// agent then waits for the component's lock).
fn swapping(state: &Path) -> bool {
    std::fs::read_dir(state.join("jobs"))
        .map(|entries| {
            entries
                .flatten()
                .any(|e| std::fs::read(e.path()).ok().and_then(|j| serde_json::from_slice::<Value>(&j).ok()).is_some_and(|j| j["step"] == "swapping"))
        })
        .unwrap_or(false)
}

#[tokio::test]
async fn an_execution_in_flight_finishes_on_the_old_version_while_a_deploy_waits_and_the_next_execution_runs_the_new_one() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let test = app.environment(&acme, "Test", "test").await;
    let runtime = app.runtime(&acme, "atom-1").await;
    app.attach(&acme, &test, &runtime).await;
    let agent = Agent::start(&app, &runtime, None);
    let process = app.component(&acme, "Orders", "process", b"process v1", &[]).await;
    let v1 = app.package(&acme, &process, Some("v1")).await;
    let first = app.deploy(&acme, &v1, &test, "v1").await;
    app.wait_for_status(&acme, &first, "succeeded").await;

    let execution = Execution::start(&agent, &test, &process);
    execution.started().await;

    app.revise(&acme, &process, b"process v2").await;
    let v2 = app.package(&acme, &process, Some("v2")).await;
    let second = app.deploy(&acme, &v2, &test, "v2 while an execution runs").await;
    let state = agent.state.path().to_path_buf();
    eventually("the agent has staged v2 and waits to swap it in", || {
        let state = state.clone();
        async move { if swapping(&state) { Ok(()) } else { Err("no swap under way yet".to_string()) } }
    })
    .await;

    // The swap waits for the execution: v1 is still what runs.
    assert_eq!(agent.installed(&test, &process).expect("v1 is installed")["version"], "v1");
    assert_eq!(agent.file(&test, &process, &process).expect("v1's content"), b"process v1");
    let id = second["id"].as_str().expect("a deployment id");
    let now = berth_tests::expect_status(app.get(&format!("/v1/deployments/{id}"), &acme.admin).await, reqwest::StatusCode::OK).await;
    assert_ne!(now["status"], "succeeded", "the deployment cannot finish while the old version is executing");

    let (at_start, at_end) = execution.release_and_finish().await;
    assert_eq!((at_start.as_str(), at_end.as_str()), ("process v1", "process v1"), "the execution ran on v1 from start to end");

    app.wait_for_status(&acme, &second, "succeeded").await;
    assert_eq!(agent.installed(&test, &process).expect("v2 is installed")["version"], "v2");
    let next = Execution::start(&agent, &test, &process);
    next.started().await;
    let (at_start, at_end) = next.release_and_finish().await;
    assert_eq!((at_start.as_str(), at_end.as_str()), ("process v2", "process v2"), "the next execution runs v2");
}
