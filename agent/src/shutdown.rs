//! Stopping on SIGTERM or SIGINT.
//!
//! The rule: at the first signal the agent takes no new job (a jobs/next
//! request already sent is let answer, since the server may be handing a job
//! out on it) and a job under way may go on for the grace period. A job that
//! ends in that time ends as usual. One that does not is abandoned at its next
//! safe point: between two steps, or during the download or the apply command
//! (the command is killed). Unpacking and the swap itself are not interrupted.
//! An abandoned job is reported failed and the previous version is put back
//! before the agent exits; if that cannot be finished (the server is
//! unreachable, or the agent is killed), the job's journal stays and the next
//! start finishes it. A second signal abandons at once.

use std::time::Duration;
use tokio::sync::watch;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    Running,
    /// Asked to stop: no new job; the current one may finish.
    Draining,
    /// The grace period is over: the current job stops at its next safe point.
    Abandoning,
}

#[derive(Clone)]
pub struct Shutdown {
    stage: watch::Receiver<Stage>,
}

impl Shutdown {
    /// Listens for SIGTERM and SIGINT; `grace` is how long a job may go on after the first.
    pub fn on_signals(grace: Duration) -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        let (mut term, mut int) = (signal(SignalKind::terminate())?, signal(SignalKind::interrupt())?);
        let (tx, rx) = watch::channel(Stage::Running);
        tokio::spawn(async move {
            tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
            tracing::info!(grace_secs = grace.as_secs(), "asked to stop: no new job; a job under way may go on for the grace period");
            tx.send_replace(Stage::Draining);
            tokio::select! {
                _ = tokio::time::sleep(grace) => tracing::warn!("the grace period is over: the job under way stops at its next safe point"),
                _ = term.recv() => tracing::warn!("asked again: the job under way stops at its next safe point"),
                _ = int.recv() => tracing::warn!("asked again: the job under way stops at its next safe point"),
            }
            tx.send_replace(Stage::Abandoning);
            // Kept open so that the stage stays readable until the process exits.
            std::future::pending::<()>().await;
        });
        Ok(Self { stage: rx })
    }

    pub fn requested(&self) -> bool {
        *self.stage.borrow() >= Stage::Draining
    }

    pub fn abandoning(&self) -> bool {
        *self.stage.borrow() >= Stage::Abandoning
    }

    /// Resolves once the stage is at least `stage` (never, if that cannot happen any more).
    async fn reached(&self, stage: Stage) {
        let mut rx = self.stage.clone();
        if rx.wait_for(|s| *s >= stage).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    pub async fn stop_requested(&self) {
        self.reached(Stage::Draining).await
    }

    pub async fn abandoned(&self) {
        self.reached(Stage::Abandoning).await
    }
}

/// The job was left at a safe point because the agent is stopping.
#[derive(Debug)]
pub struct Abandoned;

impl std::fmt::Display for Abandoned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the agent was stopped before the job finished")
    }
}

impl std::error::Error for Abandoned {}
