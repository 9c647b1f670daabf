//! Latency against the store: `GET /v1/deployments/{id}` and
//! `POST /v1/deployments` through Berth, against the raw DynamoDB calls
//! those handlers must make, issued by this process with the same SDK
//! client on the same LocalStack, interleaved with them (so a slow spell
//! of LocalStack hits both sides): a consistent GetItem of the deployment
//! item, and a TransactWriteItems of the same shape as the deploy's (the
//! same number of Puts, Updates and ConditionChecks, on items of similar
//! size). Each Berth request's own AWS calls are listed in the note: they
//! are where the rest of the time goes.

use crate::calls::{Tally, control_plane};
use crate::report::Report;
use crate::{Bench, Sample};
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem, Update};
use berth_aws::calls::{mark, since};
use berth_aws::keys;
use berth_tests::{TestApp, expect_status, id_of};
use reqwest::StatusCode;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub async fn latency(bench: &Bench, app: &Arc<TestApp>, report: &mut Report) -> anyhow::Result<()> {
    let n = bench.n(200);
    // One component per deploy (a second deploy of a component to an environment waits for the first), all to one
    // environment of one runtime: a tenant's shape, not n environments (each deploy reads every environment of its class).
    let plan = json!({"max_environments": 10, "max_runtimes": 10, "connection_licenses": n + 10});
    let tenant = app.tenant_with_plan("bench-latency", plan).await;
    let tenant_id: berth_domain::ids::TenantId = tenant.id.parse()?;
    let env = app.environment(&tenant, "Latency", "test").await;
    let runtime = app.runtime(&tenant, "lat-runtime").await;
    app.attach(&tenant, &env, &runtime).await;
    let mut packages = Vec::with_capacity(n);
    for i in 0..n {
        let component = app.component(&tenant, &format!("flow-{i}"), "process", format!("flow {i}").as_bytes(), &[]).await;
        packages.push(app.package(&tenant, &component, Some("v1")).await);
    }
    let (dynamo, table) = (app.clients.dynamo.clone(), app.names.table.clone());

    // POST /v1/deployments, each followed by the raw transaction; the first is a warm-up whose calls give the shape.
    let deploy = |package: &serde_json::Value| {
        let body = json!({"package_id": package["id"], "environment_id": env["id"]});
        app.request(reqwest::Method::POST, "/v1/deployments", Some(&tenant.admin)).json(&body).send()
    };
    let from = mark();
    let first = expect_status(deploy(&packages[0]).await?, StatusCode::CREATED).await;
    let calls = control_plane(since(from));
    let post_calls = Tally::of(&calls).line(&["api"]);
    let shape: Vec<String> = calls
        .iter()
        .filter(|c| c.function == Some("api") && c.operation == "TransactWriteItems")
        .flat_map(|c| c.targets.iter().map(|(kind, _)| kind.clone()))
        .collect();
    anyhow::ensure!(!shape.is_empty(), "the deploy made a transaction: {post_calls}");
    let scratch = Scratch::new(&dynamo, &table, &shape).await?;

    let (mut post, mut transact) = (Sample::default(), Sample::default());
    let deadline = bench.deadline();
    for package in packages.iter().skip(1) {
        if Instant::now() >= deadline {
            break;
        }
        let t = Instant::now();
        let outcome = crate::check(deploy(package).await, StatusCode::CREATED).await;
        post.record(t, outcome);
        let t = Instant::now();
        let outcome = scratch.transact(&dynamo, &table).await.map_err(|e| format!("{e:#}"));
        transact.record(t, outcome);
    }

    // GET /v1/deployments/{id} against a GetItem of the deployment item.
    let path = format!("/v1/deployments/{}", id_of(&first));
    let (pk, sk) = keys::deployment(tenant_id, id_of(&first).parse()?);
    let key = HashMap::from([(keys::PK.to_string(), AttributeValue::S(pk)), (keys::SK.to_string(), AttributeValue::S(sk))]);
    let from = mark();
    expect_status(app.get(&path, &tenant.admin).await, StatusCode::OK).await;
    let get_calls = Tally::of(&control_plane(since(from))).line(&["api"]);
    let (mut get, mut get_item) = (Sample::default(), Sample::default());
    let deadline = bench.deadline();
    for _ in 0..bench.n(500) {
        if Instant::now() >= deadline {
            break;
        }
        let t = Instant::now();
        let outcome = crate::check(app.request(reqwest::Method::GET, &path, Some(&tenant.admin)).send().await, StatusCode::OK).await;
        get.record(t, outcome);
        let t = Instant::now();
        let outcome = dynamo.get_item().table_name(&table).set_key(Some(key.clone())).consistent_read(true).send().await;
        get_item.record(t, outcome.map(|_| ()).map_err(|e| format!("{e:?}")));
    }

    for (sample, name) in
        [(&get, "GET /v1/deployments/{id}"), (&get_item, "raw GetItem"), (&post, "POST /v1/deployments"), (&transact, "raw TransactWriteItems")]
    {
        anyhow::ensure!(sample.errors == 0 && !sample.latencies.is_empty(), "{name}: {} failed; first: {:?}", sample.errors, sample.first_error);
    }
    for p in [50.0, 99.0] {
        report
            .row("latency", &format!("GET /v1/deployments/{{id}} p{p}"), ms(get.percentile(p)), "ms")
            .against(&format!("GetItem p{p}"), ms(get_item.percentile(p)))
            .goal(1.3)
            .note(format!("{} requests; each made: {get_calls}", get.latencies.len()));
    }
    for p in [50.0, 99.0] {
        report
            .row("latency", &format!("POST /v1/deployments p{p}"), ms(post.percentile(p)), "ms")
            .against(&format!("TransactWriteItems ({}) p{p}", shape.join(", ")), ms(transact.percentile(p)))
            .goal(1.3)
            .note(format!("{} requests; each made: {post_calls}", post.latencies.len()));
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Items of the bench's own, in the same table, for a transaction shaped
/// like the deploy's: fresh Puts (a deployment-sized item each), Updates and
/// ConditionChecks on items that exist.
struct Scratch {
    shape: Vec<String>,
    tenant: String,
    existing: HashMap<String, AttributeValue>,
}

impl Scratch {
    async fn new(dynamo: &aws_sdk_dynamodb::Client, table: &str, shape: &[String]) -> anyhow::Result<Scratch> {
        let tenant = format!("BENCH#{}", uuid::Uuid::new_v4());
        let existing = HashMap::from([
            (keys::PK.to_string(), AttributeValue::S(tenant.clone())),
            (keys::SK.to_string(), AttributeValue::S("EXISTING".into())),
            ("version".to_string(), AttributeValue::N("1".into())),
        ]);
        dynamo.put_item().table_name(table).set_item(Some(existing.clone())).send().await?;
        Ok(Scratch { shape: shape.to_vec(), tenant, existing })
    }

    async fn transact(&self, dynamo: &aws_sdk_dynamodb::Client, table: &str) -> anyhow::Result<()> {
        let key = || HashMap::from([(keys::PK.to_string(), self.existing[keys::PK].clone()), (keys::SK.to_string(), self.existing[keys::SK].clone())]);
        let mut items = vec![];
        let mut updated = false;
        for kind in &self.shape {
            let item = match kind.as_str() {
                "Put" => {
                    let mut item = HashMap::from([
                        (keys::PK.to_string(), AttributeValue::S(self.tenant.clone())),
                        (keys::SK.to_string(), AttributeValue::S(uuid::Uuid::new_v4().to_string())),
                        // About the size of a deployment item.
                        ("body".to_string(), AttributeValue::S("x".repeat(600))),
                    ]);
                    item.insert("at".into(), AttributeValue::S(chrono::Utc::now().to_rfc3339()));
                    let put = Put::builder().table_name(table).set_item(Some(item)).condition_expression("attribute_not_exists(pk)").build()?;
                    TransactWriteItem::builder().put(put).build()
                }
                // One transaction may touch an item once: one Update on the existing item, any others on fresh ones.
                "Update" if !updated => {
                    updated = true;
                    let update = Update::builder()
                        .table_name(table)
                        .set_key(Some(key()))
                        .update_expression("SET version = version + :one")
                        .condition_expression("attribute_exists(pk)")
                        .expression_attribute_values(":one", AttributeValue::N("1".into()))
                        .build()?;
                    TransactWriteItem::builder().update(update).build()
                }
                "Update" => {
                    let fresh = HashMap::from([
                        (keys::PK.to_string(), AttributeValue::S(self.tenant.clone())),
                        (keys::SK.to_string(), AttributeValue::S(uuid::Uuid::new_v4().to_string())),
                    ]);
                    let update = Update::builder()
                        .table_name(table)
                        .set_key(Some(fresh))
                        .update_expression("SET version = :one")
                        .expression_attribute_values(":one", AttributeValue::N("1".into()))
                        .build()?;
                    TransactWriteItem::builder().update(update).build()
                }
                _ => {
                    let fresh = HashMap::from([
                        (keys::PK.to_string(), AttributeValue::S(self.tenant.clone())),
                        (keys::SK.to_string(), AttributeValue::S(uuid::Uuid::new_v4().to_string())),
                    ]);
                    let check = ConditionCheck::builder().table_name(table).set_key(Some(fresh)).condition_expression("attribute_not_exists(pk)").build()?;
                    TransactWriteItem::builder().condition_check(check).build()
                }
            };
            items.push(item);
        }
        dynamo.transact_write_items().set_transact_items(Some(items)).send().await?;
        Ok(())
    }
}
