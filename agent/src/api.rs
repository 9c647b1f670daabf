//! The Berth agent protocol over HTTPS (docs/agent-protocol.md).

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// A job as `GET /agent/v1/jobs/next` hands it out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub job_id: String,
    pub deployment_id: String,
    /// `deploy`, `redeploy`, `rollback` or `undeploy`.
    pub kind: String,
    pub environment_id: String,
    pub component_id: String,
    pub package_id: String,
    pub version: String,
    pub digest: String,
    pub size: u64,
    pub download_url: String,
    pub deadline: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct EventAnswer {
    pub job_status: String,
    /// False: stop, and leave the active version as it is.
    pub proceed: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Running {
    pub component_id: String,
    pub package_id: String,
    pub digest: String,
}

pub struct Api {
    base: String,
    http: reqwest::Client,
    credential: Option<String>,
}

pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

impl Api {
    pub fn new(base: &str) -> Result<Self> {
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            http: reqwest::Client::builder().connect_timeout(Duration::from_secs(10)).timeout(Duration::from_secs(60)).build()?,
            credential: None,
        })
    }

    pub fn with_credential(mut self, credential: String) -> Self {
        self.credential = Some(credential);
        self
    }

    fn authed(&self, r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.credential {
            Some(c) => r.bearer_auth(c),
            None => r,
        }
    }

    /// Exchanges the one-time registration token for a runtime credential.
    pub async fn register(&self, token: &str, name: Option<&str>) -> Result<(String, String)> {
        let mut body = json!({"registration_token": token, "agent_version": AGENT_VERSION});
        if let Some(n) = name {
            body["name"] = json!(n);
        }
        let response = self.http.post(format!("{}/agent/v1/register", self.base)).json(&body).send().await?;
        let status = response.status();
        let value: serde_json::Value = response.json().await.unwrap_or_default();
        if !status.is_success() {
            bail!("registration refused ({status}): {}", value["detail"].as_str().unwrap_or("no detail"));
        }
        let runtime = value["runtime_id"].as_str().context("no runtime_id")?.to_string();
        let credential = value["credential"].as_str().context("no credential")?.to_string();
        Ok((runtime, credential))
    }

    pub async fn heartbeat(&self, running: &[Running]) -> Result<()> {
        let body = json!({"agent_version": AGENT_VERSION, "status": "ok", "running": running});
        let response = self.authed(self.http.post(format!("{}/agent/v1/heartbeat", self.base))).json(&body).send().await?;
        if !response.status().is_success() {
            bail!("heartbeat refused: {}", response.status());
        }
        Ok(())
    }

    /// Long-polls for a job; `None` when there is none.
    pub async fn next_job(&self, wait: u64) -> Result<Option<Job>> {
        let response =
            self.authed(self.http.get(format!("{}/agent/v1/jobs/next?wait={wait}", self.base))).timeout(Duration::from_secs(wait + 30)).send().await?;
        match response.status() {
            reqwest::StatusCode::NO_CONTENT => Ok(None),
            s if s.is_success() => Ok(Some(response.json().await?)),
            s => bail!("jobs/next failed: {s}"),
        }
    }

    /// Reports a phase, retrying a few times on network errors.
    /// URLs in `message` lose their query strings first: a presigned URL's
    /// signature must not end up in the server's timeline.
    pub async fn report(&self, job: &str, phase: &str, message: &str) -> Result<EventAnswer> {
        let message = &without_query_strings(message);
        let mut last = None;
        for attempt in 0..5u64 {
            let sent = self
                .authed(self.http.post(format!("{}/agent/v1/jobs/{job}/events", self.base)))
                .json(&json!({"phase": phase, "message": message}))
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => {
                    let answer: EventAnswer = r.json().await?;
                    tracing::debug!(job_id = job, phase, job_status = %answer.job_status, proceed = answer.proceed, "reported");
                    return Ok(answer);
                }
                Ok(r) if r.status().is_client_error() => bail!("{phase} refused: {}", r.status()),
                Ok(r) => last = Some(anyhow::anyhow!("{phase}: {}", r.status())),
                Err(e) => last = Some(e.into()),
            }
            tokio::time::sleep(Duration::from_millis(500 * (attempt + 1))).await;
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("report failed")))
    }

    /// Streams the archive to `dest`, verifying its SHA-256 against `digest`.
    pub async fn download(&self, url: &str, dest: &Path, digest: &str) -> Result<()> {
        let partial = dest.with_extension("partial");
        // Errors leave the (presigned, secret-bearing) URL out.
        let mut response =
            self.http.get(url).timeout(Duration::from_secs(3600)).send().await.and_then(|r| r.error_for_status()).map_err(|e| e.without_url())?;
        let mut file = tokio::fs::File::create(&partial).await?;
        let mut hasher = Sha256::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| e.without_url())? {
            hasher.update(&chunk);
            file.write_all(&chunk).await?;
        }
        file.sync_all().await?;
        let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
        if actual != digest {
            let _ = tokio::fs::remove_file(&partial).await;
            bail!("digest mismatch: expected {digest}, downloaded {actual}");
        }
        tokio::fs::rename(&partial, dest).await?;
        Ok(())
    }
}

/// `text` with the query string of every URL in it removed.
pub fn without_query_strings(text: &str) -> String {
    text.split_inclusive(char::is_whitespace)
        .map(|word| match (word.find("://"), word.find('?')) {
            (Some(scheme), Some(query)) if query > scheme => {
                let tail = if word.ends_with(char::is_whitespace) { &word[word.len() - 1..] } else { "" };
                format!("{}?[redacted]{tail}", &word[..query])
            }
            _ => word.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::without_query_strings;

    #[test]
    fn urls_lose_their_query_strings_and_other_text_stays() {
        assert_eq!(without_query_strings("GET http://s3/b/k.tar.gz?X-Amz-Signature=abc failed\nthen"), "GET http://s3/b/k.tar.gz?[redacted] failed\nthen");
        assert_eq!(without_query_strings("exit status 1: what? no"), "exit status 1: what? no");
    }
}
