//! Gradual rollout and automatic retry (issue 13, items 1 and 2), with six
//! real agents: batches of two that bake, a failing runtime that halts the
//! rollout (or rolls it back), halt and resume, refused rollouts, and failed
//! targets tried again by themselves up to the policy's limit.

use berth_tests::{Agent, TestApp, TestTenant, expect_problem, expect_status, id_of};
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Acme's Staging environment with six runtimes (in runtime-id order, the
/// order of their batches), each with a running agent, and Orders packaged as v1.
struct Fleet {
    app: TestApp,
    acme: TestTenant,
    env: Value,
    process: Value,
    v1: Value,
    runtimes: Vec<Value>,
    agents: Vec<Agent>,
}

/// The fleet, the agent at `index` applying with `apply(index)`.
async fn fleet(policy: Value, apply: impl Fn(usize) -> Option<String>) -> Fleet {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let env = app.environment(&acme, "Staging", "test").await;
    let mut runtimes = vec![];
    for i in 0..6 {
        let runtime = app.runtime(&acme, &format!("atom-{i}")).await;
        app.attach(&acme, &env, &runtime).await;
        runtimes.push(runtime);
    }
    runtimes.sort_by_key(id_of);
    let agents = runtimes.iter().enumerate().map(|(i, r)| Agent::start(&app, r, apply(i).as_deref())).collect();
    app.set_policy(&acme, &env, policy).await;
    let process = app.component(&acme, "Orders", "process", b"v1", &[]).await;
    let v1 = app.package(&acme, &process, Some("v1")).await;
    Fleet { app, acme, env, process, v1, runtimes, agents }
}

/// A command that fails while `flag` exists, for version `version` only.
fn failing_while(flag: &std::path::Path, version: &str) -> String {
    format!(r#"if [ "$BERTH_VERSION" = "{version}" ] && [ -f {} ]; then echo "broken mapping" >&2; exit 3; fi"#, flag.display())
}

impl Fleet {
    fn path(&self, d: &Value, tail: &str) -> String {
        format!("/v1/deployments/{}{tail}", id_of(d))
    }

    /// The targets, in runtime-id order.
    async fn targets(&self, d: &Value) -> Vec<Value> {
        let list = expect_status(self.app.get(&self.path(d, "/targets"), &self.acme.admin).await, StatusCode::OK).await;
        let mut items = list["items"].as_array().expect("items").clone();
        items.sort_by_key(|t| t["runtime_id"].as_str().unwrap_or_default().to_string());
        items
    }

    /// The whole timeline, page by page.
    async fn events(&self, d: &Value) -> Vec<Value> {
        let mut all = vec![];
        let mut cursor: Option<String> = None;
        loop {
            let query = match &cursor {
                Some(c) => format!("/events?limit=100&cursor={c}"),
                None => "/events?limit=100".to_string(),
            };
            let page = expect_status(self.app.get(&self.path(d, &query), &self.acme.admin).await, StatusCode::OK).await;
            all.extend(page["items"].as_array().expect("items").iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return all,
            }
        }
    }

    async fn timeline(&self, d: &Value) -> Vec<String> {
        self.events(d).await.iter().map(|e| e["message"].as_str().unwrap_or_default().to_string()).collect()
    }

    fn states(targets: &[Value]) -> Vec<&str> {
        targets.iter().map(|t| t["state"].as_str().unwrap_or_default()).collect()
    }

    async fn deploy_with(&self, package: &Value, rollout: Option<Value>) -> Value {
        let mut body = json!({"package_id": package["id"], "environment_id": self.env["id"]});
        if let Some(r) = rollout {
            body["rollout"] = r;
        }
        expect_status(self.app.post("/v1/deployments", &self.acme.admin, body).await, StatusCode::CREATED).await
    }

    /// The version the agent at `index` runs.
    fn runs(&self, index: usize) -> Option<String> {
        self.agents[index].installed(&self.env, &self.process).and_then(|i| i["version"].as_str().map(str::to_string))
    }
}

fn at(v: &Value) -> DateTime<Utc> {
    v.as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("a time: {v}"))
}

#[tokio::test]
async fn batches_of_two_go_out_one_after_another_each_after_the_one_before_succeeded_and_baked() {
    let rollout = json!({"strategy": "batches", "batch_size": 2, "bake_seconds": 2, "max_failed_targets": 0});
    let f = fleet(json!({"rollout": rollout}), |_| None).await;
    let policy = expect_status(f.app.get(&format!("/v1/environments/{}/policy", id_of(&f.env)), &f.acme.admin).await, StatusCode::OK).await;
    assert_eq!(policy["rollout"], rollout, "the policy reads back its rollout");
    assert_eq!(policy["auto_retry"], Value::Null, "automatic retry is off by default");

    let d = f.deploy_with(&f.v1, None).await;
    assert_eq!(d["rollout"], rollout, "the policy's rollout is resolved on the deployment");
    let done = f.app.wait_for_status(&f.acme, &d, "succeeded").await;
    assert_eq!((&done["batch"], &done["batches"]), (&json!(3), &json!(3)));

    let targets = f.targets(&d).await;
    let batches: Vec<u64> = targets.iter().map(|t| t["batch"].as_u64().expect("a batch")).collect();
    assert_eq!(batches, [1, 1, 2, 2, 3, 3], "numbered in runtime-id order");
    assert!(targets.iter().all(|t| t["state"] == "deployed" && t["attempt"] == 1), "{targets:#?}");
    // When each runtime was handed its job (the timeline's line for it), and when each target ended.
    let events = f.events(&d).await;
    let delivered = |runtime: &Value| {
        events.iter().find(|e| e["runtime_id"] == runtime["id"] && e["message"].as_str().is_some_and(|m| m.starts_with("Delivered"))).map(|e| at(&e["at"]))
    };
    for batch in 2..=3u64 {
        let before_done = targets.iter().filter(|t| t["batch"] == batch - 1).map(|t| at(&t["updated_at"])).max().expect("a batch before");
        for (t, runtime) in targets.iter().zip(&f.runtimes).filter(|(t, _)| t["batch"] == batch) {
            let started = delivered(runtime).unwrap_or_else(|| panic!("runtime {} was handed its job: {events:#?}", id_of(runtime)));
            assert!(
                started >= before_done + chrono::Duration::seconds(2),
                "batch {batch} started at {started}, before batch {} ended ({before_done}) and baked 2 s; target {t}",
                batch - 1
            );
        }
    }
    let timeline = f.timeline(&d).await;
    for line in [
        "Batch 1 of 3 started on 2 runtime(s)",
        "Batch 1 of 3 succeeded; baking for 2 s",
        "Batch 1 of 3 baked",
        "Batch 2 of 3 started on 2 runtime(s)",
        "Batch 2 of 3 baked",
        "Batch 3 of 3 started on 2 runtime(s)",
        "Version v1 is active",
    ] {
        assert!(timeline.iter().any(|l| l.starts_with(line)), "the timeline shows \"{line}\": {timeline:#?}");
    }
    assert!((0..6).all(|i| f.runs(i).as_deref() == Some("v1")), "every agent runs v1");
}

#[tokio::test]
async fn a_failing_runtime_in_batch_two_halts_the_rollout_and_once_resumed_the_skipped_batches_go_out() {
    let flag = tempfile::tempdir().expect("a dir");
    let broken = flag.path().join("broken");
    std::fs::write(&broken, b"").expect("the flag");
    let command = failing_while(&broken, "v1");
    let rollout = json!({"strategy": "batches", "batch_size": 2, "bake_seconds": 1, "max_failed_targets": 0});
    let f = fleet(json!({"rollout": rollout}), |i| (i == 2).then(|| command.clone())).await;

    let d = f.deploy_with(&f.v1, None).await;
    let halted = f.app.wait_for_status(&f.acme, &d, "halted").await;
    assert_eq!((&halted["batch"], &halted["finished_at"]), (&json!(2), &Value::Null), "{halted}");
    // The other target of batch 2 was under way: it finishes.
    let targets = berth_tests::eventually("batch 2's other job to finish", || async {
        let t = f.targets(&d).await;
        if t[3]["state"] == "deployed" && t[2]["state"] == "restored" { Ok(t) } else { Err(format!("{t:#?}")) }
    })
    .await;
    assert_eq!(Fleet::states(&targets), ["deployed", "deployed", "restored", "deployed", "skipped", "skipped"]);
    assert_eq!(f.runs(4), None, "batch 3 was never sent");
    let audit = f.app.audit(&f.acme).await;
    let halt = audit.iter().find(|e| e["action"] == "deployment.halted" && e["entity_id"] == d["id"]).expect("the halt is audited");
    assert_eq!(
        (&halt["summary"]["reason"], &halt["summary"]["failed_targets"], &halt["summary"]["skipped_targets"]),
        (&json!("too_many_failures"), &json!(1), &json!(2))
    );
    assert!(f.timeline(&d).await.iter().any(|l| l.starts_with("Halted after batch 2 of 3: 1 failed target(s), more than the 0 tolerated")));

    // A viewer may not resume it; a deployer may, once.
    let viewer = f.app.token(&f.acme.id, &["viewer"]);
    expect_problem(f.app.post(&f.path(&d, "/resume"), &viewer, json!({})).await, StatusCode::FORBIDDEN, "forbidden").await;
    let deployer = f.app.token(&f.acme.id, &["deployer"]);
    let resumed = expect_status(f.app.post(&f.path(&d, "/resume"), &deployer, json!({})).await, StatusCode::OK).await;
    assert_eq!(resumed["status"], "in_progress");
    expect_problem(f.app.post(&f.path(&d, "/resume"), &deployer, json!({})).await, StatusCode::CONFLICT, "not_halted").await;
    let ended = f.app.wait_for_status(&f.acme, &d, "partially_failed").await;
    assert_eq!(ended["batch"], 3);
    assert_eq!(Fleet::states(&f.targets(&d).await), ["deployed", "deployed", "restored", "deployed", "deployed", "deployed"]);
    assert!(audit_has(&f, &d, "deployment.resumed").await);

    // Fixed, the failed runtime is retried by hand as before.
    std::fs::remove_file(&broken).expect("the flag is removed");
    expect_status(f.app.post(&f.path(&d, "/retry"), &deployer, json!({})).await, StatusCode::OK).await;
    f.app.wait_for_status(&f.acme, &d, "succeeded").await;
    assert!((0..6).all(|i| f.runs(i).as_deref() == Some("v1")));
}

async fn audit_has(f: &Fleet, d: &Value, action: &str) -> bool {
    f.app.audit(&f.acme).await.iter().any(|e| e["action"] == action && e["entity_id"] == d["id"])
}

#[tokio::test]
async fn with_auto_rollback_a_failing_runtime_in_batch_two_ends_rolled_back_and_batch_one_runs_the_old_version_again() {
    let flag = tempfile::tempdir().expect("a dir");
    let broken = flag.path().join("broken");
    std::fs::write(&broken, b"").expect("the flag");
    let command = failing_while(&broken, "v2");
    let f = fleet(json!({}), |i| (i == 2).then(|| command.clone())).await;
    let first = f.deploy_with(&f.v1, None).await;
    f.app.wait_for_status(&f.acme, &first, "succeeded").await;
    let rollout = json!({"strategy": "batches", "batch_size": 2, "bake_seconds": 1, "max_failed_targets": 0});
    f.app.set_policy(&f.acme, &f.env, json!({"rollout": rollout, "auto_rollback": true})).await;
    f.app.revise(&f.acme, &f.process, b"v2").await;
    let v2 = f.app.package(&f.acme, &f.process, Some("v2")).await;

    let d = f.deploy_with(&v2, None).await;
    f.app.wait_for_status(&f.acme, &d, "rolled_back").await;
    // The failed runtime restores its backup (and says so) after it reported the failure.
    let targets = berth_tests::eventually("the failed runtime to restore v1", || async {
        let t = f.targets(&d).await;
        if t[2]["state"] == "restored" { Ok(t) } else { Err(format!("{t:#?}")) }
    })
    .await;
    assert_eq!(Fleet::states(&targets)[..3], ["deployed", "deployed", "restored"], "{targets:#?}");
    assert_eq!(Fleet::states(&targets)[4..], ["skipped", "skipped"], "batch 3 never went");
    let list = expect_status(f.app.get(&format!("/v1/deployments?environment_id={}", id_of(&f.env)), &f.acme.admin).await, StatusCode::OK).await;
    let rollback = list["items"].as_array().expect("items").iter().find(|x| x["kind"] == "rollback").cloned().expect("an automatic rollback");
    assert_eq!(rollback["rollout"]["strategy"], "all_at_once", "a rollback goes out at once");
    f.app.wait_for_status(&f.acme, &rollback, "succeeded").await;
    for i in 0..6 {
        assert_eq!(f.runs(i).as_deref(), Some("v1"), "agent {i} runs v1 again");
    }
    assert_eq!(f.app.active(&f.acme, &f.env).await[0]["version"], "v1");
}

#[tokio::test]
async fn a_person_halts_a_rollout_while_it_bakes_and_resumes_it_to_the_end() {
    let rollout = json!({"strategy": "batches", "batch_size": 3, "bake_seconds": 600, "max_failed_targets": 0});
    let f = fleet(json!({"rollout": rollout}), |_| None).await;
    let d = f.deploy_with(&f.v1, None).await;
    let deployer = f.app.token(&f.acme.id, &["deployer"]);
    berth_tests::eventually("batch 1 to bake", || async {
        let now = expect_status(f.app.get(&f.path(&d, ""), &f.acme.admin).await, StatusCode::OK).await;
        if now["next_batch_at"].is_string() { Ok(()) } else { Err(now.to_string()) }
    })
    .await;
    let halted = expect_status(f.app.post(&f.path(&d, "/halt"), &deployer, json!({})).await, StatusCode::OK).await;
    assert_eq!((&halted["status"], &halted["next_batch_at"]), (&json!("halted"), &Value::Null));
    expect_problem(f.app.post(&f.path(&d, "/halt"), &deployer, json!({})).await, StatusCode::CONFLICT, "not_haltable").await;
    assert_eq!(Fleet::states(&f.targets(&d).await), ["deployed", "deployed", "deployed", "skipped", "skipped", "skipped"]);

    let resumed = expect_status(f.app.post(&f.path(&d, "/resume"), &deployer, json!({})).await, StatusCode::OK).await;
    assert_eq!(resumed["batch"], 2, "the next batch starts at once: it baked while halted");
    f.app.wait_for_status(&f.acme, &d, "succeeded").await;
    assert!((0..6).all(|i| f.runs(i).as_deref() == Some("v1")));
    assert!(audit_has(&f, &d, "deployment.halted").await && audit_has(&f, &d, "deployment.resumed").await);
}

#[tokio::test]
async fn a_rollout_with_an_unknown_field_an_impossible_value_or_less_care_than_the_policy_is_refused_naming_the_field() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let env = app.environment(&acme, "Staging", "test").await;
    let runtime = app.runtime(&acme, "atom").await;
    app.attach(&acme, &env, &runtime).await;
    let process = app.component(&acme, "Orders", "process", b"v1", &[]).await;
    let v1 = app.package(&acme, &process, Some("v1")).await;
    let policy_path = format!("/v1/environments/{}/policy", id_of(&env));
    let deploy = |rollout: Value| json!({"package_id": v1["id"], "environment_id": env["id"], "rollout": rollout});
    let field_of = |problem: &Value| problem["errors"][0]["field"].as_str().unwrap_or_default().to_string();

    let unknown = app.post("/v1/deployments", &acme.admin, deploy(json!({"strategy": "batches", "batch_size": 1, "canary": true}))).await;
    let problem = expect_problem(unknown, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(field_of(&problem), "rollout.canary", "{problem}");
    for (rollout, field) in [
        (json!({"strategy": "waves"}), "rollout.strategy"),
        (json!({"strategy": "batches", "batch_size": "150%"}), "rollout.batch_size"),
        (json!({"strategy": "batches", "batch_size": 0}), "rollout.batch_size"),
        (json!({"strategy": "batches"}), "rollout.batch_size"),
        (json!({"strategy": "batches", "batch_size": 1, "bake_seconds": -1}), "rollout.bake_seconds"),
    ] {
        let problem =
            expect_problem(app.post("/v1/deployments", &acme.admin, deploy(rollout.clone())).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
                .await;
        assert_eq!(field_of(&problem), field, "{rollout}: {problem}");
        // The dry run reads the same body.
        let problem = expect_problem(
            app.post("/v1/deployments/validate", &acme.admin, deploy(rollout.clone())).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
        assert_eq!(field_of(&problem), field, "validate {rollout}: {problem}");
    }
    let current = app.get(&policy_path, &acme.admin).await;
    let etag = current.headers().get("etag").and_then(|v| v.to_str().ok()).expect("an ETag").to_string();
    let bad_policy = json!({"rollout": {"strategy": "batches", "batch_size": "0%"}, "auto_retry": {"attempts": 11}});
    let response = app.request(reqwest::Method::PUT, &policy_path, Some(&acme.admin)).header("if-match", etag).json(&bad_policy).send().await.expect("sent");
    let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let fields: Vec<&str> = problem["errors"].as_array().expect("errors").iter().filter_map(|e| e["field"].as_str()).collect();
    assert_eq!(fields, ["rollout.batch_size", "auto_retry.attempts"], "{problem}");

    app.set_policy(&acme, &env, json!({"rollout": {"strategy": "batches", "batch_size": 1, "bake_seconds": 60, "max_failed_targets": 1}})).await;
    for (rollout, field) in [
        (json!({"strategy": "all_at_once"}), "rollout.strategy"),
        (json!({"batch_size": 2}), "rollout.batch_size"),
        (json!({"bake_seconds": 10}), "rollout.bake_seconds"),
        (json!({"max_failed_targets": 2}), "rollout.max_failed_targets"),
    ] {
        let problem =
            expect_problem(app.post("/v1/deployments", &acme.admin, deploy(rollout.clone())).await, StatusCode::UNPROCESSABLE_ENTITY, "rollout_less_careful")
                .await;
        assert_eq!(field_of(&problem), field, "{rollout}: {problem}");
    }
    let d =
        expect_status(app.post("/v1/deployments", &acme.admin, deploy(json!({"bake_seconds": 120, "max_failed_targets": 0}))).await, StatusCode::CREATED).await;
    assert_eq!(
        d["rollout"],
        json!({"strategy": "batches", "batch_size": 1, "bake_seconds": 120, "max_failed_targets": 0}),
        "more careful, the rest the policy's"
    );
}

#[tokio::test]
async fn a_flaky_apply_succeeds_on_its_second_attempt_and_a_broken_one_stops_at_the_limit() {
    let markers = tempfile::tempdir().expect("a dir");
    let broken = markers.path().join("broken");
    std::fs::write(&broken, b"").expect("the flag");
    // Agents 0 to 4 fail their first apply only; agent 5 fails every apply while the flag exists.
    let apply = |i: usize| {
        Some(match i {
            5 => failing_while(&broken, "v1"),
            _ => {
                let marker = markers.path().join(format!("tried-{i}-$BERTH_VERSION"));
                format!(r#"if [ ! -f "{m}" ]; then touch "{m}"; echo "flaky" >&2; exit 3; fi"#, m = marker.display())
            }
        })
    };
    let f = fleet(json!({"auto_retry": {"attempts": 2, "backoff_seconds": 1}}), apply).await;
    let d = f.deploy_with(&f.v1, None).await;
    f.app.wait_for_status(&f.acme, &d, "partially_failed").await;
    let targets = berth_tests::eventually("the broken runtime to restore what it had", || async {
        let t = f.targets(&d).await;
        if t[5]["state"] == "restored" { Ok(t) } else { Err(format!("{t:#?}")) }
    })
    .await;
    for t in &targets[..5] {
        assert_eq!((&t["state"], &t["attempt"]), (&json!("deployed"), &json!(2)), "the second attempt succeeded: {t}");
    }
    assert_eq!((&targets[5]["state"], &targets[5]["attempt"], &targets[5]["retry_at"]), (&json!("restored"), &json!(2), &Value::Null), "stopped at the limit");
    let timeline = f.timeline(&d).await;
    assert!(timeline.iter().any(|l| l == "Attempt 1 of 2 failed: retrying in 1 s"), "{timeline:#?}");
    assert!(timeline.iter().any(|l| l == "Attempt 2 of 2 failed: no try left"), "{timeline:#?}");
    assert_eq!((0..5).filter(|i| f.runs(*i).as_deref() == Some("v1")).count(), 5);
    assert_eq!(f.runs(5), None, "the broken runtime was restored to nothing");
}
