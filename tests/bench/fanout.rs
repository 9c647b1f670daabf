//! Fan-out: one deployment to N runtimes (N = 1, 10, 100, 1000; quick mode
//! stops at 100), each runtime's agent simulated in this process with the
//! real protocol: it long-polls its runtime's SQS queue (with the bench's
//! credentials rather than vended ones, the same queue and message), claims
//! the job from the gateway and reports `delivered`. Measured: the time from
//! the deploy request to the last `delivered`, and the AWS calls Berth made
//! meanwhile; then a line is fitted through the points (slope per runtime,
//! intercept, R²), and the points go to the plot.

use crate::Bench;
use crate::calls::{Tally, control_plane, wait_for_dispatch};
use crate::report::Report;
use berth_tests::{TestApp, TestTenant, id_of};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A simulated agent: its runtime, its credential, its queue.
#[derive(Clone)]
pub struct SimAgent {
    pub runtime_id: String,
    pub credential: String,
    pub queue_url: String,
}

/// A tenant with one environment of `n` registered runtimes and a package to deploy.
pub struct Fleet {
    pub tenant: TestTenant,
    pub env: Value,
    pub component: Value,
    pub package: Value,
    pub agents: Vec<SimAgent>,
}

/// How many requests setting up a fleet runs at once.
const SETUP_CONCURRENCY: usize = 8;
/// How many simulated agents wait on their queues at once (each a long poll on LocalStack).
const AGENT_CONCURRENCY: usize = 64;

impl Fleet {
    /// Creates, attaches and registers `n` runtimes, a few at a time.
    pub async fn new(app: &Arc<TestApp>, name: &str, n: usize) -> anyhow::Result<Fleet> {
        let plan = json!({"max_runtimes": n.max(1), "max_environments": 10});
        let tenant = app.tenant_with_plan(name, plan).await;
        let env = app.environment(&tenant, "Fleet", "test").await;
        let component = app.component(&tenant, "Orders", "process", b"orders v1", &[]).await;
        let package = app.package(&tenant, &component, Some("v1")).await;
        let permits = Arc::new(tokio::sync::Semaphore::new(SETUP_CONCURRENCY));
        let mut set = tokio::task::JoinSet::new();
        for i in 0..n {
            let (app, tenant, env, permits) = (app.clone(), tenant.clone(), env.clone(), permits.clone());
            set.spawn(async move {
                let _permit = permits.acquire_owned().await?;
                let runtime = app.runtime(&tenant, &format!("rt-{i}")).await;
                app.attach(&tenant, &env, &runtime).await;
                let credential = app.register_agent(&runtime).await;
                let queue_url = app.runtime_queue_url(&runtime).await;
                anyhow::Ok((i, SimAgent { runtime_id: id_of(&runtime), credential, queue_url }))
            });
        }
        let mut agents: Vec<(usize, SimAgent)> = Vec::with_capacity(n);
        while let Some(done) = set.join_next().await {
            agents.push(done??);
        }
        agents.sort_by_key(|(i, _)| *i);
        Ok(Fleet { tenant, env, component, package, agents: agents.into_iter().map(|(_, a)| a).collect() })
    }
}

/// What an agent did with its job: the job, and when `delivered` was accepted.
pub struct Delivered {
    pub job: Value,
    pub at: Instant,
}

impl SimAgent {
    /// Receives the next job message from the queue (long polls of 2 s until
    /// `deadline`), claims it and reports `delivered`, as `berth-agent` does.
    pub async fn receive_and_deliver(&self, app: &TestApp, deadline: Instant) -> anyhow::Result<Delivered> {
        let job = self.receive_and_claim(app, deadline).await?;
        self.report(app, &job, "delivered").await?;
        Ok(Delivered { job, at: Instant::now() })
    }

    /// Receives a job message and claims it: the claimed job.
    pub async fn receive_and_claim(&self, app: &TestApp, deadline: Instant) -> anyhow::Result<Value> {
        loop {
            anyhow::ensure!(Instant::now() < deadline, "runtime {}: no job message before the phase time limit", self.runtime_id);
            let out = app
                .clients
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .wait_time_seconds(2)
                .max_number_of_messages(1)
                .visibility_timeout(15)
                .send()
                .await?;
            for message in out.messages.unwrap_or_default() {
                let body: Value = serde_json::from_str(message.body().unwrap_or_default())?;
                let job_id = body["job_id"].as_str().ok_or_else(|| anyhow::anyhow!("a job message without job_id: {body}"))?;
                // As the real agent: naming the deployment its message names.
                let claim = json!({"receipt_handle": message.receipt_handle().unwrap_or_default(), "deployment_id": body["deployment_id"]});
                let path = format!("/agent/v1/jobs/{job_id}/claim");
                let response = app.request(reqwest::Method::POST, &path, Some(&self.credential)).json(&claim).send().await?;
                let status = response.status();
                let text = response.text().await?;
                anyhow::ensure!(status == StatusCode::OK, "claim of job {job_id}: {status}: {text}");
                return Ok(serde_json::from_str(&text)?);
            }
        }
    }

    /// Reports `phase` of `job` (as the agent's `POST /agent/v1/jobs/{id}/events`).
    pub async fn report(&self, app: &TestApp, job: &Value, phase: &str) -> anyhow::Result<Value> {
        let path = format!("/agent/v1/jobs/{}/events", job["job_id"].as_str().unwrap_or_default());
        // As the real agent: naming the job's deployment (from the claimed job).
        let body = json!({"phase": phase, "deployment_id": job["deployment_id"]});
        let response = app.request(reqwest::Method::POST, &path, Some(&self.credential)).json(&body).send().await?;
        let status = response.status();
        let text = response.text().await?;
        anyhow::ensure!(status.is_success(), "{phase} report: {status}: {text}");
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// A line `y = slope x + intercept` fitted by least squares, with its R².
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    pub slope: f64,
    pub intercept: f64,
    pub r2: f64,
}

pub fn fit(points: &[(f64, f64)]) -> Option<Fit> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let (mx, my) = (points.iter().map(|p| p.0).sum::<f64>() / n, points.iter().map(|p| p.1).sum::<f64>() / n);
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let syy: f64 = points.iter().map(|p| (p.1 - my).powi(2)).sum();
    if sxx == 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    let intercept = my - slope * mx;
    // All points equal in y: the line explains them entirely.
    let r2 = if syy == 0.0 { 1.0 } else { (sxy * sxy) / (sxx * syy) };
    Some(Fit { slope, intercept, r2 })
}

/// One deployment per N, timed to the last `delivered`, its calls counted.
pub async fn fanout(bench: &Bench, app: &Arc<TestApp>, report: &mut Report) -> anyhow::Result<()> {
    let sizes: Vec<usize> = if bench.scale < 1.0 { vec![1, 10, 100] } else { vec![1, 10, 100, 1000] };
    let (mut times, mut calls) = (vec![], vec![]);
    for n in sizes {
        let setup = Instant::now();
        let fleet = Fleet::new(app, &format!("bench-fanout-{n}"), n).await?;
        println!("fan-out to {n}: {n} runtimes set up in {:.1} s", setup.elapsed().as_secs_f64());
        // A second a runtime at least: on LocalStack a thousand take minutes, more than the phase time limit.
        let deadline = bench.deadline().max(Instant::now() + Duration::from_secs(n as u64));

        let from = berth_aws::calls::mark();
        let started = Instant::now();
        let d = app.deploy(&fleet.tenant, &fleet.package, &fleet.env, "fan-out").await;
        let accepted = started.elapsed();
        // The agents wait on their queues a few dozen at a time, as many hosts would at once.
        let permits = Arc::new(tokio::sync::Semaphore::new(AGENT_CONCURRENCY));
        let mut set = tokio::task::JoinSet::new();
        for agent in fleet.agents.iter().cloned() {
            let (app, permits) = (app.clone(), permits.clone());
            set.spawn(async move {
                let _permit = permits.acquire_owned().await?;
                agent.receive_and_deliver(&app, deadline).await
            });
        }
        let mut last = started;
        let mut delivered = 0usize;
        while let Some(done) = set.join_next().await {
            let done = done??;
            anyhow::ensure!(done.job["deployment_id"] == d["id"], "a job of another deployment: {}", done.job);
            last = last.max(done.at);
            delivered += 1;
        }
        let took = last - started;
        wait_for_dispatch(from, Duration::from_secs(30)).await;
        let tally = Tally::of(&control_plane(berth_aws::calls::since(from)));
        let berth_calls = tally.total_of(&["api", "dispatcher"]);
        let gateway_calls = tally.total_of(&["agent-gateway"]);
        println!(
            "fan-out to {n}: {delivered} of {n} delivered {:.0} ms after the request (201 in {:.0} ms); api + dispatcher {berth_calls} calls, gateway {gateway_calls} (claims and delivered reports)",
            took.as_secs_f64() * 1000.0,
            accepted.as_secs_f64() * 1000.0
        );
        report.point("fanout_seconds", "runtimes", "seconds to every target delivered", n as f64, took.as_secs_f64());
        report.point("fanout_calls", "runtimes", "AWS calls (api + dispatcher)", n as f64, berth_calls as f64);
        report.point("fanout_gateway_calls", "runtimes", "AWS calls (agent gateway: claim + delivered)", n as f64, gateway_calls as f64);
        report.row("fan-out", &format!("deploy to {n}: request to every target delivered"), took.as_secs_f64() * 1000.0, "ms").note(format!(
            "{:.2} ms per runtime; api + dispatcher: {}; gateway: {}",
            took.as_secs_f64() * 1000.0 / n as f64,
            tally.line(&["api", "dispatcher"]),
            tally.line(&["agent-gateway"])
        ));
        times.push((n as f64, took.as_secs_f64() * 1000.0));
        calls.push((n as f64, berth_calls as f64));
    }
    if let Some(f) = fit(&times) {
        report.row("fan-out", "time per runtime (slope of a fitted line)", f.slope, "ms").note(format!(
            "intercept {:.0} ms, R² {:.3}: {}",
            f.intercept,
            f.r2,
            growth(f.r2)
        ));
    }
    if let Some(f) = fit(&calls) {
        report.row("fan-out", "api + dispatcher calls per runtime (slope)", f.slope, "calls").note(format!(
            "intercept {:.1} calls, R² {:.4}: {}",
            f.intercept,
            f.r2,
            growth(f.r2)
        ));
    }
    Ok(())
}

fn growth(r2: f64) -> &'static str {
    if r2 >= 0.98 { "linear in N" } else { "not a straight line in N (see the points)" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_through_exact_points_is_found_with_r2_one() {
        let f = fit(&[(1.0, 12.0), (10.0, 30.0), (100.0, 210.0)]).unwrap();
        assert!((f.slope - 2.0).abs() < 1e-9 && (f.intercept - 10.0).abs() < 1e-9 && (f.r2 - 1.0).abs() < 1e-9, "{f:?}");
        let noisy = fit(&[(1.0, 1.0), (2.0, 5.0), (3.0, 2.0), (4.0, 6.0)]).unwrap();
        assert!(noisy.r2 < 0.9, "{noisy:?}");
        assert_eq!(fit(&[(1.0, 1.0)]), None);
    }
}
