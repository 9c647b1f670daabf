//! `berth-agent status`: what the state directory says, without asking the server.

use crate::state::{Installed, LastJob, Registration, StateDir};
use anyhow::Result;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Status {
    pub state_dir: String,
    /// Whether a runtime credential is stored.
    pub registered: bool,
    pub runtime: Option<Registration>,
    pub deployed: Vec<Installed>,
    pub last_job: Option<LastJob>,
    /// Jobs a stopped agent left unfinished: the next `run` finishes or restores them.
    pub unfinished_jobs: Vec<Unfinished>,
}

#[derive(Debug, Serialize)]
pub struct Unfinished {
    pub job_id: String,
    pub step: String,
}

impl Status {
    pub fn read(state: &StateDir) -> Result<Self> {
        Ok(Self {
            state_dir: state.root().display().to_string(),
            registered: state.read_credential()?.is_some(),
            runtime: state.registration()?,
            deployed: state.installed()?,
            last_job: state.last_job()?,
            unfinished_jobs: state.journaled()?.into_iter().map(|(job_id, step)| Unfinished { job_id, step }).collect(),
        })
    }

    pub fn text(&self) -> String {
        let mut out = String::new();
        let mut line = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        line(format!("state directory  {}", self.state_dir));
        match (&self.runtime, self.registered) {
            (_, false) => line("runtime          not registered yet".into()),
            (Some(r), true) => line(format!("runtime          {}  at {}", r.runtime_id.as_deref().unwrap_or("(id not recorded)"), r.api_url)),
            (None, true) => line("runtime          registered (id and API URL not recorded yet: they are at the next `run`)".into()),
        }
        if self.deployed.is_empty() {
            line("deployed         nothing".into());
        } else {
            line("deployed".into());
            for i in &self.deployed {
                let since = i.since.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)).unwrap_or_else(|| "-".into());
                line(format!("  environment {}  component {}", i.environment_id, i.component_id));
                line(format!("    version {}  {}  since {since}", i.version, i.digest));
            }
        }
        match &self.last_job {
            None => line("last job         none".into()),
            Some(j) => {
                let at = j.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                line(format!("last job         {}  {}  {at}", j.job_id, j.outcome.as_str()));
                line(format!("                 {} of version {} (deployment {})", j.kind, j.version, j.deployment_id));
                if !j.detail.is_empty() {
                    line(format!("                 {}", j.detail));
                }
            }
        }
        for u in &self.unfinished_jobs {
            line(format!("unfinished job   {}  stopped while {} (finished or restored at the next start)", u.job_id, u.step));
        }
        out
    }
}

pub fn print(state: &StateDir, json: bool) -> Result<()> {
    let status = Status::read(state)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{}", status.text());
    }
    Ok(())
}
