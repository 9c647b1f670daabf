//! Idle cost of the agent fleet: gateway Lambda time per idle agent-hour.

use crate::report::Report;
use crate::{Bench, Sample, check, ms, sequential};
use berth_tests::TestApp;
use reqwest::StatusCode;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// Gateway Lambda time per idle agent-hour (requests x duration), before and
/// after agents received jobs straight from SQS. Idle, an agent sends a
/// heartbeat every 30 s (the reference agent's default) and, by design:
/// - long-poll (before): back-to-back `jobs/next?wait=20`, each holding a
///   gateway execution its full 20 s (180 an hour), the wait computed, as
///   the gateway no longer holds one that long;
/// - SQS (now): one `POST /agent/v1/credentials/aws` an hour (the credentials
///   last an hour); its waits are on SQS, with no Lambda;
/// - fallback: back-to-back `jobs/next`, which the gateway now answers within
///   2 s (measured), for agents that cannot reach SQS.
pub async fn idle_agent_hour(bench: &Bench, app: &Arc<TestApp>, report: &mut Report) -> anyhow::Result<()> {
    const HEARTBEATS_PER_HOUR: f64 = 3600.0 / 30.0;
    let tenant = app.tenant("bench-idle").await;
    let runtime = app.runtime(&tenant, "bench-idle-runtime").await;
    let credential = app.register_agent(&runtime).await;
    let body = json!({"agent_version": "1.0.0", "status": "ok", "running": []});
    let beat = || {
        let request = app.request(reqwest::Method::POST, "/agent/v1/heartbeat", Some(&credential)).json(&body);
        async move { check(request.send().await, StatusCode::OK).await }
    };
    let vend = || {
        let request = app.request(reqwest::Method::POST, "/agent/v1/credentials/aws", Some(&credential));
        async move { check(request.send().await, StatusCode::OK).await }
    };
    let poll = || {
        let request = app.request(reqwest::Method::GET, "/agent/v1/jobs/next?wait=20", Some(&credential));
        async move { check(request.send().await, StatusCode::NO_CONTENT).await }
    };
    sequential(bench.n(10), bench.deadline(), |_| beat()).await;
    let beats = sequential(bench.n(100), bench.deadline(), |_| beat()).await;
    let vends = sequential(bench.n(50), bench.deadline(), |_| vend()).await;
    vends.print("agent queue credentials (sequential)", &[50.0, 99.0], true);
    let polls = sequential(bench.n(5), bench.deadline(), |_| poll()).await;
    polls.print("jobs/next?wait=20, no job (clamped)", &[50.0, 99.0], false);
    if beats.latencies.is_empty() || vends.latencies.is_empty() || polls.latencies.is_empty() {
        anyhow::bail!(
            "idle agent-hour: not computed, a request failed: {}",
            [&beats, &vends, &polls].iter().find_map(|s| s.first_error.clone()).unwrap_or_default()
        );
    }
    let mean = |s: &Sample| s.latencies.iter().map(Duration::as_secs_f64).sum::<f64>() / s.latencies.len() as f64;
    let heartbeats = HEARTBEATS_PER_HOUR * mean(&beats);
    let long_poll = heartbeats + 180.0 * 20.0;
    let sqs = heartbeats + mean(&vends);
    let fallback = heartbeats + 3600.0;
    println!("gateway Lambda time per idle agent-hour (requests x duration):");
    println!("    long-poll design (before): {long_poll:.1} s ({} heartbeats + 180 x 20 s jobs/next)", HEARTBEATS_PER_HOUR);
    println!(
        "    SQS (now): {sqs:.2} s ({} heartbeats of {} + 1 credentials of {}) = {:.3}% of before",
        HEARTBEATS_PER_HOUR,
        ms(Duration::from_secs_f64(mean(&beats))),
        ms(Duration::from_secs_f64(mean(&vends))),
        100.0 * sqs / long_poll
    );
    println!(
        "    jobs/next fallback, polled back to back: {fallback:.0} s ({:.0} requests of {})",
        3600.0 / mean(&polls),
        ms(Duration::from_secs_f64(mean(&polls)))
    );
    report.row("idle agent fleet", "gateway Lambda time per idle agent-hour (SQS)", sqs, "s").against("long-poll design", long_poll).note(format!(
        "{HEARTBEATS_PER_HOUR} heartbeats of {} + 1 credentials of {}",
        ms(Duration::from_secs_f64(mean(&beats))),
        ms(Duration::from_secs_f64(mean(&vends)))
    ));
    report
        .row("idle agent fleet", "gateway Lambda time per idle agent-hour (jobs/next fallback)", fallback, "s")
        .against("long-poll design", long_poll)
        .note(format!("{:.0} jobs/next an hour of {} each", 3600.0 / mean(&polls), ms(Duration::from_secs_f64(mean(&polls)))));
    Ok(())
}
