//! An approver's inbox: what waits on a decision the caller may give.

use super::Berth;
use crate::Result;
use crate::change_request::{ChangeRequest, ChangeStatus};
use crate::context::{Permission, TenantCtx};
use crate::deployment::{Deployment, DeploymentStatus};
use crate::ids::EnvironmentId;
use crate::page::{Page, PageRequest};
use crate::policy::{Approval, Policy};
use crate::ports::AwaitingDecision;
use std::collections::HashMap;

/// One thing in an approver's inbox, with the decisions recorded on it so far.
#[derive(Clone, Debug)]
pub enum Awaiting {
    Deployment(Deployment, Vec<Approval>),
    ChangeRequest(ChangeRequest, Vec<Approval>),
}

impl Berth {
    /// The deployments pending approval and the change requests submitted
    /// that the caller may decide now, oldest first: the caller holds one of
    /// the environment's policy's approver roles, is not an author (unless
    /// the policy allows self-approval), and has not decided already (on a
    /// change request: on its current items). The same rule as deciding
    /// (`Policy::check_decider`). A page may hold fewer than `limit` items
    /// while `next_cursor` goes on (what the caller may not decide is left out).
    pub async fn approvals_inbox(&self, ctx: &TenantCtx, page: &PageRequest) -> Result<Page<Awaiting>> {
        ctx.require(Permission::Read)?;
        let listed = self.ports.inbox.awaiting_decision(ctx.tenant, page).await?;
        let mut policies: HashMap<EnvironmentId, Policy> = HashMap::new();
        let mut items = vec![];
        for entry in listed.items {
            match entry {
                AwaitingDecision::Deployment(id) => {
                    // The index may lag: what moved on meanwhile is left out.
                    let Some(d) = self.ports.deployments.get_deployment(ctx.tenant, id).await?.filter(|d| d.status == DeploymentStatus::PendingApproval) else {
                        continue;
                    };
                    let policy = self.cached_policy(ctx, &mut policies, d.environment_id).await?;
                    if policy.check_decider(ctx, &[d.requested_by.as_str()], "").is_err() {
                        continue;
                    }
                    let approvals = self.ports.deployments.approvals(ctx.tenant, id).await?;
                    if approvals.iter().any(|a| a.approver == ctx.actor.id) {
                        continue;
                    }
                    items.push(Awaiting::Deployment(d, approvals));
                }
                AwaitingDecision::ChangeRequest(id) => {
                    let Some(cr) = self.ports.change_requests.get_change_request(ctx.tenant, id).await?.filter(|cr| cr.status == ChangeStatus::Submitted)
                    else {
                        continue;
                    };
                    let policy = self.cached_policy(ctx, &mut policies, cr.target_environment_id).await?;
                    if policy.check_decider(ctx, &cr.authors(), "").is_err() {
                        continue;
                    }
                    let approvals = self.ports.change_requests.change_approvals(ctx.tenant, id).await?;
                    // A decision on earlier items does not count: the caller decides anew.
                    if approvals.iter().any(|a| a.approver == ctx.actor.id && a.digests == cr.digests) {
                        continue;
                    }
                    items.push(Awaiting::ChangeRequest(cr, approvals));
                }
            }
        }
        Ok(Page { items, next_cursor: listed.next_cursor })
    }

    async fn cached_policy(&self, ctx: &TenantCtx, cache: &mut HashMap<EnvironmentId, Policy>, env: EnvironmentId) -> Result<Policy> {
        if let Some(p) = cache.get(&env) {
            return Ok(p.clone());
        }
        let p = self.policy_of(ctx.tenant, env).await?;
        cache.insert(env, p.clone());
        Ok(p)
    }
}
