//! Webhooks from CI (issue 11), over HTTP with the real agent: a pipeline
//! signs a delivery with the webhook's secret (computed here from the
//! documented scheme, not with Berth's code), Berth packages and deploys as
//! `webhook:<id>` through the environment's policy, and the signed status
//! call tells the pipeline how it ended. Signatures, replays, clock skew,
//! rotation, other tenants, size and rate decide what is let in at all.

use berth_tests::{Agent, TestApp, TestTenant, berth_signature, eventually, expect_problem, expect_status, hmac_sha256_hex, id_of, unix_now};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

/// Acme's Test environment, run by a real agent (applying with `apply`),
/// and its Orders process, packaged once as v1 (not deployed).
struct World {
    app: TestApp,
    acme: TestTenant,
    test: Value,
    runtime: Value,
    orders: Value,
    v1: Value,
    agent: Agent,
}

async fn world(apply: Option<&str>) -> World {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let test = app.environment(&acme, "Test", "test").await;
    let runtime = app.runtime(&acme, "atom").await;
    app.attach(&acme, &test, &runtime).await;
    let agent = Agent::start(&app, &runtime, apply);
    let orders = app.component(&acme, "Orders", "process", b"orders v1", &[]).await;
    let v1 = app.package(&acme, &orders, Some("v1")).await;
    World { app, acme, test, runtime, orders, v1, agent }
}

fn secret_of(hook: &Value) -> String {
    let secret = hook["secret"].as_str().unwrap_or_else(|| panic!("the secret is shown on creation: {hook}"));
    assert!(secret.starts_with("whsec_"), "{secret}");
    secret.to_string()
}

/// `webhook:<id>`: who a delivery acts as.
fn actor_of(hook: &Value) -> String {
    format!("webhook:{}", id_of(hook))
}

impl World {
    async fn get(&self, path: &str) -> Value {
        expect_status(self.app.get(path, &self.acme.admin).await, StatusCode::OK).await
    }

    async fn deployment(&self, id: &Value) -> Value {
        self.get(&format!("/v1/deployments/{}", id.as_str().unwrap_or_else(|| panic!("a deployment id: {id}")))).await
    }

    async fn package(&self, id: &Value) -> Value {
        self.get(&format!("/v1/packages/{}", id.as_str().unwrap_or_else(|| panic!("a package id: {id}")))).await
    }

    /// Every deployment of the tenant.
    async fn deployments(&self) -> Vec<Value> {
        self.get("/v1/deployments?limit=100").await["items"].as_array().expect("items").clone()
    }

    /// Waits until the deployment `id` (as a receipt names it) reaches `status`.
    async fn wait_for(&self, id: &Value, status: &str) -> Value {
        self.app.wait_for_status(&self.acme, &json!({"id": id}), status).await
    }

    /// Waits until the signed status call of `delivery` reports `status`; returns its answer.
    async fn wait_for_delivery(&self, hook: &Value, secret: &str, delivery: &str, status: &str) -> Value {
        eventually(&format!("delivery {delivery} reports {status}"), || async {
            let answer = expect_status(self.app.delivery_status(hook, secret, delivery).await, StatusCode::OK).await;
            if answer["status"] == status { Ok(answer) } else { Err(answer.to_string()) }
        })
        .await
    }

    /// The delivery `id` in the webhook's history.
    async fn delivery(&self, hook: &Value, id: &str) -> Value {
        let history = self.app.deliveries(&self.acme, hook).await;
        history.iter().find(|d| d["id"] == id).cloned().unwrap_or_else(|| panic!("delivery {id} is in the history: {history:?}"))
    }

    /// The audit event `action` about `entity_id`.
    async fn audited(&self, action: &str, entity_id: &Value) -> Value {
        let audit = self.app.audit(&self.acme).await;
        audit.iter().find(|e| e["action"] == action && e["entity_id"] == *entity_id).cloned().unwrap_or_else(|| panic!("{action} of {entity_id} is audited"))
    }
}

#[tokio::test]
async fn a_signed_delivery_packages_the_new_revision_deploys_it_to_test_as_the_webhook_and_the_signed_status_call_reports_succeeded() {
    let w = world(None).await;
    let hook = w.app.webhook(&w.acme, &w.test, &w.orders, "package_and_deploy").await;
    let secret = secret_of(&hook);
    assert_eq!(hook["delivery_path"], format!("/hooks/v1/{}", id_of(&hook)), "{hook}");
    w.app.revise(&w.acme, &w.orders, b"orders v2").await;

    let commit = "9f2c1e7d4b3a5968f0e1d2c3b4a5968778695a4b";
    let body = json!({"version": "2.0.0", "commit": commit, "notes": "merged #42"}).to_string();
    let receipt = expect_status(w.app.deliver(&hook, &secret, "build-42", &body).await, StatusCode::ACCEPTED).await;
    assert_eq!((&receipt["delivery_id"], &receipt["outcome"], &receipt["status"]), (&json!("build-42"), &json!("accepted"), &json!("queued")), "{receipt}");

    let package = w.package(&receipt["package_id"]).await;
    assert_ne!(package["id"], w.v1["id"], "a new package: {package}");
    assert_eq!((&package["version"], &package["commit"], &package["created_by"]), (&json!("2.0.0"), &json!(commit), &json!(actor_of(&hook))), "{package}");
    assert_eq!(package["manifest"]["components"][0]["revision"], 2, "the latest revision is packaged: {package}");
    let deployment = w.deployment(&receipt["deployment_id"]).await;
    assert_eq!((&deployment["package_id"], &deployment["environment_id"]), (&package["id"], &w.test["id"]), "{deployment}");
    assert_eq!((&deployment["requested_by"], &deployment["commit"], &deployment["notes"]), (&json!(actor_of(&hook)), &json!(commit), &json!("merged #42")));

    // The pipeline waits with the webhook's secret alone; the real agent applies it.
    let status = w.wait_for_delivery(&hook, &secret, "build-42", "succeeded").await;
    assert_eq!(
        (&status["outcome"], &status["commit"], &status["package_id"], &status["deployment_id"]),
        (&json!("accepted"), &json!(commit), &package["id"], &deployment["id"])
    );
    let installed = w.agent.installed(&w.test, &w.orders).expect("the agent runs Orders in Test");
    assert_eq!(installed["version"], "2.0.0", "{installed}");

    let by_webhook = json!({"kind": "webhook", "id": actor_of(&hook)});
    assert_eq!(w.audited("package.created", &package["id"]).await["actor"], by_webhook);
    assert_eq!(w.audited("deployment.requested", &deployment["id"]).await["actor"], by_webhook);
    let history = w.app.deliveries(&w.acme, &hook).await;
    assert_eq!(history.len(), 1, "{history:?}");
    let d = &history[0];
    assert_eq!(
        (&d["id"], &d["outcome"], &d["authenticated"], &d["deployment_id"], &d["commit"]),
        (&json!("build-42"), &json!("accepted"), &json!(true), &deployment["id"], &json!(commit))
    );
}

#[tokio::test]
async fn a_github_push_deploys_its_after_commit_and_a_ping_answers_200_and_deploys_nothing() {
    let w = world(None).await;
    let hook = w.app.webhook(&w.acme, &w.test, &w.orders, "package_and_deploy").await;
    let secret = secret_of(&hook);
    let github = |event: &'static str, delivery: String, body: String| {
        let signature = format!("sha256={}", hmac_sha256_hex(secret.as_bytes(), body.as_bytes()));
        w.app
            .request(Method::POST, &format!("/hooks/v1/{}", id_of(&hook)), None)
            .header("user-agent", "GitHub-Hookshot/5f3b1c2")
            .header("content-type", "application/json")
            .header("x-github-event", event)
            .header("x-github-delivery", delivery)
            .header("x-github-hook-id", "448812345")
            .header("x-hub-signature", "sha1=0000000000000000000000000000000000000000")
            .header("x-hub-signature-256", signature)
            .body(body)
            .send()
    };

    let ping = json!({"zen": "Design for failure.", "hook_id": 448812345, "hook": {"type": "Repository", "id": 448812345, "active": true,
        "events": ["push"], "config": {"content_type": "json", "insecure_ssl": "0", "url": format!("https://berth.example{}", hook["delivery_path"].as_str().unwrap_or_default())}},
        "repository": {"id": 1296269, "full_name": "acme/orders"}, "sender": {"login": "octocat", "id": 1}});
    let answer = expect_status(github("ping", uuid::Uuid::new_v4().to_string(), ping.to_string()).await.expect("sent"), StatusCode::OK).await;
    assert_eq!((&answer["outcome"], &answer["deployment_id"], &answer["package_id"]), (&json!("ignored"), &Value::Null, &Value::Null), "{answer}");
    assert_eq!(w.deployments().await, Vec::<Value>::new(), "a ping deploys nothing");

    w.app.revise(&w.acme, &w.orders, b"orders v2").await;
    let after = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c";
    let push = json!({
        "ref": "refs/heads/main", "before": "6113728f27ae82c7b1a177c8d03f9e96e0adf246", "after": after,
        "created": false, "deleted": false, "forced": false, "base_ref": null,
        "compare": "https://github.com/acme/orders/compare/6113728f27ae...0d1a26e67d8f",
        "commits": [{"id": after, "tree_id": "f9d2a07e9488b91af2641b26b9407fe22a451433", "distinct": true,
            "message": "Retry ERP timeouts\n\nThe ERP answers slowly at month end.", "timestamp": "2026-11-30T10:15:42+01:00",
            "url": format!("https://github.com/acme/orders/commit/{after}"), "author": {"name": "Ann", "email": "ann@acme.example", "username": "ann"},
            "committer": {"name": "GitHub", "email": "noreply@github.com", "username": "web-flow"},
            "added": [], "removed": [], "modified": ["orders.bpmn"]}],
        "head_commit": {"id": after, "message": "Retry ERP timeouts\n\nThe ERP answers slowly at month end.", "timestamp": "2026-11-30T10:15:42+01:00",
            "author": {"name": "Ann", "email": "ann@acme.example"}, "added": [], "removed": [], "modified": ["orders.bpmn"]},
        "repository": {"id": 1296269, "name": "orders", "full_name": "acme/orders", "private": true, "default_branch": "main",
            "owner": {"login": "acme", "id": 42}, "pushed_at": 1764494142},
        "pusher": {"name": "ann", "email": "ann@acme.example"}, "sender": {"login": "ann", "id": 7}
    });
    // A push to another branch, and any other event, deploy nothing.
    let mut branch = push.clone();
    branch["ref"] = json!("refs/heads/feature/erp-timeouts");
    for (event, body) in [("push", branch), ("pull_request", push.clone())] {
        let answer = expect_status(github(event, uuid::Uuid::new_v4().to_string(), body.to_string()).await.expect("sent"), StatusCode::OK).await;
        assert_eq!(answer["outcome"], json!("ignored"), "{event}: {answer}");
    }
    assert_eq!(w.deployments().await, Vec::<Value>::new(), "only a push to the default branch deploys");

    let delivery = uuid::Uuid::new_v4().to_string();
    let receipt = expect_status(github("push", delivery.clone(), push.to_string()).await.expect("sent"), StatusCode::ACCEPTED).await;
    assert_eq!(receipt["delivery_id"], json!(delivery), "X-GitHub-Delivery is the delivery id: {receipt}");

    let deployment = w.deployment(&receipt["deployment_id"]).await;
    assert_eq!(
        (&deployment["commit"], &deployment["notes"], &deployment["requested_by"]),
        (&json!(after), &json!("Retry ERP timeouts"), &json!(actor_of(&hook)))
    );
    let package = w.package(&receipt["package_id"]).await;
    assert_eq!((&package["commit"], &package["manifest"]["components"][0]["revision"]), (&json!(after), &json!(2)), "{package}");
    w.wait_for_delivery(&hook, &secret, &delivery, "succeeded").await;
    assert_eq!(w.agent.installed(&w.test, &w.orders).expect("the agent runs Orders")["version"], package["version"]);
    assert_eq!(w.deployments().await.len(), 1, "the push deployed once, the ping never");
    let outcomes: Vec<Value> = w.app.deliveries(&w.acme, &hook).await.iter().map(|d| d["outcome"].clone()).collect();
    assert_eq!(outcomes, [json!("accepted"), json!("ignored"), json!("ignored"), json!("ignored")], "newest first");
}

#[tokio::test]
async fn the_documented_deploy_script_run_as_written_exits_0_once_the_agent_deployed_the_commit() {
    let w = world(None).await;
    let hook = w.app.webhook(&w.acme, &w.test, &w.orders, "package_and_deploy").await;
    w.app.revise(&w.acme, &w.orders, b"orders v2").await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/examples/berth-deploy.sh");
    let url = format!("{}/hooks/v1/{}", w.app.base, id_of(&hook));
    let commit = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";

    let run = tokio::process::Command::new("sh")
        .arg(script)
        .arg(&url)
        .arg("3.1.0")
        .env("BERTH_WEBHOOK_SECRET", secret_of(&hook))
        .env("GIT_COMMIT", commit)
        .env("BERTH_POLL_SECONDS", "1")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(90), run).await.expect("the script ends within 90 s").expect("sh runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the script exits 0: {}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    assert!(stdout.lines().any(|l| l == "deployment: succeeded"), "it waited for the outcome:\n{stdout}");

    let history = w.app.deliveries(&w.acme, &hook).await;
    assert_eq!(history.len(), 1, "{history:?}");
    assert!(history[0]["id"].as_str().is_some_and(|id| id.starts_with("ci-")), "{history:?}");
    let deployment = w.deployment(&history[0]["deployment_id"]).await;
    assert_eq!((&deployment["status"], &deployment["commit"]), (&json!("succeeded"), &json!(commit)), "{deployment}");
    assert_eq!(w.package(&deployment["package_id"]).await["version"], "3.1.0", "the script's version argument labels the package");
    assert_eq!(w.agent.installed(&w.test, &w.orders).expect("the agent runs Orders")["version"], "3.1.0");
}

#[tokio::test]
async fn a_delivery_to_production_with_required_approvals_waits_for_an_approval_and_bypasses_nothing() {
    let w = world(None).await;
    let prod = w.app.environment(&w.acme, "Production", "production").await;
    w.app.attach(&w.acme, &prod, &w.runtime).await;
    w.app.set_policy(&w.acme, &prod, json!({"required_approvals": 1})).await;
    let hook = w.app.webhook(&w.acme, &prod, &w.orders, "package_and_deploy").await;
    let secret = secret_of(&hook);

    let receipt = expect_status(w.app.deliver(&hook, &secret, "release-1", r#"{"commit":"abc1234"}"#).await, StatusCode::ACCEPTED).await;
    assert_eq!(receipt["status"], "pending_approval", "{receipt}");
    let deployment = w.deployment(&receipt["deployment_id"]).await;
    assert_eq!((&deployment["status"], &deployment["required_approvals"]), (&json!("pending_approval"), &json!(1)), "{deployment}");
    let status = expect_status(w.app.delivery_status(&hook, &secret, "release-1").await, StatusCode::OK).await;
    assert_eq!(status["status"], "pending_approval", "{status}");

    // A person approves: only then does it run.
    let carol = w.app.user_token(&w.acme.id, "carol@acme.example", &["approver"]);
    let path = format!("/v1/deployments/{}/approvals", deployment["id"].as_str().expect("an id"));
    expect_status(w.app.post(&path, &carol, json!({"decision": "approve", "comment": "ok"})).await, StatusCode::CREATED).await;
    w.wait_for_delivery(&hook, &secret, "release-1", "succeeded").await;
    assert!(w.agent.installed(&prod, &w.orders).is_some(), "deployed after the approval");
}

#[tokio::test]
async fn in_a_freeze_window_a_delivery_is_refused_unless_the_webhook_holds_it_until_the_window_ends() {
    let w = world(None).await;
    let end = (chrono::Utc::now() + chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
    w.app.set_policy(&w.acme, &w.test, json!({"freeze_windows": [{"start": chrono::Utc::now() - chrono::Duration::hours(1), "end": end}]})).await;

    let strict = w.app.webhook(&w.acme, &w.test, &w.orders, "package_and_deploy").await;
    assert_eq!(strict["hold_if_frozen"], false, "{strict}");
    expect_problem(w.app.deliver(&strict, &secret_of(&strict), "frozen-1", "{}").await, StatusCode::CONFLICT, "freeze_window").await;
    let refused = w.delivery(&strict, "frozen-1").await;
    assert_eq!((&refused["outcome"], &refused["code"], &refused["deployment_id"]), (&json!("refused"), &json!("freeze_window"), &Value::Null));
    assert_eq!(w.deployments().await, Vec::<Value>::new());

    let body =
        json!({"name": "held to Test", "action": "package_and_deploy", "environment_id": w.test["id"], "component_id": w.orders["id"], "hold_if_frozen": true});
    let patient = expect_status(w.app.post("/v1/webhooks", &w.acme.admin, body).await, StatusCode::CREATED).await;
    let receipt = expect_status(w.app.deliver(&patient, &secret_of(&patient), "frozen-2", "{}").await, StatusCode::ACCEPTED).await;
    assert_eq!(receipt["status"], "scheduled", "{receipt}");
    let deployment = w.deployment(&receipt["deployment_id"]).await;
    assert_eq!((&deployment["status"], &deployment["scheduled_at"]), (&json!("scheduled"), &json!(end)), "held until the window ends: {deployment}");
}

#[tokio::test]
async fn a_replay_a_stale_timestamp_and_a_bad_signature_are_refused_and_recorded_while_300_seconds_of_skew_either_way_are_accepted() {
    let w = world(None).await;
    let hook = w.app.webhook(&w.acme, &w.test, &w.orders, "package_and_deploy").await;
    let secret = secret_of(&hook);
    let body = r#"{"commit":"abc1234"}"#;
    let at = |t: i64| berth_signature(&secret, t, body.as_bytes());
    let send = async |id: &str, signature: String| w.app.deliver_signed(&hook, id, &signature, body.as_bytes().to_vec()).await;

    expect_problem(send("stale-past", at(unix_now() - 301)).await, StatusCode::UNAUTHORIZED, "stale_signature").await;
    expect_problem(send("stale-future", at(unix_now() + 301)).await, StatusCode::UNAUTHORIZED, "stale_signature").await;
    let forged = berth_signature("whsec_not-the-secret", unix_now(), body.as_bytes());
    expect_problem(send("forged", forged).await, StatusCode::UNAUTHORIZED, "bad_signature").await;
    let tampered = w.app.deliver_signed(&hook, "tampered", &at(unix_now()), br#"{"commit":"evil"}"#.to_vec()).await;
    expect_problem(tampered, StatusCode::UNAUTHORIZED, "bad_signature").await;
    for (id, code) in [("stale-past", "stale_signature"), ("stale-future", "stale_signature"), ("forged", "bad_signature"), ("tampered", "bad_signature")] {
        let d = w.delivery(&hook, id).await;
        assert_eq!(
            (&d["outcome"], &d["code"], &d["authenticated"], &d["deployment_id"]),
            (&json!("refused"), &json!(code), &json!(false), &Value::Null),
            "{d}"
        );
    }
    assert_eq!(w.deployments().await, Vec::<Value>::new(), "nothing refused deployed");

    // 290 seconds off either way is within the tolerance.
    let past = expect_status(send("edge-past", at(unix_now() - 290)).await, StatusCode::ACCEPTED).await;
    w.wait_for(&past["deployment_id"], "succeeded").await;
    let replay = at(unix_now() - 290);
    let future = expect_status(send("edge-future", at(unix_now() + 290)).await, StatusCode::ACCEPTED).await;
    w.wait_for(&future["deployment_id"], "succeeded").await;

    // The same delivery again, as sent or signed afresh: refused, and nothing happens.
    expect_problem(send("edge-past", replay).await, StatusCode::CONFLICT, "duplicate_delivery").await;
    expect_problem(send("edge-future", at(unix_now())).await, StatusCode::CONFLICT, "duplicate_delivery").await;
    assert_eq!(w.deployments().await.len(), 2, "no second deployment for a replay");
    let original = w.delivery(&hook, "edge-past").await;
    assert_eq!((&original["outcome"], &original["deployment_id"]), (&json!("accepted"), &past["deployment_id"]), "the replay did not overwrite it: {original}");

    // A refused delivery did not use its id up: the real sender can still use it.
    let retried = expect_status(send("forged", at(unix_now())).await, StatusCode::ACCEPTED).await;
    w.wait_for(&retried["deployment_id"], "succeeded").await;
}

#[tokio::test]
async fn after_a_rotation_both_secrets_verify_during_the_overlap_and_only_the_new_one_after_it() {
    let w = world(None).await;
    let hook = w.app.webhook(&w.acme, &w.test, &w.orders, "package_and_deploy").await;
    let old = secret_of(&hook);
    let first = expect_status(w.app.deliver(&hook, &old, "before", "{}").await, StatusCode::ACCEPTED).await;
    w.wait_for(&first["deployment_id"], "succeeded").await;

    let path = format!("/v1/webhooks/{}/rotate-secret", id_of(&hook));
    let rotated = expect_status(w.app.post(&path, &w.acme.admin, json!({"overlap_seconds": 2})).await, StatusCode::OK).await;
    let new = secret_of(&rotated);
    assert_ne!(new, old);
    let expires: chrono::DateTime<chrono::Utc> =
        rotated["previous_secret_expires_at"].as_str().and_then(|t| t.parse().ok()).unwrap_or_else(|| panic!("the overlap's end is shown: {rotated}"));

    // During the overlap (about 0.6 s of its 2 used here, unloaded): a status call with either
    // secret, and a delivery signed with the old one.
    expect_status(w.app.delivery_status(&hook, &new, "before").await, StatusCode::OK).await;
    expect_status(w.app.delivery_status(&hook, &old, "before").await, StatusCode::OK).await;
    let during = w.app.deliver(&hook, &old, "during", "{}").await;
    let too_slow = "the 2 s overlap ended before the checks were answered: too slow a machine to tell";
    assert!(during.status() != StatusCode::UNAUTHORIZED || chrono::Utc::now() < expires, "{too_slow}");
    let during = expect_status(during, StatusCode::ACCEPTED).await;
    assert!(chrono::Utc::now() < expires, "{too_slow}");

    // After it, the old one stops verifying (not before the end the rotation announced) and the new one goes on.
    eventually("the old secret stops verifying", || async {
        let r = w.app.delivery_status(&hook, &old, "during").await;
        if r.status() == StatusCode::UNAUTHORIZED { Ok(()) } else { Err(format!("{}: {}", r.status(), r.text().await.unwrap_or_default())) }
    })
    .await;
    assert!(chrono::Utc::now() >= expires, "the old secret stopped before the end the rotation announced, {expires}");
    w.wait_for(&during["deployment_id"], "succeeded").await;
    expect_status(w.app.delivery_status(&hook, &new, "during").await, StatusCode::OK).await;
    expect_problem(w.app.deliver(&hook, &old, "after-old", "{}").await, StatusCode::UNAUTHORIZED, "bad_signature").await;

    // A sender mid-rotation signs with both: one `v1=` matching is enough.
    let (t, body) = (unix_now(), r#"{"commit":"def5678"}"#);
    let signed = format!("{t}.{body}");
    let both = format!("t={t},v1={},v1={}", hmac_sha256_hex(old.as_bytes(), signed.as_bytes()), hmac_sha256_hex(new.as_bytes(), signed.as_bytes()));
    let receipt = expect_status(w.app.deliver_signed(&hook, "both", &both, body.as_bytes().to_vec()).await, StatusCode::ACCEPTED).await;
    w.wait_for_delivery(&hook, &new, "both", "succeeded").await;
    assert_eq!(w.deployment(&receipt["deployment_id"]).await["commit"], "def5678");
    let audited = w.audited("webhook.secret_rotated", &hook["id"]).await;
    assert_eq!(audited["summary"]["overlap_seconds"], 2, "{audited}");
}

#[tokio::test]
async fn another_tenant_cannot_see_change_or_sign_for_a_webhook_and_an_unknown_id_is_not_found() {
    let w = world(None).await;
    let hook = w.app.webhook(&w.acme, &w.test, &w.orders, "package_and_deploy").await;
    let globex = w.app.tenant("Globex").await;
    let their_env = w.app.environment(&globex, "Test", "test").await;
    let their_component = w.app.component(&globex, "Orders", "process", b"globex orders", &[]).await;
    let theirs = w.app.webhook(&globex, &their_env, &their_component, "package_and_deploy").await;

    let path = format!("/v1/webhooks/{}", id_of(&hook));
    expect_problem(w.app.get(&path, &globex.admin).await, StatusCode::NOT_FOUND, "not_found").await;
    expect_problem(w.app.patch(&path, &globex.admin, json!({"active": false})).await, StatusCode::NOT_FOUND, "not_found").await;
    expect_problem(w.app.post(&format!("{path}/rotate-secret"), &globex.admin, json!({"overlap_seconds": 0})).await, StatusCode::NOT_FOUND, "not_found").await;
    expect_problem(w.app.get(&format!("{path}/deliveries"), &globex.admin).await, StatusCode::NOT_FOUND, "not_found").await;
    expect_problem(w.app.delete(&path, &globex.admin).await, StatusCode::NOT_FOUND, "not_found").await;
    let list = expect_status(w.app.get("/v1/webhooks", &globex.admin).await, StatusCode::OK).await;
    assert_eq!(list["items"].as_array().map(|l| l.iter().map(id_of).collect::<Vec<_>>()), Some(vec![id_of(&theirs)]), "{list}");
    let unchanged = w.get(&path).await;
    assert_eq!((&unchanged["active"], &unchanged["etag"], &unchanged["previous_secret_expires_at"]), (&json!(true), &hook["etag"], &Value::Null));

    // Signed with Globex's secret, to Acme's webhook: refused, nothing deployed.
    expect_problem(w.app.deliver(&hook, &secret_of(&theirs), "cross-1", "{}").await, StatusCode::UNAUTHORIZED, "bad_signature").await;
    assert_eq!(w.deployments().await, Vec::<Value>::new());
    let refused = w.delivery(&hook, "cross-1").await;
    assert_eq!((&refused["outcome"], &refused["code"]), (&json!("refused"), &json!("bad_signature")));
    expect_problem(w.app.delivery_status(&hook, &secret_of(&theirs), "cross-1").await, StatusCode::UNAUTHORIZED, "bad_signature").await;

    // No such webhook, a malformed id, a deleted one: the same 404.
    let unknown = json!({"id": uuid::Uuid::new_v4().to_string()});
    expect_problem(w.app.deliver(&unknown, &secret_of(&hook), "nowhere-1", "{}").await, StatusCode::NOT_FOUND, "not_found").await;
    expect_problem(w.app.delivery_status(&unknown, &secret_of(&hook), "nowhere-1").await, StatusCode::NOT_FOUND, "not_found").await;
    expect_problem(w.app.deliver(&json!({"id": "not-a-webhook"}), &secret_of(&hook), "nowhere-2", "{}").await, StatusCode::NOT_FOUND, "not_found").await;
    expect_status(w.app.delete(&path, &w.acme.admin).await, StatusCode::NO_CONTENT).await;
    expect_problem(w.app.deliver(&hook, &secret_of(&hook), "gone-1", "{}").await, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(w.deployments().await, Vec::<Value>::new());
}

#[tokio::test]
async fn a_body_over_256_kib_gets_413_and_the_61st_delivery_in_a_minute_gets_429_with_retry_after() {
    let w = world(None).await;
    let hook = w.app.webhook(&w.acme, &w.test, &w.orders, "package_and_deploy").await;
    let secret = secret_of(&hook);
    // `{"notes":"xxx..."}` padded to exactly `size` bytes.
    let body_of = |size: usize| format!(r#"{{"notes":"{}"}}"#, "x".repeat(size - r#"{"notes":""}"#.len()));
    let over = body_of(256 * 1024 + 1);
    let signature = berth_signature(&secret, unix_now(), over.as_bytes());
    expect_problem(w.app.deliver_signed(&hook, "big-1", &signature, over.into_bytes()).await, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    // 256 KiB exactly is read (and, signed with the wrong secret, refused for that).
    let limit = body_of(256 * 1024);
    let wrong = berth_signature("whsec_wrong", unix_now(), limit.as_bytes());
    expect_problem(w.app.deliver_signed(&hook, "big-2", &wrong, limit.into_bytes()).await, StatusCode::UNAUTHORIZED, "bad_signature").await;
    assert_eq!(w.deployments().await, Vec::<Value>::new());

    // 61 signed deliveries at once to a fresh webhook (each refused for want of a version, cheaply):
    // exactly one is over the limit, if they all fell in one minute; a burst that straddles a
    // minute's end proves nothing and is sent again once, to another fresh webhook.
    for attempt in 1..=2 {
        let hook = w.app.webhook(&w.acme, &w.test, &w.orders, "deploy_version").await;
        let secret = secret_of(&hook);
        let minute = unix_now().div_euclid(60);
        let mut burst = tokio::task::JoinSet::new();
        for n in 0..61 {
            let (http, url) = (w.app.http.clone(), format!("{}/hooks/v1/{}", w.app.base, id_of(&hook)));
            let signature = berth_signature(&secret, unix_now(), b"{}");
            burst.spawn(async move {
                let r = http.post(url).header("berth-delivery", format!("burst-{n}")).header("berth-signature", signature).body("{}").send().await;
                r.expect("the request is sent")
            });
        }
        let mut answers: Vec<Response> = vec![];
        while let Some(done) = burst.join_next().await {
            answers.push(done.expect("the request task ends"));
        }
        if unix_now().div_euclid(60) != minute && attempt == 1 {
            continue;
        }
        let (limited, others): (Vec<Response>, Vec<Response>) = answers.into_iter().partition(|r| r.status() == StatusCode::TOO_MANY_REQUESTS);
        let statuses: Vec<StatusCode> = others.iter().map(Response::status).collect();
        assert_eq!(limited.len(), 1, "one of 61 is over the limit; the others: {statuses:?}");
        assert!(statuses.iter().all(|s| *s == StatusCode::UNPROCESSABLE_ENTITY), "the other 60 got through to be refused for their body: {statuses:?}");
        let limited = limited.into_iter().next().expect("one");
        let retry_after = limited.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
        assert!(retry_after.is_some_and(|s| (1..=60).contains(&s)), "Retry-After says when to come back: {retry_after:?}");
        expect_problem(limited, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
        return;
    }
}

#[tokio::test]
async fn a_rolled_back_version_is_refused_to_a_deploy_version_webhook_as_quarantined_and_a_person_may_override() {
    // v2's apply fails while the flag exists: the agent restores v1.
    let flag = tempfile::tempdir().expect("a dir");
    let broken = flag.path().join("broken");
    std::fs::write(&broken, b"").expect("the flag");
    let apply = format!(r#"if [ "$BERTH_VERSION" = "v2" ] && [ -f {} ]; then echo "broken mapping" >&2; exit 3; fi"#, broken.display());
    let w = world(Some(&apply)).await;
    let d1 = w.app.deploy(&w.acme, &w.v1, &w.test, "v1").await;
    w.app.wait_for_status(&w.acme, &d1, "succeeded").await;
    w.app.revise(&w.acme, &w.orders, b"orders v2").await;
    let v2 = w.app.package(&w.acme, &w.orders, Some("v2")).await;
    let failed = w.app.deploy(&w.acme, &v2, &w.test, "v2").await;
    w.app.wait_for_status(&w.acme, &failed, "rolled_back").await;

    let hook = w.app.webhook(&w.acme, &w.test, &w.orders, "deploy_version").await;
    let problem =
        expect_problem(w.app.deliver(&hook, &secret_of(&hook), "redeploy-v2", r#"{"version":"v2"}"#).await, StatusCode::CONFLICT, "quarantined").await;
    assert!(problem["detail"].as_str().is_some_and(|d| d.contains("\"v2\"")), "{problem}");
    let refused = w.delivery(&hook, "redeploy-v2").await;
    assert_eq!((&refused["outcome"], &refused["code"], &refused["deployment_id"]), (&json!("refused"), &json!("quarantined"), &Value::Null), "{refused}");
    assert_eq!(w.deployments().await.len(), 2, "the webhook deployed nothing");

    // A person, with the cause fixed, overrides it.
    std::fs::remove_file(&broken).expect("the flag goes");
    let body = json!({"package_id": v2["id"], "environment_id": w.test["id"], "override_quarantine": true, "notes": "fixed the mapping"});
    let overridden = expect_status(w.app.post("/v1/deployments", &w.acme.admin, body).await, StatusCode::CREATED).await;
    w.app.wait_for_status(&w.acme, &overridden, "succeeded").await;
    assert_eq!(w.agent.installed(&w.test, &w.orders).expect("the agent runs Orders")["version"], "v2");
}
