use super::Berth;
use super::agents::RuntimeCtx;
use crate::audit::AuditDraft;
use crate::audit::summary::DeploymentSettled;
use crate::context::Actor;
use crate::deployment::{
    DeploymentEvent, DeploymentKind, DeploymentStatus, DeploymentStep, JobMessage, TargetRefused, TargetState, TargetStep, aggregate, target_counts,
};
use crate::ids::{ComponentId, DeploymentId, EnvironmentId, JobId, PackageId, TenantId};
use crate::package::VersionLabel;
use crate::policy::Change;
use crate::ports::Activation;
use crate::refusal::Refusal;
use crate::runtime::Digest;
use crate::{DomainError, Result};
use chrono::{DateTime, Utc};
use std::time::Duration;

/// A job handed to an agent.
#[derive(Clone, Debug)]
pub struct JobOffer {
    pub job_id: JobId,
    pub deployment_id: DeploymentId,
    pub kind: DeploymentKind,
    pub environment_id: EnvironmentId,
    pub component_id: ComponentId,
    pub package_id: PackageId,
    pub version: VersionLabel,
    pub digest: Digest,
    pub size: u64,
    /// Minted now, for this tenant's package only.
    pub download_url: String,
    pub deadline: DateTime<Utc>,
}

/// The answer to a job event: `proceed` is false when the agent must stop
/// (its deployment was cancelled or superseded, or the job has ended).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobEventOutcome {
    pub job_status: TargetState,
    pub proceed: bool,
}

/// Most `GET /agent/v1/jobs/next` waits: it holds a Lambda no longer than a
/// short request (agents long-poll their queue in SQS instead; this is the
/// fallback for those that cannot reach SQS).
pub const MAX_WAIT: Duration = Duration::from_secs(2);
/// SQS receipt handles are at most 1,024 characters.
const MAX_RECEIPT_CHARS: usize = 1024;

/// How long a received job message stays hidden while it is being handed out.
const HANDOUT_VISIBILITY: Duration = Duration::from_secs(30);

/// A deployment and one runtime's target of it, as read.
type DeploymentAndTarget = (Option<crate::deployment::Deployment>, Option<crate::deployment::Target>);

/// What becomes of a job message: handed out, or dropped.
enum Handout {
    Offer(Box<JobOffer>),
    /// Ended, retried, cancelled, superseded or withdrawn: never handed out again.
    Withdrawn,
}

fn phase_line(phase: TargetState, message: &str) -> String {
    let base = match phase {
        TargetState::Waiting => "Waiting for its batch",
        TargetState::Pending => "Pending",
        TargetState::Delivered => "Delivered",
        TargetState::Downloading => "Downloading package",
        TargetState::BackingUp => "Backing up the running version",
        TargetState::Applying => "Applying",
        TargetState::Deployed => "Deployed",
        TargetState::Failed => "Failed",
        TargetState::Restored => "Restored the previous version",
        TargetState::Skipped => "Skipped",
    };
    if message.is_empty() { base.to_string() } else { format!("{base}: {message}") }
}

impl Berth {
    /// Polls the runtime's queue for its next job, waiting up to `wait` (at
    /// most `MAX_WAIT`: agents long-poll SQS themselves, not a Lambda).
    /// Messages for jobs that ended, were retried, or whose deployment was
    /// cancelled are dropped here. (A suspended tenant's agents never get
    /// this far: `authenticate_runtime` refuses them.)
    #[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant, runtime_id = %ctx.runtime.id))]
    pub async fn next_job(&self, ctx: &RuntimeCtx, wait: Duration) -> Result<Option<JobOffer>> {
        let wait = wait.min(MAX_WAIT);
        let until = std::time::Instant::now() + wait;
        // Hidden only briefly until it is handed out (then for the whole job
        // deadline): if handing it out fails, it is back soon, not after the deadline.
        let visibility = HANDOUT_VISIBILITY;
        loop {
            let remaining = until.saturating_duration_since(std::time::Instant::now());
            let Some(received) = self.ports.jobs.receive_job(&ctx.runtime.queue_url, remaining, visibility).await? else {
                return Ok(None);
            };
            let handout = match received.job.clone().filter(|j| j.tenant_id == ctx.tenant && j.runtime_id == ctx.runtime.id) {
                Some(job) => match self.hand_out(ctx, &job, &received.receipt, None).await {
                    // The target moved on between reading and handing out (a report of
                    // the same job, another copy of its message): not the agent's
                    // problem. The message is back after its brief hiding and is
                    // judged again then; meanwhile, the next one.
                    Err(e) if e.code() == "target_changed" => continue,
                    other => other?,
                },
                None => Handout::Withdrawn,
            };
            match handout {
                Handout::Offer(offer) => return Ok(Some(*offer)),
                Handout::Withdrawn => self.ports.jobs.delete_job(&ctx.runtime.queue_url, &received.receipt).await?,
            }
        }
    }

    /// Hands out a job whose message the agent received from its queue
    /// itself (with credentials from `vend_queue_credentials`): the same
    /// job `next_job` would have handed out for that message. A job that
    /// ended, was retried or withdrawn is refused with `job_settled` (the
    /// agent deletes the message); a job already delivered to this runtime
    /// is handed out again (SQS may deliver a message twice; the agent's
    /// journal applies it once).
    #[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant, runtime_id = %ctx.runtime.id, job_id = %job))]
    pub async fn claim_job(&self, ctx: &RuntimeCtx, job: JobId, named: Option<DeploymentId>, receipt: &str) -> Result<JobOffer> {
        if receipt.is_empty() || receipt.len() > MAX_RECEIPT_CHARS {
            return Err(DomainError::invalid(
                "receipt_handle",
                format!("must be the receipt handle SQS gave with the message (1 to {MAX_RECEIPT_CHARS} characters)"),
            ));
        }
        // The deployment the message named, if this runtime's target there is this job: no lookup (as `job_on_runtime`).
        let mut read = None;
        if let Some(named) = named {
            let (d, t) = self.ports.deployments.get_deployment_and_target(ctx.tenant, named, ctx.runtime.id).await?;
            if let (Some(d), Some(t)) = (d, t).clone()
                && t.job_id == job
            {
                read = Some((d.id, (Some(d), Some(t))));
            }
        }
        let (deployment_id, read) = match read {
            Some((id, read)) => (id, Some(read)),
            None => (self.ports.deployments.find_job(ctx.tenant, ctx.runtime.id, job).await?.ok_or(DomainError::not_found("job"))?, None),
        };
        let message = JobMessage { tenant_id: ctx.tenant, deployment_id, runtime_id: ctx.runtime.id, job_id: job };
        match self.hand_out(ctx, &message, receipt, read).await? {
            Handout::Offer(offer) => Ok(*offer),
            Handout::Withdrawn => Err(DomainError::conflict("job_settled", "the job has ended or was withdrawn: delete its message")),
        }
    }

    /// The one rule for handing out the job a message names: a job is handed
    /// out only while its target is unsettled, is still this message's job,
    /// and its deployment is neither cancelled nor superseded; it becomes
    /// `delivered` with a deadline, the message stays hidden until then (its
    /// receipt stored, so settling the job deletes it), and a download URL is
    /// minted for this tenant's package only.
    async fn hand_out(&self, ctx: &RuntimeCtx, job: &JobMessage, receipt: &str, read: Option<DeploymentAndTarget>) -> Result<Handout> {
        let (deployment, target) = match read {
            Some(read) => read,
            None => self.ports.deployments.get_deployment_and_target(ctx.tenant, job.deployment_id, ctx.runtime.id).await?,
        };
        let (Some(target), Some(d)) = (target, deployment) else {
            return Ok(Handout::Withdrawn);
        };
        // A target waiting for its batch is sent its job when the batch starts: an older message is dropped.
        let waiting = target.state == TargetState::Waiting;
        if target.job_id != job.job_id || target.state.settled() || waiting || matches!(d.status, DeploymentStatus::Cancelled | DeploymentStatus::Superseded) {
            return Ok(Handout::Withdrawn);
        }
        // The receipt first (a claim names it): one that SQS does not know is
        // refused before anything is written.
        self.ports.jobs.hide_job(&ctx.runtime.queue_url, receipt, HANDOUT_VISIBILITY).await?;
        // Detached since the job was queued: withdrawn, never handed out (an
        // undeploy for a detached runtime is addressed to it; a sync is not, as
        // it installs what only an attached runtime runs).
        let addressed_here = d.only_runtime == Some(ctx.runtime.id) && d.kind != DeploymentKind::Sync;
        if !addressed_here && !ctx.runtime.environments.contains(&d.environment_id) {
            self.skip_target(ctx.tenant, target, "the runtime is no longer attached to the environment").await?;
            self.settle_deployment(ctx.tenant, d.id).await?;
            return Ok(Handout::Withdrawn);
        }
        // A sync overtaken by a deployment: withdrawn, so it never brings an older version back.
        if d.kind == DeploymentKind::Sync
            && target.state == TargetState::Pending
            && let Some(reason) = self.stale_sync(ctx.tenant, &d, ctx.runtime.id).await?
        {
            self.skip_target(ctx.tenant, target, reason).await?;
            self.settle_deployment(ctx.tenant, d.id).await?;
            return Ok(Handout::Withdrawn);
        }
        let from = target.state;
        let now = Utc::now();
        let target = target.step(TargetStep::Deliver { deadline: now + self.settings.job_deadline }, now)?;
        let delivered =
            (from == TargetState::Pending).then(|| DeploymentEvent::line(Some(ctx.runtime.id), &format!("Delivered to runtime \"{}\"", ctx.runtime.name)));
        self.ports.deployments.update_target_noting(ctx.tenant, &target, from, Some(receipt), delivered.as_ref()).await?;
        self.ports.jobs.hide_job(&ctx.runtime.queue_url, receipt, self.settings.job_deadline.to_std().unwrap_or(Duration::from_secs(900))).await?;
        let ttl = self.settings.job_deadline.to_std().unwrap_or(Duration::from_secs(900));
        let url = self.ports.blobs.presign_package_download(ctx.tenant, d.package_id, ttl).await?;
        Ok(Handout::Offer(Box::new(JobOffer {
            job_id: target.job_id,
            deployment_id: d.id,
            kind: d.kind,
            environment_id: d.environment_id,
            component_id: d.component_id,
            package_id: d.package_id,
            version: d.version,
            digest: d.digest,
            size: d.size,
            download_url: url.url,
            deadline: target.deadline.unwrap_or(url.expires_at),
        })))
    }

    /// Records an agent's progress on one of its jobs and settles the deployment when every target has.
    #[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant, runtime_id = %ctx.runtime.id, job_id = %job))]
    pub async fn report_job_event(
        &self,
        ctx: &RuntimeCtx,
        job: JobId,
        named: Option<DeploymentId>,
        phase: TargetState,
        message: String,
    ) -> Result<JobEventOutcome> {
        // What an agent reports is stored and shown to every viewer: never a secret.
        let message = crate::redact::redact(&message);
        let (d, target) = self.job_on_runtime(ctx, job, named).await?;
        let deployment_id = d.id;
        if target.job_id != job {
            // A retry replaced this job.
            return Ok(JobEventOutcome { job_status: target.state, proceed: false });
        }
        if matches!(d.status, DeploymentStatus::Cancelled | DeploymentStatus::Superseded) {
            return Ok(JobEventOutcome { job_status: target.state, proceed: false });
        }
        let reported = match target.step(TargetStep::Report { phase, message: message.clone() }, Utc::now()) {
            Ok(reported) => reported,
            Err(TargetRefused::Stale) => {
                // The same ending again, as when an agent retries after a 503 that came
                // once the target was stored: settling may have failed then, so again.
                if phase.settled() && target.state.settled() {
                    self.settle_deployment(ctx.tenant, deployment_id).await?;
                }
                return Ok(JobEventOutcome { job_status: target.state, proceed: !target.state.settled() });
            }
            Err(refused) => return Err(refused.into()),
        };
        let next = reported.state;
        let line = DeploymentEvent::line(Some(ctx.runtime.id), &format!("Runtime \"{}\": {}", ctx.runtime.name, phase_line(next, &message)));
        match self.ports.deployments.update_target_noting(ctx.tenant, &reported, target.state, None, Some(&line)).await {
            Ok(()) => {}
            Err(DomainError::Refused(Refusal::Stale(_))) => {
                let now = self.ports.deployments.get_target(ctx.tenant, deployment_id, ctx.runtime.id).await?.ok_or(DomainError::not_found("job"))?;
                return Ok(JobEventOutcome { job_status: now.state, proceed: !now.state.settled() });
            }
            Err(e) => return Err(e),
        }
        if next.settled() {
            // Delivery set the deadline `job_deadline` ahead, and a redelivery keeps it: so it was delivered then.
            if let Some(delivered) = reported.deadline.map(|deadline| deadline - self.settings.job_deadline) {
                let latency = (Utc::now() - delivered).to_std().unwrap_or_default();
                let succeeded = next == TargetState::Deployed;
                self.count(ctx.tenant, crate::metrics::MetricEvent::JobFinished { deployment: deployment_id, runtime: ctx.runtime.id, succeeded, latency });
            }
            if let Some(receipt) = self.ports.deployments.target_receipt(ctx.tenant, deployment_id, ctx.runtime.id).await? {
                if let Err(e) = self.ports.jobs.delete_job(&ctx.runtime.queue_url, &receipt).await {
                    // The message reappears later and is dropped then.
                    tracing::info!(error = %e, "could not delete a finished job's message now");
                }
            }
            if next == TargetState::Failed {
                self.retry_later(ctx.tenant, &d, &reported).await?;
            }
            self.settle_deployment(ctx.tenant, deployment_id).await?;
        }
        Ok(JobEventOutcome { job_status: next, proceed: !next.settled() })
    }

    /// The deployment and this runtime's target of `job`: read at once when
    /// the agent named the deployment and its target there is this job (the
    /// tenant and runtime are the credential's, so nothing else can be
    /// reached); looked up by the job otherwise (an agent that names none, or
    /// a wrong one, or a job a retry replaced).
    async fn job_on_runtime(
        &self,
        ctx: &RuntimeCtx,
        job: JobId,
        named: Option<DeploymentId>,
    ) -> Result<(crate::deployment::Deployment, crate::deployment::Target)> {
        if let Some(named) = named {
            if let (Some(d), Some(t)) = self.ports.deployments.get_deployment_and_target(ctx.tenant, named, ctx.runtime.id).await?
                && t.job_id == job
            {
                return Ok((d, t));
            }
        }
        let deployment_id = self.ports.deployments.find_job(ctx.tenant, ctx.runtime.id, job).await?.ok_or(DomainError::not_found("job"))?;
        match self.ports.deployments.get_deployment_and_target(ctx.tenant, deployment_id, ctx.runtime.id).await? {
            (Some(d), Some(t)) => Ok((d, t)),
            _ => Err(DomainError::not_found("job")),
        }
    }

    /// Redeploys the version that was active before `failed` to every runtime
    /// of the environment: a `rollback` deployment, with no approvals, audited
    /// with its reason. The failed version is never redeployed by itself.
    async fn auto_rollback(&self, tenant: TenantId, failed: &crate::deployment::Deployment, previous: &crate::deployment::ActiveVersion) -> Result<()> {
        let ctx = crate::context::TenantCtx {
            tenant,
            actor: Actor::system("auto-rollback"),
            roles: vec![crate::values::Role::Admin],
            request_id: String::new(),
            client_request_id: None,
            tenant_suspended: false,
        };
        let package = self.ports.packages.get_package(tenant, previous.package_id).await?.ok_or(DomainError::not_found("package"))?;
        let notes = format!("automatic rollback: deployment {} of version {} failed", failed.id, failed.version);
        let policy = self.policy_of(tenant, previous.environment_id).await?;
        // Exempt from approvals and freeze windows, by the one rule (see `Change::AutomaticRollback`).
        let clearance = policy.judge(Change::AutomaticRollback, &ctx.roles, Utc::now(), false).enforce()?;
        let rollback = crate::deployment::Deployment::new_rollback(&package, "system:auto-rollback", notes, previous).cleared(clearance, None);
        self.event(tenant, failed.id, None, format!("Rolling back to version {} (deployment {})", previous.version, rollback.id)).await;
        self.record_and_queue(&ctx, &rollback).await
    }

    /// Ends the deployment once every target has settled: on success its
    /// package becomes the environment's active version (the one before it
    /// superseded), all in one transaction.
    pub(crate) async fn settle_deployment(&self, tenant: TenantId, id: DeploymentId) -> Result<()> {
        // A rollout in batches moves on first (it may halt, or skip what waits); unless it moved, what it read stands.
        let read = match self.roll_on(tenant, id, Utc::now()).await? {
            Some(unmoved) => Some(unmoved),
            None => self.ports.deployments.get_deployment(tenant, id).await?,
        };
        let Some(d) = read else {
            return Ok(());
        };
        let targets = self.ports.deployments.list_targets(tenant, id).await?;
        let Some(status) = aggregate(&targets) else {
            return Ok(());
        };
        // Only an in-progress deployment settles (or a failed one whose failed
        // targets all restored the previous version since: rolled back).
        if d.step(DeploymentStep::Settle(status), Utc::now()).is_err() {
            return Ok(());
        }
        let mut head = None;
        let activation = if status != DeploymentStatus::Succeeded || d.only_runtime.is_some() {
            Activation::Unchanged
        } else {
            let read = self.ports.deployments.activation_reads(tenant, d.package_id, d.environment_id, d.component_id).await?;
            head = read.audit_head;
            match (d.kind, read.active) {
                (DeploymentKind::Undeploy, Some(previous)) => Activation::Deactivate { previous },
                (DeploymentKind::Undeploy, None) => Activation::Unchanged,
                (_, previous) => {
                    let package = read.package.ok_or(DomainError::not_found("package"))?;
                    Activation::Activate { new: d.activation(package.manifest.components.clone(), Utc::now()), previous }
                }
            }
        };
        let failed = matches!(status, DeploymentStatus::Failed | DeploymentStatus::PartiallyFailed | DeploymentStatus::RolledBack);
        let roll_back_to = if failed
            && matches!(d.kind, DeploymentKind::Deploy | DeploymentKind::Redeploy)
            && d.only_runtime.is_none()
            && d.status == DeploymentStatus::InProgress
            && !d.tolerated(&targets)
        {
            match self.policy_of(tenant, d.environment_id).await?.auto_rollback {
                true => self.ports.deployments.active_version(tenant, d.environment_id, d.component_id).await?,
                false => None,
            }
        } else {
            None
        };
        let status = if roll_back_to.is_some() { DeploymentStatus::RolledBack } else { status };
        let after = d.step(DeploymentStep::Settle(status), Utc::now())?;
        let audit =
            AuditDraft::by(&Actor::system("berth"), id, DeploymentSettled { before: d.status, after: status, targets: target_counts(&targets) }).after(head);
        let quarantine = after.quarantines(activation.replaced());
        let line = match status {
            DeploymentStatus::Succeeded if d.kind == DeploymentKind::Undeploy => "Undeployed".to_string(),
            DeploymentStatus::Succeeded => format!("Version {} is active", d.version),
            other => format!("Deployment {}", other.as_str().replace('_', " ")),
        };
        let events = [DeploymentEvent::line(None, &line)];
        match self.ports.deployments.finish_deployment_noting(tenant, &after, d.status, &activation, quarantine.as_ref(), audit, &events).await {
            Ok(()) => {
                self.count(tenant, crate::metrics::MetricEvent::DeploymentSettled { deployment: id, kind: d.kind, status });
                if let Some(previous) = roll_back_to {
                    self.auto_rollback(tenant, &d, &previous).await?;
                }
                if let Some(cr) = d.change_request_id {
                    self.settle_change_request(tenant, cr, &Actor::system("berth"), "").await?;
                }
                Ok(())
            }
            // Another settle got there first.
            Err(DomainError::Refused(Refusal::Stale(_))) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
