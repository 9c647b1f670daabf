use super::Berth;
use crate::audit::summary::{ChangeRequestChanged, ChangeRequestCreated, ChangeRequestDecided, ChangeRequestState, ChangeRequestStep};
use crate::audit::{AuditDraft, RequestOrigin};
use crate::change_request::{ChangeRefused, ChangeRequest, ChangeStatus, ChangeStep, ChangeType, check_parts};
use crate::context::{Actor, Permission, TenantCtx};
use crate::deployment::{Deployment, DeploymentStatus};
use crate::ids::{ChangeRequestId, ComponentId, EnvironmentId, PackageId, TenantId};
use crate::package::OutdatedComponent;
use crate::page::{Page, PageRequest};
use crate::policy::Change;
use crate::policy::{Approval, Decision, approvals_for};
use crate::refusal::Refusal;
use crate::runtime::Digest;
use crate::validation::ValidationReport;
use crate::values::{Name, Version};
use crate::{DomainError, FieldError, Result};
use chrono::Utc;

/// One item's dry run (`POST /v1/change-requests/{id}/validate`).
#[derive(Clone, Debug)]
pub struct ItemReport {
    pub component_id: ComponentId,
    pub package_id: PackageId,
    pub report: ValidationReport,
}

/// One item's scan (`POST /v1/change-requests/{id}/scan`): what was revised since packaging.
#[derive(Clone, Debug)]
pub struct ItemScan {
    pub component_id: ComponentId,
    pub package_id: PackageId,
    pub version: String,
    /// Its component and bundled children revised since packaging (empty: up to date).
    pub changes: Vec<OutdatedComponent>,
}

impl ItemScan {
    pub fn outdated(&self) -> bool {
        !self.changes.is_empty()
    }
}

/// 409 `outdated_items`, naming each outdated item and what changed.
fn outdated_items(outdated: &[&ItemScan]) -> DomainError {
    let listed: Vec<String> = outdated
        .iter()
        .map(|i| {
            let changes: Vec<String> = i.changes.iter().map(|c| format!("\"{}\" revision {} -> {}", c.name, c.packaged_revision, c.current_revision)).collect();
            format!("package {} (version {}, component {}): {}", i.package_id, i.version, i.component_id, changes.join(", "))
        })
        .collect();
    DomainError::conflict(
        "outdated_items",
        format!(
            "{} item(s) are outdated (revised since packaging): {}. Deploy with \"accept_outdated\": true to deploy them as packaged",
            outdated.len(),
            listed.join("; ")
        ),
    )
}

#[derive(Clone, Debug)]
pub struct ChangeRequestInput {
    pub name: Name,
    pub overview: String,
    pub change_type: ChangeType,
    pub target_environment_id: EnvironmentId,
    pub items: Vec<PackageId>,
    pub links: Vec<String>,
}

/// A partial change; new items void the approvals given so far.
#[derive(Clone, Debug, Default)]
pub struct ChangeRequestPatch {
    pub name: Option<Name>,
    pub overview: Option<String>,
    pub change_type: Option<ChangeType>,
    pub items: Option<Vec<PackageId>>,
    pub links: Option<Vec<String>>,
}

impl Berth {
    /// The items' package digests (every item must be a live package of the tenant).
    async fn item_digests(&self, ctx: &TenantCtx, items: &[PackageId]) -> Result<Vec<Digest>> {
        let mut digests = vec![];
        let mut errors = vec![];
        for (i, item) in items.iter().enumerate() {
            match self.ports.packages.get_package(ctx.tenant, *item).await? {
                // Approvals bind digests: a package not built yet (or whose build failed) has none.
                Some(p) if !p.deleted => digests.push(
                    p.ready_digest()
                        .map_err(|e| match e {
                            DomainError::Conflict { code, message } => DomainError::Conflict { code, message: format!("items[{i}]: {message}") },
                            other => other,
                        })?
                        .clone(),
                ),
                Some(_) => errors.push(FieldError::new(format!("items[{i}]"), "the package was deleted")),
                None => errors.push(FieldError::new(format!("items[{i}]"), "no such package")),
            }
        }
        if errors.is_empty() { Ok(digests) } else { Err(DomainError::Validation { code: "validation_failed", errors }) }
    }

    async fn save_change(&self, ctx: &TenantCtx, before: &ChangeRequest, after: ChangeRequest, step: ChangeRequestStep) -> Result<ChangeRequest> {
        let summary = ChangeRequestChanged::of(step, before, &after);
        self.save_change_as(ctx, before, after, summary).await
    }

    /// `save_change`, its audit recording `summary` (of `before` and `after`;
    /// the version and time it records none of).
    async fn save_change_as(&self, ctx: &TenantCtx, before: &ChangeRequest, mut after: ChangeRequest, summary: ChangeRequestChanged) -> Result<ChangeRequest> {
        after.version = before.version.next();
        after.updated_at = Utc::now();
        let audit = AuditDraft::by(ctx, after.id, summary);
        self.ports.change_requests.update_change_request(ctx.tenant, &after, before.version, audit).await?;
        Ok(after)
    }

    #[tracing::instrument(skip(self, ctx, input), fields(tenant_id = %ctx.tenant, request_id = %ctx.request_id))]
    pub async fn create_change_request(&self, ctx: &TenantCtx, input: ChangeRequestInput) -> Result<ChangeRequest> {
        self.get_environment(ctx, input.target_environment_id).await?;
        ctx.require(Permission::Deploy)?;
        check_parts(&input.overview, &input.items, &input.links)?;
        let digests = self.item_digests(ctx, &input.items).await?;
        let now = Utc::now();
        let cr = ChangeRequest {
            id: ChangeRequestId::new(),
            name: input.name,
            overview: input.overview,
            change_type: input.change_type,
            status: ChangeStatus::Draft,
            target_environment_id: input.target_environment_id,
            items: input.items,
            digests,
            links: input.links,
            required_approvals: 0,
            deployments: vec![],
            created_by: ctx.actor.id.clone(),
            item_editors: vec![],
            created_at: now,
            updated_at: now,
            version: Version::FIRST,
        };
        let audit = AuditDraft::by(ctx, cr.id, ChangeRequestCreated { after: ChangeRequestState::of(&cr) });
        self.ports.change_requests.create_change_request(ctx.tenant, &cr, audit).await?;
        Ok(cr)
    }

    pub async fn get_change_request(&self, ctx: &TenantCtx, id: ChangeRequestId) -> Result<ChangeRequest> {
        ctx.require(Permission::Read)?;
        self.ports.change_requests.get_change_request(ctx.tenant, id).await?.ok_or(DomainError::not_found("change request"))
    }

    pub async fn list_change_requests(&self, ctx: &TenantCtx, page: &PageRequest) -> Result<Page<ChangeRequest>> {
        ctx.require(Permission::Read)?;
        self.ports.change_requests.list_change_requests(ctx.tenant, page).await
    }

    pub async fn change_request_approvals(&self, ctx: &TenantCtx, id: ChangeRequestId) -> Result<Vec<Approval>> {
        ctx.require(Permission::Read)?;
        self.ports.change_requests.change_approvals(ctx.tenant, id).await
    }

    /// Edits a change request that has not started deploying. New items void
    /// its approvals: an approved request goes back to `submitted`.
    pub async fn patch_change_request(
        &self,
        ctx: &TenantCtx,
        id: ChangeRequestId,
        patch: ChangeRequestPatch,
        if_match: Option<Version>,
    ) -> Result<ChangeRequest> {
        let before = self.get_change_request(ctx, id).await?;
        ctx.require(Permission::Deploy)?;
        if if_match.is_some_and(|v| v != before.version) {
            return Err(DomainError::PreconditionFailed);
        }
        let mut after = before.step(ChangeStep::Edit)?;
        if let Some(n) = patch.name {
            after.name = n;
        }
        if let Some(o) = patch.overview {
            after.overview = o;
        }
        if let Some(t) = patch.change_type {
            after.change_type = t;
        }
        if let Some(l) = patch.links {
            after.links = l;
        }
        if let Some(items) = patch.items {
            // Whoever changes the items becomes an author: they may not approve it.
            if items != before.items && !after.authors().contains(&ctx.actor.id.as_str()) {
                after.item_editors.push(ctx.actor.id.clone());
            }
            after.items = items;
        }
        check_parts(&after.overview, &after.items, &after.links)?;
        after.digests = self.item_digests(ctx, &after.items).await?;
        if after.digests != before.digests {
            after = after.step(ChangeStep::NewDigests)?;
        }
        self.save_change(ctx, &before, after, ChangeRequestStep::Updated).await
    }

    /// Draft to submitted; approvals then follow the target environment's policy.
    pub async fn submit_change_request(&self, ctx: &TenantCtx, id: ChangeRequestId) -> Result<ChangeRequest> {
        let before = self.get_change_request(ctx, id).await?;
        ctx.require(Permission::Deploy)?;
        if before.status != ChangeStatus::Draft {
            return Err(ChangeRefused::NotDraft(before.status).into());
        }
        let policy = self.policy_of(ctx.tenant, before.target_environment_id).await?;
        let after = before.step(ChangeStep::Submit { required_approvals: policy.required_approvals })?;
        self.save_change(ctx, &before, after, ChangeRequestStep::Submitted).await
    }

    /// An approver's decision, bound to the items' exact digests.
    pub async fn decide_change_request(&self, ctx: &TenantCtx, id: ChangeRequestId, decision: Decision, comment: String) -> Result<ChangeRequest> {
        let cr = self.get_change_request(ctx, id).await?;
        let policy = self.policy_of(ctx.tenant, cr.target_environment_id).await?;
        policy.check_decider(ctx, &cr.authors(), &comment)?;
        if cr.status != ChangeStatus::Submitted {
            return Err(ChangeRefused::NotSubmitted(cr.status).into());
        }
        let approval = Approval { approver: ctx.actor.id.clone(), decision, comment, digests: cr.digests.clone(), created_at: Utc::now() };
        let audit = AuditDraft::by(ctx, id, ChangeRequestDecided { decision, digests: approval.digests.clone() });
        match self.ports.change_requests.add_change_approval(ctx.tenant, id, &approval, audit).await {
            Ok(()) => self.apply_change_decisions(ctx, id).await,
            // A retry after a 503 that came once the decision was stored: its
            // outcome may never have been applied, so apply it before answering.
            Err(e @ DomainError::Refused(Refusal::AlreadyDecided(_))) => {
                self.apply_change_decisions(ctx, id).await?;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// Applies the decisions recorded so far: rejected, approved, or still waiting.
    async fn apply_change_decisions(&self, ctx: &TenantCtx, id: ChangeRequestId) -> Result<ChangeRequest> {
        // As for deployments: a decision bumps the version, so an outcome
        // computed before another decision arrived is not applied.
        for _ in 0..super::governance::DECISION_ATTEMPTS {
            let current = self.get_change_request(ctx, id).await?;
            if current.status != ChangeStatus::Submitted {
                return Ok(current);
            }
            let approvals = self.ports.change_requests.change_approvals(ctx.tenant, id).await?;
            let after = if approvals.iter().any(|a| a.decision == Decision::Reject) {
                current.step(ChangeStep::Reject)?
            } else if approvals_for(&approvals, &current.digests) as u64 >= u64::from(current.required_approvals) {
                current.step(ChangeStep::Approve)?
            } else {
                return Ok(current);
            };
            let step = if after.status == ChangeStatus::Rejected { ChangeRequestStep::Closed } else { ChangeRequestStep::ApprovalsComplete };
            match self.save_change(ctx, &current, after, step).await {
                Err(DomainError::Refused(Refusal::Stale(_))) => continue,
                other => return other,
            }
        }
        self.get_change_request(ctx, id).await
    }

    /// Creates the deployments of an approved change request (its approvals
    /// stand for theirs). Every item is validated first: nothing is created
    /// unless all of them can go.
    /// Items whose packages are outdated are refused 409 `outdated_items`
    /// (listing them): see `deploy_change_request_accepting`.
    pub async fn deploy_change_request(&self, ctx: &TenantCtx, id: ChangeRequestId, hold_if_frozen: bool) -> Result<ChangeRequest> {
        self.deploy_change_request_accepting(ctx, id, hold_if_frozen, false).await
    }

    /// `deploy_change_request`; with `accept_outdated`, outdated items are
    /// deployed as packaged, which the change request's audit event and each
    /// such deployment record.
    #[tracing::instrument(skip(self, ctx), fields(tenant_id = %ctx.tenant, request_id = %ctx.request_id))]
    pub async fn deploy_change_request_accepting(
        &self,
        ctx: &TenantCtx,
        id: ChangeRequestId,
        hold_if_frozen: bool,
        accept_outdated: bool,
    ) -> Result<ChangeRequest> {
        let cr = self.get_change_request(ctx, id).await?;
        ctx.require(Permission::Deploy)?;
        let env = self.get_environment(ctx, cr.target_environment_id).await?;
        // Its approvals stand for the deployments' approvals, not for the right
        // to deploy, nor for a freeze window.
        let policy = self.policy_of(ctx.tenant, env.id).await?;
        let verdict = policy.judge(Change::ChangeRequestDeploy, &ctx.roles, Utc::now(), hold_if_frozen);
        let clearance = verdict.enforce()?;
        let deploying = cr.step(ChangeStep::StartDeploying)?;
        let (mut packages, mut extensions) = (vec![], vec![]);
        for item in &cr.items {
            let package = self.get_package(ctx, *item).await?.package;
            if self.item_digests(ctx, std::slice::from_ref(item)).await? != [package.ready_digest()?.clone()] {
                return Err(DomainError::conflict("items_changed", "an item changed since approval"));
            }
            let report = self.report_for(ctx, &env, &package, &policy, &verdict).await?;
            if let Some(first) = report.errors.first() {
                return Err(DomainError::conflict(first.code, format!("package {}: {}", package.id, first.message)));
            }
            extensions.push((report.extensions_version, report.extensions_changed));
            packages.push(package);
        }
        let scan = self.scan_items(ctx, &cr).await?;
        let outdated: Vec<&ItemScan> = scan.iter().filter(|i| i.outdated()).collect();
        if !outdated.is_empty() && !accept_outdated {
            return Err(outdated_items(&outdated));
        }
        let accepted: Vec<PackageId> = outdated.iter().map(|i| i.package_id).collect();
        let step = ChangeRequestChanged::of(ChangeRequestStep::Deploying, &cr, &deploying).accepting_outdated(accepted.clone());
        let mut after = self.save_change_as(ctx, &cr, deploying, step).await?;
        let mut created = vec![];
        for (package, (extensions_version, extensions_changed)) in packages.iter().zip(extensions) {
            let active = self.ports.deployments.active_version(ctx.tenant, env.id, package.component_id).await?;
            let mut d =
                Deployment::for_package(env.id, package, &ctx.actor.id, format!("change request \"{}\"", cr.name), active.as_ref()).cleared(clearance, None);
            d.change_request_id = Some(cr.id);
            d.source_environment_id = self.promoted_from(ctx.tenant, &policy, package.id).await?;
            d.accepted_outdated = accepted.contains(&package.id);
            let d = d.with_extensions(extensions_version, extensions_changed);
            if let Err(e) = self.record_and_queue(ctx, &d).await {
                // A deployment raced in: what was created goes on; the request is failed.
                let mut failed = after.step(ChangeStep::Fail)?;
                failed.deployments = created.clone();
                self.save_change(ctx, &after, failed, ChangeRequestStep::Failed).await?;
                return Err(e);
            }
            created.push(d.id);
        }
        let before = after.clone();
        after.deployments = created;
        self.save_change(ctx, &before, after, ChangeRequestStep::DeploymentsCreated).await
    }

    /// The dry run of every item against the change request's target
    /// environment: the deployment dry run (`report_for`) as the change
    /// request's deploy will judge it (its approvals standing for the
    /// deployments'), plus an `outdated` warning for an outdated item.
    pub async fn validate_change_request(&self, ctx: &TenantCtx, id: ChangeRequestId) -> Result<Vec<ItemReport>> {
        let cr = self.get_change_request(ctx, id).await?;
        let env = self.get_environment(ctx, cr.target_environment_id).await?;
        let policy = self.policy_of(ctx.tenant, env.id).await?;
        let verdict = policy.judge(Change::ChangeRequestDeploy, &ctx.roles, Utc::now(), false);
        let mut reports = vec![];
        for item in &cr.items {
            let details = self.get_package(ctx, *item).await?;
            let mut report = self.report_for(ctx, &env, &details.package, &policy, &verdict).await?;
            if !details.outdated_components.is_empty() {
                let names: Vec<&str> = details.outdated_components.iter().map(|c| c.name.as_str()).collect();
                report.warnings.push(crate::validation::Issue {
                    code: "outdated",
                    message: format!(
                        "revised since packaging: {}; deploying it needs \"accept_outdated\": true, or package the latest revision and change the item",
                        names.join(", ")
                    ),
                });
            }
            reports.push(ItemReport { component_id: details.package.component_id, package_id: details.package.id, report });
        }
        Ok(reports)
    }

    /// Which items' components (or bundled children) were revised after packaging.
    pub async fn scan_change_request(&self, ctx: &TenantCtx, id: ChangeRequestId) -> Result<Vec<ItemScan>> {
        let cr = self.get_change_request(ctx, id).await?;
        self.scan_items(ctx, &cr).await
    }

    async fn scan_items(&self, ctx: &TenantCtx, cr: &ChangeRequest) -> Result<Vec<ItemScan>> {
        let mut scan = vec![];
        for item in &cr.items {
            let details = self.get_package(ctx, *item).await?;
            scan.push(ItemScan {
                component_id: details.package.component_id,
                package_id: details.package.id,
                version: details.package.version.to_string(),
                changes: details.outdated_components,
            });
        }
        Ok(scan)
    }

    /// Where `package` was promoted from: of the environments the policy
    /// requires success in, the one where it last succeeded (deployment ids
    /// are UUIDv7: the greatest is the latest).
    async fn promoted_from(&self, tenant: TenantId, policy: &crate::policy::Policy, package: PackageId) -> Result<Option<EnvironmentId>> {
        if policy.require_success_in.is_empty() {
            return Ok(None);
        }
        let successes = self.ports.deployments.package_successes(tenant, package).await?;
        Ok(successes.into_iter().filter(|(env, _)| policy.require_success_in.contains(env)).max_by_key(|(_, d)| *d).map(|(env, _)| env))
    }

    /// Closes a deploying change request once all its deployments succeeded
    /// (or marks it failed when one of them failed).
    pub async fn complete_change_request(&self, ctx: &TenantCtx, id: ChangeRequestId) -> Result<ChangeRequest> {
        let cr = self.get_change_request(ctx, id).await?;
        ctx.require(Permission::Deploy)?;
        if !matches!(cr.status, ChangeStatus::Deploying | ChangeStatus::Completed | ChangeStatus::Failed) {
            return Err(ChangeRefused::NotDeploying(cr.status).into());
        }
        match self.settle_change_request(ctx.tenant, id, &ctx.actor, &ctx.request_id).await? {
            Some(cr) => Ok(cr),
            None => Err(DomainError::conflict("deployments_not_finished", "some of the change request's deployments are still in flight")),
        }
    }

    /// Completes or fails the change request when its deployments have all
    /// ended; `None` while some are in flight.
    pub(crate) async fn settle_change_request(&self, tenant: TenantId, id: ChangeRequestId, actor: &Actor, request_id: &str) -> Result<Option<ChangeRequest>> {
        let Some(cr) = self.ports.change_requests.get_change_request(tenant, id).await? else { return Ok(None) };
        if cr.status != ChangeStatus::Deploying {
            return Ok(matches!(cr.status, ChangeStatus::Completed | ChangeStatus::Failed).then_some(cr));
        }
        let mut statuses = vec![];
        for d in &cr.deployments {
            statuses.push(self.ports.deployments.get_deployment(tenant, *d).await?.map(|d| d.status));
        }
        if cr.deployments.is_empty() || statuses.iter().any(|s| s.is_none_or(|s| s.in_flight())) {
            return Ok(None);
        }
        // A later deployment superseding one of them does not undo its success.
        let all_succeeded = statuses.iter().all(|s| matches!(s, Some(DeploymentStatus::Succeeded | DeploymentStatus::Superseded)));
        let mut after = cr.step(if all_succeeded { ChangeStep::Complete } else { ChangeStep::Fail })?;
        after.version = cr.version.next();
        after.updated_at = Utc::now();
        let step = if after.status == ChangeStatus::Completed { ChangeRequestStep::Completed } else { ChangeRequestStep::Failed };
        let audit = AuditDraft::by(&RequestOrigin { actor, request_id }, id, ChangeRequestChanged::of(step, &cr, &after));
        match self.ports.change_requests.update_change_request(tenant, &after, cr.version, audit).await {
            Ok(()) => Ok(Some(after)),
            Err(DomainError::Refused(Refusal::Stale(_))) => Ok(self.ports.change_requests.get_change_request(tenant, id).await?),
            Err(e) => Err(e),
        }
    }
}
