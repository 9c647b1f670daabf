//! Per-tenant write throughput through the audit chain: W concurrent
//! writers (1, 8, 32) creating environments in one tenant, against the same
//! W writers spread over W tenants. Every audited write is one DynamoDB
//! transaction that moves the tenant's single audit head item (a condition
//! on its sequence number), so writers in one tenant race for that item and
//! a loser reads the head again and retries; writers in different tenants
//! never meet. The ratio one-tenant / W-tenants is what the chain costs.
//!
//! In real DynamoDB the ceiling is that one item: a transactional write
//! costs 2 WCU per KB, one partition takes at most 1000 WCU/s, so at most
//! about 500 audited writes a second per tenant, and in practice fewer,
//! because each write must read the head and commit before the next can
//! (optimistic concurrency on one item): about 1 / (GetItem + TransactWriteItems
//! round trip), ~10-20 ms in a region, so 50-100 a second per tenant
//! whatever the number of writers. Across tenants it scales with them.

use crate::report::Report;
use crate::{Bench, Sample, concurrent, roomy_tenant, verify_chain};
use berth_tests::TestApp;
use reqwest::StatusCode;
use serde_json::json;
use std::sync::Arc;

pub async fn throughput(bench: &Bench, app: &Arc<TestApp>, report: &mut Report) -> anyhow::Result<()> {
    let create = |app: Arc<TestApp>, token: Arc<str>, name: String| async move {
        let request = app.request(reqwest::Method::POST, "/v1/environments", Some(&token)).json(&json!({"name": name, "classification": "test"}));
        crate::check(request.send().await, StatusCode::CREATED).await
    };
    // The same number of writes at every W, so each figure is over about the same work.
    let total = bench.n(160);
    for writers in [1usize, 8, 32] {
        let each = total.div_ceil(writers).max(2);
        let tenant = roomy_tenant(app, &format!("bench-tput-one-{writers}")).await;
        let token: Arc<str> = tenant.admin.as_str().into();
        let one = {
            let app = app.clone();
            concurrent(writers, each, bench.deadline(), move |w, i| create(app.clone(), token.clone(), format!("w{w}-{i}"))).await
        };
        verify_chain(app, &tenant).await;
        let mut tokens: Vec<Arc<str>> = Vec::with_capacity(writers);
        for w in 0..writers {
            tokens.push(roomy_tenant(app, &format!("bench-tput-many-{writers}-{w}")).await.admin.as_str().into());
        }
        let tokens = Arc::new(tokens);
        let many = {
            let app = app.clone();
            concurrent(writers, each, bench.deadline(), move |w, i| create(app.clone(), tokens[w].clone(), format!("env-{i}"))).await
        };
        let failed =
            |s: &Sample| if s.errors > 0 { format!(", {} failed (first: {})", s.errors, s.first_error.as_deref().unwrap_or("?")) } else { String::new() };
        println!(
            "audited writes, {writers} writer(s): one tenant {:.1}/s (p50 {:.1} ms){}, {writers} tenants {:.1}/s (p50 {:.1} ms){}",
            one.per_second(),
            one.percentile(50.0).as_secs_f64() * 1000.0,
            failed(&one),
            many.per_second(),
            many.percentile(50.0).as_secs_f64() * 1000.0,
            failed(&many)
        );
        anyhow::ensure!(
            one.per_second() > 0.0 && many.per_second() > 0.0,
            "no write succeeded with {writers} writers: {:?}",
            one.first_error.or(many.first_error)
        );
        report
            .row("audit throughput", &format!("{writers} writer(s) in one tenant"), one.per_second(), "writes/s")
            .against(&format!("{writers} writer(s) over {writers} tenant(s)"), many.per_second())
            .note(format!(
                "{} + {} writes; p50 {:.1} ms vs {:.1} ms; p99 {:.1} ms vs {:.1} ms{}{}",
                one.latencies.len(),
                many.latencies.len(),
                one.percentile(50.0).as_secs_f64() * 1000.0,
                many.percentile(50.0).as_secs_f64() * 1000.0,
                one.percentile(99.0).as_secs_f64() * 1000.0,
                many.percentile(99.0).as_secs_f64() * 1000.0,
                failed(&one),
                failed(&many)
            ));
        report.point("audit_one_tenant", "concurrent writers", "writes/s in one tenant", writers as f64, one.per_second());
        report.point("audit_many_tenants", "concurrent writers", "writes/s over as many tenants", writers as f64, many.per_second());
    }
    Ok(())
}
