use super::Berth;
use crate::audit::AuditDraft;
use crate::audit::summary::{DeploymentHeld, DeploymentReleased, HoldReason};
use crate::context::Actor;
use crate::deployment::{DeploymentStatus, DeploymentStep, TargetStep};
use crate::refusal::Refusal;
use crate::{DomainError, Result};
use chrono::{DateTime, Utc};

/// What one sweep did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Delivered jobs failed because their deadline passed.
    pub timed_out: usize,
    /// Scheduled deployments whose time came, now queued.
    pub released: usize,
    /// Queued deployments sent to the dispatcher again.
    pub requeued: usize,
    /// Rollouts whose bake ended, moved on to their next batch.
    pub batches: usize,
    /// Failed targets sent their next try (`auto_retry`).
    pub retried: usize,
}

/// Sweeps look at this many items of each kind at most.
const SWEEP_BATCH: u32 = 100;
/// A queued deployment not dispatched for this long is queued again.
const REQUEUE_AFTER_SECS: i64 = 60;

impl Berth {
    /// The scheduled housekeeping. Runtime status needs none: it is derived
    /// from the last heartbeat whenever it is read.
    #[tracing::instrument(skip(self))]
    pub async fn sweep(&self, now: DateTime<Utc>) -> Result<SweepReport> {
        let mut report = SweepReport::default();
        for item in self.ports.deployments.overdue_targets(now, SWEEP_BATCH).await? {
            let Some(runtime) = item.runtime else { continue };
            let Some(target) = self.ports.deployments.get_target(item.tenant, item.deployment, runtime).await? else { continue };
            if target.retry_at.is_some_and(|at| at <= now) {
                let Some(d) = self.ports.deployments.get_deployment(item.tenant, item.deployment).await? else { continue };
                if self.retry_target(item.tenant, &d, &target).await? {
                    report.retried += 1;
                }
                continue;
            }
            // Settled meanwhile, or not overdue after all.
            let Ok(expired) = target.step(TargetStep::Expire, now) else { continue };
            match self.ports.deployments.update_target(item.tenant, &expired, target.state, None).await {
                Ok(()) => {}
                Err(DomainError::Refused(Refusal::Stale(_))) => continue,
                Err(e) => return Err(e),
            }
            self.event(item.tenant, item.deployment, Some(runtime), "Failed: the job did not finish before its deadline".into()).await;
            if let Some(d) = self.ports.deployments.get_deployment(item.tenant, item.deployment).await? {
                self.retry_later(item.tenant, &d, &expired).await?;
            }
            self.settle_deployment(item.tenant, item.deployment).await?;
            report.timed_out += 1;
        }
        for item in self.ports.deployments.due_scheduled(now, SWEEP_BATCH).await? {
            let Some(d) = self.ports.deployments.get_deployment(item.tenant, item.deployment).await? else { continue };
            if d.status == DeploymentStatus::InProgress {
                // A rollout whose bake ended: its next batch starts.
                self.roll_on(item.tenant, d.id, now).await?;
                self.settle_deployment(item.tenant, d.id).await?;
                report.batches += 1;
                continue;
            }
            let Ok(after) = d.step(DeploymentStep::Due, now) else { continue };
            let sweeper = Actor::system("sweeper");
            // A freeze window that began meanwhile holds it until the window ends.
            if let Some(until) = self.policy_of(item.tenant, d.environment_id).await?.frozen_until(now) {
                let after = d.step(DeploymentStep::Hold { until }, now)?;
                let audit = AuditDraft::by(&sweeper, d.id, DeploymentHeld { reason: HoldReason::FreezeWindow, until });
                match self.ports.deployments.transition(item.tenant, &after, DeploymentStatus::Scheduled, Some(audit)).await {
                    Ok(()) => self.event(item.tenant, d.id, None, format!("Held by a freeze window until {}", until.to_rfc3339())).await,
                    Err(DomainError::Refused(Refusal::Stale(_))) => {}
                    Err(e) => return Err(e),
                }
                continue;
            }
            let audit = AuditDraft::by(&sweeper, d.id, DeploymentReleased { before: d.status, after: after.status, scheduled_at: d.scheduled_at });
            match self.ports.deployments.transition(item.tenant, &after, DeploymentStatus::Scheduled, Some(audit)).await {
                Ok(()) => {}
                Err(DomainError::Refused(Refusal::Stale(_))) => continue,
                Err(e) => return Err(e),
            }
            self.event(item.tenant, d.id, None, "Scheduled time reached: queued".into()).await;
            self.ports.jobs.enqueue_deployment(item.tenant, d.id).await?;
            report.released += 1;
        }
        for item in self.ports.deployments.stale_queued(now - chrono::Duration::seconds(REQUEUE_AFTER_SECS), SWEEP_BATCH).await? {
            self.ports.jobs.enqueue_deployment(item.tenant, item.deployment).await?;
            report.requeued += 1;
        }
        Ok(report)
    }
}
