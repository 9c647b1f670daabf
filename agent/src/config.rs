//! The agent's settings: a TOML file (`--config` or `BERTH_AGENT_CONFIG`),
//! environment variables over it, command-line flags over both.
//!
//! clap already puts a flag over its environment variable; what either gave
//! arrives here as `Some` and wins over the file, which wins over the default.

pub use crate::queue::JobSource;
use anyhow::{Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

pub const DEFAULT_STATE_DIR: &str = "/var/lib/berth-agent";
/// The gateway answers `jobs/next` within 2 s whatever is asked.
pub const DEFAULT_POLL_WAIT: u64 = 2;
pub const DEFAULT_HEARTBEAT_SECS: u64 = 30;
/// How long a job under way when the agent is told to stop may go on (see `shutdown`).
pub const DEFAULT_STOP_GRACE_SECS: u64 = 20;
/// Days between rotations of the runtime credential (0: never).
pub const DEFAULT_CREDENTIAL_ROTATE_DAYS: f64 = 30.0;
/// Seconds before their expiration that the queue credentials are renewed.
pub const DEFAULT_CREDENTIAL_RENEW_MARGIN_SECS: u64 = 600;

/// What a config file may hold: every setting of `berth-agent run`, by the
/// name of its flag (with `_` for `-`). Any other key is refused, so a typo
/// does not silently leave a default in place.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    pub api_url: Option<String>,
    pub registration_token: Option<String>,
    pub name: Option<String>,
    pub poll_wait: Option<u64>,
    pub heartbeat_secs: Option<u64>,
    pub apply_command: Option<String>,
    pub test_connection_command: Option<String>,
    pub state_dir: Option<PathBuf>,
    pub stop_grace_secs: Option<u64>,
    pub credential_rotate_days: Option<f64>,
    pub queue: Option<JobSource>,
    pub credential_renew_margin_secs: Option<u64>,
}

impl File {
    /// The file at `path`, or no settings when there is no path.
    pub fn load(path: Option<&Path>) -> Result<Self> {
        let Some(path) = path else { return Ok(Self::default()) };
        let text = std::fs::read_to_string(path).with_context(|| format!("reading the config file {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("in the config file {}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self> {
        // toml's message names the key and shows the line it is on.
        toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.to_string().trim_end()))
    }

    pub fn state_dir(&self, given: Option<PathBuf>) -> PathBuf {
        given.or_else(|| self.state_dir.clone()).unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR))
    }
}

/// The settings `berth-agent run` works with, once merged.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub api_url: String,
    pub registration_token: Option<String>,
    pub name: Option<String>,
    pub poll_wait: u64,
    pub heartbeat_secs: u64,
    pub apply_command: Option<String>,
    pub test_connection_command: Option<String>,
    pub stop_grace_secs: u64,
    pub credential_rotate_days: f64,
    pub queue: JobSource,
    pub credential_renew_margin_secs: u64,
}

/// What the flags and environment variables gave (`None` where neither did).
#[derive(Debug, Default, Clone)]
pub struct Given {
    pub api_url: Option<String>,
    pub registration_token: Option<String>,
    pub name: Option<String>,
    pub poll_wait: Option<u64>,
    pub heartbeat_secs: Option<u64>,
    pub apply_command: Option<String>,
    pub test_connection_command: Option<String>,
    pub stop_grace_secs: Option<u64>,
    pub credential_rotate_days: Option<f64>,
    pub queue: Option<JobSource>,
    pub credential_renew_margin_secs: Option<u64>,
}

impl Run {
    pub fn merge(given: Given, file: &File) -> Result<Self> {
        let api_url =
            given.api_url.or_else(|| file.api_url.clone()).context("no API URL: pass --api-url, set BERTH_API_URL, or put api_url in the config file")?;
        Ok(Self {
            api_url,
            registration_token: given.registration_token.or_else(|| file.registration_token.clone()),
            name: given.name.or_else(|| file.name.clone()),
            poll_wait: given.poll_wait.or(file.poll_wait).unwrap_or(DEFAULT_POLL_WAIT),
            heartbeat_secs: given.heartbeat_secs.or(file.heartbeat_secs).unwrap_or(DEFAULT_HEARTBEAT_SECS),
            apply_command: given.apply_command.or_else(|| file.apply_command.clone()),
            test_connection_command: given.test_connection_command.or_else(|| file.test_connection_command.clone()),
            stop_grace_secs: given.stop_grace_secs.or(file.stop_grace_secs).unwrap_or(DEFAULT_STOP_GRACE_SECS),
            credential_rotate_days: given.credential_rotate_days.or(file.credential_rotate_days).unwrap_or(DEFAULT_CREDENTIAL_ROTATE_DAYS),
            queue: given.queue.or(file.queue).unwrap_or(JobSource::Sqs),
            credential_renew_margin_secs: given
                .credential_renew_margin_secs
                .or(file.credential_renew_margin_secs)
                .unwrap_or(DEFAULT_CREDENTIAL_RENEW_MARGIN_SECS),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_run_setting_can_be_set_in_the_file() {
        let file = File::parse(
            r#"
            api_url = "https://berth.example.com"
            registration_token = "rt_1"
            name = "edge-1"
            poll_wait = 5
            heartbeat_secs = 10
            apply_command = "./install.sh"
            state_dir = "/srv/berth"
            stop_grace_secs = 7
            credential_rotate_days = 7.5
            queue = "http"
            credential_renew_margin_secs = 900
            "#,
        )
        .expect("a valid file");

        let run = Run::merge(Given::default(), &file).expect("complete settings");
        assert_eq!(
            run,
            Run {
                api_url: "https://berth.example.com".into(),
                registration_token: Some("rt_1".into()),
                name: Some("edge-1".into()),
                poll_wait: 5,
                heartbeat_secs: 10,
                apply_command: Some("./install.sh".into()),
                test_connection_command: None,
                stop_grace_secs: 7,
                credential_rotate_days: 7.5,
                queue: JobSource::Http,
                credential_renew_margin_secs: 900,
            }
        );
        assert_eq!(file.state_dir(None), PathBuf::from("/srv/berth"));
    }

    #[test]
    fn a_flag_or_environment_variable_wins_over_the_file_and_the_file_over_the_default() {
        let file = File::parse("api_url = \"https://file\"\npoll_wait = 5\nstate_dir = \"/from/file\"").expect("a valid file");
        let given = Given { api_url: Some("https://given".into()), heartbeat_secs: Some(3), ..Given::default() };

        let run = Run::merge(given, &file).expect("complete settings");
        assert_eq!(run.api_url, "https://given");
        assert_eq!(run.poll_wait, 5);
        assert_eq!(run.heartbeat_secs, 3);
        assert_eq!(run.stop_grace_secs, DEFAULT_STOP_GRACE_SECS);
        assert_eq!(run.queue, JobSource::Sqs, "jobs come from SQS unless told otherwise");
        assert_eq!(run.credential_renew_margin_secs, DEFAULT_CREDENTIAL_RENEW_MARGIN_SECS);
        assert_eq!(file.state_dir(Some("/given".into())), PathBuf::from("/given"));
        assert_eq!(File::default().state_dir(None), PathBuf::from(DEFAULT_STATE_DIR));
    }

    #[test]
    fn an_unknown_key_is_refused_by_name() {
        let err = File::parse("api_url = \"https://x\"\npoll_wiat = 5").expect_err("a typo is an error");
        let message = format!("{err:#}");
        assert!(message.contains("poll_wiat"), "{message}");
        assert!(message.contains("poll_wait"), "the valid keys are listed: {message}");
    }

    #[test]
    fn a_missing_api_url_says_where_to_set_it() {
        let err = Run::merge(Given::default(), &File::default()).expect_err("no API URL anywhere");
        assert!(err.to_string().contains("BERTH_API_URL"), "{err}");
    }
}
