//! The agent's state directory:
//!
//! ```text
//! credential                     the runtime credential (0600), written at registration and at each rotation
//! runtime.json                   the registered runtime's id and the API URL in use
//! last_job.json                  how the last job ended (for `berth-agent status`)
//! active/<env>/<component>/      what runs now: the package's files plus .berth.json
//! backups/<env>/<component>/     the version before the last apply
//! staging/<env>/<component>/     the version being applied
//! downloads/<job>.tar.gz         verified package archives
//! jobs/<job>.json                the journal of a job in progress (phase reached)
//! locks/<env>/<component>.lock   held shared by every execution, exclusively by a swap
//! ```
//!
//! A runtime attached to several environments runs each environment's
//! version side by side: every path is keyed by a *slot*, `<env>/<component>`.

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};

/// What `.berth.json` in an active directory says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installed {
    pub environment_id: String,
    pub component_id: String,
    pub package_id: String,
    pub version: String,
    pub digest: String,
    pub deployment_id: String,
    /// When this version became active (absent in files of older agents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
}

/// The runtime this state directory belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// Unknown when the credential was stored by an agent that did not record it.
    pub runtime_id: Option<String>,
    pub api_url: String,
}

/// How a job ended on this runtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The new version is active (or, for an undeploy, the component is gone).
    Deployed,
    /// It failed or was abandoned, and the previous version is back.
    Restored,
    /// The server withdrew it (cancelled or superseded); nothing was changed.
    Stopped,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deployed => "deployed",
            Self::Restored => "restored",
            Self::Stopped => "stopped",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastJob {
    pub job_id: String,
    pub deployment_id: String,
    pub kind: String,
    pub environment_id: String,
    pub component_id: String,
    pub version: String,
    pub outcome: Outcome,
    /// Why it failed, when it did.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    pub at: DateTime<Utc>,
}

pub const INSTALLED_FILE: &str = ".berth.json";

#[derive(Clone, Debug)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        for sub in ["active", "backups", "staging", "downloads", "jobs", "locks"] {
            fs::create_dir_all(root.join(sub)).with_context(|| format!("creating {}", root.join(sub).display()))?;
        }
        Ok(Self { root })
    }

    /// An existing state directory, left as it is (for reading it).
    pub fn existing(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        if !root.join("active").is_dir() {
            anyhow::bail!("{} is not an agent's state directory (no agent has run with it)", root.display());
        }
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn credential_file(&self) -> PathBuf {
        self.root.join("credential")
    }
    pub fn active(&self, slot: &str) -> PathBuf {
        self.root.join("active").join(slot)
    }
    pub fn backup(&self, slot: &str) -> PathBuf {
        self.root.join("backups").join(slot)
    }
    pub fn staging(&self, slot: &str) -> PathBuf {
        self.root.join("staging").join(slot)
    }
    pub fn download(&self, job: &uuid::Uuid) -> PathBuf {
        self.root.join("downloads").join(format!("{job}.tar.gz"))
    }
    pub fn journal(&self, job: &uuid::Uuid) -> PathBuf {
        self.root.join("jobs").join(format!("{job}.json"))
    }
    /// Where a job's extension values (secrets in clear) live while its apply command runs.
    pub fn extensions_file(&self, job: &uuid::Uuid) -> PathBuf {
        self.root.join("secrets").join(format!("{job}.extensions.json"))
    }
    pub fn lock(&self, slot: &str) -> PathBuf {
        self.root.join("locks").join(format!("{slot}.lock"))
    }

    pub fn read_credential(&self) -> Result<Option<String>> {
        match fs::read_to_string(self.credential_file()) {
            Ok(c) => Ok(Some(c.trim().to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Written to a temporary file and renamed, readable by the owner only.
    pub fn write_credential(&self, credential: &str) -> Result<()> {
        write_atomically(&self.credential_file(), credential.as_bytes())?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(self.credential_file(), fs::Permissions::from_mode(0o600))?;
        }
        Ok(())
    }

    fn read_json<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        let path = self.root.join(name);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).with_context(|| format!("reading {}", path.display()))?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(anyhow::Error::from(e).context(format!("reading {}", path.display()))),
        }
    }

    pub fn registration(&self) -> Result<Option<Registration>> {
        self.read_json("runtime.json")
    }

    pub fn write_registration(&self, registration: &Registration) -> Result<()> {
        write_atomically(&self.root.join("runtime.json"), &serde_json::to_vec_pretty(registration)?)
    }

    pub fn last_job(&self) -> Result<Option<LastJob>> {
        self.read_json("last_job.json")
    }

    pub fn write_last_job(&self, last: &LastJob) -> Result<()> {
        write_atomically(&self.root.join("last_job.json"), &serde_json::to_vec_pretty(last)?)
    }

    /// The journals of jobs left unfinished (recovered at the next `run`): (job id, step).
    pub fn journaled(&self) -> Result<Vec<(String, String)>> {
        let mut all = vec![];
        for entry in fs::read_dir(self.root.join("jobs"))? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "json") {
                let journal: serde_json::Value = fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
                let id = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
                all.push((id, journal["step"].as_str().unwrap_or("unknown").to_string()));
            }
        }
        all.sort();
        Ok(all)
    }

    /// What every slot runs (for heartbeats).
    pub fn installed(&self) -> Result<Vec<Installed>> {
        let mut all = vec![];
        for env in fs::read_dir(self.root.join("active"))? {
            let env = env?.path();
            if !env.is_dir() {
                continue;
            }
            for component in fs::read_dir(&env)? {
                let path = component?.path().join(INSTALLED_FILE);
                if let Some(installed) = fs::read(&path).ok().and_then(|b| serde_json::from_slice::<Installed>(&b).ok()) {
                    all.push(installed);
                }
            }
        }
        all.sort_by(|a, b| (&a.environment_id, &a.component_id).cmp(&(&b.environment_id, &b.component_id)));
        Ok(all)
    }

    pub fn installed_of(&self, slot: &str) -> Option<Installed> {
        fs::read(self.active(slot).join(INSTALLED_FILE)).ok().and_then(|b| serde_json::from_slice(&b).ok())
    }
}

/// Writes `bytes` to `path` so that a reader sees the old or the new content, never a part.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, bytes)?;
    fs::File::open(&tmp)?.sync_all()?;
    fs::rename(&tmp, path)?;
    Ok(())
}

/// Creates the parent directory of `path`.
pub fn ensure_parent(path: &Path) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    Ok(())
}

/// Copies a directory tree (`from` must exist).
pub fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

pub fn remove_tree(path: &Path) -> Result<()> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e.into()),
    }
}
