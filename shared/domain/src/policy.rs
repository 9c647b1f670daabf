//! Per-environment governance: who may deploy, who must approve, where a
//! package must have succeeded first, when nothing may be deployed, and
//! whether a failure rolls back by itself.

use crate::error::Validator;
use crate::ids::EnvironmentId;
use crate::rollout::{AutoRetry, Rollout};
use crate::runtime::Digest;
use crate::values::{Role, Version};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// A period (UTC) in which deployments are refused or held; `weekly` repeats it every 7 days.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreezeWindow {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    #[serde(default)]
    pub weekly: bool,
}

impl FreezeWindow {
    /// The occurrence of this window containing `at`, as (start, end).
    pub fn occurrence_at(&self, at: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        if !self.weekly {
            return (self.start <= at && at < self.end).then_some((self.start, self.end));
        }
        if at < self.start {
            return None;
        }
        let week = Duration::weeks(1);
        let weeks = (at - self.start).num_seconds() / week.num_seconds();
        let start = self.start + week * i32::try_from(weeks).unwrap_or(i32::MAX);
        let end = start + (self.end - self.start);
        (start <= at && at < end).then_some((start, end))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub required_approvals: u32,
    pub approver_roles: Vec<Role>,
    pub allow_self_approval: bool,
    pub deployer_roles: Vec<Role>,
    pub require_success_in: Vec<EnvironmentId>,
    pub freeze_windows: Vec<FreezeWindow>,
    pub auto_rollback: bool,
    /// How deployments go out by default (a request may only be more careful).
    #[serde(default, skip_serializing_if = "Rollout::is_default")]
    pub rollout: Rollout,
    /// Failed targets are tried again by themselves (off when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_retry: Option<AutoRetry>,
    /// 0 until a policy is first stored.
    pub version: Version,
}

impl Default for Policy {
    /// What an environment without a stored policy enforces.
    fn default() -> Self {
        Self {
            required_approvals: 0,
            approver_roles: vec![Role::Approver, Role::Admin],
            allow_self_approval: false,
            deployer_roles: vec![Role::Deployer, Role::Admin],
            require_success_in: vec![],
            freeze_windows: vec![],
            auto_rollback: false,
            rollout: Rollout::default(),
            auto_retry: None,
            version: Version(0),
        }
    }
}

pub const MAX_REQUIRED_APPROVALS: u32 = 10;
pub const MAX_PROMOTION_SOURCES: usize = 10;
pub const MAX_FREEZE_WINDOWS: usize = 50;
/// Most characters of an approval comment.
pub const MAX_COMMENT_CHARS: usize = 2000;

impl Policy {
    /// Checks the policy's own consistency (not that named environments exist).
    pub fn check(&self, env: EnvironmentId) -> crate::Result<()> {
        let mut v = Validator::default();
        if self.required_approvals > MAX_REQUIRED_APPROVALS {
            v.push("required_approvals", format!("must be at most {MAX_REQUIRED_APPROVALS}"));
        }
        if self.required_approvals > 0 && self.approver_roles.is_empty() {
            v.push("approver_roles", "must name at least one role when approvals are required");
        }
        if self.deployer_roles.is_empty() {
            v.push("deployer_roles", "must name at least one role");
        }
        for (field, roles) in [("approver_roles", &self.approver_roles), ("deployer_roles", &self.deployer_roles)] {
            if roles.contains(&Role::PlatformAdmin) {
                v.push(field, "platform_admin is not a tenant role");
            }
        }
        if self.require_success_in.contains(&env) {
            v.push("require_success_in", "an environment cannot require success in itself");
        }
        if self.require_success_in.len() > MAX_PROMOTION_SOURCES {
            v.push("require_success_in", format!("at most {MAX_PROMOTION_SOURCES} environments"));
        }
        if self.freeze_windows.len() > MAX_FREEZE_WINDOWS {
            v.push("freeze_windows", format!("at most {MAX_FREEZE_WINDOWS} windows"));
        }
        for (i, w) in self.freeze_windows.iter().enumerate() {
            if w.end <= w.start {
                v.push(&format!("freeze_windows[{i}].end"), "must be after start");
            } else if w.weekly && w.end - w.start >= Duration::weeks(1) {
                v.push(&format!("freeze_windows[{i}].end"), "a weekly window must last less than a week");
            }
        }
        if let Err(crate::DomainError::Validation { errors, .. }) = self.rollout.check("rollout") {
            for e in errors {
                v.push(&e.field, e.message);
            }
        }
        if let Some(retry) = &self.auto_retry {
            retry.check(&mut v);
        }
        v.finish()
    }

    pub fn may_deploy(&self, roles: &[Role]) -> bool {
        roles.iter().any(|r| self.deployer_roles.contains(r))
    }

    /// The one rule for every change to the environment: who may make it
    /// (`deployer_roles`), whether a freeze window refuses or holds it, and
    /// how many approvals it waits for.
    pub fn judge(&self, change: Change, roles: &[Role], at: DateTime<Utc>, hold_if_frozen: bool) -> Verdict {
        Verdict {
            change,
            allowed: change.by_system() || self.may_deploy(roles),
            frozen_until: if change.frozen() { self.frozen_until(at) } else { None },
            hold: hold_if_frozen && change.may_hold(),
            required_approvals: if change.needs_approvals() { self.required_approvals } else { 0 },
            rollout: if change.rolls_out() { self.rollout } else { Rollout::default() },
            deployer_roles: self.deployer_roles.clone(),
        }
    }

    pub fn may_approve(&self, roles: &[Role]) -> bool {
        roles.iter().any(|r| self.approver_roles.contains(r))
    }

    /// Whether `ctx` may decide (approve or reject) what `authors` asked for:
    /// an approver role of this policy, an active tenant, not one of the
    /// authors (unless self-approval is allowed), and a comment of bounded length.
    pub fn check_decider(&self, ctx: &crate::context::TenantCtx, authors: &[&str], comment: &str) -> crate::Result<()> {
        use crate::DomainError;
        if !self.may_approve(&ctx.roles) {
            return Err(DomainError::forbidden(
                "not_an_approver",
                format!("the environment's policy takes approvals from {:?} only", self.approver_roles).to_lowercase(),
            ));
        }
        if ctx.tenant_suspended {
            return Err(DomainError::forbidden("tenant_suspended", "the tenant is suspended: it can read but not change anything"));
        }
        if authors.contains(&ctx.actor.id.as_str()) && !self.allow_self_approval {
            return Err(DomainError::forbidden(
                "self_approval_forbidden",
                "an author of the request (its requester, or anyone who changed its items) cannot decide on it",
            ));
        }
        if comment.chars().count() > MAX_COMMENT_CHARS {
            return Err(DomainError::invalid("comment", format!("must be at most {MAX_COMMENT_CHARS} characters")));
        }
        Ok(())
    }

    /// When deploying at `at` must wait until, if inside a freeze window:
    /// the end of that window (and of any window it runs into).
    pub fn frozen_until(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut until: Option<DateTime<Utc>> = None;
        let mut probe = at;
        // Windows may overlap or abut: follow them until a free instant.
        for _ in 0..=self.freeze_windows.len() {
            match self.freeze_windows.iter().filter_map(|w| w.occurrence_at(probe)).map(|(_, end)| end).max() {
                Some(end) => {
                    until = Some(end);
                    probe = end;
                }
                None => break,
            }
        }
        until
    }
}

/// Every way of changing what an environment runs. Each passes the one gate,
/// `Policy::judge`, so a new kind of change is governed by adding it here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// A package deployed (a newer version, or an earlier one again).
    Deploy,
    /// A component removed from the environment.
    Undeploy,
    /// A person returns the environment to the version active before the current one.
    Rollback,
    /// The system restores the previous version after a failed deployment.
    AutomaticRollback,
    /// The failed targets of a deployment sent their job again.
    Retry,
    /// A deployment stopped before any runtime was sent its job.
    Cancel,
    /// The deployments of an approved change request (its approvals stand for theirs).
    ChangeRequestDeploy,
    /// A runtime starts running what the environment runs: it is sent a
    /// `sync` of each active version (no approvals: those were approved).
    AttachRuntime,
    /// A runtime stops running what the environment runs (detached, or deleted).
    DetachRuntime,
    /// A rollout in batches stopped before its next batch.
    Halt,
    /// A halted rollout goes on with its next batch.
    Resume,
}

impl Change {
    /// Waits for the policy's approvals. A retry, a cancel and runtime
    /// changes act on what was approved already; a change request brings its
    /// own approvals; an automatic rollback restores what was approved before.
    fn needs_approvals(self) -> bool {
        matches!(self, Change::Deploy | Change::Undeploy | Change::Rollback)
    }
    /// Refused (or held) inside a freeze window. Cancelling changes nothing
    /// that runs, and an automatic rollback restores what ran before the
    /// failure: a freeze must not keep an environment broken.
    fn frozen(self) -> bool {
        !matches!(self, Change::Cancel | Change::AutomaticRollback | Change::Halt)
    }
    /// May wait for the window's end instead of being refused (`hold_if_frozen`).
    /// A held attach is made at once; the syncs it sends wait for the window's end.
    fn may_hold(self) -> bool {
        matches!(self, Change::Deploy | Change::Undeploy | Change::Rollback | Change::ChangeRequestDeploy | Change::AttachRuntime)
    }
    /// Goes out as the policy's `rollout` says (restoring or removing a
    /// version goes out at once: holding it back keeps a runtime broken longer).
    fn rolls_out(self) -> bool {
        matches!(self, Change::Deploy | Change::ChangeRequestDeploy)
    }
    /// Made by the system, not by a caller with roles.
    fn by_system(self) -> bool {
        matches!(self, Change::AutomaticRollback)
    }
    fn describe(self) -> &'static str {
        match self {
            Change::Deploy | Change::ChangeRequestDeploy => "deploy",
            Change::Undeploy => "undeploy",
            Change::Rollback | Change::AutomaticRollback => "roll back",
            Change::Retry => "retry",
            Change::Cancel => "cancel",
            Change::AttachRuntime => "attach runtimes",
            Change::DetachRuntime => "detach runtimes",
            Change::Halt => "halt a rollout",
            Change::Resume => "resume a rollout",
        }
    }
}

/// What the policy says about one change, before any other check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub change: Change,
    /// The caller holds one of the policy's deployer roles (or it is the system's change).
    pub allowed: bool,
    /// Inside a freeze window that applies to this change, until then.
    pub frozen_until: Option<DateTime<Utc>>,
    /// The caller asked to wait for the window's end, and this change may.
    pub hold: bool,
    /// Approvals the change waits for.
    pub required_approvals: u32,
    /// How it goes out (the policy's rollout for a deploy, else all at once).
    pub rollout: Rollout,
    deployer_roles: Vec<Role>,
}

/// A change the policy lets through: how many approvals it waits for, and
/// until when it is held by a freeze window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clearance {
    pub required_approvals: u32,
    pub hold_until: Option<DateTime<Utc>>,
    /// The policy's rollout for the change (see `Verdict::rollout`).
    pub rollout: Rollout,
}

impl Verdict {
    /// Refuses what the policy forbids: 403 `forbidden` without a deployer
    /// role, 409 `freeze_window` inside a window (unless held).
    pub fn enforce(&self) -> crate::Result<Clearance> {
        if let Some(issue) = self.blocking().into_iter().next() {
            return Err(match issue.0 {
                "forbidden" => crate::DomainError::forbidden("forbidden", issue.1),
                code => crate::DomainError::conflict(code, issue.1),
            });
        }
        Ok(Clearance { required_approvals: self.required_approvals, hold_until: self.frozen_until.filter(|_| self.hold), rollout: self.rollout })
    }

    /// What blocks the change, as (code, message).
    pub fn blocking(&self) -> Vec<(&'static str, String)> {
        let mut issues = vec![];
        if !self.allowed {
            let roles: Vec<&str> = self.deployer_roles.iter().map(|r| r.as_str()).collect();
            issues.push(("forbidden", format!("the environment's policy lets only {} {}", roles.join(", "), self.change.describe())));
        }
        if let Some(until) = self.frozen_until.filter(|_| !self.hold) {
            let hint = if self.change.may_hold() { " (ask with hold_if_frozen to wait for its end)" } else { "" };
            issues.push(("freeze_window", format!("the environment is frozen until {}{hint}", until.to_rfc3339())));
        }
        issues
    }

    /// What the change will wait for, as (code, message).
    pub fn waits(&self) -> Vec<(&'static str, String)> {
        let mut issues = vec![];
        if let Some(until) = self.frozen_until.filter(|_| self.hold) {
            issues.push(("freeze_window", format!("inside a freeze window: held until {}", until.to_rfc3339())));
        }
        if self.required_approvals > 0 {
            issues.push(("approval_required", format!("waits for {} approval(s)", self.required_approvals)));
        }
        issues
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approve,
    Reject,
}

/// One person's decision, bound to the exact package digests it saw.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub approver: String,
    pub decision: Decision,
    pub comment: String,
    pub digests: Vec<Digest>,
    pub created_at: DateTime<Utc>,
}

/// Approvals that count: approving, and bound to exactly `digests`.
pub fn approvals_for(approvals: &[Approval], digests: &[Digest]) -> usize {
    approvals.iter().filter(|a| a.decision == Decision::Approve && digests.iter().all(|d| a.digests.contains(d)) && a.digests.len() == digests.len()).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn window(start: &str, end: &str, weekly: bool) -> FreezeWindow {
        FreezeWindow { start: at(start), end: at(end), weekly }
    }

    #[test]
    fn a_one_off_window_freezes_only_its_own_period() {
        let w = window("2026-12-24T00:00:00Z", "2026-12-27T00:00:00Z", false);
        assert!(w.occurrence_at(at("2026-12-25T12:00:00Z")).is_some());
        assert!(w.occurrence_at(at("2026-12-27T00:00:00Z")).is_none(), "the end is free");
        assert!(w.occurrence_at(at("2027-12-25T12:00:00Z")).is_none());
    }

    #[test]
    fn a_weekly_window_repeats_every_week_after_its_first_start() {
        // Fridays 16:00 to Monday 08:00.
        let w = window("2026-11-20T16:00:00Z", "2026-11-23T08:00:00Z", true);
        assert!(w.occurrence_at(at("2026-12-05T10:00:00Z")).is_some(), "a Saturday weeks later");
        assert!(w.occurrence_at(at("2026-12-02T10:00:00Z")).is_none(), "a Wednesday");
        assert!(w.occurrence_at(at("2026-11-14T10:00:00Z")).is_none(), "before the first occurrence");
        assert_eq!(w.occurrence_at(at("2026-11-28T10:00:00Z")).unwrap().1, at("2026-11-30T08:00:00Z"));
    }

    #[test]
    fn a_window_s_end_instant_is_free_and_the_instant_before_it_frozen_once_off_or_weekly() {
        let instant = Duration::nanoseconds(1);
        let once = Policy { freeze_windows: vec![window("2026-12-24T00:00:00Z", "2026-12-27T00:00:00Z", false)], ..Policy::default() };
        let end = at("2026-12-27T00:00:00Z");
        assert_eq!(once.frozen_until(end), None, "a one-off window's end is free");
        assert_eq!(once.frozen_until(end - instant), Some(end), "the instant before it is frozen");

        // Fridays 16:00 to Monday 08:00; the occurrence three weeks on ends 2026-12-14T08:00.
        let weekly = Policy { freeze_windows: vec![window("2026-11-20T16:00:00Z", "2026-11-23T08:00:00Z", true)], ..Policy::default() };
        let end = at("2026-12-14T08:00:00Z");
        assert_eq!(weekly.frozen_until(end), None, "a weekly occurrence's end is free");
        assert_eq!(weekly.frozen_until(end - instant), Some(end), "the instant before it is frozen");
    }

    #[test]
    fn a_deployment_inside_abutting_windows_waits_for_the_last_one_to_end() {
        let p = Policy {
            freeze_windows: vec![window("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", false), window("2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z", false)],
            ..Policy::default()
        };
        assert_eq!(p.frozen_until(at("2026-01-01T12:00:00Z")), Some(at("2026-01-03T00:00:00Z")));
        assert_eq!(p.frozen_until(at("2026-01-04T00:00:00Z")), None);
    }

    #[test]
    fn an_inconsistent_policy_is_refused() {
        let env = EnvironmentId::new();
        let p = Policy { required_approvals: 2, approver_roles: vec![], require_success_in: vec![env], ..Policy::default() };
        let crate::DomainError::Validation { errors, .. } = p.check(env).unwrap_err() else { panic!("a validation error") };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["approver_roles", "require_success_in"]);
        let w = Policy { freeze_windows: vec![window("2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z", false)], ..Policy::default() };
        assert!(w.check(env).is_err());
    }

    #[test]
    fn only_approvals_of_the_exact_digests_count() {
        let d1 = Digest::parse(&format!("sha256:{}", "1".repeat(64))).unwrap();
        let d2 = Digest::parse(&format!("sha256:{}", "2".repeat(64))).unwrap();
        let approval = |decision, digests: Vec<Digest>| Approval { approver: "a".into(), decision, comment: String::new(), digests, created_at: Utc::now() };
        let all = [approval(Decision::Approve, vec![d1.clone()]), approval(Decision::Approve, vec![d2.clone()]), approval(Decision::Reject, vec![d1.clone()])];
        assert_eq!(approvals_for(&all, std::slice::from_ref(&d1)), 1);
        assert_eq!(approvals_for(&all, &[d1, d2]), 0, "a change of items voids approvals");
    }

    /// Every change, under a policy with 2 approvals, a freeze window now and
    /// deployer roles [deployer]: who may, whether frozen, whether it waits.
    #[test]
    fn every_change_to_an_environment_passes_the_one_gate() {
        let now = Utc::now();
        let policy = Policy {
            required_approvals: 2,
            deployer_roles: vec![Role::Deployer],
            freeze_windows: vec![FreezeWindow { start: now - Duration::hours(1), end: now + Duration::hours(1), weekly: false }],
            ..Policy::default()
        };
        // (change, needs a deployer role, refused by the freeze, may be held, approvals it waits for)
        let table = [
            (Change::Deploy, true, true, true, 2),
            (Change::Undeploy, true, true, true, 2),
            (Change::Rollback, true, true, true, 2),
            (Change::AutomaticRollback, false, false, false, 0),
            (Change::Retry, true, true, false, 0),
            (Change::Cancel, true, false, false, 0),
            (Change::ChangeRequestDeploy, true, true, true, 0),
            (Change::AttachRuntime, true, true, true, 0),
            (Change::DetachRuntime, true, true, false, 0),
            (Change::Halt, true, false, false, 0),
            (Change::Resume, true, true, false, 0),
        ];
        for (change, needs_role, frozen, holdable, approvals) in table {
            let admin = policy.judge(change, &[Role::Admin], now, false);
            assert_eq!(admin.enforce().is_err(), needs_role || frozen, "{change:?} by an admin the policy does not name");
            if needs_role {
                assert_eq!(admin.enforce().unwrap_err().code(), "forbidden", "{change:?}");
            }
            let deployer = policy.judge(change, &[Role::Deployer], now, false);
            match deployer.enforce() {
                Err(e) => assert!(frozen && e.code() == "freeze_window", "{change:?}: {e:?}"),
                Ok(c) => assert!(!frozen && c.required_approvals == approvals && c.hold_until.is_none(), "{change:?}: {c:?}"),
            }
            let held = policy.judge(change, &[Role::Deployer], now, true).enforce();
            match (frozen, holdable) {
                (true, true) => {
                    let c = held.unwrap();
                    assert_eq!(c.hold_until, Some(now + Duration::hours(1)), "{change:?} is held to the window's end");
                    assert_eq!(c.required_approvals, approvals, "{change:?}");
                }
                (true, false) => assert_eq!(held.unwrap_err().code(), "freeze_window", "{change:?} cannot be held"),
                (false, _) => assert!(held.is_ok(), "{change:?}"),
            }
        }
    }

    #[test]
    fn outside_a_freeze_window_nothing_is_held() {
        let p = Policy::default();
        let c = p.judge(Change::Undeploy, &[Role::Deployer], Utc::now(), true).enforce().unwrap();
        assert_eq!(c, Clearance { required_approvals: 0, hold_until: None, rollout: Rollout::default() });
    }

    #[test]
    fn an_author_who_changed_the_items_cannot_decide_unless_self_approval_is_allowed() {
        let ctx = crate::context::TenantCtx {
            tenant: crate::ids::TenantId::new(),
            actor: crate::context::Actor::user("bob"),
            roles: vec![Role::Approver],
            request_id: "r".into(),
            client_request_id: None,
            tenant_suspended: false,
        };
        let p = Policy::default();
        assert_eq!(p.check_decider(&ctx, &["ann", "bob"], "").unwrap_err().code(), "self_approval_forbidden");
        assert!(p.check_decider(&ctx, &["ann"], "").is_ok());
        assert!(Policy { allow_self_approval: true, ..p }.check_decider(&ctx, &["ann", "bob"], "").is_ok());
    }

    #[test]
    fn by_default_deployers_and_admins_deploy_and_approvers_and_admins_approve() {
        let p = Policy::default();
        assert!(p.may_deploy(&[Role::Deployer]));
        assert!(!p.may_deploy(&[Role::Approver]));
        assert!(p.may_approve(&[Role::Approver]));
        assert!(!p.may_approve(&[Role::Developer]));
    }
}
