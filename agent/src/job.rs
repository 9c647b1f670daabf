//! Running one job: download, back up, apply, swap, report; restore on any
//! failure. A journal records the phase reached, so a restarted agent can
//! finish or undo the job (`recover`).

use crate::api::{Api, Job};
use crate::shutdown::{Abandoned, Shutdown};
use crate::state::{INSTALLED_FILE, Installed, LastJob, Outcome, StateDir, copy_tree, ensure_parent, remove_tree, write_atomically};
use anyhow::{Context, Result, bail};
use berth_protocol::{JobKind, Phase};
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Downloading,
    BackingUp,
    Applying,
    /// The renames of the swap are under way.
    Swapping,
    Swapped,
}

/// Where a job's component lives on this runtime: `<environment>/<component>`.
pub fn slot(job: &Job) -> String {
    format!("{}/{}", job.environment_id, job.component_id)
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Journal {
    pub job: Job,
    pub step: Step,
    /// Whether the component had an active version before this job.
    pub had_previous: bool,
}

pub struct Runner<'a> {
    pub api: &'a Api,
    pub state: &'a StateDir,
    /// `sh -c` command run in the staging directory before the swap.
    pub apply_command: Option<String>,
    /// `sh -c` command that tests a connection with the environment's values (`BERTH_EXTENSIONS_FILE`).
    pub test_connection_command: Option<String>,
    /// When the agent is stopping, a job past its grace period is abandoned (see `shutdown`).
    pub shutdown: Shutdown,
}

/// How long a connection test may run.
const TEST_CONNECTION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Stopped because the server said not to go on (cancelled or superseded).
#[derive(Debug)]
struct Stop;
impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the server asked the agent to stop this job")
    }
}
impl std::error::Error for Stop {}

impl Runner<'_> {
    fn journal(&self, journal: &Journal) -> Result<()> {
        write_atomically(&self.state.journal(&journal.job.job_id), &serde_json::to_vec_pretty(journal)?)
    }

    fn finish_journal(&self, job: &Job) {
        let _ = fs::remove_file(self.state.journal(&job.job_id));
        let _ = fs::remove_file(self.state.download(&job.job_id));
    }

    /// Keeps how `job` ended for `berth-agent status`; losing it loses only that line.
    fn record(&self, job: &Job, outcome: Outcome, detail: &str) {
        let last = LastJob {
            job_id: job.job_id.to_string(),
            deployment_id: job.deployment_id.to_string(),
            kind: job.kind.as_str().to_string(),
            environment_id: job.environment_id.to_string(),
            component_id: job.component_id.to_string(),
            version: job.version.clone(),
            outcome,
            detail: crate::api::without_query_strings(detail),
            at: chrono::Utc::now(),
        };
        if let Err(e) = self.state.write_last_job(&last) {
            tracing::warn!(error = %format!("{e:#}"), "could not record the last job");
        }
    }

    /// Each step starts with its report: that is where a stopping agent leaves a job.
    async fn report(&self, job: &Job, phase: Phase, message: &str) -> Result<()> {
        if !phase.ends_the_work() && self.shutdown.abandoning() {
            return Err(Abandoned.into());
        }
        let answer = self.api.report(&job.job_id, &job.deployment_id, phase, message).await?;
        if !answer.proceed && !phase.ends_the_work() {
            return Err(Stop.into());
        }
        Ok(())
    }

    /// Runs a job from the start; every failure ends restored and reported.
    pub async fn run(&self, job: Job) -> Result<()> {
        tracing::info!(job_id = %job.job_id, kind = %job.kind, version = %job.version, "job received");
        let had_previous = self.state.active(&slot(&job)).exists();
        let mut journal = Journal { job: job.clone(), step: Step::Downloading, had_previous };
        let outcome = self.steps(&mut journal).await;
        match outcome {
            Ok(()) => {
                self.report(&job, Phase::Deployed, "").await?;
                self.finish_journal(&job);
                self.record(&job, Outcome::Deployed, "");
                tracing::info!(job_id = %job.job_id, "job deployed");
                Ok(())
            }
            Err(e) if e.downcast_ref::<Stop>().is_some() => {
                tracing::info!(job_id = %job.job_id, "job stopped at the server's request; active version left as it is");
                remove_tree(&self.state.staging(&slot(&job)))?;
                self.finish_journal(&job);
                self.record(&job, Outcome::Stopped, "");
                Ok(())
            }
            Err(e) if e.downcast_ref::<Abandoned>().is_some() => {
                let reason = format!("the agent was stopped during {:?} and did not finish the job", journal.step).to_lowercase();
                tracing::warn!(job_id = %job.job_id, step = ?journal.step, "job abandoned: the agent is stopping; restoring");
                self.fail_and_restore(&journal, &reason).await
            }
            Err(e) => {
                tracing::warn!(job_id = %job.job_id, error = %crate::api::without_query_strings(&format!("{e:#}")), "job failed; restoring");
                self.fail_and_restore(&journal, &format!("{e:#}")).await
            }
        }
    }

    async fn steps(&self, journal: &mut Journal) -> Result<()> {
        let job = journal.job.clone();
        self.report(&job, Phase::Delivered, "").await?;
        let undeploy = job.kind == JobKind::Undeploy;
        if !undeploy {
            self.journal(journal)?;
            self.report(&job, Phase::Downloading, "").await?;
            let archive = self.state.download(&job.job_id);
            tokio::select! {
                downloaded = self.api.download(&job.download_url, &archive, &job.digest) => downloaded?,
                _ = self.shutdown.abandoned() => return Err(Abandoned.into()),
            }
        }
        journal.step = Step::BackingUp;
        self.journal(journal)?;
        self.report(&job, Phase::BackingUp, "").await?;
        let (active, backup) = (self.state.active(&slot(&job)), self.state.backup(&slot(&job)));
        if active.exists() {
            ensure_parent(&backup)?;
            let tmp = backup.with_extension("new");
            remove_tree(&tmp)?;
            copy_tree(&active, &tmp)?;
            remove_tree(&backup)?;
            fs::rename(&tmp, &backup)?;
        }
        journal.step = Step::Applying;
        self.journal(journal)?;
        self.report(&job, Phase::Applying, "").await?;
        let staging = self.state.staging(&slot(&job));
        remove_tree(&staging)?;
        ensure_parent(&staging)?;
        if !undeploy {
            unpack(&self.state.download(&job.job_id), &staging).await?;
            let installed = Installed {
                environment_id: job.environment_id.to_string(),
                component_id: job.component_id.to_string(),
                package_id: job.package_id.to_string(),
                version: job.version.clone(),
                digest: job.digest.clone(),
                deployment_id: job.deployment_id.to_string(),
                since: None,
            };
            fs::write(staging.join(INSTALLED_FILE), serde_json::to_vec_pretty(&installed)?)?;
            if let Some(cmd) = &self.apply_command {
                self.run_apply(cmd, &job, &staging).await?;
            }
        }
        journal.step = Step::Swapping;
        self.journal(journal)?;
        self.swap(&job, undeploy).await?;
        journal.step = Step::Swapped;
        self.journal(journal)?;
        if !undeploy {
            self.stamp_since(&job);
        }
        Ok(())
    }

    /// Notes in the active `.berth.json` when the version became active.
    fn stamp_since(&self, job: &Job) {
        let file = self.state.active(&slot(job)).join(INSTALLED_FILE);
        let Some(mut installed) = self.state.installed_of(&slot(job)) else { return };
        installed.since = Some(chrono::Utc::now());
        if let Err(e) = serde_json::to_vec_pretty(&installed).map_err(anyhow::Error::from).and_then(|bytes| write_atomically(&file, &bytes)) {
            tracing::warn!(error = %format!("{e:#}"), "could not note when the version became active");
        }
    }

    async fn run_apply(&self, cmd: &str, job: &Job, staging: &Path) -> Result<()> {
        // The values are fetched now, not carried with the job: secrets never travel through SQS.
        let values = self.api.job_extensions(&job.job_id).await.context("fetching the job's extension values")?;
        let file = SecretFile::create(self.state.extensions_file(&job.job_id), &values)?;
        let mut child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .current_dir(staging)
            .env("BERTH_JOB_ID", job.job_id.to_string())
            .env("BERTH_KIND", job.kind.as_str())
            .env("BERTH_COMPONENT_ID", job.component_id.to_string())
            .env("BERTH_PACKAGE_ID", job.package_id.to_string())
            .env("BERTH_VERSION", &job.version)
            .env("BERTH_DIGEST", &job.digest)
            .env("BERTH_STAGING_DIR", staging)
            .env("BERTH_ENVIRONMENT_ID", job.environment_id.to_string())
            .env("BERTH_ACTIVE_DIR", self.state.active(&slot(job)))
            .env("BERTH_BACKUP_DIR", self.state.backup(&slot(job)))
            .env("BERTH_EXTENSIONS_FILE", &file.path)
            // A group of its own, so that abandoning the job stops whatever it started too.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .context("running the apply command")?;
        let status = tokio::select! {
            status = child.wait() => status.context("running the apply command")?,
            _ = self.shutdown.abandoned() => {
                // Its staging directory is thrown away with the job.
                if let Some(pid) = child.id() {
                    let _ = tokio::process::Command::new("kill").args(["-KILL", "--", &format!("-{pid}")]).status().await;
                }
                let _ = child.kill().await;
                return Err(Abandoned.into());
            }
        };
        drop(file);
        if !status.success() {
            bail!("the apply command failed ({status})");
        }
        Ok(())
    }

    /// Runs a connection test and reports it; failures to report are only logged (the test stays pending until a newer one).
    pub async fn test_connection(&self, test: &berth_protocol::ConnectionTestJob) {
        tracing::info!(test_id = %test.test_id, environment_id = %test.environment_id, component_id = %test.component_id, "connection test received");
        let (succeeded, message) = match self.run_connection_test(test).await {
            Ok(outcome) => outcome,
            Err(e) => (false, format!("{e:#}")),
        };
        tracing::info!(test_id = %test.test_id, succeeded, "connection test ran");
        if let Err(e) = self.api.report_connection_test(&test.test_id, succeeded, &message).await {
            tracing::warn!(test_id = %test.test_id, error = %format!("{e:#}"), "could not report the connection test");
        }
    }

    /// (succeeded, message): the command's exit and its output, every connection value in it replaced by `[redacted]`.
    async fn run_connection_test(&self, test: &berth_protocol::ConnectionTestJob) -> Result<(bool, String)> {
        let Some(cmd) = &self.test_connection_command else {
            return Ok((false, "the agent has no test connection command (BERTH_TEST_CONNECTION_COMMAND)".to_string()));
        };
        let values = self.api.connection_test_extensions(&test.test_id).await.context("fetching the connection's values")?;
        let secrets: Vec<String> = serde_json::from_slice::<berth_protocol::JobExtensions>(&values)
            .map(|v| v.components.into_values().flat_map(|c| c.connection.into_values()).filter(|v| !v.is_empty()).collect())
            .unwrap_or_default();
        let file = SecretFile::create(self.state.extensions_file(&test.test_id), &values)?;
        let child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .current_dir(self.state.root())
            .env("BERTH_EXTENSIONS_FILE", &file.path)
            .env("BERTH_TEST_ID", test.test_id.to_string())
            .env("BERTH_ENVIRONMENT_ID", test.environment_id.to_string())
            .env("BERTH_COMPONENT_ID", test.component_id.to_string())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("running the test connection command")?;
        let output = match tokio::time::timeout(TEST_CONNECTION_TIMEOUT, child.wait_with_output()).await {
            Ok(output) => output.context("running the test connection command")?,
            Err(_) => return Ok((false, format!("the test connection command did not finish within {} s", TEST_CONNECTION_TIMEOUT.as_secs()))),
        };
        drop(file);
        let mut said = String::from_utf8_lossy(&output.stdout).trim().to_string();
        let err = String::from_utf8_lossy(&output.stderr).trim().to_string();
        if !err.is_empty() {
            said = if said.is_empty() { err } else { format!("{said}\n{err}") };
        }
        // The longest first, so that a value containing another is replaced whole.
        let mut secrets = secrets;
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        for secret in &secrets {
            said = said.replace(secret.as_str(), "[redacted]");
        }
        let tail: String = said.chars().rev().take(1000).collect::<Vec<_>>().into_iter().rev().collect();
        let message = match (output.status.success(), tail.is_empty()) {
            (true, true) => "the connection test succeeded".to_string(),
            (false, true) => format!("the connection test failed ({})", output.status),
            (_, false) => tail,
        };
        Ok((output.status.success(), message))
    }

    /// Replaces the active version with the staged one (or removes it, for an
    /// undeploy) while holding the component's lock exclusively: in-flight
    /// executions (holding it shared, see `berth-agent exec`) finish first.
    async fn swap(&self, job: &Job, undeploy: bool) -> Result<()> {
        let (active, staging, lock) = (self.state.active(&slot(job)), self.state.staging(&slot(job)), self.state.lock(&slot(job)));
        tokio::task::spawn_blocking(move || -> Result<()> {
            ensure_parent(&lock)?;
            ensure_parent(&active)?;
            let file = fs::OpenOptions::new().create(true).truncate(false).write(true).open(&lock)?;
            file.lock()?;
            let retired = active.with_extension("retired");
            remove_tree(&retired)?;
            if active.exists() {
                fs::rename(&active, &retired)?;
            }
            if !undeploy {
                fs::rename(&staging, &active)?;
            }
            remove_tree(&retired)?;
            file.unlock()?;
            Ok(())
        })
        .await?
    }

    /// Puts the previous version back (or none, if there was none) and says so.
    async fn fail_and_restore(&self, journal: &Journal, reason: &str) -> Result<()> {
        let job = &journal.job;
        let _ = self.api.report(&job.job_id, &job.deployment_id, Phase::Failed, reason).await;
        restore(self.state, job, journal.had_previous)?;
        self.api.report(&job.job_id, &job.deployment_id, Phase::Restored, "the previous version is back in place").await?;
        self.finish_journal(job);
        self.record(job, Outcome::Restored, reason);
        Ok(())
    }

    /// Finishes or undoes the jobs a previous run of the agent left unfinished.
    pub async fn recover(&self) -> Result<()> {
        remove_stale_secrets(self.state);
        for entry in fs::read_dir(self.state.root().join("jobs"))? {
            let path: PathBuf = entry?.path();
            let Ok(journal) = fs::read(&path).map_err(anyhow::Error::from).and_then(|b| Ok(serde_json::from_slice::<Journal>(&b)?)) else {
                let _ = fs::remove_file(&path);
                continue;
            };
            let job = journal.job.clone();
            let installed = self.state.installed_of(&slot(&job));
            let completed = match journal.step {
                Step::Swapped => true,
                Step::Swapping if job.kind == JobKind::Undeploy => !self.state.active(&slot(&job)).exists(),
                Step::Swapping => installed.as_ref().is_some_and(|i| i.digest == job.digest && i.deployment_id == job.deployment_id.to_string()),
                _ => false,
            };
            let outcome = if completed {
                tracing::info!(job_id = %job.job_id, "recovered a job that had finished applying");
                match self.api.report(&job.job_id, &job.deployment_id, Phase::Deployed, "completed after an agent restart").await {
                    // The server ended the job meanwhile (its deadline passed, or it was
                    // withdrawn): the environment did not take this version, so neither do we.
                    Err(e) if refusal(&e).is_some_and(|s| s != reqwest::StatusCode::FORBIDDEN) => {
                        tracing::warn!(job_id = %job.job_id, error = %e, "the server no longer takes this job; restoring the previous version");
                        restore(self.state, &job, journal.had_previous)?;
                        // Best effort: a failed target may still learn it was restored.
                        let _ = self.api.report(&job.job_id, &job.deployment_id, Phase::Restored, "the server ended the job while the agent was down").await;
                        self.record(&job, Outcome::Restored, "the server ended the job while the agent was down");
                        Ok(())
                    }
                    Ok(_) => {
                        self.record(&job, Outcome::Deployed, "completed after an agent restart");
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            } else {
                tracing::warn!(job_id = %job.job_id, step = ?journal.step, "recovering an interrupted job: restoring the previous version");
                self.fail_and_restore(&journal, &format!("the agent stopped during {:?}", journal.step).to_lowercase()).await
            };
            match outcome {
                Ok(()) => self.finish_journal(&job),
                // Refused for good (not found, or an impossible phase): the restore is done, nothing more to say.
                Err(e) if refusal(&e).is_some_and(|s| s != reqwest::StatusCode::FORBIDDEN) => {
                    tracing::warn!(job_id = %job.job_id, error = %e, "the server refused the recovery report; the job is closed here");
                    self.finish_journal(&job);
                    self.record(&job, Outcome::Restored, "the server refused the report of the restore");
                }
                // Unreachable, or the tenant is suspended: keep the journal and try again at the next start.
                Err(e) => tracing::warn!(job_id = %job.job_id, error = %format!("{e:#}"), "could not recover the job now; it stays journaled"),
            }
        }
        Ok(())
    }
}

/// A file holding secrets in clear, readable by the agent's user only
/// (created so, never widened), removed when dropped: when the apply command
/// ends, fails, or the job is abandoned.
struct SecretFile {
    path: PathBuf,
}

impl SecretFile {
    fn create(path: PathBuf, bytes: &[u8]) -> Result<Self> {
        use std::io::Write;
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        if let Some(dir) = path.parent() {
            fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        // A file left by an agent that died mid-apply is replaced, not reused.
        let _ = fs::remove_file(&path);
        let mut file = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).with_context(|| format!("creating {}", path.display()))?;
        let this = Self { path };
        file.write_all(bytes).and_then(|()| file.sync_all()).with_context(|| format!("writing {}", this.path.display()))?;
        Ok(this)
    }
}

impl Drop for SecretFile {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_file(&self.path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), error = %e, "could not remove the extension values file");
        }
    }
}

/// Removes extension values files an agent that stopped mid-apply left behind.
pub fn remove_stale_secrets(state: &StateDir) {
    let dir = state.root().join("secrets");
    let Ok(entries) = fs::read_dir(&dir) else { return };
    for entry in entries.flatten() {
        let _ = fs::remove_file(entry.path());
    }
}

/// The status of a report the server refused, if that is what `e` is.
fn refusal(e: &anyhow::Error) -> Option<reqwest::StatusCode> {
    e.downcast_ref::<crate::api::Refused>().map(|r| r.status)
}

/// The component as it was before `job`: the backup if there was a version, nothing otherwise.
fn restore(state: &StateDir, job: &Job, had_previous: bool) -> Result<()> {
    let (active, backup, staging) = (state.active(&slot(job)), state.backup(&slot(job)), state.staging(&slot(job)));
    remove_tree(&staging)?;
    let already_previous = state.installed_of(&slot(job)).is_some_and(|i| i.deployment_id != job.deployment_id.to_string());
    if had_previous && !already_previous {
        if !backup.exists() {
            bail!("no backup of {} to restore", slot(job));
        }
        let tmp = active.with_extension("restoring");
        remove_tree(&tmp)?;
        copy_tree(&backup, &tmp)?;
        remove_tree(&active)?;
        fs::rename(&tmp, &active)?;
    } else if !had_previous {
        remove_tree(&active)?;
    }
    Ok(())
}

/// Unpacks a package archive (tar.gz) into `dest`, refusing paths that escape it.
async fn unpack(archive: &Path, dest: &Path) -> Result<()> {
    let (archive, dest) = (archive.to_path_buf(), dest.to_path_buf());
    tokio::task::spawn_blocking(move || -> Result<()> {
        fs::create_dir_all(&dest)?;
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(fs::File::open(&archive)?));
        for entry in tar.entries()? {
            let mut entry = entry?;
            if !entry.unpack_in(&dest)? {
                bail!("the archive holds a path outside its root");
            }
        }
        Ok(())
    })
    .await?
}
