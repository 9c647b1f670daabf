use super::Berth;
use crate::audit::AuditDraft;
use crate::audit::summary::{DeploymentDecided, DeploymentDecisionsApplied, PolicyUpdated};
use crate::context::{Permission, TenantCtx};
use crate::deployment::{Deployment, DeploymentEvent, DeploymentRefused, DeploymentStatus, DeploymentStep};
use crate::ids::{DeploymentId, EnvironmentId, TenantId};
use crate::policy::{Approval, Decision, Policy, approvals_for};
use crate::refusal::Refusal;
use crate::values::Version;
use crate::{DomainError, Result};
use chrono::Utc;

/// How often a decision re-evaluates when other decisions keep arriving.
pub(crate) const DECISION_ATTEMPTS: usize = 20;

impl Berth {
    /// The environment's policy, or the default one when none was stored.
    pub(crate) async fn policy_of(&self, tenant: TenantId, env: EnvironmentId) -> Result<Policy> {
        Ok(self.ports.policies.get_policy(tenant, env).await?.unwrap_or_default())
    }

    pub async fn get_policy(&self, ctx: &TenantCtx, env: EnvironmentId) -> Result<Policy> {
        self.get_environment(ctx, env).await?;
        self.policy_of(ctx.tenant, env).await
    }

    /// Replaces the policy (admins only; `If-Match` with its etag).
    #[tracing::instrument(skip(self, ctx, policy), fields(tenant_id = %ctx.tenant, request_id = %ctx.request_id))]
    pub async fn put_policy(&self, ctx: &TenantCtx, env: EnvironmentId, mut policy: Policy, if_match: Option<Version>) -> Result<Policy> {
        let environment = self.get_environment(ctx, env).await?;
        ctx.require(Permission::ManageEnvironments)?;
        let before = self.policy_of(ctx.tenant, env).await?;
        if if_match.is_some_and(|v| v != before.version) {
            return Err(DomainError::PreconditionFailed);
        }
        policy.check(env)?;
        for (i, required) in policy.require_success_in.iter().enumerate() {
            if self.ports.environments.get_environment(ctx.tenant, *required).await?.is_none() {
                return Err(DomainError::invalid(format!("require_success_in[{i}]"), "no such environment"));
            }
        }
        policy.version = before.version.next();
        let audit = AuditDraft::by(ctx, env, PolicyUpdated::of(&environment, &before, &policy));
        self.ports.policies.put_policy(ctx.tenant, env, &policy, before.version, audit).await?;
        Ok(policy)
    }

    pub async fn deployment_approvals(&self, ctx: &TenantCtx, id: DeploymentId) -> Result<Vec<Approval>> {
        ctx.require(Permission::Read)?;
        self.ports.deployments.approvals(ctx.tenant, id).await
    }

    /// Records an approver's decision. One reject ends the deployment
    /// (`rejected`); reaching the policy's count of approvals for the
    /// deployment's exact digest releases it (queued, or held while frozen).
    #[tracing::instrument(skip(self, ctx, comment), fields(tenant_id = %ctx.tenant, request_id = %ctx.request_id))]
    pub async fn decide_deployment(&self, ctx: &TenantCtx, id: DeploymentId, decision: Decision, comment: String) -> Result<Deployment> {
        ctx.require(Permission::Read)?;
        let (d, head) = self.ports.deployments.get_deployment_and_head(ctx.tenant, id).await?;
        let d = d.ok_or(DomainError::not_found("deployment"))?;
        let policy = self.policy_of(ctx.tenant, d.environment_id).await?;
        policy.check_decider(ctx, &[d.requested_by.as_str()], &comment)?;
        if d.status != DeploymentStatus::PendingApproval {
            return Err(DeploymentRefused::NotPendingApproval(d.status).into());
        }
        let approval = Approval { approver: ctx.actor.id.clone(), decision, comment, digests: vec![d.digest.clone()], created_at: Utc::now() };
        let audit = AuditDraft::by(ctx, id, DeploymentDecided { decision, digests: approval.digests.clone(), comment: approval.comment.clone() }).after(head);
        match self.ports.deployments.add_approval(ctx.tenant, id, &approval, audit).await {
            Ok(()) => {}
            // A retry after a 503 that came once the decision was stored: its
            // outcome may never have been applied, so apply it before answering.
            Err(e @ DomainError::Refused(Refusal::AlreadyDecided(_))) => {
                self.apply_decisions(ctx, id, &policy, None, None).await?;
                return Err(e);
            }
            Err(e) => return Err(e),
        }
        let line = DeploymentEvent::line(None, &format!("{} by {}", if decision == Decision::Approve { "Approved" } else { "Rejected" }, ctx.actor.id));
        // As stored now, unless a decision or a move came in meanwhile (then the store refuses, and it is read again).
        let counted = Deployment { decisions: d.decisions + 1, ..d };
        self.apply_decisions(ctx, id, &policy, Some(counted), Some(line)).await
    }

    /// Applies the decisions recorded so far: rejected, released (queued or
    /// held while frozen), or still waiting. `known` is the deployment as the
    /// caller believes it stored (read again if it is not); `line` the
    /// decision's timeline line, written with the outcome.
    async fn apply_decisions(
        &self,
        ctx: &TenantCtx,
        id: DeploymentId,
        policy: &Policy,
        mut known: Option<Deployment>,
        line: Option<DeploymentEvent>,
    ) -> Result<Deployment> {
        let note_alone = async |line: Option<DeploymentEvent>| {
            if let Some(line) = line {
                self.event(ctx.tenant, id, line.runtime_id, line.message).await;
            }
        };
        // Decisions may race: apply the outcome only if no other decision came in
        // since it was computed (the store checks the decision count), else look again.
        let mut settled = None;
        for _ in 0..DECISION_ATTEMPTS {
            let current = match known.take() {
                Some(d) => d,
                None => self.get_deployment(ctx, id).await?,
            };
            if current.status != DeploymentStatus::PendingApproval {
                note_alone(line).await;
                return Ok(current);
            }
            let approvals = self.ports.deployments.approvals(ctx.tenant, id).await?;
            let now = Utc::now();
            let after = if approvals.iter().any(|a| a.decision == Decision::Reject) {
                current.step(DeploymentStep::Reject, now)?
            } else if approvals_for(&approvals, std::slice::from_ref(&current.digest)) as u64 >= u64::from(current.required_approvals) {
                current.step(DeploymentStep::Approve { hold_until: policy.frozen_until(now) }, now)?
            } else {
                note_alone(line).await;
                return Ok(current);
            };
            let approved = match after.status {
                DeploymentStatus::Rejected => 0,
                _ => approvals_for(&approvals, std::slice::from_ref(&current.digest)),
            };
            let summary = DeploymentDecisionsApplied { before: current.status, after: after.status, approvals: approved, scheduled_at: after.scheduled_at };
            let audit = AuditDraft::by(ctx, id, summary);
            let outcome = match after.status {
                DeploymentStatus::Queued => "Approvals complete: queued",
                DeploymentStatus::Scheduled => "Approvals complete: held until its scheduled time",
                _ => "Rejected: the deployment will not run",
            };
            let events: Vec<DeploymentEvent> = line.iter().cloned().chain([DeploymentEvent::line(None, outcome)]).collect();
            match self.ports.deployments.transition_noting(ctx.tenant, &after, DeploymentStatus::PendingApproval, Some(audit), &events).await {
                Ok(()) => {
                    settled = Some(after);
                    break;
                }
                Err(DomainError::Refused(Refusal::Stale(_))) => continue,
                Err(e) => return Err(e),
            }
        }
        let Some(after) = settled else {
            note_alone(line).await;
            return self.get_deployment(ctx, id).await;
        };
        if after.status == DeploymentStatus::Queued {
            if let Err(e) = self.ports.jobs.enqueue_deployment(ctx.tenant, id).await {
                tracing::warn!(error = %e, "could not queue the approved deployment now; the sweeper will");
            }
        }
        Ok(after)
    }
}
