//! The agent's state directory:
//!
//! ```text
//! credential                     the runtime credential (0600), written at registration and at each rotation
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
