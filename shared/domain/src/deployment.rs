//! Deployments: one package version to one environment, fanned out as one
//! target (job) per attached runtime; their states; and what an environment
//! runs (its active versions).

use crate::ids::{ComponentId, DeploymentId, EnvironmentId, JobId, PackageId, RuntimeId};
use crate::package::{ManifestEntry, Package, VersionLabel};
use crate::rollout::{Progress, Rollout};
use crate::runtime::Digest;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentKind {
    Deploy,
    /// An earlier version than the active one, again.
    Redeploy,
    /// Automatic, after a failure.
    Rollback,
    Undeploy,
    /// The active version again, to one runtime newly attached to the
    /// environment (`only_runtime`): it converges on what the environment runs.
    Sync,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentStatus {
    PendingApproval,
    Approved,
    Scheduled,
    Queued,
    InProgress,
    Succeeded,
    Failed,
    PartiallyFailed,
    RolledBack,
    Superseded,
    Cancelled,
    Rejected,
    /// A rollout in batches stopped before its next batch (too many failed
    /// targets, or a person halted it): it may be resumed.
    Halted,
}

impl DeploymentStatus {
    pub const ALL: [Self; 13] = [
        Self::PendingApproval,
        Self::Approved,
        Self::Scheduled,
        Self::Queued,
        Self::InProgress,
        Self::Succeeded,
        Self::Failed,
        Self::PartiallyFailed,
        Self::RolledBack,
        Self::Superseded,
        Self::Cancelled,
        Self::Rejected,
        Self::Halted,
    ];
    /// What a run can end as, by its targets (see `aggregate`).
    pub fn is_outcome(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::PartiallyFailed | Self::RolledBack)
    }
    /// Holds the environment's (environment, component) lock.
    pub fn in_flight(self) -> bool {
        matches!(self, Self::PendingApproval | Self::Approved | Self::Scheduled | Self::Queued | Self::InProgress)
    }
    /// May still be cancelled: nothing was sent to a runtime yet.
    pub fn cancellable(self) -> bool {
        matches!(self, Self::PendingApproval | Self::Approved | Self::Scheduled | Self::Queued)
    }
    pub fn parse(raw: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(raw.to_string())).ok()
    }
    pub fn as_str(self) -> String {
        serde_json::to_value(self).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
    }
}

/// A deployment as it is stored, too: the field names and the `default`s are
/// those of the items already written, so they still read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    pub id: DeploymentId,
    pub kind: DeploymentKind,
    pub status: DeploymentStatus,
    pub environment_id: EnvironmentId,
    pub component_id: ComponentId,
    pub package_id: PackageId,
    pub version: VersionLabel,
    pub digest: Digest,
    pub size: u64,
    pub notes: String,
    pub requested_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_at: Option<DateTime<Utc>>,
    /// The package active in the environment when this was requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_package_id: Option<PackageId>,
    /// Set on the undeploys sent to a runtime detached from the environment,
    /// and on the syncs sent to a runtime attached to it: only that runtime is
    /// targeted and the environment's active versions stay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_runtime: Option<RuntimeId>,
    /// Approvals the environment's policy required when this was requested.
    #[serde(default)]
    pub required_approvals: u32,
    /// How many approval decisions were recorded; a decision's outcome is
    /// applied only if no other decision arrived since it was computed.
    #[serde(default)]
    pub decisions: u32,
    /// The change request that created it (its approvals were the change request's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_request_id: Option<crate::ids::ChangeRequestId>,
    /// The connection components the package bundles: they take licences
    /// from the moment the deployment is requested.
    #[serde(default)]
    pub connections: Vec<ComponentId>,
    /// The source commit it deploys, as CI reported it (by default the package's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The environment its package was promoted from (a change request's
    /// deployment: where the package last succeeded among the policy's
    /// `require_success_in`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_environment_id: Option<EnvironmentId>,
    /// Deployed although its package was outdated (a component revised since
    /// packaging), because the change request's deploy said `accept_outdated`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub accepted_outdated: bool,
    /// How it goes out to the runtimes, resolved when it was requested.
    #[serde(default, skip_serializing_if = "Rollout::is_default")]
    pub rollout: Rollout,
    /// Its way through the batches, from its start (a rollout in batches only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
    /// The target environment's extensions version it was validated with
    /// (absent on deployments older than extensions, undeploys and syncs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions_version: Option<u64>,
    /// Whether the extension values of what it bundles changed since the
    /// deployment it replaces was requested (absent: it replaces none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions_changed: Option<bool>,
    /// Recorded before its package was built (a `package_and_deploy` webhook's
    /// or a latest-revision deploy whose package went to the package builder):
    /// the dispatcher leaves it until the package is ready (then it takes the
    /// package's digest and size), and fails it `package_failed` if the build fails.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub waiting_for_package: bool,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
}

impl Deployment {
    /// The one redeploy rule: `package` is redeployed when it is older than
    /// the version `active` in the environment (package ids are UUIDv7: an
    /// older id is an earlier version), else deployed.
    pub fn for_package(environment: EnvironmentId, package: &Package, requested_by: &str, notes: String, active: Option<&ActiveVersion>) -> Self {
        match active {
            Some(a) if package.id < a.package_id => Self::new_redeploy(package, requested_by, notes, a),
            _ => Self::new_deploy(environment, package, requested_by, notes, active),
        }
    }

    /// The same deployment, recording the extensions version it was validated
    /// with and whether values changed since the deployment it replaces.
    pub fn with_extensions(self, version: u64, changed: Option<bool>) -> Self {
        Self { extensions_version: Some(version), extensions_changed: changed, ..self }
    }

    /// The same deployment, recording `commit` (when given) as the one it deploys.
    pub fn with_commit(self, commit: Option<String>) -> Self {
        Self { commit: commit.or(self.commit), ..self }
    }

    /// A deploy of `package` to `environment`, replacing `active` if any.
    pub fn new_deploy(environment: EnvironmentId, package: &Package, requested_by: &str, notes: String, active: Option<&ActiveVersion>) -> Self {
        Self::requesting(DeploymentKind::Deploy, environment, package, requested_by, notes, active)
    }

    /// `package` again, older than the version `active` in its environment.
    pub fn new_redeploy(package: &Package, requested_by: &str, notes: String, active: &ActiveVersion) -> Self {
        Self::requesting(DeploymentKind::Redeploy, active.environment_id, package, requested_by, notes, Some(active))
    }

    /// Back to `package`, the version that was active before `active`
    /// (asked for by a person, or automatic after a failure).
    pub fn new_rollback(package: &Package, requested_by: &str, notes: String, active: &ActiveVersion) -> Self {
        Self::requesting(DeploymentKind::Rollback, active.environment_id, package, requested_by, notes, Some(active))
    }

    /// Removes what `active` deployed: from every runtime of the environment,
    /// or (`only_runtime`) from one runtime detached from it.
    pub fn new_undeploy(active: &ActiveVersion, requested_by: &str, only_runtime: Option<RuntimeId>) -> Self {
        Deployment {
            id: DeploymentId::new(),
            kind: DeploymentKind::Undeploy,
            status: DeploymentStatus::Queued,
            environment_id: active.environment_id,
            component_id: active.component_id,
            package_id: active.package_id,
            version: active.version.clone(),
            digest: active.digest.clone(),
            size: 0,
            notes: match only_runtime {
                Some(r) => format!("runtime {r} detached from the environment"),
                None => String::new(),
            },
            requested_by: requested_by.to_string(),
            scheduled_at: None,
            previous_package_id: Some(active.package_id),
            only_runtime,
            required_approvals: 0,
            decisions: 0,
            change_request_id: None,
            connections: vec![],
            commit: None,
            source_environment_id: None,
            accepted_outdated: false,
            rollout: Rollout::default(),
            progress: None,
            extensions_version: None,
            extensions_changed: None,
            waiting_for_package: false,
            created_at: Utc::now(),
            started_at: None,
            finished_at: None,
        }
    }

    /// Brings one runtime newly attached to the environment to `active`, the
    /// version the environment runs (`package` is that version's package).
    /// It takes no lock, needs no approval (the version was approved for the
    /// environment) and leaves the active versions as they are; `cleared`
    /// holds it to a freeze window's end.
    pub fn new_sync(active: &ActiveVersion, package: &Package, requested_by: &str, runtime: RuntimeId) -> Self {
        Deployment {
            id: DeploymentId::new(),
            kind: DeploymentKind::Sync,
            status: DeploymentStatus::Queued,
            environment_id: active.environment_id,
            component_id: active.component_id,
            package_id: active.package_id,
            version: active.version.clone(),
            digest: active.digest.clone(),
            size: package.size,
            notes: format!("runtime {runtime} attached to the environment"),
            requested_by: requested_by.to_string(),
            scheduled_at: None,
            previous_package_id: Some(active.package_id),
            only_runtime: Some(runtime),
            required_approvals: 0,
            decisions: 0,
            change_request_id: None,
            // The active version holds its licences already.
            connections: vec![],
            commit: None,
            source_environment_id: None,
            accepted_outdated: false,
            rollout: Rollout::default(),
            progress: None,
            extensions_version: None,
            extensions_changed: None,
            waiting_for_package: false,
            created_at: Utc::now(),
            started_at: None,
            finished_at: None,
        }
    }

    /// A deployment of `package` (deploy, redeploy or rollback), queued
    /// unless `cleared` holds it for approvals or a time.
    fn requesting(
        kind: DeploymentKind,
        environment: EnvironmentId,
        package: &Package,
        requested_by: &str,
        notes: String,
        active: Option<&ActiveVersion>,
    ) -> Self {
        Deployment {
            id: DeploymentId::new(),
            kind,
            status: DeploymentStatus::Queued,
            environment_id: environment,
            component_id: package.component_id,
            package_id: package.id,
            version: package.version.clone(),
            // Deployments of a package that is not ready are refused
            // `package_not_ready` before one is made; should one be made all the
            // same, the all-zero digest matches no archive, so no agent would run it.
            digest: package.digest.clone().unwrap_or_else(crate::runtime::Digest::unbuilt),
            size: package.size,
            notes,
            requested_by: requested_by.to_string(),
            scheduled_at: None,
            previous_package_id: active.map(|a| a.package_id),
            only_runtime: None,
            required_approvals: 0,
            decisions: 0,
            change_request_id: None,
            connections: package.manifest.components.iter().filter(|c| c.kind == crate::component::ComponentType::Connection).map(|c| c.id).collect(),
            commit: package.commit.clone(),
            source_environment_id: None,
            accepted_outdated: false,
            rollout: Rollout::default(),
            progress: None,
            extensions_version: None,
            extensions_changed: None,
            waiting_for_package: false,
            created_at: Utc::now(),
            started_at: None,
            finished_at: None,
        }
    }

    /// Applies what the policy cleared: waits for approvals, else is held
    /// until `hold_until`/`scheduled_at` (whichever is later), else is queued.
    pub fn cleared(mut self, clearance: crate::policy::Clearance, scheduled_at: Option<DateTime<Utc>>) -> Self {
        let now = Utc::now();
        self.required_approvals = clearance.required_approvals;
        if matches!(self.kind, DeploymentKind::Deploy | DeploymentKind::Redeploy) {
            self.rollout = clearance.rollout;
        }
        self.scheduled_at = scheduled_at.max(clearance.hold_until).filter(|at| *at > now);
        self.status = if clearance.required_approvals > 0 {
            DeploymentStatus::PendingApproval
        } else if self.scheduled_at.is_some() {
            DeploymentStatus::Scheduled
        } else {
            DeploymentStatus::Queued
        };
        self
    }

    /// Every move a deployment makes after it was requested: the deployment
    /// after `step` at `now`, or why it cannot take that step.
    pub fn step(&self, step: DeploymentStep, now: DateTime<Utc>) -> Result<Deployment, DeploymentRefused> {
        use DeploymentStatus as S;
        use DeploymentStep as E;
        let mut next = self.clone();
        match (self.status, step) {
            (from, E::Cancel) if from.cancellable() => {
                next.status = S::Cancelled;
                next.finished_at = Some(now);
            }
            (from, E::Cancel) => return Err(DeploymentRefused::AlreadyStarted(from)),
            (S::PendingApproval, E::Approve { hold_until }) => {
                next.scheduled_at = self.scheduled_at.max(hold_until).filter(|at| *at > now);
                next.status = if next.scheduled_at.is_some() { S::Scheduled } else { S::Queued };
            }
            (S::PendingApproval, E::Reject) => {
                next.status = S::Rejected;
                next.finished_at = Some(now);
            }
            (from, E::Approve { .. } | E::Reject) => return Err(DeploymentRefused::NotPendingApproval(from)),
            (S::Scheduled, E::Due) => match self.scheduled_at.filter(|at| *at > now) {
                Some(at) => return Err(DeploymentRefused::NotDue(at)),
                None => next.status = S::Queued,
            },
            (S::Scheduled, E::Hold { until }) => next.scheduled_at = Some(until),
            (S::Queued, E::Start) => {
                next.status = S::InProgress;
                next.started_at = Some(now);
            }
            (from, E::FailToStart) if from.in_flight() => {
                next.status = S::Failed;
                next.finished_at = Some(now);
            }
            (S::InProgress, E::Settle(outcome)) if outcome.is_outcome() => {
                next.status = outcome;
                next.finished_at = Some(now);
            }
            // A failed target restored the previous version after the deployment ended.
            (S::Failed | S::PartiallyFailed, E::Settle(S::RolledBack)) => {
                next.status = S::RolledBack;
                next.finished_at = Some(now);
            }
            (S::Failed | S::PartiallyFailed | S::RolledBack, E::Retry) => {
                next.status = S::InProgress;
                next.finished_at = None;
            }
            (from, E::Retry) => return Err(DeploymentRefused::NotRetryable(from)),
            (S::InProgress, E::Halt) => next.status = S::Halted,
            (from, E::Halt) => return Err(DeploymentRefused::NotHaltable(from)),
            (S::Halted, E::Resume) => {
                next.status = S::InProgress;
                next.finished_at = None;
            }
            (from, E::Resume) => return Err(DeploymentRefused::NotHalted(from)),
            (S::Succeeded, E::Supersede) => next.status = S::Superseded,
            (from, step) => return Err(DeploymentRefused::NotAllowed { from, step }),
        }
        Ok(next)
    }
}

/// What happens to a deployment after it was requested (see `Deployment::step`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeploymentStep {
    /// Its last required approval arrived: queued, or held until the later
    /// of its scheduled time and `hold_until` (a freeze window's end).
    Approve { hold_until: Option<DateTime<Utc>> },
    /// An approver rejected it: it will not run.
    Reject,
    /// Someone cancelled it before any runtime was sent a job.
    Cancel,
    /// Its scheduled time came (the sweeper): queued.
    Due,
    /// A freeze window began before its scheduled time came: held until `until`.
    Hold { until: DateTime<Utc> },
    /// The dispatcher sent its runtimes their jobs.
    Start,
    /// The dispatcher cannot run it (no runtime attached, or never dispatchable).
    FailToStart,
    /// Every target settled; their aggregate (or `rolled_back` after an automatic rollback).
    Settle(DeploymentStatus),
    /// Its failed targets are sent their jobs again.
    Retry,
    /// Its rollout stops before the next batch (jobs sent finish).
    Halt,
    /// Its halted rollout goes on with the next batch.
    Resume,
    /// A later deployment's version became active. The DynamoDB adapter applies
    /// this one inside the activation transaction (a conditional update).
    Supersede,
}

/// Why a deployment cannot take a step. Those a person can cause carry the
/// code and message the API answers with (409).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeploymentRefused {
    #[error("a deployment that is {} can no longer be cancelled", .0.as_str())]
    AlreadyStarted(DeploymentStatus),
    #[error("the deployment is {}, not waiting for approvals", .0.as_str())]
    NotPendingApproval(DeploymentStatus),
    #[error("only failed deployments can be retried; this one is {}", .0.as_str())]
    NotRetryable(DeploymentStatus),
    #[error("the deployment is held until {}", .0.to_rfc3339())]
    NotDue(DateTime<Utc>),
    #[error("only a rollout in batches that is in progress, with targets waiting for their batch, can be halted; this one is {}", .0.as_str())]
    NotHaltable(DeploymentStatus),
    #[error("only a halted deployment can be resumed; this one is {}", .0.as_str())]
    NotHalted(DeploymentStatus),
    /// A move no use case makes from that status; callers that race others
    /// (dispatcher, sweeper, settling) take it as "someone got there first".
    #[error("a deployment that is {} cannot take the step {step:?}", .from.as_str())]
    NotAllowed { from: DeploymentStatus, step: DeploymentStep },
}

impl DeploymentRefused {
    pub fn code(&self) -> &'static str {
        match self {
            Self::AlreadyStarted(_) => "deployment_started",
            Self::NotPendingApproval(_) => "not_pending_approval",
            Self::NotRetryable(_) => "not_retryable",
            Self::NotDue(_) => "not_due",
            Self::NotHaltable(_) => "not_haltable",
            Self::NotHalted(_) => "not_halted",
            Self::NotAllowed { .. } => "invalid_transition",
        }
    }
}

impl From<DeploymentRefused> for crate::DomainError {
    fn from(refused: DeploymentRefused) -> Self {
        crate::DomainError::conflict(refused.code(), refused.to_string())
    }
}

/// A job's progress on one runtime, as its agent reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetState {
    /// Not sent yet: its batch has not started.
    Waiting,
    Pending,
    Delivered,
    Downloading,
    BackingUp,
    Applying,
    Deployed,
    Failed,
    Restored,
    /// Withdrawn before it ran: the runtime was detached from the
    /// environment (or a retry left it out for that reason).
    Skipped,
}

impl TargetState {
    pub const ALL: [Self; 10] = [
        Self::Waiting,
        Self::Pending,
        Self::Delivered,
        Self::Downloading,
        Self::BackingUp,
        Self::Applying,
        Self::Deployed,
        Self::Failed,
        Self::Restored,
        Self::Skipped,
    ];

    fn rank(self) -> u8 {
        match self {
            Self::Waiting | Self::Pending => 0,
            Self::Delivered => 1,
            Self::Downloading => 2,
            Self::BackingUp => 3,
            Self::Applying => 4,
            Self::Deployed | Self::Failed => 5,
            Self::Restored | Self::Skipped => 6,
        }
    }

    /// Nothing more will happen (a failed target may still report `restored`).
    pub fn settled(self) -> bool {
        matches!(self, Self::Deployed | Self::Failed | Self::Restored | Self::Skipped)
    }

    /// The state after the agent reports `phase`: `Ok(None)` when it changes
    /// nothing (a repeated or late report), an error for an impossible one.
    pub fn advance(self, phase: TargetState) -> Result<Option<TargetState>, String> {
        if phase == Self::Waiting {
            return Err("waiting is not a phase an agent reports".into());
        }
        if self == Self::Waiting {
            return Err("the job was not sent yet: its batch has not started".into());
        }
        if phase == self || (phase.rank() < self.rank() && !matches!(phase, Self::Failed | Self::Deployed)) {
            return Ok(None);
        }
        match (self, phase) {
            (_, Self::Pending) => Err("pending is not a phase an agent reports".into()),
            (Self::Skipped, _) => Ok(None),
            (_, Self::Skipped) => Err("skipped is not a phase an agent reports".into()),
            (Self::Deployed, Self::Failed) | (Self::Failed, Self::Deployed) => Err(format!("the job already ended as {self:?}")),
            (Self::Restored, _) => Ok(None),
            (Self::Deployed, _) => Ok(None),
            (s, Self::Restored) if s != Self::Failed => Err("restored follows failed".into()),
            _ => Ok(Some(phase)),
        }
    }
}

/// How many targets are in each state (what a deployment's audit records).
pub fn target_counts(targets: &[Target]) -> std::collections::BTreeMap<TargetState, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for t in targets {
        *counts.entry(t.state).or_insert(0) += 1;
    }
    counts
}

#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    pub deployment_id: DeploymentId,
    pub runtime_id: RuntimeId,
    pub job_id: JobId,
    pub state: TargetState,
    pub message: String,
    /// Set on delivery: a job not finished by then is failed by the sweeper.
    pub deadline: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// The rollout batch it belongs to (1 when all go at once).
    pub batch: u32,
    /// Its try: 1, then one more for each retry (automatic or asked for).
    pub attempt: u32,
    /// Failed with a try left: it is sent a new job then (`auto_retry`).
    pub retry_at: Option<DateTime<Utc>>,
}

impl Target {
    /// A deployment's job for one runtime, not yet handed out.
    pub fn pending(deployment: DeploymentId, runtime: RuntimeId, now: DateTime<Utc>) -> Self {
        Target {
            deployment_id: deployment,
            runtime_id: runtime,
            job_id: JobId::new(),
            state: TargetState::Pending,
            message: String::new(),
            deadline: None,
            updated_at: now,
            batch: 1,
            attempt: 1,
            retry_at: None,
        }
    }

    /// The same target in `batch`: pending in batch 1, else waiting for its batch.
    pub fn in_batch(self, batch: u32) -> Self {
        let state = if batch > 1 { TargetState::Waiting } else { self.state };
        Self { batch, state, ..self }
    }

    /// Nothing more will happen to it: its state is settled and no retry is due.
    pub fn settled(&self) -> bool {
        self.state.settled() && self.retry_at.is_none()
    }

    /// Failed after its last attempt (it counts against a rollout's `max_failed_targets`).
    pub fn failed_for_good(&self) -> bool {
        matches!(self.state, TargetState::Failed | TargetState::Restored) && self.retry_at.is_none()
    }

    /// Every move a target makes: the target after `step` at `now`, or why
    /// it does not take that step.
    pub fn step(&self, step: TargetStep, now: DateTime<Utc>) -> Result<Target, TargetRefused> {
        use TargetState as S;
        let mut next = self.clone();
        next.updated_at = now;
        match step {
            TargetStep::Deliver { deadline } => match self.state {
                S::Waiting => return Err(TargetRefused::NotAllowed { from: S::Waiting, step: "deliver" }),
                S::Pending => {
                    next.state = S::Delivered;
                    next.deadline = Some(deadline);
                }
                // Handed out again (its message reappeared): same state, same deadline.
                from if !from.settled() => {}
                from => return Err(TargetRefused::NotAllowed { from, step: "deliver" }),
            },
            TargetStep::Report { phase, message } => match self.state.advance(phase) {
                Ok(Some(state)) => {
                    next.state = state;
                    next.message = message;
                }
                Ok(None) => return Err(TargetRefused::Stale),
                Err(why) => return Err(TargetRefused::InvalidPhase(why)),
            },
            TargetStep::Expire => match self.deadline {
                _ if self.state.settled() || self.state == S::Waiting => return Err(TargetRefused::NotAllowed { from: self.state, step: "expire" }),
                Some(deadline) if deadline <= now => {
                    next.state = S::Failed;
                    next.message = "the job did not finish before its deadline".into();
                }
                _ => return Err(TargetRefused::NotDue),
            },
            TargetStep::Skip { reason } => match self.state {
                from @ (S::Deployed | S::Skipped) => return Err(TargetRefused::NotAllowed { from, step: "skip" }),
                _ => {
                    next.state = S::Skipped;
                    next.message = reason;
                    next.retry_at = None;
                }
            },
            TargetStep::Reset => match self.state {
                S::Failed | S::Restored => {
                    next.job_id = JobId::new();
                    next.state = S::Pending;
                    next.message = "retry".into();
                    next.deadline = None;
                    next.attempt = self.attempt + 1;
                    next.retry_at = None;
                }
                from => return Err(TargetRefused::NotAllowed { from, step: "reset" }),
            },
            TargetStep::Release => match self.state {
                S::Waiting => {
                    next.state = S::Pending;
                    next.message = String::new();
                }
                from => return Err(TargetRefused::NotAllowed { from, step: "release" }),
            },
            TargetStep::Requeue => match self.state {
                S::Skipped => {
                    next.state = S::Waiting;
                    next.message = "waiting for its batch again: the rollout was resumed".into();
                }
                from => return Err(TargetRefused::NotAllowed { from, step: "requeue" }),
            },
            TargetStep::Backoff { until } => match self.state {
                S::Failed | S::Restored if self.retry_at.is_none() => next.retry_at = Some(until),
                from => return Err(TargetRefused::NotAllowed { from, step: "back off" }),
            },
        }
        Ok(next)
    }
}

/// What happens to a target (see `Target::step`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetStep {
    /// Handed out to its runtime's agent, which must finish by `deadline`
    /// (kept when a job already handed out is handed out again).
    Deliver { deadline: DateTime<Utc> },
    /// The agent reports `phase` (see `TargetState::advance`).
    Report { phase: TargetState, message: String },
    /// The sweeper found its deadline passed: failed.
    Expire,
    /// Withdrawn, unsettled (its runtime was detached) or failed (a retry left it out).
    Skip { reason: String },
    /// Retried: a new job, pending again, its attempt counted.
    Reset,
    /// Its batch started: pending, its job sent.
    Release,
    /// A halted rollout was resumed: a target it skipped waits for its batch again.
    Requeue,
    /// Failed with a try left: retried (`Reset`) at `until`.
    Backoff { until: DateTime<Utc> },
}

/// Why a target does not take a step.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TargetRefused {
    /// A repeated or late report: it changes nothing (and is no error for the agent).
    #[error("the report changes nothing")]
    Stale,
    /// An agent reported a phase that cannot follow the current one.
    #[error("{0}")]
    InvalidPhase(String),
    /// Its deadline has not passed (or it has none).
    #[error("the job's deadline has not passed")]
    NotDue,
    #[error("a target that is {from:?} cannot {step}")]
    NotAllowed { from: TargetState, step: &'static str },
}

impl From<TargetRefused> for crate::DomainError {
    fn from(refused: TargetRefused) -> Self {
        let code = match refused {
            TargetRefused::InvalidPhase(_) => "invalid_phase",
            TargetRefused::Stale => "stale_report",
            TargetRefused::NotDue => "not_due",
            TargetRefused::NotAllowed { .. } => "invalid_transition",
        };
        crate::DomainError::conflict(code, refused.to_string())
    }
}

/// What a deployment's targets add up to, once every one has settled.
/// Skipped targets count for nothing; if every target was skipped, nothing
/// ran anywhere and the deployment failed.
pub fn aggregate(targets: &[Target]) -> Option<DeploymentStatus> {
    if targets.is_empty() || !targets.iter().all(Target::settled) {
        return None;
    }
    let ran: Vec<&Target> = targets.iter().filter(|t| t.state != TargetState::Skipped).collect();
    let deployed = ran.iter().filter(|t| t.state == TargetState::Deployed).count();
    let restored = ran.iter().filter(|t| t.state == TargetState::Restored).count();
    Some(if ran.is_empty() {
        DeploymentStatus::Failed
    } else if deployed == ran.len() {
        DeploymentStatus::Succeeded
    } else if deployed > 0 {
        DeploymentStatus::PartiallyFailed
    } else if restored == ran.len() {
        DeploymentStatus::RolledBack
    } else {
        DeploymentStatus::Failed
    })
}

/// A line of a deployment's timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeploymentEvent {
    pub at: DateTime<Utc>,
    pub runtime_id: Option<RuntimeId>,
    pub message: String,
}

impl DeploymentEvent {
    /// A timeline line, now. Nothing secret is stored: the line is redacted first (see `redact`).
    pub fn line(runtime_id: Option<RuntimeId>, message: &str) -> Self {
        Self { at: Utc::now(), runtime_id, message: crate::redact::redact(message) }
    }
}

/// The version of a component an environment runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActiveVersion {
    pub environment_id: EnvironmentId,
    pub component_id: ComponentId,
    pub package_id: PackageId,
    pub version: VersionLabel,
    pub digest: Digest,
    pub deployment_id: DeploymentId,
    pub activated_at: DateTime<Utc>,
    /// The package's bundled components (for drift and licence counts).
    pub components: Vec<ManifestEntry>,
    /// The environment's extension values version it was deployed with (the
    /// deployment's, kept here so a dry run need not read the deployment);
    /// absent on versions activated before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions_version: Option<u64>,
}

/// A job as the deployments and runtime queues carry it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobMessage {
    pub tenant_id: crate::ids::TenantId,
    pub deployment_id: DeploymentId,
    pub runtime_id: RuntimeId,
    pub job_id: JobId,
}

/// What the sweeper watches a deployment for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SweeperWatch {
    /// Scheduled: queued by the sweeper once this time has come. In progress
    /// in batches: its next batch is started by the sweeper then.
    DueAt(DateTime<Utc>),
    /// Queued: queued again by the sweeper if no dispatcher picked it up since then.
    QueuedSince(DateTime<Utc>),
}

/// The (environment, component) lock and the sweeper's watch: rules the
/// stores apply when they write a deployment or a target.
impl Deployment {
    /// Holds its environment's lock for the component: while in flight,
    /// unless it targets one (detached) runtime only.
    pub fn holds_lock(&self) -> bool {
        self.only_runtime.is_none() && self.status.in_flight()
    }

    /// Moving to this status from `from` gives the lock up.
    pub fn releases_lock_from(&self, from: DeploymentStatus) -> bool {
        self.only_runtime.is_none() && from.in_flight() && !self.status.in_flight()
    }

    /// Moving to this status from `from` takes the lock again (a retry).
    pub fn takes_lock_from(&self, from: DeploymentStatus) -> bool {
        self.holds_lock() && !from.in_flight()
    }

    /// What the sweeper must watch this deployment for, written `now`.
    pub fn sweeper_watch(&self, now: DateTime<Utc>) -> Option<SweeperWatch> {
        let next_batch_at = self.progress.and_then(|p| p.next_batch_at);
        match (self.status, self.scheduled_at) {
            (DeploymentStatus::Scheduled, Some(at)) => Some(SweeperWatch::DueAt(at)),
            // Its next batch starts then (the one before baked).
            (DeploymentStatus::InProgress, _) if next_batch_at.is_some() => next_batch_at.map(SweeperWatch::DueAt),
            (DeploymentStatus::Queued, _) => Some(SweeperWatch::QueuedSince(now)),
            _ => None,
        }
    }
}

impl Deployment {
    /// What this deployment leaves active once it succeeded: its package,
    /// with the package's bundled `components`, from `at`.
    pub fn activation(&self, components: Vec<ManifestEntry>, at: DateTime<Utc>) -> ActiveVersion {
        ActiveVersion {
            environment_id: self.environment_id,
            component_id: self.component_id,
            package_id: self.package_id,
            version: self.version.clone(),
            digest: self.digest.clone(),
            deployment_id: self.id,
            activated_at: at,
            components,
            extensions_version: self.extensions_version,
        }
    }
}

impl Target {
    /// When the sweeper must look at it: the deadline of a delivered,
    /// unsettled job, or when a failed one is due to be retried.
    pub fn watched_deadline(&self) -> Option<DateTime<Utc>> {
        if self.retry_at.is_some() && matches!(self.state, TargetState::Failed | TargetState::Restored) {
            return self.retry_at;
        }
        self.deadline.filter(|_| !self.state.settled() && !matches!(self.state, TargetState::Pending | TargetState::Waiting))
    }
}

#[cfg(test)]
mod transitions;

#[cfg(test)]
mod tests {
    use super::*;

    fn target(state: TargetState) -> Target {
        Target {
            deployment_id: DeploymentId::new(),
            runtime_id: RuntimeId::new(),
            job_id: JobId::new(),
            state,
            message: String::new(),
            deadline: None,
            updated_at: Utc::now(),
            batch: 1,
            attempt: 1,
            retry_at: None,
        }
    }

    #[test]
    fn a_deployment_succeeds_when_every_target_deployed() {
        assert_eq!(aggregate(&[target(TargetState::Deployed), target(TargetState::Deployed)]), Some(DeploymentStatus::Succeeded));
    }

    #[test]
    fn a_deployment_is_undecided_while_a_target_is_still_applying() {
        assert_eq!(aggregate(&[target(TargetState::Deployed), target(TargetState::Applying)]), None);
        assert_eq!(aggregate(&[]), None);
    }

    #[test]
    fn a_deployment_whose_every_target_restored_is_rolled_back() {
        assert_eq!(aggregate(&[target(TargetState::Restored)]), Some(DeploymentStatus::RolledBack));
    }

    #[test]
    fn some_deployed_and_some_failed_is_partially_failed() {
        assert_eq!(aggregate(&[target(TargetState::Deployed), target(TargetState::Failed)]), Some(DeploymentStatus::PartiallyFailed));
        assert_eq!(aggregate(&[target(TargetState::Failed), target(TargetState::Restored)]), Some(DeploymentStatus::Failed));
    }

    #[test]
    fn repeated_or_late_phases_change_nothing() {
        assert_eq!(TargetState::Applying.advance(TargetState::Downloading), Ok(None));
        assert_eq!(TargetState::Applying.advance(TargetState::Applying), Ok(None));
        assert_eq!(TargetState::Deployed.advance(TargetState::Deployed), Ok(None));
    }

    #[test]
    fn phases_move_forward_and_a_failure_can_be_restored() {
        assert_eq!(TargetState::Pending.advance(TargetState::Downloading), Ok(Some(TargetState::Downloading)));
        assert_eq!(TargetState::Applying.advance(TargetState::Failed), Ok(Some(TargetState::Failed)));
        assert_eq!(TargetState::Failed.advance(TargetState::Restored), Ok(Some(TargetState::Restored)));
    }

    #[test]
    fn a_finished_job_cannot_change_its_outcome() {
        assert!(TargetState::Deployed.advance(TargetState::Failed).is_err());
        assert!(TargetState::Failed.advance(TargetState::Deployed).is_err());
        assert!(TargetState::Applying.advance(TargetState::Restored).is_err());
    }

    #[test]
    fn skipped_targets_count_for_nothing_and_all_skipped_is_a_failure() {
        assert_eq!(aggregate(&[target(TargetState::Deployed), target(TargetState::Skipped)]), Some(DeploymentStatus::Succeeded));
        assert_eq!(aggregate(&[target(TargetState::Restored), target(TargetState::Skipped)]), Some(DeploymentStatus::RolledBack));
        assert_eq!(aggregate(&[target(TargetState::Skipped)]), Some(DeploymentStatus::Failed));
    }

    #[test]
    fn a_skipped_target_takes_no_more_reports() {
        assert_eq!(TargetState::Skipped.advance(TargetState::Deployed), Ok(None));
        assert!(TargetState::Pending.advance(TargetState::Skipped).is_err(), "an agent cannot report skipped");
    }

    #[test]
    fn only_unstarted_deployments_can_be_cancelled() {
        assert!(DeploymentStatus::Queued.cancellable());
        assert!(!DeploymentStatus::InProgress.cancellable());
        assert!(DeploymentStatus::InProgress.in_flight());
        assert!(!DeploymentStatus::Succeeded.in_flight());
    }

    #[test]
    fn statuses_read_and_print_in_snake_case() {
        assert_eq!(DeploymentStatus::parse("partially_failed"), Some(DeploymentStatus::PartiallyFailed));
        assert_eq!(DeploymentStatus::RolledBack.as_str(), "rolled_back");
        assert_eq!(DeploymentStatus::parse("done"), None);
    }
}
