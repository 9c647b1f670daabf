//! AWS calls per operation, counted by the SDK interceptor of
//! shared/aws/src/calls.rs (the one the IAM coverage test uses), each next
//! to the design minimum for it. Every call is listed in the row's note
//! (`Service:Operation xN`), so an extra one shows.
//!
//! Not counted: the sweeper (it runs on its own timer), and the deployments
//! queue's receive and delete, which in AWS the Lambda event source mapping
//! makes, not the dispatcher; nor a presigned URL's signing (no request is
//! sent: the agent downloads with it).

use crate::Bench;
use crate::fanout::Fleet;
use crate::report::Report;
use berth_aws::calls::{AwsCall, mark, since};
use berth_tests::{TestApp, expect_status, id_of};
use reqwest::StatusCode;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The calls Berth's functions make: no sweeper, no event source mapping,
/// no presigned URL (signed here, sent by the agent or the browser).
pub fn control_plane(calls: Vec<AwsCall>) -> Vec<AwsCall> {
    calls.into_iter().filter(|c| c.function != Some("sweeper") && !event_source_mapping(c) && !c.presigned).collect()
}

fn event_source_mapping(call: &AwsCall) -> bool {
    call.function == Some("dispatcher") && call.service == "SQS" && matches!(call.operation.as_str(), "ReceiveMessage" | "DeleteMessage")
}

/// Waits until the dispatcher has handled a message sent after `from` (its
/// event source mapping deletes it then), at most `limit`.
pub async fn wait_for_dispatch(from: usize, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if since(from).iter().any(|c| event_source_mapping(c) && c.operation == "DeleteMessage") {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Calls counted by function and `Service:Operation`.
#[derive(Default)]
pub struct Tally(BTreeMap<(String, String), usize>);

impl Tally {
    pub fn of(calls: &[AwsCall]) -> Tally {
        let mut tally = Tally::default();
        for c in calls {
            *tally.0.entry((c.function.unwrap_or("bench").to_string(), format!("{}:{}", c.service, c.operation))).or_default() += 1;
        }
        tally
    }

    pub fn add(&mut self, other: &Tally) {
        for (k, n) in &other.0 {
            *self.0.entry(k.clone()).or_default() += n;
        }
    }

    pub fn total_of(&self, functions: &[&str]) -> usize {
        self.0.iter().filter(|((f, _), _)| functions.contains(&f.as_str())).map(|(_, n)| n).sum()
    }

    /// `DynamoDB:GetItem x2, SQS:SendMessage x10` over `functions`.
    pub fn line(&self, functions: &[&str]) -> String {
        let mut merged: BTreeMap<&str, usize> = BTreeMap::new();
        for ((f, op), n) in &self.0 {
            if functions.contains(&f.as_str()) {
                *merged.entry(op).or_default() += n;
            }
        }
        if merged.is_empty() {
            return "none".into();
        }
        merged.iter().map(|(op, n)| format!("{op} x{n}")).collect::<Vec<_>>().join(", ")
    }
}

/// Runs `work` and returns the calls Berth made during it.
async fn counting<T>(work: impl std::future::Future<Output = T>) -> (T, Tally) {
    let from = mark();
    let out = work.await;
    (out, Tally::of(&control_plane(since(from))))
}

/// One row: the calls of `functions`, against the design minimum and its arithmetic.
fn row(report: &mut Report, figure: &str, tally: &Tally, functions: &[&str], minimum: usize, arithmetic: &str) {
    let total = tally.total_of(functions);
    report
        .row("AWS calls", figure, total as f64, "calls")
        .against("design minimum", minimum as f64)
        .goal(1.0)
        .note(format!("counted: {}; minimum: {arithmetic}", tally.line(functions)));
}

pub async fn calls(_bench: &Bench, app: &Arc<TestApp>, report: &mut Report) -> anyhow::Result<()> {
    let fleet = Fleet::new(app, "bench-calls", 1).await?;
    let (tenant, admin) = (&fleet.tenant, fleet.tenant.admin.as_str());

    let (response, tally) = counting(app.get("/v1/me", admin)).await;
    expect_status(response, StatusCode::OK).await;
    row(report, "GET /v1/me", &tally, &["api"], 1, "1 GetItem (the tenant: its name, plan and suspension), or none while the function has it cached");

    let path = format!("/v1/components/{}/revisions", id_of(&fleet.component));
    let (response, tally) = counting(app.post(&path, admin, json!({"content": berth_tests::b64(b"orders v2")}))).await;
    expect_status(response, StatusCode::CREATED).await;
    row(report, "create a component revision", &tally, &["api"], 3, REVISION);

    let body = json!({"component_id": fleet.component["id"], "version": "v2"});
    let (response, tally) = counting(app.post("/v1/packages", admin, body)).await;
    let v2 = expect_status(response, StatusCode::CREATED).await;
    row(report, "create a package (1 component)", &tally, &["api"], 4, PACKAGE);

    let body = json!({"package_id": v2["id"], "environment_id": fleet.env["id"]});
    let (response, tally) = counting(app.post("/v1/deployments/validate", admin, body)).await;
    expect_status(response, StatusCode::OK).await;
    row(report, "validate a deployment (1 runtime)", &tally, &["api"], VALIDATE_MINIMUM, VALIDATE);

    // Deploy to N: the request, then the dispatcher's handling of its message.
    let (d, tally) = deploy(app, &fleet, &v2).await?;
    deploy_row(report, 1, &tally);
    for n in [10usize, 100] {
        let many = Fleet::new(app, &format!("bench-calls-{n}"), n).await?;
        let (_, tally) = deploy(app, &many, &many.package).await?;
        deploy_row(report, n, &tally);
    }

    // One job cycle of an agent: its receive, the claim, and its five reports.
    let agent = &fleet.agents[0];
    let deadline = Instant::now() + Duration::from_secs(60);
    let (job, receive) = counting(agent.receive_and_claim(app, deadline)).await;
    let job = job?;
    anyhow::ensure!(job["deployment_id"] == d["id"], "the job is the deployment's: {job}");
    let mut cycle = receive;
    let mut steps = vec![format!("receive + claim: {}", cycle.line(&["bench", "agent-gateway"]))];
    for phase in ["delivered", "downloading", "backing_up", "applying", "deployed"] {
        let (answer, tally) = counting(agent.report(app, &job, phase)).await;
        answer?;
        steps.push(format!("{phase}: {}", tally.line(&["agent-gateway"])));
        cycle.add(&tally);
    }
    let total = cycle.total_of(&["bench", "agent-gateway"]);
    report
        .row("AWS calls", "one agent job cycle (receive, claim, 5 reports)", total as f64, "calls")
        .against("design minimum", AGENT_CYCLE_MINIMUM as f64)
        .goal(1.0)
        .note(format!("counted: {}; minimum: {AGENT_CYCLE_ARITHMETIC}", steps.join("; ")));

    // Approve: a deployment waiting for one approver, approved by one.
    app.set_policy(tenant, &fleet.env, json!({"required_approvals": 1, "approver_roles": ["approver"]})).await;
    let pending = app.deploy(tenant, &fleet.package, &fleet.env, "needs an approval").await;
    anyhow::ensure!(pending["status"] == "pending_approval", "a deployment under a one-approver policy waits: {pending}");
    let approver = app.user_token(&tenant.id, "approver@bench.example", &["approver"]);
    let path = format!("/v1/deployments/{}/approvals", id_of(&pending));
    let (response, tally) = counting(app.post(&path, &approver, json!({"decision": "approve", "comment": "ok"}))).await;
    expect_status(response, StatusCode::CREATED).await;
    row(report, "approve a deployment (the last approval)", &tally, &["api"], APPROVE_MINIMUM, APPROVE_ARITHMETIC);
    Ok(())
}

// The design minimums, with their arithmetic. Reads of items whose keys are
// known at once count as one BatchGetItem; a uniqueness check is a condition
// of the transaction, not a read; a runtime's queue URL follows from its id;
// the tenant item is cached by the function (a few seconds), so not read.
const REVISION: &str = "1 BatchGetItem (component, audit head) + 1 S3 PutObject (content) + 1 TransactWriteItems (component, revision, audit event and head)";
const PACKAGE: &str = "1 BatchGetItem (component, audit head; the version's uniqueness a condition) + 1 S3 GetObject per component (1) + 1 S3 PutObject (archive) + 1 TransactWriteItems";
const VALIDATE_MINIMUM: usize = 7;
const VALIDATE: &str = "1 BatchGetItem (environment, package, policy, the package's quarantine there, the environment's extension values) + 1 GetItem (the in-flight lock, keyed by the package's component) + 1 Query (the environment's active versions) + ceil(N/100) Query (the environment's attachments; N = 1) + ceil(N/100) BatchGetItem (those runtimes' items: their last heartbeat, which changes too often to copy onto each attachment) + 1 Query (the tenant's environments: classifications for the licence count) + 1 Query (the tenant's connection slots) = 5 + 2";
const AGENT_CYCLE_MINIMUM: usize = 18;
const AGENT_CYCLE_ARITHMETIC: &str = "1 ReceiveMessage + claim (1 BatchGetItem: runtime, job, target, deployment; 1 ChangeMessageVisibility; 1 conditional write) + 4 reports x (1 GetItem runtime + 1 conditional write of target and timeline event) + the last settles (1 BatchGetItem deployment and audit head, 1 Query targets, 1 TransactWriteItems, 1 DeleteMessage) = 1 + 3 + 8 + 6";
const APPROVE_MINIMUM: usize = 5;
const APPROVE_ARITHMETIC: &str = "1 BatchGetItem (deployment, audit head) + 1 GetItem (the policy: keyed by the deployment's environment, so read once the deployment is) + 1 Query (its approvals) + 1 TransactWriteItems (approval, deployment queued, audit event and head) + 1 SendMessage (deployments queue)";

/// Deploy to `n`: the api's validation reads (`VALIDATE`, the audit head in
/// its first BatchGetItem) + 1 TransactWriteItems (deployment, lock, audit,
/// timeline) + 1 SendMessage; then the dispatcher's 1 BatchGetItem
/// (deployment, audit head) + ceil(n/100) Query and BatchGetItem (attached
/// runtimes: attachments, then the runtimes' items) + ceil(n/50)
/// TransactWriteItems (targets and their jobs, two items each of the 100 a
/// transaction takes) + 1 TransactWriteItems (started, audited, timeline) + n
/// SendMessage (one queue per runtime: no batch across queues).
pub fn deploy_minimum(n: usize) -> (usize, String) {
    let pages = n.div_ceil(100);
    let target_writes = n.div_ceil(50);
    let api = 5 + 2 * pages + 2;
    let dispatcher = 1 + 2 * pages + target_writes + 1 + n;
    (
        api + dispatcher,
        format!(
            "api {api} (validation: 1 BatchGetItem + 1 GetItem + 3 Query + {pages} Query and {pages} BatchGetItem of runtimes; 1 TransactWriteItems + 1 SendMessage) + dispatcher {dispatcher} (1 BatchGetItem + {pages} Query and {pages} BatchGetItem of runtimes + {target_writes} TransactWriteItems of up to 50 targets + 1 TransactWriteItems + {n} SendMessage)"
        ),
    )
}

/// Requests a deployment and waits for the dispatcher to have handled it.
async fn deploy(app: &TestApp, fleet: &Fleet, package: &serde_json::Value) -> anyhow::Result<(serde_json::Value, Tally)> {
    let from = mark();
    let d = app.deploy(&fleet.tenant, package, &fleet.env, "counted").await;
    anyhow::ensure!(wait_for_dispatch(from, Duration::from_secs(60)).await, "the dispatcher handled the deployment within 60 s");
    Ok((d, Tally::of(&control_plane(since(from)))))
}

fn deploy_row(report: &mut Report, n: usize, tally: &Tally) {
    let (minimum, arithmetic) = deploy_minimum(n);
    row(report, &format!("deploy to {n} runtime(s) (api + dispatcher)"), tally, &["api", "dispatcher"], minimum, &arithmetic);
}
