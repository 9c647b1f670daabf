//! `berth-agent`: the reference runtime agent.
//!
//! `berth-agent run` registers (once), heartbeats, and runs deployment jobs
//! until SIGTERM or SIGINT (see `shutdown` for what happens to a job then).
//! `berth-agent status` tells what the state directory says: the runtime,
//! what is deployed, the last job.
//! `berth-agent exec <environment> <component> -- <command>` runs one execution of a
//! component while holding its lock shared, so that a deployment's swap
//! waits for it to finish.

mod api;
mod config;
#[cfg(test)]
mod fake_server;
mod job;
mod queue;
mod shutdown;
mod state;
mod status;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(name = "berth-agent", version, about = "The Berth runtime agent")]
struct Cli {
    /// A TOML file with any of the settings below (by flag name, `_` for `-`);
    /// environment variables override it, flags override both.
    #[arg(long, env = "BERTH_AGENT_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Where the agent keeps its credential, versions, backups and journals [default: /var/lib/berth-agent].
    #[arg(long, env = "BERTH_AGENT_STATE_DIR", global = true)]
    state_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Register if needed, then heartbeat and run jobs until stopped.
    Run {
        #[arg(long, env = "BERTH_API_URL")]
        api_url: Option<String>,
        /// Used once, when no credential is stored yet.
        #[arg(long, env = "BERTH_REGISTRATION_TOKEN")]
        registration_token: Option<String>,
        #[arg(long, env = "BERTH_AGENT_NAME")]
        name: Option<String>,
        /// Seconds each jobs/next request may wait; the gateway answers within 2 s whatever is asked [default: 2].
        #[arg(long, env = "BERTH_POLL_WAIT")]
        poll_wait: Option<u64>,
        /// Seconds between heartbeats [default: 30].
        #[arg(long, env = "BERTH_HEARTBEAT_SECS")]
        heartbeat_secs: Option<u64>,
        /// Run with `sh -c` in the staging directory before each swap; a non-zero exit fails the job.
        #[arg(long, env = "BERTH_APPLY_COMMAND")]
        apply_command: Option<String>,
        /// Run with `sh -c` for a connection test, with `BERTH_EXTENSIONS_FILE`; exit 0 is success, and its output is the reported message.
        #[arg(long, env = "BERTH_TEST_CONNECTION_COMMAND")]
        test_connection_command: Option<String>,
        /// Seconds a job under way may go on after SIGTERM before it is abandoned and restored [default: 20].
        #[arg(long, env = "BERTH_STOP_GRACE_SECS")]
        stop_grace_secs: Option<u64>,
        /// Days between rotations of the runtime credential (0: never; fractions allowed) [default: 30].
        #[arg(long, env = "BERTH_CREDENTIAL_ROTATE_DAYS")]
        credential_rotate_days: Option<f64>,
        /// Where jobs come from: `sqs` (the runtime's queue, with credentials Berth vends; `jobs/next` when that fails) or `http` (only `jobs/next`) [default: sqs].
        #[arg(long, env = "BERTH_AGENT_JOB_SOURCE", value_enum)]
        queue: Option<config::JobSource>,
        /// Seconds before their expiration that the queue credentials are renewed [default: 600].
        #[arg(long, env = "BERTH_QUEUE_CREDENTIAL_RENEW_MARGIN_SECS")]
        credential_renew_margin_secs: Option<u64>,
    },
    /// Print the registered runtime, what is deployed and the last job, from the state directory.
    Status {
        /// One JSON document instead of text.
        #[arg(long)]
        json: bool,
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
    let file = config::File::load(cli.config.as_deref())?;
    let state_dir = file.state_dir(cli.state_dir);
    match cli.command {
        Command::Exec { environment, component, command } => exec(&state::StateDir::open(&state_dir)?, &format!("{environment}/{component}"), &command),
        Command::Status { json } => status::print(&state::StateDir::existing(&state_dir)?, json),
        Command::Run {
            api_url,
            registration_token,
            name,
            poll_wait,
            heartbeat_secs,
            apply_command,
            test_connection_command,
            stop_grace_secs,
            credential_rotate_days,
            queue,
            credential_renew_margin_secs,
        } => {
            let given = config::Given {
                api_url,
                registration_token,
                name,
                poll_wait,
                heartbeat_secs,
                apply_command,
                test_connection_command,
                stop_grace_secs,
                credential_rotate_days,
                queue,
                credential_renew_margin_secs,
            };
            run(config::Run::merge(given, &file)?, state::StateDir::open(&state_dir)?).await
        }
    }
}

async fn run(settings: config::Run, state: state::StateDir) -> Result<()> {
    let shutdown = shutdown::Shutdown::on_signals(Duration::from_secs(settings.stop_grace_secs)).context("listening for SIGTERM and SIGINT")?;
    let api_url = settings.api_url;
    let credential = match state.read_credential()? {
        Some(c) => c,
        None => {
            let token = settings.registration_token.context("no credential stored: pass --registration-token (or BERTH_REGISTRATION_TOKEN) once")?;
            let (runtime_id, credential) = api::Api::new(&api_url)?.register(&token, settings.name.as_deref()).await?;
            state.write_credential(&credential)?;
            state.write_registration(&state::Registration { runtime_id: Some(runtime_id.clone()), api_url: api_url.clone() })?;
            tracing::info!(%runtime_id, "registered");
            credential
        }
    };
    remember_api_url(&state, &api_url);
    let api = api::Api::new(&api_url)?.with_credential(credential);
    let runner =
        job::Runner { api: &api, state: &state, apply_command: settings.apply_command, test_connection_command: settings.test_connection_command, shutdown };
    // A job that cannot be recovered now stays journaled for the next start:
    // the agent keeps serving its runtime meanwhile.
    if let Err(e) = runner.recover().await {
        tracing::error!(error = %format!("{e:#}"), "could not read the job journal");
    }
    let poll_wait = settings.poll_wait.min(20);
    let rotation = api::RotationSchedule::every_days(settings.credential_rotate_days);
    let mut queue = queue::Queue::new(&api, &state, settings.queue, settings.credential_renew_margin_secs);
    run_loop(&api, &runner, &state, &rotation, &mut queue, poll_wait, Duration::from_secs(settings.heartbeat_secs.max(1))).await
}

/// Keeps `runtime.json` on the API URL in use, for `status` (the runtime id
/// stays unknown for a credential stored before the agent recorded it).
fn remember_api_url(state: &state::StateDir, api_url: &str) {
    let known = state.registration().ok().flatten();
    if known.as_ref().is_some_and(|r| r.api_url == api_url) {
        return;
    }
    let registration = state::Registration { runtime_id: known.and_then(|r| r.runtime_id), api_url: api_url.to_string() };
    if let Err(e) = state.write_registration(&registration) {
        tracing::warn!(error = %format!("{e:#}"), "could not record the API URL");
    }
}

fn running(state: &state::StateDir) -> Vec<berth_protocol::RunningPackage> {
    // An entry whose ids do not parse was not written by this agent: it is left out rather than failing the whole heartbeat.
    state
        .installed()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|i| {
            Some(berth_protocol::RunningPackage { component_id: i.component_id.parse().ok()?, package_id: i.package_id.parse().ok()?, digest: i.digest })
        })
        .collect()
}

/// Heartbeats, then runs the connection tests the answer names (one at a time: they are short).
async fn beat(api: &api::Api, runner: &job::Runner<'_>, state: &state::StateDir) {
    match api.heartbeat(&running(state)).await {
        Ok(tests) => {
            for test in tests {
                runner.test_connection(&test).await;
            }
        }
        Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
    }
}

async fn run_loop(
    api: &api::Api,
    runner: &job::Runner<'_>,
    state: &state::StateDir,
    rotation: &api::RotationSchedule,
    queue: &mut queue::Queue<'_>,
    poll_wait: u64,
    every: Duration,
) -> Result<()> {
    let shutdown = &runner.shutdown;
    let mut last_beat: Option<Instant> = None;
    while !shutdown.requested() {
        rotation.rotate_if_due(api, state, &running(state)).await;
        if last_beat.is_none_or(|t| t.elapsed() >= every) {
            beat(api, runner, state).await;
            last_beat = Some(Instant::now());
        }
        let asked = Instant::now();
        // Waits no longer than the time to the next heartbeat. A jobs/next
        // request is not cut short by a stop: the server may be handing a job out on it.
        let budget = last_beat.map_or(every, |t| every.saturating_sub(t.elapsed()));
        match queue.next(budget, poll_wait, shutdown).await {
            Ok(Some(job)) => {
                if let Err(e) = runner.run(job).await {
                    tracing::error!(error = %format!("{e:#}"), "job could not be reported; it will be recovered or timed out");
                }
                // Report what runs now without waiting for the next interval.
                beat(api, runner, state).await;
                last_beat = Some(Instant::now());
            }
            Ok(None) => {
                if asked.elapsed() < Duration::from_secs(1) {
                    pause(Duration::from_secs(1), shutdown).await;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "receiving a job failed; retrying");
                pause(Duration::from_secs(2), shutdown).await;
            }
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// Sleeps for `duration`, or until the agent is asked to stop.
async fn pause(duration: Duration, shutdown: &shutdown::Shutdown) {
    tokio::select! {
        _ = tokio::time::sleep(duration) => {}
        _ = shutdown.stop_requested() => {}
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_version_printed_is_the_crate_version() {
        assert_eq!(Cli::command().render_version().trim(), format!("berth-agent {}", env!("CARGO_PKG_VERSION")));
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
