//! `berth-agent`: the reference runtime agent.
//!
//! `berth-agent run` registers (once), heartbeats, and runs deployment jobs.
//! `berth-agent exec <environment> <component> -- <command>` runs one execution of a
//! component while holding its lock shared, so that a deployment's swap
//! waits for it to finish.

mod api;
mod job;
mod state;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(name = "berth-agent", version, about = "The Berth runtime agent")]
struct Cli {
    /// Where the agent keeps its credential, versions, backups and journals.
    #[arg(long, env = "BERTH_AGENT_STATE_DIR", global = true, default_value = "/var/lib/berth-agent")]
    state_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Register if needed, then heartbeat and run jobs until stopped.
    Run {
        #[arg(long, env = "BERTH_API_URL")]
        api_url: String,
        /// Used once, when no credential is stored yet.
        #[arg(long, env = "BERTH_REGISTRATION_TOKEN")]
        registration_token: Option<String>,
        #[arg(long, env = "BERTH_AGENT_NAME")]
        name: Option<String>,
        /// Seconds each jobs/next request may wait; the gateway answers within 2 s whatever is asked.
        #[arg(long, env = "BERTH_POLL_WAIT", default_value_t = 2)]
        poll_wait: u64,
        #[arg(long, env = "BERTH_HEARTBEAT_SECS", default_value_t = 30)]
        heartbeat_secs: u64,
        /// Run with `sh -c` in the staging directory before each swap; a non-zero exit fails the job.
        #[arg(long, env = "BERTH_APPLY_COMMAND")]
        apply_command: Option<String>,
    },
    /// Run a command as one execution of a component (holds its lock shared).
    Exec {
        environment: String,
        component: String,
        #[arg(trailing_var_arg = true, required = true)]
        command: Vec<String>,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_target(false)
        .init();
    let cli = Cli::parse();
    let state = state::StateDir::open(&cli.state_dir)?;
    match cli.command {
        Command::Exec { environment, component, command } => exec(&state, &format!("{environment}/{component}"), &command),
        Command::Run { api_url, registration_token, name, poll_wait, heartbeat_secs, apply_command } => {
            let credential = match state.read_credential()? {
                Some(c) => c,
                None => {
                    let token = registration_token.context("no credential stored: pass --registration-token (or BERTH_REGISTRATION_TOKEN) once")?;
                    let (runtime_id, credential) = api::Api::new(&api_url)?.register(&token, name.as_deref()).await?;
                    state.write_credential(&credential)?;
                    tracing::info!(%runtime_id, "registered");
                    credential
                }
            };
            let api = api::Api::new(&api_url)?.with_credential(credential);
            let runner = job::Runner { api: &api, state: &state, apply_command };
            // A job that cannot be recovered now stays journaled for the next start:
            // the agent keeps serving its runtime meanwhile.
            if let Err(e) = runner.recover().await {
                tracing::error!(error = %format!("{e:#}"), "could not read the job journal");
            }
            run_loop(&api, &runner, &state, poll_wait.min(20), Duration::from_secs(heartbeat_secs.max(1))).await
        }
    }
}

async fn beat(api: &api::Api, state: &state::StateDir) {
    // An entry whose ids do not parse was not written by this agent: it is left out rather than failing the whole heartbeat.
    let running: Vec<berth_protocol::RunningPackage> = state
        .installed()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|i| {
            Some(berth_protocol::RunningPackage { component_id: i.component_id.parse().ok()?, package_id: i.package_id.parse().ok()?, digest: i.digest })
        })
        .collect();
    if let Err(e) = api.heartbeat(&running).await {
        tracing::warn!(error = %e, "heartbeat failed");
    }
}

async fn run_loop(api: &api::Api, runner: &job::Runner<'_>, state: &state::StateDir, poll_wait: u64, every: Duration) -> Result<()> {
    let mut last_beat: Option<Instant> = None;
    loop {
        if last_beat.is_none_or(|t| t.elapsed() >= every) {
            beat(api, state).await;
            last_beat = Some(Instant::now());
        }
        let asked = Instant::now();
        match api.next_job(poll_wait.min(every.as_secs())).await {
            Ok(Some(job)) => {
                if let Err(e) = runner.run(job).await {
                    tracing::error!(error = %format!("{e:#}"), "job could not be reported; it will be recovered or timed out");
                }
                // Report what runs now without waiting for the next interval.
                beat(api, state).await;
                last_beat = Some(Instant::now());
            }
            Ok(None) => {
                if asked.elapsed() < Duration::from_secs(1) {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "jobs/next failed; retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
}

fn exec(state: &state::StateDir, slot: &str, command: &[String]) -> Result<()> {
    state::ensure_parent(&state.lock(slot))?;
    let lock = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(state.lock(slot))?;
    lock.lock_shared()?;
    let active = state.active(slot);
    if !active.exists() {
        bail!("{slot} is not deployed on this runtime");
    }
    let status = std::process::Command::new(&command[0]).args(&command[1..]).env("BERTH_ACTIVE_DIR", &active).current_dir(&active).status()?;
    lock.unlock()?;
    std::process::exit(status.code().unwrap_or(1));
}
