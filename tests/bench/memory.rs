//! Bench item 5: the peak memory of building a package, and of the agent
//! that downloads, verifies and applies it, against the package's size.
//!
//! Both run as processes of their own: a release `berth-local` (the server,
//! which also runs the package builder) and a release `berth-agent`, both
//! beside this binary (`make bench` builds them). A peak is the kernel's
//! high-water mark (`VmHWM`); the server's is reset (`clear_refs`) after the
//! uploads, so it covers the build alone. The agent is a fresh process per
//! package: its peak covers registration, download, verification and apply.
//!
//! A component's content is capped by the API (4 MiB in a JSON body), so a
//! large package is built from many components of 4 MiB of random (so
//! incompressible) bytes: scripts under sub-processes of at most 128 under one
//! root process (what a package bundles; custom libraries and processing
//! groups are deployed on their own, as requirements).

use crate::Bench;
use crate::report::Report;
use anyhow::{Context, anyhow, bail, ensure};
use base64::Engine;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

const MIB: u64 = 1024 * 1024;
/// The content of one leaf component.
const LEAF_BYTES: usize = 4 * 1024 * 1024;
/// Leaves per group: a revision may hold 200 references.
const GROUP: usize = 128;
/// The goal for the peak at 1 GiB.
const GOAL_MIB: f64 = 64.0;
/// Flat: at most this much more than for the smallest package.
const FLAT: f64 = 1.25;

pub async fn run(bench: &Bench, report: &mut Report) -> anyhow::Result<()> {
    // Quick mode (BERTH_BENCH_SCALE < 1) stops at 256 MiB.
    let sizes_mib: &[u64] = if bench.scale >= 1.0 { &[16, 256, 1024] } else { &[16, 64, 256] };
    println!("memory against package size ({} MiB; leaves of 4 MiB):", sizes_mib.iter().map(u64::to_string).collect::<Vec<_>>().join(", "));
    let mut smallest: Option<(f64, f64)> = None;
    for &size in sizes_mib {
        let measured = measure(size).await.with_context(|| format!("the {size} MiB package"))?;
        println!(
            "    {size:>5} MiB: build {:.1} s, server peak {:.1} MiB (before the build {:.1} MiB); agent peak {:.1} MiB, deploy {:.1} s",
            measured.build.as_secs_f64(),
            measured.server_peak_mib,
            measured.server_before_mib,
            measured.agent_peak_mib,
            measured.deploy.as_secs_f64()
        );
        // berth-local serves every function in one process: the build's own memory is what it adds to that
        // process, which is what a packager function alone would hold above its init.
        let build_mib = (measured.server_peak_mib - measured.server_before_mib).max(0.0);
        let (build_ref, agent_ref) = *smallest.get_or_insert((build_mib, measured.agent_peak_mib));
        let first = sizes_mib[0];
        report
            .row("memory", &format!("package build: peak RSS above the server's before it, {size} MiB"), build_mib, "MiB")
            .goal(GOAL_MIB)
            .note(format!("the server's peak {:.1} MiB, before the build {:.1} MiB", measured.server_peak_mib, measured.server_before_mib));
        report
            .row("memory", &format!("package build memory, {size} MiB vs {first} MiB"), build_mib, "MiB")
            .against(&format!("{first} MiB"), build_ref)
            .goal(FLAT);
        report.row("memory", &format!("agent download+verify+apply peak RSS, {size} MiB"), measured.agent_peak_mib, "MiB").goal(GOAL_MIB);
        report
            .row("memory", &format!("agent peak RSS, {size} MiB vs {first} MiB"), measured.agent_peak_mib, "MiB")
            .against(&format!("{first} MiB"), agent_ref)
            .goal(FLAT);
        report.row("memory", &format!("package build time, {size} MiB"), measured.build.as_secs_f64(), "s");
        report.point("memory_build_mib", "package MiB", "build's peak RSS above before, MiB", size as f64, build_mib);
        report.point("memory_agent_peak_mib", "package MiB", "peak RSS MiB", size as f64, measured.agent_peak_mib);
    }
    Ok(())
}

struct Measured {
    server_before_mib: f64,
    server_peak_mib: f64,
    build: Duration,
    agent_peak_mib: f64,
    deploy: Duration,
}

async fn measure(size_mib: u64) -> anyhow::Result<Measured> {
    let server = Server::start().await?;
    let http = Client::builder().timeout(Duration::from_secs(1800)).build()?;
    let platform = server.token(&["--roles", "platform_admin"])?;
    let body = json!({"name": format!("bench-memory-{size_mib}"), "plan": {"max_runtimes": 10, "max_environments": 10, "connection_licenses": 10}});
    let tenant = call(&http, &server, "POST", "/platform/v1/tenants", &platform, Some(body), StatusCode::CREATED).await?;
    let tenant_id = tenant["id"].as_str().ok_or_else(|| anyhow!("no tenant id: {tenant}"))?.to_string();
    let admin = server.token(&["--tenant", &tenant_id, "--roles", "admin,developer,deployer"])?;

    // Leaves, in groups under one root.
    let leaves = (size_mib * MIB) as usize / LEAF_BYTES;
    let mut groups = vec![];
    let mut members = vec![];
    let mut seed = 0x9E37_79B9_7F4A_7C15_u64 ^ size_mib;
    for i in 0..leaves {
        let content = random_bytes(LEAF_BYTES, &mut seed);
        let body = json!({"name": format!("leaf-{i}"), "type": "script", "content": base64::engine::general_purpose::STANDARD.encode(&content)});
        let leaf = call(&http, &server, "POST", "/v1/components", &admin, Some(body), StatusCode::CREATED).await?;
        members.push(leaf["id"].clone());
        if members.len() == GROUP || i + 1 == leaves {
            let body = json!({"name": format!("group-{}", groups.len()), "type": "process", "content": "Z3JvdXA=", "references": members});
            let group = call(&http, &server, "POST", "/v1/components", &admin, Some(body), StatusCode::CREATED).await?;
            groups.push(group["id"].clone());
            members = vec![];
        }
    }
    let body = json!({"name": "root", "type": "process", "content": "cm9vdA==", "references": groups});
    let root = call(&http, &server, "POST", "/v1/components", &admin, Some(body), StatusCode::CREATED).await?;

    // The build alone: the server's peak is reset after the uploads.
    let server_before_mib = server.rss_mib("VmRSS")?;
    server.reset_peak()?;
    let started = Instant::now();
    let body = json!({"component_id": root["id"], "version": "v1"});
    let response = http.post(server.url("/v1/packages")).bearer_auth(&admin).json(&body).send().await?;
    let status = response.status();
    let mut package: Value = response.json().await?;
    ensure!(status == StatusCode::CREATED || status == StatusCode::ACCEPTED, "POST /v1/packages: {status} {package}");
    let path = format!("/v1/packages/{}", package["id"].as_str().unwrap_or_default());
    // Built after the answer (202) when it is large: wait until it is ready.
    while package["status"] == "building" {
        tokio::time::sleep(Duration::from_millis(250)).await;
        package = call(&http, &server, "GET", &path, &admin, None, StatusCode::OK).await?;
    }
    ensure!(package.get("status").is_none_or(|s| s == "ready"), "the package did not build: {package}");
    let build = started.elapsed();
    let server_peak_mib = server.rss_mib("VmHWM")?;
    let bundled = package["size"].as_u64().unwrap_or_default();
    ensure!(bundled >= size_mib * MIB, "the archive holds {bundled} bytes, less than the {size_mib} MiB of content: {package}");

    // The agent: a fresh process that registers, then downloads, verifies and applies the package.
    let env = call(&http, &server, "POST", "/v1/environments", &admin, Some(json!({"name": "Memory", "classification": "test"})), StatusCode::CREATED).await?;
    let runtime = call(&http, &server, "POST", "/v1/runtimes", &admin, Some(json!({"name": "memory"})), StatusCode::CREATED).await?;
    let attach = format!("/v1/environments/{}/runtimes/{}", env["id"].as_str().unwrap_or_default(), runtime["id"].as_str().unwrap_or_default());
    call(&http, &server, "PUT", &attach, &admin, None, StatusCode::CREATED).await?;
    let agent = AgentProcess::start(&server.base, runtime["registration_token"].as_str().ok_or_else(|| anyhow!("no registration token"))?)?;
    let started = Instant::now();
    let body = json!({"package_id": package["id"], "environment_id": env["id"], "notes": "memory bench"});
    let d = call(&http, &server, "POST", "/v1/deployments", &admin, Some(body), StatusCode::CREATED).await?;
    let path = format!("/v1/deployments/{}", d["id"].as_str().unwrap_or_default());
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        let now = call(&http, &server, "GET", &path, &admin, None, StatusCode::OK).await?;
        match now["status"].as_str().unwrap_or_default() {
            "succeeded" => break,
            "queued" | "in_progress" | "pending_approval" if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(250)).await,
            other => bail!("the deployment ended {other}; the agent's log:\n{}", agent.log()),
        }
    }
    let deploy = started.elapsed();
    let agent_peak_mib = agent.rss_mib("VmHWM")?;
    Ok(Measured { server_before_mib, server_peak_mib, build, agent_peak_mib, deploy })
}

/// `method path` with `token`, expecting `expected`; the JSON body (or null).
async fn call(http: &Client, server: &Server, method: &str, path: &str, token: &str, body: Option<Value>, expected: StatusCode) -> anyhow::Result<Value> {
    let mut request = http.request(method.parse()?, server.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.with_context(|| format!("{method} {path}"))?;
    let status = response.status();
    let text = response.text().await?;
    ensure!(status == expected, "{method} {path}: {status} {}", text.chars().take(400).collect::<String>());
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Incompressible bytes, fast (xorshift64*): the content must not shrink in the archive.
fn random_bytes(len: usize, state: &mut u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A binary beside this one (the release build `make bench` makes).
fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe.parent().ok_or_else(|| anyhow!("no directory for {}", exe.display()))?.join(name);
    ensure!(path.exists(), "{} is missing: `make bench` builds it (cargo build --release -p {name})", path.display());
    Ok(path)
}

/// `field` (VmRSS, VmHWM) of process `pid`, in MiB.
fn status_mib(pid: u32, field: &str) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).with_context(|| format!("process {pid} is gone"))?;
    let line = status.lines().find(|l| l.starts_with(&format!("{field}:"))).ok_or_else(|| anyhow!("no {field} for process {pid}"))?;
    let kib: f64 = line.split_whitespace().nth(1).ok_or_else(|| anyhow!("{line}"))?.parse()?;
    Ok(kib / 1024.0)
}

/// A release `berth-local serve` on a free port, on resources of its own.
struct Server {
    base: String,
    child: std::process::Child,
    log: tempfile::NamedTempFile,
}

impl Server {
    async fn start() -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let stem = format!("bm-{}", uuid::Uuid::new_v4().simple().to_string().get(..12).unwrap_or("x"));
        let log = tempfile::NamedTempFile::new()?;
        let child = std::process::Command::new(sibling("berth-local")?)
            .arg("serve")
            .env("BERTH_BIND", format!("127.0.0.1:{port}"))
            .env("BERTH_TABLE", &stem)
            .env("BERTH_BUCKET", &stem)
            .env("BERTH_DEPLOYMENTS_QUEUE", format!("{stem}-deployments"))
            .env("BERTH_QUEUE_PREFIX", format!("{stem}-"))
            .env("RUST_LOG", "warn")
            .stdout(log.reopen()?)
            .stderr(log.reopen()?)
            .spawn()
            .context("berth-local starts")?;
        let server = Server { base: format!("http://127.0.0.1:{port}"), child, log };
        let http = Client::new();
        for _ in 0..240 {
            if http.get(server.url("/v1/openapi.json")).send().await.is_ok_and(|r| r.status().is_success()) {
                return Ok(server);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        bail!("berth-local did not answer on {}: {}", server.base, std::fs::read_to_string(server.log.path()).unwrap_or_default())
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn token(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = std::process::Command::new(sibling("berth-local")?).arg("token").args(args).stderr(Stdio::inherit()).output()?;
        ensure!(out.status.success(), "berth-local token failed");
        Ok(String::from_utf8(out.stdout)?.trim().to_string())
    }

    fn rss_mib(&self, field: &str) -> anyhow::Result<f64> {
        status_mib(self.child.id(), field)
    }

    /// Resets the process's peak to its current size (Linux: `5` to `clear_refs`).
    fn reset_peak(&self) -> anyhow::Result<()> {
        std::fs::write(format!("/proc/{}/clear_refs", self.child.id()), "5").context("the peak RSS is reset")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A release `berth-agent run` with a state directory of its own, applying with `true`.
struct AgentProcess {
    child: std::process::Child,
    state: tempfile::TempDir,
}

impl AgentProcess {
    fn start(api: &str, registration_token: &str) -> anyhow::Result<Self> {
        let state = tempfile::tempdir()?;
        let log = std::fs::File::create(state.path().join("agent.log"))?;
        let child = std::process::Command::new(sibling("berth-agent")?)
            .arg("run")
            .env("BERTH_API_URL", api)
            .env("BERTH_AGENT_STATE_DIR", state.path())
            .env("BERTH_REGISTRATION_TOKEN", registration_token)
            .env("BERTH_APPLY_COMMAND", "true")
            .env("RUST_LOG", "info")
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("berth-agent starts")?;
        Ok(Self { child, state })
    }

    fn rss_mib(&self, field: &str) -> anyhow::Result<f64> {
        status_mib(self.child.id(), field)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.state.path().join("agent.log")).unwrap_or_default()
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_content_does_not_compress() {
        let mut seed = 42;
        let bytes = random_bytes(1 << 20, &mut seed);
        assert_eq!(bytes.len(), 1 << 20);
        let distinct = bytes.iter().collect::<std::collections::HashSet<_>>().len();
        assert_eq!(distinct, 256, "every byte value appears");
        let mut again = 42;
        assert_eq!(random_bytes(64, &mut again), bytes[..64], "the same seed gives the same bytes");
    }

    #[test]
    fn a_peak_reset_forgets_what_the_process_used_before() {
        // This process: touch 64 MiB, free it, reset the peak: the peak is the current size again.
        let big = vec![1u8; 64 << 20];
        assert!(big.iter().map(|b| *b as u64).sum::<u64>() > 0);
        let pid = std::process::id();
        let before = status_mib(pid, "VmHWM").expect("a peak");
        drop(big);
        std::fs::write("/proc/self/clear_refs", "5").expect("reset");
        let after = status_mib(pid, "VmHWM").expect("a peak");
        assert!(before >= 64.0, "the peak held the 64 MiB: {before}");
        assert!(after < before - 32.0, "the reset peak is below the old one: {after} vs {before}");
    }
}
