use super::Berth;
use crate::audit::AuditDraft;
use crate::audit::summary::{DeploymentStarted, DispatchFailed};
use crate::context::Actor;
use crate::deployment::{Deployment, DeploymentEvent, DeploymentStatus, DeploymentStep, JobMessage, Target, TargetState};
use crate::ids::{DeploymentId, TenantId};
use crate::package::PackageStatus;
use crate::ports::Activation;
use crate::refusal::Refusal;
use crate::rollout::Progress;
use crate::{DomainError, Result};
use chrono::Utc;
use futures::StreamExt;

/// How many targets the dispatcher writes and sends at once.
const DISPATCH_CONCURRENCY: usize = 16;

impl Berth {
    /// The deployments-queue consumer: one target per runtime attached now,
    /// each sent its job on the runtime's own queue. Every message may arrive
    /// twice: an existing target is kept, and only a still-pending one is sent
    /// again (a duplicate job message is dropped when the agent asks for work).
    #[tracing::instrument(skip(self), fields(tenant_id = %tenant, deployment_id = %id))]
    pub async fn dispatch_deployment(&self, tenant: TenantId, id: DeploymentId) -> Result<()> {
        let (d, head) = self.ports.deployments.get_deployment_and_head(tenant, id).await?;
        let Some(d) = d else {
            tracing::warn!("no such deployment: nothing to dispatch");
            return Ok(());
        };
        if !matches!(d.status, DeploymentStatus::Queued | DeploymentStatus::InProgress) {
            return Ok(());
        }
        let Some(d) = self.with_built_package(tenant, d).await? else {
            return Ok(());
        };
        let mut runtimes: Vec<_> = match d.only_runtime {
            Some(r) => self.ports.runtimes.get_runtime(tenant, r).await?.into_iter().collect(),
            None => self.all_environment_runtimes(tenant, d.environment_id).await?,
        };
        // Batches are numbered in runtime-id order, the same on every delivery of the message.
        runtimes.sort_by_key(|r| r.id);
        if runtimes.is_empty() {
            return self.end_without_targets(tenant, &d).await;
        }
        // Every target first, in as few writes as the store allows (a redelivered message finds some or all there).
        let now = Utc::now();
        let fresh: Vec<Target> =
            runtimes.iter().enumerate().map(|(i, runtime)| Target::pending(id, runtime.id, now).in_batch(d.rollout.batch_of(i, runtimes.len()))).collect();
        let written = self.ports.deployments.put_targets_if_absent(tenant, &fresh).await?;
        let redelivered = written.iter().any(|w| !w);
        // Started before any job is sent, so that a job ending at once finds its deployment in progress and settles it.
        if let Ok(mut after) = d.step(DeploymentStep::Start, now) {
            if d.rollout.in_batches() {
                after.progress = Some(Progress::start(d.rollout.batches(runtimes.len())));
            }
            let audit = AuditDraft::by(&Actor::system("dispatcher"), id, DeploymentStarted { before: d.status, after: after.status, runtimes: runtimes.len() })
                .after(head);
            let mut lines = vec![format!("Publish started on {} runtime(s)", runtimes.len())];
            if let Some(p) = after.progress {
                let first = d.rollout.per_batch(runtimes.len()).min(runtimes.len());
                lines.push(format!("Batch 1 of {} started on {first} runtime(s)", p.batches));
            }
            let events: Vec<DeploymentEvent> = lines.into_iter().map(|line| DeploymentEvent::line(None, &line)).collect();
            match self.ports.deployments.transition_noting(tenant, &after, DeploymentStatus::Queued, Some(audit), &events).await {
                Ok(()) => {}
                // A duplicate delivery moved it first.
                Err(DomainError::Refused(Refusal::Stale(_))) => {}
                Err(e) => return Err(e),
            }
        }
        // Then each pending job on its runtime's queue, a few at a time (one after another, a thousand
        // runtimes would wait about a thousand round trips for the last job: the bench's fan-out).
        let sends: Vec<_> = runtimes
            .iter()
            .zip(fresh)
            .zip(written.iter().copied())
            .map(|((runtime, fresh), written)| self.send_pending(tenant, runtime, fresh, written))
            .collect();
        let mut sends = futures::stream::iter(sends).buffer_unordered(DISPATCH_CONCURRENCY);
        while let Some(done) = sends.next().await {
            done?;
        }
        // An earlier delivery of this message may have failed after starting the deployment,
        // and its jobs ended meanwhile, unsettled: settle it now. (A first delivery wrote every target.)
        if redelivered {
            self.settle_deployment(tenant, id).await?;
        }
        Ok(())
    }

    /// Sends `runtime` its job if its target is pending: the one just written,
    /// or (a redelivery) the one a delivery before wrote.
    async fn send_pending(&self, tenant: TenantId, runtime: &crate::runtime::Runtime, fresh: Target, written: bool) -> Result<()> {
        let target = if written {
            fresh
        } else {
            self.ports.deployments.get_target(tenant, fresh.deployment_id, runtime.id).await?.ok_or(DomainError::not_found("target"))?
        };
        if target.state == TargetState::Pending {
            let job = JobMessage { tenant_id: tenant, deployment_id: target.deployment_id, runtime_id: runtime.id, job_id: target.job_id };
            self.ports.jobs.send_job(&runtime.queue_url, &job).await?;
        }
        Ok(())
    }

    /// A deployment recorded before its package was built, once it is: with
    /// the package's digest and size, no longer waiting. `None` while it is
    /// still building (the package builder queues the deployment again when
    /// it ends the build), once the deployment was failed because the build
    /// failed (`package_failed`), or when a duplicate message took it first.
    async fn with_built_package(&self, tenant: TenantId, d: Deployment) -> Result<Option<Deployment>> {
        if !d.waiting_for_package {
            return Ok(Some(d));
        }
        let package = self.ports.packages.get_package(tenant, d.package_id).await?;
        let (digest, size) = match package {
            Some(p) if p.status == PackageStatus::Building => return Ok(None),
            Some(p) if p.status == PackageStatus::Ready => match p.digest {
                Some(digest) => (digest, p.size),
                None => return Err(DomainError::unexpected("a ready package without a digest")),
            },
            failed => {
                let why = failed.and_then(|p| p.failure).unwrap_or_else(|| "the package is gone".to_string());
                self.fail_deployment(tenant, d.id, &format!("package_failed: {why}")).await?;
                return Ok(None);
            }
        };
        let after = Deployment { waiting_for_package: false, digest, size, ..d.clone() };
        match self.ports.deployments.transition(tenant, &after, d.status, None).await {
            Ok(()) => {
                self.event(tenant, d.id, None, format!("Package version {} is built", d.version)).await;
                Ok(Some(after))
            }
            Err(DomainError::Refused(Refusal::Stale(_))) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sends one target its job (again), on its runtime's queue.
    pub(crate) async fn send_job(&self, tenant: TenantId, d: &Deployment, target: &Target) -> Result<()> {
        let Some(runtime) = self.ports.runtimes.get_runtime(tenant, target.runtime_id).await? else {
            return Ok(());
        };
        let job = JobMessage { tenant_id: tenant, deployment_id: d.id, runtime_id: runtime.id, job_id: target.job_id };
        self.ports.jobs.send_job(&runtime.queue_url, &job).await
    }

    async fn end_without_targets(&self, tenant: TenantId, d: &Deployment) -> Result<()> {
        let Ok(after) = d.step(DeploymentStep::FailToStart, Utc::now()) else { return Ok(()) };
        let audit = AuditDraft::by(&Actor::system("dispatcher"), d.id, DispatchFailed { reason: "no runtime attached".into() });
        match self.ports.deployments.finish_deployment(tenant, &after, d.status, &Activation::Unchanged, None, audit).await {
            Ok(()) => {
                self.event(tenant, d.id, None, "Failed: no runtime is attached to the environment".into()).await;
                self.count(tenant, crate::metrics::MetricEvent::DeploymentSettled { deployment: d.id, kind: d.kind, status: after.status });
                Ok(())
            }
            Err(DomainError::Refused(Refusal::Stale(_))) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

impl Berth {
    /// Marks a deployment that can never be dispatched failed (releasing its lock).
    pub async fn fail_deployment(&self, tenant: TenantId, id: DeploymentId, reason: &str) -> Result<()> {
        let Some(d) = self.ports.deployments.get_deployment(tenant, id).await? else { return Ok(()) };
        // Ended meanwhile: nothing to fail.
        let Ok(after) = d.step(DeploymentStep::FailToStart, Utc::now()) else { return Ok(()) };
        let audit = AuditDraft::by(&Actor::system("dispatcher"), id, DispatchFailed { reason: reason.to_string() });
        match self.ports.deployments.finish_deployment(tenant, &after, d.status, &Activation::Unchanged, None, audit).await {
            Ok(()) => {
                self.event(tenant, id, None, format!("Failed: {reason}")).await;
                self.count(tenant, crate::metrics::MetricEvent::DeploymentSettled { deployment: id, kind: d.kind, status: after.status });
                Ok(())
            }
            Err(DomainError::Refused(Refusal::Stale(_))) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
