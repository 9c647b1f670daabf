//! Gradual rollout (batches that bake, halt and resume) and automatic retry
//! of failed targets. Every move is a conditional write (the deployment's
//! rollout step, a target's state and job), so two sweepers, a sweeper and a
//! settling request, or a redelivered message make it once.

use super::Berth;
use crate::audit::AuditDraft;
use crate::audit::summary::{DeploymentHalted, DeploymentResumed, HaltReason};
use crate::context::{Actor, Permission, TenantCtx};
use crate::deployment::{Deployment, DeploymentRefused, DeploymentStatus, DeploymentStep, Target, TargetState, TargetStep};
use crate::ids::{DeploymentId, EnvironmentId, RuntimeId, TenantId};
use crate::policy::{Change, Policy};
use crate::refusal::Refusal;
use crate::rollout::{Progress, Rollout, RolloutRequest};
use crate::{DomainError, Result};
use chrono::{DateTime, Duration, Utc};
use std::collections::HashSet;

/// Most moves one `roll_on` makes (a bake scheduled and a batch started are two).
const MOVES: usize = 4;

/// A refused conditional write that only means "someone else moved it first".
fn raced(e: &DomainError) -> bool {
    matches!(e, DomainError::Refused(Refusal::Stale(_)))
}

fn waiting(targets: &[Target]) -> Vec<&Target> {
    targets.iter().filter(|t| t.state == TargetState::Waiting).collect()
}

fn failed_for_good(targets: &[Target]) -> usize {
    targets.iter().filter(|t| t.failed_for_good()).count()
}

impl Deployment {
    /// More targets failed (after their last attempt) than its rollout
    /// tolerates beyond the failures accepted by a resume.
    fn too_many_failures(&self, progress: &Progress, failed: usize) -> bool {
        failed > usize::try_from(progress.accepted_failures.saturating_add(self.rollout.max_failed_targets)).unwrap_or(usize::MAX)
    }

    /// A rollout in batches that ended within what it tolerates: an automatic
    /// rollback does not undo it.
    pub(crate) fn tolerated(&self, targets: &[Target]) -> bool {
        self.progress.is_some_and(|p| !self.too_many_failures(&p, failed_for_good(targets)))
    }
}

impl Berth {
    /// The rollout a request asks for in `env`: `request` over the policy's,
    /// refused (422, naming the fields) unless possible and at least as careful.
    pub(crate) async fn rollout_over(&self, ctx: &TenantCtx, policy: &Policy, env: EnvironmentId, request: &RolloutRequest) -> Result<Rollout> {
        let merged = policy.rollout.merged(request, "rollout")?;
        let runtimes = self.all_environment_runtimes(ctx.tenant, env).await?.len();
        policy.rollout.check_more_careful(&merged, runtimes, "rollout")?;
        Ok(merged)
    }

    /// The dry run of a request's `rollout` in `env` (what `create_deployment` would refuse).
    pub async fn check_rollout(&self, ctx: &TenantCtx, env: EnvironmentId, request: &RolloutRequest) -> Result<Rollout> {
        let env = self.get_environment(ctx, env).await?;
        let policy = self.policy_of(ctx.tenant, env.id).await?;
        self.rollout_over(ctx, &policy, env.id, request).await
    }

    /// Moves a rollout in batches on as far as its targets allow at `now`:
    /// halts it when too many targets failed, lets a batch whose targets all
    /// settled bake, and starts the next batch once baked. Called whenever a
    /// target settles and by the sweeper when a bake ends. Returns the
    /// deployment as last read when nothing was written after that read (a
    /// caller may go on with it), `None` when it moved or is gone.
    pub(crate) async fn roll_on(&self, tenant: TenantId, id: DeploymentId, now: DateTime<Utc>) -> Result<Option<Deployment>> {
        for _ in 0..MOVES {
            let Some(d) = self.ports.deployments.get_deployment(tenant, id).await? else { return Ok(None) };
            let Some(progress) = d.progress.filter(|_| d.status == DeploymentStatus::InProgress) else { return Ok(Some(d)) };
            let targets = self.ports.deployments.list_targets(tenant, id).await?;
            let waiting = waiting(&targets);
            // Every batch is out: the deployment settles as its targets do.
            let Some(next) = waiting.iter().map(|t| t.batch).min() else { return Ok(Some(d)) };
            let failed = failed_for_good(&targets);
            if d.too_many_failures(&progress, failed) {
                return self.halt_for_failures(tenant, &d, progress, &targets, failed).await.map(|()| None);
            }
            if !targets.iter().filter(|t| t.batch <= progress.batch).all(Target::settled) {
                return Ok(Some(d));
            }
            let moved = match progress.next_batch_at {
                None => self.bake(tenant, &d, progress, now).await?,
                Some(at) if at <= now => self.start_batch(tenant, &d, progress, next, &targets).await?,
                // The sweeper starts it then.
                Some(_) => return Ok(Some(d)),
            };
            if !moved {
                return Ok(None);
            }
        }
        Ok(None)
    }

    /// The batch under way succeeded: the next starts after the bake.
    async fn bake(&self, tenant: TenantId, d: &Deployment, progress: Progress, now: DateTime<Utc>) -> Result<bool> {
        let bake = d.rollout.bake_seconds;
        let at = now + Duration::seconds(i64::from(bake));
        let after = Deployment { progress: Some(progress.then(|p| p.next_batch_at = Some(at))), ..d.clone() };
        match self.ports.deployments.step_rollout(tenant, &after, DeploymentStatus::InProgress, None).await {
            Ok(()) => {}
            Err(e) if raced(&e) => return Ok(false),
            Err(e) => return Err(e),
        }
        let line = match bake {
            0 => format!("Batch {} of {} succeeded", progress.batch, progress.batches),
            s => format!("Batch {} of {} succeeded; baking for {s} s until {}", progress.batch, progress.batches, at.to_rfc3339()),
        };
        self.event(tenant, d.id, None, line).await;
        Ok(true)
    }

    /// The bake ended: the targets of batch `next` are sent their jobs.
    /// Targets are released first, each once (a conditional write), so that a
    /// move interrupted before the deployment is written is finished by the next.
    async fn start_batch(&self, tenant: TenantId, d: &Deployment, progress: Progress, next: u32, targets: &[Target]) -> Result<bool> {
        let now = Utc::now();
        let batch: Vec<&Target> = targets.iter().filter(|t| t.batch == next).collect();
        for t in batch.iter().filter(|t| t.state == TargetState::Waiting) {
            let Ok(released) = t.step(TargetStep::Release, now) else { continue };
            match self.ports.deployments.update_target(tenant, &released, t.state, None).await {
                Ok(()) => self.send_job(tenant, d, &released).await?,
                Err(e) if raced(&e) => {}
                Err(e) => return Err(e),
            }
        }
        let after = Deployment {
            progress: Some(progress.then(|p| {
                p.batch = next;
                p.next_batch_at = None;
            })),
            ..d.clone()
        };
        match self.ports.deployments.step_rollout(tenant, &after, DeploymentStatus::InProgress, None).await {
            Ok(()) => {}
            Err(e) if raced(&e) => return Ok(false),
            Err(e) => return Err(e),
        }
        if d.rollout.bake_seconds > 0 {
            self.event(tenant, d.id, None, format!("Batch {} of {} baked", progress.batch, progress.batches)).await;
        }
        self.event(tenant, d.id, None, format!("Batch {next} of {} started on {} runtime(s)", progress.batches, batch.len())).await;
        Ok(true)
    }

    /// More targets failed than the rollout tolerates: the targets still
    /// waiting are skipped. With the policy's `auto_rollback` and a version
    /// to go back to, the deployment then ends `rolled_back` (as any failed
    /// deployment does) once the jobs under way finish; else it is `halted`.
    async fn halt_for_failures(&self, tenant: TenantId, d: &Deployment, progress: Progress, targets: &[Target], failed: usize) -> Result<()> {
        let waiting: Vec<Target> = waiting(targets).into_iter().cloned().collect();
        let tolerated = d.rollout.max_failed_targets;
        let rolls_back = self.policy_of(tenant, d.environment_id).await?.auto_rollback
            && self.ports.deployments.active_version(tenant, d.environment_id, d.component_id).await?.is_some();
        if rolls_back {
            self.event(tenant, d.id, None, format!("{failed} failed target(s), more than the {tolerated} the rollout tolerates: rolling back")).await;
            for t in waiting {
                self.skip_target(tenant, t, "the rollout stopped: too many failed targets; rolling back").await?;
            }
            return Ok(());
        }
        let mut after = d.step(DeploymentStep::Halt, Utc::now())?;
        after.progress = Some(progress.then(|p| p.next_batch_at = None));
        let audit = AuditDraft::by(
            &Actor::system("berth"),
            d.id,
            DeploymentHalted {
                before: d.status,
                after: after.status,
                reason: HaltReason::TooManyFailures,
                batch: progress.batch,
                batches: progress.batches,
                failed_targets: failed,
                skipped_targets: waiting.len(),
            },
        );
        match self.ports.deployments.step_rollout(tenant, &after, d.status, Some(audit)).await {
            Ok(()) => {}
            Err(e) if raced(&e) => return Ok(()),
            Err(e) => return Err(e),
        }
        let skipped = waiting.len();
        for t in waiting {
            self.skip_target(tenant, t, "the rollout was halted: too many failed targets").await?;
        }
        let line = format!(
            "Halted after batch {} of {}: {failed} failed target(s), more than the {tolerated} tolerated; {skipped} waiting target(s) skipped",
            progress.batch, progress.batches
        );
        self.event(tenant, d.id, None, line).await;
        Ok(())
    }

    /// Stops a rollout in batches before its next batch: the targets waiting
    /// for theirs are skipped, the jobs already sent finish.
    #[tracing::instrument(skip(self, ctx), fields(tenant_id = %ctx.tenant, request_id = %ctx.request_id))]
    pub async fn halt_deployment(&self, ctx: &TenantCtx, id: DeploymentId) -> Result<Deployment> {
        let before = self.get_deployment(ctx, id).await?;
        ctx.require(Permission::Deploy)?;
        self.policy_of(ctx.tenant, before.environment_id).await?.judge(Change::Halt, &ctx.roles, Utc::now(), false).enforce()?;
        let not_haltable = || DomainError::from(DeploymentRefused::NotHaltable(before.status));
        let progress = before.progress.filter(|_| before.status == DeploymentStatus::InProgress).ok_or_else(not_haltable)?;
        let targets = self.ports.deployments.list_targets(ctx.tenant, id).await?;
        let waiting: Vec<Target> = waiting(&targets).into_iter().cloned().collect();
        if waiting.is_empty() {
            return Err(not_haltable());
        }
        let mut after = before.step(DeploymentStep::Halt, Utc::now())?;
        after.progress = Some(progress.then(|p| p.next_batch_at = None));
        let audit = AuditDraft::by(
            ctx,
            id,
            DeploymentHalted {
                before: before.status,
                after: after.status,
                reason: HaltReason::Requested,
                batch: progress.batch,
                batches: progress.batches,
                failed_targets: failed_for_good(&targets),
                skipped_targets: waiting.len(),
            },
        );
        self.ports.deployments.step_rollout(ctx.tenant, &after, before.status, Some(audit)).await.map_err(|e| match e {
            e if raced(&e) => DomainError::conflict("not_haltable", "the rollout moved on meanwhile: read it and try again"),
            other => other,
        })?;
        let skipped = waiting.len();
        let reason = format!("the rollout was halted by {}", ctx.actor.id);
        for t in waiting {
            self.skip_target(ctx.tenant, t, &reason).await?;
        }
        let line = format!(
            "Halted by {} after batch {} of {}: {skipped} waiting target(s) skipped; jobs under way finish",
            ctx.actor.id, progress.batch, progress.batches
        );
        self.event(ctx.tenant, id, None, line).await;
        Ok(after)
    }

    /// Resumes a halted rollout: the targets the halt skipped wait for their
    /// batch again and the next batch starts (at once when the batch under
    /// way has settled). The failed targets so far are accepted: only failures
    /// beyond them halt it again.
    #[tracing::instrument(skip(self, ctx), fields(tenant_id = %ctx.tenant, request_id = %ctx.request_id))]
    pub async fn resume_deployment(&self, ctx: &TenantCtx, id: DeploymentId) -> Result<Deployment> {
        let before = self.get_deployment(ctx, id).await?;
        ctx.require(Permission::Deploy)?;
        let env = self.get_environment(ctx, before.environment_id).await?;
        self.policy_of(ctx.tenant, env.id).await?.judge(Change::Resume, &ctx.roles, Utc::now(), false).enforce()?;
        let progress = before
            .progress
            .filter(|_| before.status == DeploymentStatus::Halted)
            .ok_or_else(|| DomainError::from(DeploymentRefused::NotHalted(before.status)))?;
        if !env.enabled {
            return Err(DomainError::conflict("environment_not_enabled", format!("environment \"{}\" is not enabled", env.name)));
        }
        if let Some(holder) = self.ports.deployments.in_flight(ctx.tenant, env.id, before.component_id).await? {
            return Err(Refusal::InFlight { deployment: Some(holder) }.into());
        }
        // Only runtimes still attached wait for their batch again.
        let attached: HashSet<RuntimeId> = self.all_environment_runtimes(ctx.tenant, env.id).await?.into_iter().map(|r| r.id).collect();
        let now = Utc::now();
        for t in self.ports.deployments.list_targets(ctx.tenant, id).await? {
            if t.state != TargetState::Skipped || t.batch <= progress.batch || !attached.contains(&t.runtime_id) {
                continue;
            }
            let requeued = t.step(TargetStep::Requeue, now)?;
            match self.ports.deployments.update_target(ctx.tenant, &requeued, t.state, None).await {
                Ok(()) => {}
                Err(e) if raced(&e) => {}
                Err(e) => return Err(e),
            }
        }
        let targets = self.ports.deployments.list_targets(ctx.tenant, id).await?;
        let failed = failed_for_good(&targets);
        let settled = targets.iter().filter(|t| t.batch <= progress.batch).all(Target::settled);
        let mut after = before.step(DeploymentStep::Resume, now)?;
        after.progress = Some(progress.then(|p| {
            p.accepted_failures = u32::try_from(failed).unwrap_or(u32::MAX);
            // No bake again: the batch under way baked while halted.
            p.next_batch_at = settled.then_some(now);
        }));
        let waiting = waiting(&targets).len();
        let audit = AuditDraft::by(
            ctx,
            id,
            DeploymentResumed {
                before: before.status,
                after: after.status,
                batch: progress.batch,
                batches: progress.batches,
                waiting_targets: waiting,
                accepted_failures: u32::try_from(failed).unwrap_or(u32::MAX),
            },
        );
        self.ports.deployments.step_rollout(ctx.tenant, &after, before.status, Some(audit)).await.map_err(|e| match e {
            e if raced(&e) => DomainError::conflict("not_halted", "the deployment moved on meanwhile: read it and try again"),
            other => other,
        })?;
        self.event(ctx.tenant, id, None, format!("Resumed by {}: {waiting} target(s) waiting for their batch", ctx.actor.id)).await;
        self.settle_deployment(ctx.tenant, id).await?;
        self.get_deployment(ctx, id).await
    }

    /// After a target failed (its agent said so, or its deadline passed):
    /// with the policy's `auto_retry` and a try left, it is tried again after
    /// the backoff (at once when there is none; else the sweeper does it).
    pub(crate) async fn retry_later(&self, tenant: TenantId, d: &Deployment, failed: &Target) -> Result<()> {
        if !matches!(d.status, DeploymentStatus::InProgress | DeploymentStatus::Halted) {
            return Ok(());
        }
        let Some(retry) = self.policy_of(tenant, d.environment_id).await?.auto_retry else { return Ok(()) };
        let now = Utc::now();
        let Some(at) = retry.next_try(failed.attempt, now) else {
            if retry.attempts > 1 {
                self.event(tenant, d.id, Some(failed.runtime_id), format!("Attempt {} of {} failed: no try left", failed.attempt, retry.attempts)).await;
            }
            return Ok(());
        };
        let Ok(backing_off) = failed.step(TargetStep::Backoff { until: at }, now) else { return Ok(()) };
        match self.ports.deployments.update_target(tenant, &backing_off, failed.state, None).await {
            Ok(()) => {}
            Err(e) if raced(&e) => return Ok(()),
            Err(e) => return Err(e),
        }
        let line = format!("Attempt {} of {} failed: retrying in {} s", failed.attempt, retry.attempts, retry.backoff_seconds);
        self.event(tenant, d.id, Some(failed.runtime_id), line).await;
        if at <= now {
            self.retry_target(tenant, d, &backing_off).await?;
        }
        Ok(())
    }

    /// Sends a target whose retry is due its next try: a new job (the agent
    /// runs a job id once), `attempt` one more. False when it moved meanwhile.
    pub(crate) async fn retry_target(&self, tenant: TenantId, d: &Deployment, due: &Target) -> Result<bool> {
        let Ok(next) = due.step(TargetStep::Reset, Utc::now()) else { return Ok(false) };
        match self.ports.deployments.reset_target(tenant, &next, due).await {
            Ok(()) => {}
            Err(e) if raced(&e) => return Ok(false),
            Err(e) => return Err(e),
        }
        self.event(tenant, d.id, Some(next.runtime_id), format!("Attempt {} sent", next.attempt)).await;
        self.send_job(tenant, d, &next).await?;
        Ok(true)
    }
}
