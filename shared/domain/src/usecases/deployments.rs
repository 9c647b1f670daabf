use super::Berth;
use super::usage::ConnectionsInUse;
use crate::audit::summary::{DeploymentCancelled, DeploymentCreated, DeploymentRetried};
use crate::audit::{AuditDraft, AuditHead};
use crate::component::ComponentType;
use crate::context::{Permission, TenantCtx};
use crate::deployment::{ActiveVersion, Deployment, DeploymentEvent, DeploymentKind, DeploymentStatus, DeploymentStep, Target, TargetState, TargetStep};
use crate::environment::Environment;
use crate::extension::EnvironmentExtensions;
use crate::ids::{ComponentId, DeploymentId, EnvironmentId, PackageId, RuntimeId, TenantId};
use crate::package::{MAX_NOTES_CHARS, OutdatedComponent, Package, PackageStatus, outdated};
use crate::page::{Page, PageRequest};
use crate::policy::{Change, Policy, Verdict};
use crate::ports::DeploymentFilter;
use crate::quarantine::Quarantine;
use crate::refusal::Refusal;
use crate::rollout::RolloutRequest;
use crate::runtime::Runtime;
use crate::validation::{ConnectionInUse, Facts, ValidationReport, validate};
use crate::{DomainError, Result};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};

#[derive(Clone, Debug)]
pub struct NewDeployment {
    pub package_id: PackageId,
    pub environment_id: EnvironmentId,
    pub notes: String,
    pub scheduled_at: Option<DateTime<Utc>>,
    /// Inside a freeze window: hold (schedule for its end) instead of refusing.
    pub hold_if_frozen: bool,
    /// The source commit it deploys (absent: the package's).
    pub commit: Option<String>,
    /// Deploy the version even though it is quarantined in the environment
    /// (audited); without it a quarantined version is refused `quarantined`.
    pub override_quarantine: bool,
    /// How it goes out, over the policy's rollout (only more carefully).
    pub rollout: Option<RolloutRequest>,
}

/// What a request asks of a change beside the change itself.
#[derive(Clone, Debug, Default)]
struct Requested {
    scheduled_at: Option<DateTime<Utc>>,
    hold_if_frozen: bool,
    override_quarantine: bool,
    rollout: Option<RolloutRequest>,
    /// A package still building is recorded waiting for it (not refused `package_not_ready`).
    await_package: bool,
}

/// What a report reads by key beside the environment and package.
struct Keyed {
    quarantine: Option<Quarantine>,
    extensions: EnvironmentExtensions,
    /// The environment's active versions, when the caller read them already.
    actives: Option<Vec<ActiveVersion>>,
}

/// A request's environment and package, with what is read with them.
struct Subject {
    env: Environment,
    package: Package,
    policy: Policy,
    keyed: Keyed,
    /// The audit head read with them (a hint for the change's audit event).
    audit_head: Option<AuditHead>,
}

/// An active version with its drift.
#[derive(Clone, Debug)]
pub struct ActiveView {
    pub active: ActiveVersion,
    pub outdated_components: Vec<OutdatedComponent>,
    /// Attached runtimes whose heartbeats report another digest (or none) for the component.
    pub out_of_sync_runtimes: Vec<RuntimeId>,
}

impl Berth {
    /// Every page of a list, for the few places that need all of it.
    pub(crate) async fn all_environment_runtimes(&self, tenant: crate::ids::TenantId, env: EnvironmentId) -> Result<Vec<Runtime>> {
        let mut all = vec![];
        let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
        loop {
            let batch = self.ports.runtimes.list_environment_runtimes(tenant, env, &page).await?;
            all.extend(batch.items);
            match batch.next_cursor {
                Some(c) => page.cursor = Some(c),
                None => return Ok(all),
            }
        }
    }

    /// The connections holding licences in `env`'s classification (see
    /// `connections_in_use`), leaving out the (env, component) slot a
    /// deployment would replace; named (one read of the components) only when
    /// `package` would take more licences than `licenses`, so that the refusal
    /// can say what to free.
    async fn connections_elsewhere(&self, ctx: &TenantCtx, used: ConnectionsInUse, package: &Package, licenses: u32) -> Result<Vec<ConnectionInUse>> {
        let bundled = package.manifest.components.iter().filter(|e| e.kind == ComponentType::Connection).map(|e| e.id);
        let wanted: HashSet<ComponentId> = used.connections.keys().copied().chain(bundled).collect();
        let ids: Vec<ComponentId> = used.connections.keys().copied().collect();
        let names: HashMap<ComponentId, String> = if wanted.len() as u64 > u64::from(licenses) {
            self.ports.components.get_components(ctx.tenant, &ids).await?.into_iter().map(|c| (c.id, c.name.to_string())).collect()
        } else {
            HashMap::new()
        };
        let env_name = |e: &EnvironmentId| used.environment_names.get(e).cloned().unwrap_or_else(|| e.to_string());
        Ok(used
            .connections
            .iter()
            .map(|(id, envs)| ConnectionInUse {
                id: *id,
                name: names.get(id).cloned().unwrap_or_else(|| id.to_string()),
                environments: envs.iter().map(env_name).collect(),
            })
            .collect())
    }

    /// The full report for putting `package` in `env` by a change the policy
    /// judged `verdict`, a quarantine of the package there blocking it.
    pub(crate) async fn report_for(
        &self,
        ctx: &TenantCtx,
        env: &Environment,
        package: &Package,
        policy: &Policy,
        verdict: &Verdict,
    ) -> Result<ValidationReport> {
        let keyed = self.keyed_facts(ctx.tenant, env.id, package.id).await?;
        self.report_with(ctx, env, package, policy, verdict, &keyed, false).await
    }

    /// What a report reads by key beside the environment and package, for a caller that has those already.
    async fn keyed_facts(&self, tenant: TenantId, env: EnvironmentId, package: PackageId) -> Result<Keyed> {
        let (quarantine, extensions) =
            futures::future::try_join(self.ports.deployments.get_quarantine(tenant, env, package), self.ports.extensions.get_extensions(tenant, env)).await?;
        Ok(Keyed { quarantine, extensions, actives: None })
    }

    /// The environment and package a request names (not found: the
    /// environment first), with the environment's policy, the package's
    /// quarantine there and the environment's extension values: one read.
    async fn subject(&self, ctx: &TenantCtx, env: EnvironmentId, package: PackageId) -> Result<Subject> {
        ctx.require(Permission::Read)?;
        let read = self.ports.subjects.deploy_subject(ctx.tenant, env, package).await?;
        let env = read.environment.ok_or(DomainError::not_found("environment"))?;
        let package = read.package.ok_or(DomainError::not_found("package"))?;
        let keyed = Keyed { quarantine: read.quarantine, extensions: read.extensions, actives: None };
        Ok(Subject { env, package, policy: read.policy.unwrap_or_default(), keyed, audit_head: read.audit_head })
    }

    /// `report_for`, a quarantine only warned of when `override_quarantine`.
    async fn report_with(
        &self,
        ctx: &TenantCtx,
        env: &Environment,
        package: &Package,
        policy: &Policy,
        verdict: &Verdict,
        keyed: &Keyed,
        override_quarantine: bool,
    ) -> Result<ValidationReport> {
        // Independent reads, made at once: one after another they were most of a deploy's time (the bench's latency phase).
        use futures::future::{try_join, try_join3};
        let ((runtimes, active_here, tenant), (succeeded, in_flight, connections_in_use)) = try_join(
            try_join3(
                self.all_environment_runtimes(ctx.tenant, env.id),
                async {
                    match &keyed.actives {
                        Some(actives) => Ok(actives.clone()),
                        None => self.ports.deployments.active_versions(ctx.tenant, env.id).await,
                    }
                },
                self.tenant_of_token(ctx.tenant),
            ),
            try_join3(
                self.succeeded_in_if_required(ctx.tenant, policy, package.id),
                self.ports.deployments.in_flight(ctx.tenant, env.id, package.component_id),
                self.connections_in_use(ctx.tenant, env.classification, Some((env.id, package.component_id))),
            ),
        )
        .await?;
        let connections_elsewhere = self.connections_elsewhere(ctx, connections_in_use, package, tenant.plan.connection_licenses).await?;
        let quarantine = keyed.quarantine.as_ref();
        let mut promotion_missing = vec![];
        for required in policy.require_success_in.iter().filter(|e| !succeeded.contains(e)) {
            let name =
                self.ports.environments.get_environment(ctx.tenant, *required).await?.map(|e| e.name.to_string()).unwrap_or_else(|| required.to_string());
            promotion_missing.push(name);
        }
        let active = active_here.iter().find(|a| a.component_id == package.component_id);
        let extensions = self.extension_facts(ctx.tenant, &keyed.extensions, package, active).await?;
        let facts = Facts {
            environment: env,
            package,
            verdict,
            may_deploy: ctx.require(Permission::Deploy).is_ok(),
            promotion_missing,
            in_flight,
            runtimes: runtimes.iter().map(|r| (r.name.to_string(), self.runtime_status(r))).collect(),
            active_here: &active_here,
            connection_licenses: tenant.plan.connection_licenses,
            connections_elsewhere,
            quarantine,
            override_quarantine,
            extensions,
        };
        Ok(validate(&facts))
    }

    /// The environments where `package` succeeded, read only when the policy requires success somewhere.
    async fn succeeded_in_if_required(&self, tenant: TenantId, policy: &Policy, package: PackageId) -> Result<Vec<EnvironmentId>> {
        if policy.require_success_in.is_empty() {
            return Ok(vec![]);
        }
        self.ports.deployments.succeeded_in(tenant, package).await
    }

    /// The dry run: what would block this deployment, and what to watch.
    pub async fn validate_deployment(&self, ctx: &TenantCtx, package: PackageId, env: EnvironmentId) -> Result<ValidationReport> {
        self.validate_deployment_overriding(ctx, package, env, false).await
    }

    /// The dry run of a request that may override a quarantine (`override_quarantine`).
    pub async fn validate_deployment_overriding(
        &self,
        ctx: &TenantCtx,
        package: PackageId,
        env: EnvironmentId,
        override_quarantine: bool,
    ) -> Result<ValidationReport> {
        let Subject { env, package, policy, keyed, .. } = self.subject(ctx, env, package).await?;
        let verdict = policy.judge(Change::Deploy, &ctx.roles, Utc::now(), false);
        self.report_with(ctx, &env, &package, &policy, &verdict, &keyed, override_quarantine).await
    }

    /// Validates, then records the deployment (taking the environment's lock
    /// for the component) and queues it, or holds it until `scheduled_at`.
    /// A package that is not ready is refused `package_not_ready`.
    #[tracing::instrument(skip(self, ctx, input), fields(tenant_id = %ctx.tenant, request_id = %ctx.request_id))]
    pub async fn create_deployment(&self, ctx: &TenantCtx, input: NewDeployment) -> Result<Deployment> {
        self.create_deployment_as(ctx, input, false).await
    }

    /// `create_deployment`; when `await_package`, a package still building is
    /// not refused: the deployment is recorded `waiting_for_package` (what a
    /// `package_and_deploy` webhook or a latest-revision deploy does when the
    /// package it made went to the package builder).
    pub(crate) async fn create_deployment_as(&self, ctx: &TenantCtx, input: NewDeployment, await_package: bool) -> Result<Deployment> {
        let mut subject = self.subject(ctx, input.environment_id, input.package_id).await?;
        ctx.require(Permission::Deploy)?;
        check_notes(&input.notes)?;
        // All of the environment's (the report needs them): the one replaced is among them.
        let actives = self.ports.deployments.active_versions(ctx.tenant, subject.env.id).await?;
        let active = actives.iter().find(|a| a.component_id == subject.package.component_id).cloned();
        subject.keyed.actives = Some(actives);
        let (env, package) = (&subject.env, &subject.package);
        let await_package = await_package && package.status == PackageStatus::Building;
        if !await_package {
            package.ready_digest()?;
        }
        if let Some(commit) = &input.commit {
            crate::webhook::check_commit(commit)?;
        }
        let d = Deployment::for_package(env.id, package, &ctx.actor.id, input.notes, active.as_ref()).with_commit(input.commit);
        let requested = Requested {
            scheduled_at: input.scheduled_at,
            hold_if_frozen: input.hold_if_frozen,
            override_quarantine: input.override_quarantine,
            rollout: input.rollout,
            await_package,
        };
        self.request_change(ctx, &subject, Change::Deploy, d, requested).await
    }

    /// Puts a deployment of `package` through the environment's policy and
    /// validation, then records it: waiting for approvals, held, or queued.
    async fn request_change(&self, ctx: &TenantCtx, subject: &Subject, change: Change, deployment: Deployment, requested: Requested) -> Result<Deployment> {
        let Requested { scheduled_at, hold_if_frozen, override_quarantine, rollout, await_package } = requested;
        let Subject { env, package, policy, keyed, audit_head } = subject;
        let verdict = policy.judge(change, &ctx.roles, Utc::now(), hold_if_frozen);
        let mut clearance = verdict.enforce()?;
        if let Some(request) = rollout.filter(|_| matches!(deployment.kind, DeploymentKind::Deploy | DeploymentKind::Redeploy)) {
            clearance.rollout = self.rollout_over(ctx, policy, env.id, &request).await?;
        }
        let report = self.report_with(ctx, env, package, policy, &verdict, keyed, override_quarantine).await?;
        if let Some(first) = report.errors.iter().find(|e| !(await_package && e.code == "package_not_ready")) {
            return Err(DomainError::conflict(first.code, first.message.clone()));
        }
        let mut deployment = deployment.cleared(clearance, scheduled_at).with_extensions(report.extensions_version, report.extensions_changed);
        deployment.waiting_for_package = await_package;
        // What the dry run warned of is what the audit records: an override only where there was a quarantine.
        let overridden = report.warnings.iter().any(|w| w.code == "quarantine_overridden");
        self.record_and_queue_as(ctx, &deployment, overridden, audit_head.clone()).await?;
        Ok(deployment)
    }

    /// A person returns the environment to the version that was active before
    /// the current one: a `rollback` deployment, through the same policy as a
    /// deploy (roles, freeze windows, approvals).
    #[tracing::instrument(skip(self, ctx, notes), fields(tenant_id = %ctx.tenant, request_id = %ctx.request_id))]
    pub async fn roll_back(&self, ctx: &TenantCtx, env: EnvironmentId, component: ComponentId, notes: String, hold_if_frozen: bool) -> Result<Deployment> {
        let environment = self.get_environment(ctx, env).await?;
        ctx.require(Permission::Deploy)?;
        check_notes(&notes)?;
        let active = self.ports.deployments.active_version(ctx.tenant, env, component).await?.ok_or(DomainError::not_found("active version"))?;
        let no_previous = || DomainError::conflict("no_previous_version", "no earlier version of this component was active in the environment");
        let current = self.ports.deployments.get_deployment(ctx.tenant, active.deployment_id).await?.ok_or_else(no_previous)?;
        let previous = current.previous_package_id.filter(|p| *p != active.package_id).ok_or_else(no_previous)?;
        let subject = match self.subject(ctx, environment.id, previous).await {
            Err(e) if e.code() == "not_found" => return Err(no_previous()),
            other => other?,
        };
        let notes = if notes.is_empty() { format!("rollback from version {} requested by {}", active.version, ctx.actor.id) } else { notes };
        let d = Deployment::new_rollback(&subject.package, &ctx.actor.id, notes, &active);
        let requested = Requested { hold_if_frozen, ..Requested::default() };
        self.request_change(ctx, &subject, Change::Rollback, d, requested).await
    }

    /// Records `d` (its action follows from its kind: `deployment.requested`,
    /// `.rollback_requested`, `.undeploy_requested` or `.sync_requested`) and queues it.
    pub(crate) async fn record_and_queue(&self, ctx: &TenantCtx, d: &Deployment) -> Result<()> {
        self.record_and_queue_as(ctx, d, false, None).await
    }

    /// `record_and_queue`, its audit event recording whether it `overrode_quarantine`.
    /// `head` is the tenant's audit head if it was read with the request's other reads.
    async fn record_and_queue_as(&self, ctx: &TenantCtx, d: &Deployment, overrode_quarantine: bool, head: Option<AuditHead>) -> Result<()> {
        let summary = DeploymentCreated::of(d, &ctx.actor);
        let summary = if overrode_quarantine { summary.overriding_quarantine() } else { summary };
        let audit = AuditDraft::by(ctx, d.id, summary).after(head);
        let line = match d.kind {
            DeploymentKind::Undeploy => format!("Undeploy of version {} requested by {}", d.version, d.requested_by),
            DeploymentKind::Rollback => format!("Rollback to version {}: {}", d.version, d.notes),
            DeploymentKind::Sync => format!("Sync of version {} requested by {}: {}", d.version, d.requested_by, d.notes),
            _ => format!("Deployment of version {} requested by {}", d.version, d.requested_by),
        };
        let mut events = vec![DeploymentEvent::line(None, &line)];
        if d.waiting_for_package {
            events.push(DeploymentEvent::line(None, &format!("Waiting for package version {} to be built", d.version)));
        }
        self.ports.deployments.create_deployment(ctx.tenant, d, audit, &events).await?;
        self.count(ctx.tenant, crate::metrics::MetricEvent::DeploymentRequested { deployment: d.id, kind: d.kind });
        if d.status == DeploymentStatus::Queued {
            // If this fails, the sweeper queues it again: the deployment is recorded.
            if let Err(e) = self.ports.jobs.enqueue_deployment(ctx.tenant, d.id).await {
                tracing::warn!(error = %e, deployment_id = %d.id, "could not queue the deployment now; the sweeper will");
            }
        }
        Ok(())
    }

    /// Appends a timeline line; a failure to do so never fails the caller.
    /// Nothing secret is stored: the line is redacted first (see `redact`).
    pub(crate) async fn event(&self, tenant: crate::ids::TenantId, deployment: DeploymentId, runtime: Option<RuntimeId>, message: String) {
        let event = DeploymentEvent::line(runtime, &message);
        if let Err(e) = self.ports.deployments.add_event(tenant, deployment, &event).await {
            tracing::warn!(error = %e, deployment_id = %deployment, "could not record a deployment event");
        }
    }

    pub async fn get_deployment(&self, ctx: &TenantCtx, id: DeploymentId) -> Result<Deployment> {
        ctx.require(Permission::Read)?;
        self.ports.deployments.get_deployment(ctx.tenant, id).await?.ok_or(DomainError::not_found("deployment"))
    }

    pub async fn list_deployments(&self, ctx: &TenantCtx, filter: &DeploymentFilter, page: &PageRequest) -> Result<Page<Deployment>> {
        ctx.require(Permission::Read)?;
        self.ports.deployments.list_deployments(ctx.tenant, filter, page).await
    }

    pub async fn list_targets(&self, ctx: &TenantCtx, id: DeploymentId) -> Result<Vec<Target>> {
        self.get_deployment(ctx, id).await?;
        self.ports.deployments.list_targets(ctx.tenant, id).await
    }

    pub async fn list_deployment_events(&self, ctx: &TenantCtx, id: DeploymentId, page: &PageRequest) -> Result<Page<DeploymentEvent>> {
        self.get_deployment(ctx, id).await?;
        self.ports.deployments.list_events(ctx.tenant, id, page).await
    }

    /// Cancels a deployment that no runtime has been sent yet.
    #[tracing::instrument(skip(self, ctx), fields(tenant_id = %ctx.tenant, request_id = %ctx.request_id))]
    pub async fn cancel_deployment(&self, ctx: &TenantCtx, id: DeploymentId) -> Result<Deployment> {
        let before = self.get_deployment(ctx, id).await?;
        ctx.require(Permission::Deploy)?;
        self.policy_of(ctx.tenant, before.environment_id).await?.judge(Change::Cancel, &ctx.roles, Utc::now(), false).enforce()?;
        let after = before.step(DeploymentStep::Cancel, Utc::now())?;
        let audit = AuditDraft::by(ctx, id, DeploymentCancelled { before: before.status, after: after.status });
        self.ports.deployments.transition(ctx.tenant, &after, before.status, Some(audit)).await.map_err(|e| match e {
            DomainError::Refused(Refusal::Stale(_)) => DomainError::conflict("deployment_started", "the deployment started meanwhile"),
            other => other,
        })?;
        self.event(ctx.tenant, id, None, format!("Cancelled by {}", ctx.actor.id)).await;
        Ok(after)
    }

    /// Sends the failed targets of a failed deployment their job again.
    #[tracing::instrument(skip(self, ctx), fields(tenant_id = %ctx.tenant, request_id = %ctx.request_id))]
    pub async fn retry_deployment(&self, ctx: &TenantCtx, id: DeploymentId) -> Result<Deployment> {
        let before = self.get_deployment(ctx, id).await?;
        ctx.require(Permission::Deploy)?;
        let after = before.step(DeploymentStep::Retry, Utc::now())?;
        let env = self.get_environment(ctx, before.environment_id).await?;
        let policy = self.policy_of(ctx.tenant, env.id).await?;
        let verdict = policy.judge(Change::Retry, &ctx.roles, Utc::now(), false);
        verdict.enforce()?;
        let active = self.ports.deployments.active_version(ctx.tenant, env.id, before.component_id).await?;
        // UUIDv7: a greater id is a later deployment.
        if active.is_some_and(|a| a.deployment_id > before.id) {
            return Err(DomainError::conflict(
                "not_retryable",
                "a later deployment of this component is active in the environment; deploy this version anew instead",
            ));
        }
        if before.only_runtime.is_none() {
            let package = self.get_package(ctx, before.package_id).await?.package;
            // A retry is exempt from the quarantine its own failure may have
            // caused: the person re-runs that deployment, knowing it failed.
            let keyed = self.keyed_facts(ctx.tenant, env.id, package.id).await?;
            let report = self.report_with(ctx, &env, &package, &policy, &verdict, &keyed, true).await?;
            if let Some(first) = report.errors.first() {
                return Err(DomainError::conflict(first.code, first.message.clone()));
            }
        } else if !env.enabled {
            return Err(DomainError::conflict("environment_not_enabled", format!("environment \"{}\" is not enabled", env.name)));
        }
        // Only runtimes still attached are sent the job again (an undeploy for a
        // detached runtime goes to that runtime only, as before).
        let attached: HashSet<RuntimeId> = match before.only_runtime {
            Some(r) => HashSet::from([r]),
            None => self.all_environment_runtimes(ctx.tenant, env.id).await?.into_iter().map(|r| r.id).collect(),
        };
        let now = Utc::now();
        let (retried, detached): (Vec<Target>, Vec<Target>) = self
            .ports
            .deployments
            .list_targets(ctx.tenant, id)
            .await?
            .into_iter()
            .filter(|t| matches!(t.state, TargetState::Failed | TargetState::Restored))
            .partition(|t| attached.contains(&t.runtime_id));
        if retried.is_empty() {
            return Err(DomainError::conflict("not_retryable", "none of the failed targets' runtimes is still attached to the environment"));
        }
        for t in detached {
            self.skip_target(ctx.tenant, t, "the runtime is no longer attached to the environment: not retried").await?;
        }
        let retried = retried.iter().map(|t| t.step(TargetStep::Reset, now)).collect::<Result<Vec<Target>, _>>()?;
        let audit = AuditDraft::by(ctx, id, DeploymentRetried { targets: retried.len() });
        self.ports.deployments.reopen_deployment(ctx.tenant, &after, before.status, &retried, audit).await?;
        self.event(ctx.tenant, id, None, format!("Retry of {} failed target(s) requested by {}", retried.len(), ctx.actor.id)).await;
        for t in &retried {
            self.send_job(ctx.tenant, &after, t).await?;
        }
        Ok(after)
    }

    /// What the environment runs, with drift.
    pub async fn active_versions(&self, ctx: &TenantCtx, env: EnvironmentId) -> Result<Vec<ActiveView>> {
        self.get_environment(ctx, env).await?;
        let actives = self.ports.deployments.active_versions(ctx.tenant, env).await?;
        let runtimes = self.all_environment_runtimes(ctx.tenant, env).await?;
        let mut views = Vec::with_capacity(actives.len());
        for active in actives {
            let ids: Vec<ComponentId> = active.components.iter().map(|c| c.id).collect();
            let current = self.ports.components.get_components(ctx.tenant, &ids).await?.into_iter().map(|c| (c.id, c)).collect();
            let manifest = crate::package::Manifest { root: active.component_id, components: active.components.clone() };
            let outdated_components = outdated(&manifest, &current);
            let out_of_sync_runtimes = runtimes
                .iter()
                .filter(|r| r.last_seen_at.is_some())
                .filter(|r| !r.running.iter().any(|p| p.component_id == active.component_id.as_uuid() && p.digest == active.digest))
                .map(|r| r.id)
                .collect();
            views.push(ActiveView { active, outdated_components, out_of_sync_runtimes });
        }
        Ok(views)
    }

    /// Removes a component from an environment: every runtime stops running
    /// it. It passes the policy as a deploy does: deployer roles, freeze
    /// windows (refused, or held with `hold_if_frozen`), and approvals (it
    /// waits in `pending_approval` and removes nothing until approved).
    #[tracing::instrument(skip(self, ctx), fields(tenant_id = %ctx.tenant, request_id = %ctx.request_id))]
    pub async fn undeploy(&self, ctx: &TenantCtx, env: EnvironmentId, component: ComponentId, hold_if_frozen: bool) -> Result<Deployment> {
        let environment = self.get_environment(ctx, env).await?;
        ctx.require(Permission::Deploy)?;
        let active = self.ports.deployments.active_version(ctx.tenant, env, component).await?.ok_or(DomainError::not_found("active version"))?;
        let clearance = self.policy_of(ctx.tenant, env).await?.judge(Change::Undeploy, &ctx.roles, Utc::now(), hold_if_frozen).enforce()?;
        if !environment.enabled {
            return Err(DomainError::conflict("environment_not_enabled", format!("environment \"{}\" is not enabled", environment.name)));
        }
        if let Some(d) = self.ports.deployments.in_flight(ctx.tenant, env, component).await? {
            return Err(Refusal::InFlight { deployment: Some(d) }.into());
        }
        let deployment = Deployment::new_undeploy(&active, &ctx.actor.id, None).cleared(clearance, None);
        self.record_and_queue(ctx, &deployment).await?;
        Ok(deployment)
    }

    /// After a detach: jobs not yet settled for that runtime in the
    /// environment's in-flight deployments are withdrawn (`skipped`), and the
    /// runtime is sent an undeploy for everything the environment runs.
    pub(crate) async fn after_detach(&self, ctx: &TenantCtx, env: EnvironmentId, runtime: RuntimeId) -> Result<()> {
        // What ran there before the detach: a deployment that completes only
        // because this runtime's job was withdrawn never ran on it.
        let ran_here = self.ports.deployments.active_versions(ctx.tenant, env).await?;
        self.withdraw_jobs(ctx.tenant, env, runtime, "the runtime was detached from the environment").await?;
        for active in ran_here {
            let d = Deployment::new_undeploy(&active, &ctx.actor.id, Some(runtime));
            self.record_and_queue(ctx, &d).await?;
        }
        Ok(())
    }

    /// Withdraws (`skipped`, with `reason`) the runtime's unsettled jobs in the
    /// environment's in-flight deployments, and settles those deployments.
    pub(crate) async fn withdraw_jobs(&self, tenant: TenantId, env: EnvironmentId, runtime: RuntimeId, reason: &str) -> Result<()> {
        for deployment in self.ports.deployments.in_flight_deployments(tenant, env).await? {
            if let Some(target) = self.ports.deployments.get_target(tenant, deployment, runtime).await?.filter(|t| !t.state.settled()) {
                self.skip_target(tenant, target, reason).await?;
                self.settle_deployment(tenant, deployment).await?;
            }
        }
        Ok(())
    }

    /// Withdraws a target that has not settled, or a failed one a retry leaves
    /// out: it becomes `skipped`, with the reason in its message and the timeline.
    pub(crate) async fn skip_target(&self, tenant: TenantId, target: Target, reason: &str) -> Result<()> {
        // Deployed (or skipped already): there is nothing to withdraw.
        let Ok(skipped) = target.step(TargetStep::Skip { reason: reason.to_string() }, Utc::now()) else { return Ok(()) };
        match self.ports.deployments.update_target(tenant, &skipped, target.state, None).await {
            Ok(()) => {}
            // It moved meanwhile (the agent reported): leave it to that report.
            Err(DomainError::Refused(Refusal::Stale(_))) => return Ok(()),
            Err(e) => return Err(e),
        }
        self.event(tenant, skipped.deployment_id, Some(skipped.runtime_id), format!("Skipped: {reason}")).await;
        Ok(())
    }
}

fn check_notes(notes: &str) -> Result<()> {
    if notes.chars().count() > MAX_NOTES_CHARS {
        return Err(DomainError::invalid("notes", format!("must be at most {MAX_NOTES_CHARS} characters")));
    }
    Ok(())
}
