//! The summary each kind of audit event records: one type per shape, each
//! naming its action (see [`AuditSummary`]). Field names and order are those
//! the trail has always recorded; clients read them and the hash chain covers
//! them, so they never change.
//!
//! Where several actions share a shape, the type tells them apart from what
//! it holds (a decision, a status, a deployment's kind) or from a narrower
//! enum of just those actions, never from a free string.

use super::{AuditAction, AuditSummary};
use crate::change_request::{ChangeRequest, ChangeStatus};
use crate::component::{Component, ComponentType};
use crate::context::{Actor, ActorKind};
use crate::deployment::{Deployment, DeploymentKind, DeploymentStatus, TargetState};
use crate::environment::Environment;
use crate::ids::{ChangeRequestId, ComponentId, DeploymentId, EnvironmentId, PackageId, RuntimeId, TenantId, WebhookId};
use crate::package::{Package, VersionLabel};
use crate::policy::{Decision, Policy};
use crate::runtime::{Digest, Runtime, RuntimeKind};
use crate::tenant::Tenant;
use crate::values::{Classification, Name, Plan};
use crate::webhook::{Webhook, WebhookAction};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

/// Implements [`AuditSummary`] for summaries recorded under one action.
macro_rules! one_action {
    ($($summary:ty => $action:ident on $id:ty,)+) => {$(
        impl AuditSummary for $summary {
            type Id = $id;
            fn action(&self) -> AuditAction {
                AuditAction::$action
            }
        }
    )+};
}

one_action! {
    TenantCreated => TenantCreated on TenantId,
    EnvironmentCreated => EnvironmentCreated on EnvironmentId,
    EnvironmentUpdated => EnvironmentUpdated on EnvironmentId,
    EnvironmentDeleted => EnvironmentDeleted on EnvironmentId,
    ExtensionsUpdated => EnvironmentExtensionsUpdated on EnvironmentId,
    PolicyUpdated => PolicyUpdated on EnvironmentId,
    RuntimeAttached => RuntimeAttached on EnvironmentId,
    RuntimeDetached => RuntimeDetached on EnvironmentId,
    RuntimeCreated => RuntimeCreated on RuntimeId,
    RuntimeDeleted => RuntimeDeleted on RuntimeId,
    RuntimeRegistered => RuntimeRegistered on RuntimeId,
    RuntimeRegistrationTokenIssued => RuntimeRegistrationTokenIssued on RuntimeId,
    RuntimeCredentialRotated => RuntimeCredentialRotated on RuntimeId,
    RuntimeRevoked => RuntimeRevoked on RuntimeId,
    ComponentCreated => ComponentCreated on ComponentId,
    ComponentRevised => ComponentRevised on ComponentId,
    PackageCreated => PackageCreated on PackageId,
    PackageDeleted => PackageDeleted on PackageId,
    PackageBuildFailed => PackageBuildFailed on PackageId,
    DeploymentHeld => DeploymentHeld on DeploymentId,
    DeploymentReleased => DeploymentReleased on DeploymentId,
    DeploymentCancelled => DeploymentCancelled on DeploymentId,
    DeploymentStarted => DeploymentStarted on DeploymentId,
    DispatchFailed => DeploymentFailed on DeploymentId,
    DeploymentRetried => DeploymentRetried on DeploymentId,
    DeploymentHalted => DeploymentHalted on DeploymentId,
    DeploymentResumed => DeploymentResumed on DeploymentId,
    ChangeRequestCreated => ChangeRequestCreated on ChangeRequestId,
    WebhookCreated => WebhookCreated on WebhookId,
    WebhookUpdated => WebhookUpdated on WebhookId,
    WebhookDeleted => WebhookDeleted on WebhookId,
    WebhookSecretRotated => WebhookSecretRotated on WebhookId,
    QuarantineLifted => QuarantineLifted on EnvironmentId,
    ApiKeyCreated => ApiKeyCreated on crate::ids::ApiKeyId,
    ApiKeyRevoked => ApiKeyRevoked on crate::ids::ApiKeyId,
}

// Tenants.

/// `tenant.created`.
#[derive(Clone, Debug, Serialize)]
pub struct TenantCreated {
    pub after: TenantCreatedAfter,
}

/// The `after` of `tenant.created`.
#[derive(Clone, Debug, Serialize)]
pub struct TenantCreatedAfter {
    pub name: Name,
    pub plan: Plan,
}

impl TenantCreated {
    pub fn of(tenant: &Tenant) -> Self {
        Self { after: TenantCreatedAfter { name: tenant.name.clone(), plan: tenant.plan } }
    }
}

/// `tenant.suspended`, `tenant.reinstated` or `tenant.updated`: which one
/// follows from whether `suspended` changed.
#[derive(Clone, Debug, Serialize)]
pub struct TenantChanged {
    pub before: TenantState,
    pub after: TenantState,
}

/// A tenant, as its changes record it.
#[derive(Clone, Debug, Serialize)]
pub struct TenantState {
    pub name: Name,
    pub plan: Plan,
    pub suspended: bool,
}

impl TenantState {
    pub fn of(tenant: &Tenant) -> Self {
        Self { name: tenant.name.clone(), plan: tenant.plan, suspended: tenant.suspended }
    }
}

impl TenantChanged {
    pub fn of(before: &Tenant, after: &Tenant) -> Self {
        Self { before: TenantState::of(before), after: TenantState::of(after) }
    }
}

impl AuditSummary for TenantChanged {
    type Id = TenantId;
    fn action(&self) -> AuditAction {
        match (self.before.suspended, self.after.suspended) {
            (false, true) => AuditAction::TenantSuspended,
            (true, false) => AuditAction::TenantReinstated,
            _ => AuditAction::TenantUpdated,
        }
    }
}

// Environments, their policies and attached runtimes.

/// An environment, as its events record it.
#[derive(Clone, Debug, Serialize)]
pub struct EnvironmentState {
    pub name: Name,
    pub classification: Classification,
    pub enabled: bool,
}

impl EnvironmentState {
    pub fn of(env: &Environment) -> Self {
        Self { name: env.name.clone(), classification: env.classification, enabled: env.enabled }
    }
}

/// `environment.created`.
#[derive(Clone, Debug, Serialize)]
pub struct EnvironmentCreated {
    pub after: EnvironmentState,
}

/// `environment.updated`.
#[derive(Clone, Debug, Serialize)]
pub struct EnvironmentUpdated {
    pub before: EnvironmentState,
    pub after: EnvironmentState,
}

/// `environment.deleted`.
#[derive(Clone, Debug, Serialize)]
pub struct EnvironmentDeleted {
    pub before: EnvironmentState,
}

/// `environment.extensions_updated`: the names of the values each component
/// had changed (`connection.<field>`, `properties.<name>`, `lookups.<table>`),
/// never a value.
#[derive(Clone, Debug, Serialize)]
pub struct ExtensionsUpdated {
    /// The environment's name.
    pub environment: Name,
    /// The extensions version the write made.
    pub version: u64,
    pub components: Vec<crate::extension::ComponentChange>,
}

/// `policy.updated`, on the environment.
#[derive(Clone, Debug, Serialize)]
pub struct PolicyUpdated {
    /// The environment's name.
    pub environment: Name,
    pub before: Policy,
    pub after: Policy,
}

impl PolicyUpdated {
    pub fn of(env: &Environment, before: &Policy, after: &Policy) -> Self {
        Self { environment: env.name.clone(), before: before.clone(), after: after.clone() }
    }
}

/// `runtime.attached`, on the environment.
#[derive(Clone, Debug, Serialize)]
pub struct RuntimeAttached {
    pub runtime_id: RuntimeId,
}

/// `runtime.detached`, on the environment.
#[derive(Clone, Debug, Serialize)]
pub struct RuntimeDetached {
    pub runtime_id: RuntimeId,
}

// Runtimes.

/// `runtime.created`.
#[derive(Clone, Debug, Serialize)]
pub struct RuntimeCreated {
    pub after: RuntimeCreatedAfter,
}

/// The `after` of `runtime.created`.
#[derive(Clone, Debug, Serialize)]
pub struct RuntimeCreatedAfter {
    pub name: Name,
    pub kind: RuntimeKind,
}

impl RuntimeCreated {
    pub fn of(runtime: &Runtime) -> Self {
        Self { after: RuntimeCreatedAfter { name: runtime.name.clone(), kind: runtime.kind } }
    }
}

/// `runtime.deleted`.
#[derive(Clone, Debug, Serialize)]
pub struct RuntimeDeleted {
    pub before: RuntimeDeletedBefore,
}

/// The `before` of `runtime.deleted`.
#[derive(Clone, Debug, Serialize)]
pub struct RuntimeDeletedBefore {
    pub name: Name,
    /// The environments it was attached to (deleting detached it from each).
    pub environments: Vec<EnvironmentId>,
}

impl RuntimeDeleted {
    pub fn of(runtime: &Runtime) -> Self {
        Self { before: RuntimeDeletedBefore { name: runtime.name.clone(), environments: runtime.environments.clone() } }
    }
}

/// `runtime.registered`.
#[derive(Clone, Debug, Serialize)]
pub struct RuntimeRegistered {
    pub agent_version: String,
}

/// `runtime.registration_token_issued` (never the token itself).
#[derive(Clone, Debug, Serialize)]
pub struct RuntimeRegistrationTokenIssued {
    pub expires_at: DateTime<Utc>,
    /// Whether the runtime had a working credential, which keeps working
    /// until the new token is used.
    pub registered: bool,
}

/// `runtime.credential_rotated` (never the credential itself).
#[derive(Clone, Debug, Serialize)]
pub struct RuntimeCredentialRotated {
    /// Whether an earlier rotated credential, never used, was voided.
    pub replaced_pending: bool,
}

/// `runtime.revoked`.
#[derive(Clone, Debug, Serialize)]
pub struct RuntimeRevoked {
    pub revoked_at: DateTime<Utc>,
}

// Components and packages.

/// `component.created`.
#[derive(Clone, Debug, Serialize)]
pub struct ComponentCreated {
    pub after: ComponentCreatedAfter,
}

/// The `after` of `component.created`.
#[derive(Clone, Debug, Serialize)]
pub struct ComponentCreatedAfter {
    pub name: Name,
    #[serde(rename = "type")]
    pub kind: ComponentType,
    pub revision: u32,
    pub sha256: Digest,
}

impl ComponentCreated {
    pub fn of(component: &Component) -> Self {
        Self {
            after: ComponentCreatedAfter {
                name: component.name.clone(),
                kind: component.kind,
                revision: component.revision,
                sha256: component.content.sha256.clone(),
            },
        }
    }
}

/// `component.revised`.
#[derive(Clone, Debug, Serialize)]
pub struct ComponentRevised {
    pub before: ComponentRevisedBefore,
    pub after: ComponentRevisedAfter,
}

/// The `before` of `component.revised`.
#[derive(Clone, Debug, Serialize)]
pub struct ComponentRevisedBefore {
    pub revision: u32,
    pub sha256: Digest,
}

/// The `after` of `component.revised`.
#[derive(Clone, Debug, Serialize)]
pub struct ComponentRevisedAfter {
    pub revision: u32,
    pub sha256: Digest,
    pub references: Vec<ComponentId>,
}

impl ComponentRevised {
    pub fn of(before: &Component, after: &Component) -> Self {
        Self {
            before: ComponentRevisedBefore { revision: before.revision, sha256: before.content.sha256.clone() },
            after: ComponentRevisedAfter { revision: after.revision, sha256: after.content.sha256.clone(), references: after.references.clone() },
        }
    }
}

/// `package.created`.
#[derive(Clone, Debug, Serialize)]
pub struct PackageCreated {
    pub after: PackageCreatedAfter,
}

/// The `after` of `package.created`.
#[derive(Clone, Debug, Serialize)]
pub struct PackageCreatedAfter {
    pub component_id: ComponentId,
    pub version: VersionLabel,
    /// Absent for a package reserved `building`: its archive is written afterwards.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    /// How many components the package bundles.
    pub components: usize,
    /// Only for a package reserved `building` (a ready one records none, as always).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<crate::package::PackageStatus>,
}

impl PackageCreated {
    pub fn of(package: &Package) -> Self {
        Self {
            after: PackageCreatedAfter {
                component_id: package.component_id,
                version: package.version.clone(),
                digest: package.digest.clone(),
                components: package.manifest.components.len(),
                status: (package.status != crate::package::PackageStatus::Ready).then_some(package.status),
            },
        }
    }
}

/// `package.deleted`.
#[derive(Clone, Debug, Serialize)]
pub struct PackageDeleted {
    pub version: VersionLabel,
}

/// `package.build_failed`.
#[derive(Clone, Debug, Serialize)]
pub struct PackageBuildFailed {
    pub version: VersionLabel,
    pub reason: String,
}

// Deployments.

/// A deployment was recorded: `deployment.requested` for a deploy or
/// redeploy, `deployment.rollback_requested`, `deployment.undeploy_requested`,
/// `deployment.sync_requested`, by its kind.
#[derive(Clone, Debug, Serialize)]
pub struct DeploymentCreated {
    pub kind: DeploymentKind,
    pub environment_id: EnvironmentId,
    pub component_id: ComponentId,
    pub package_id: PackageId,
    pub version: VersionLabel,
    pub status: DeploymentStatus,
    pub required_approvals: u32,
    pub scheduled_at: Option<DateTime<Utc>>,
    /// Requested by the system (an automatic rollback), not a person.
    pub automatic: bool,
    pub notes: String,
    /// The one runtime it goes to (a sync, or an undeploy after a detach).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub only_runtime: Option<RuntimeId>,
    /// Requested with `override_quarantine` while its version was quarantined
    /// in the environment (recorded only then: `true`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub quarantine_overridden: bool,
    /// The environment its package was promoted from (a change request's deployment).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_environment_id: Option<EnvironmentId>,
    /// Its package was outdated and the change request's deploy said `accept_outdated` (recorded only then: `true`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub accepted_outdated: bool,
}

impl DeploymentCreated {
    /// `d` as `by` requested it.
    pub fn of(d: &Deployment, by: &Actor) -> Self {
        Self {
            kind: d.kind,
            environment_id: d.environment_id,
            component_id: d.component_id,
            package_id: d.package_id,
            version: d.version.clone(),
            status: d.status,
            required_approvals: d.required_approvals,
            scheduled_at: d.scheduled_at,
            automatic: by.kind == ActorKind::System,
            notes: d.notes.clone(),
            only_runtime: d.only_runtime,
            quarantine_overridden: false,
            source_environment_id: d.source_environment_id,
            accepted_outdated: d.accepted_outdated,
        }
    }

    /// Records that the request overrode its version's quarantine.
    pub fn overriding_quarantine(self) -> Self {
        Self { quarantine_overridden: true, ..self }
    }
}

impl AuditSummary for DeploymentCreated {
    type Id = DeploymentId;
    fn action(&self) -> AuditAction {
        match self.kind {
            DeploymentKind::Deploy | DeploymentKind::Redeploy => AuditAction::DeploymentRequested,
            DeploymentKind::Rollback => AuditAction::DeploymentRollbackRequested,
            DeploymentKind::Undeploy => AuditAction::DeploymentUndeployRequested,
            DeploymentKind::Sync => AuditAction::DeploymentSyncRequested,
        }
    }
}

/// An approver's decision: `deployment.approved` or `deployment.rejected`.
#[derive(Clone, Debug, Serialize)]
pub struct DeploymentDecided {
    pub decision: Decision,
    /// The digest the decision is bound to.
    pub digests: Vec<Digest>,
    pub comment: String,
}

impl AuditSummary for DeploymentDecided {
    type Id = DeploymentId;
    fn action(&self) -> AuditAction {
        match self.decision {
            Decision::Approve => AuditAction::DeploymentApproved,
            Decision::Reject => AuditAction::DeploymentRejected,
        }
    }
}

/// The decisions' outcome: `deployment.closed` when rejected, else
/// `deployment.approvals_complete`.
#[derive(Clone, Debug, Serialize)]
pub struct DeploymentDecisionsApplied {
    pub before: DeploymentStatus,
    pub after: DeploymentStatus,
    /// Approvals that counted (0 when rejected).
    pub approvals: usize,
    pub scheduled_at: Option<DateTime<Utc>>,
}

impl AuditSummary for DeploymentDecisionsApplied {
    type Id = DeploymentId;
    fn action(&self) -> AuditAction {
        match self.after {
            DeploymentStatus::Rejected => AuditAction::DeploymentClosed,
            _ => AuditAction::DeploymentApprovalsComplete,
        }
    }
}

/// Why the sweeper held a scheduled deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldReason {
    FreezeWindow,
}

/// `deployment.held`.
#[derive(Clone, Debug, Serialize)]
pub struct DeploymentHeld {
    pub reason: HoldReason,
    pub until: DateTime<Utc>,
}

/// `deployment.released`.
#[derive(Clone, Debug, Serialize)]
pub struct DeploymentReleased {
    pub before: DeploymentStatus,
    pub after: DeploymentStatus,
    pub scheduled_at: Option<DateTime<Utc>>,
}

/// `deployment.cancelled`.
#[derive(Clone, Debug, Serialize)]
pub struct DeploymentCancelled {
    pub before: DeploymentStatus,
    pub after: DeploymentStatus,
}

/// `deployment.started`.
#[derive(Clone, Debug, Serialize)]
pub struct DeploymentStarted {
    pub before: DeploymentStatus,
    pub after: DeploymentStatus,
    /// Runtimes sent a job.
    pub runtimes: usize,
}

/// Every target settled: `deployment.<after>`, one of `succeeded`,
/// `partially_failed`, `rolled_back` or `failed`.
#[derive(Clone, Debug, Serialize)]
pub struct DeploymentSettled {
    pub before: DeploymentStatus,
    pub after: DeploymentStatus,
    /// How many targets ended in each state.
    pub targets: BTreeMap<TargetState, usize>,
}

impl AuditSummary for DeploymentSettled {
    type Id = DeploymentId;
    fn action(&self) -> AuditAction {
        match self.after {
            DeploymentStatus::Succeeded => AuditAction::DeploymentSucceeded,
            DeploymentStatus::PartiallyFailed => AuditAction::DeploymentPartiallyFailed,
            DeploymentStatus::RolledBack => AuditAction::DeploymentRolledBack,
            // `aggregate` settles on the three above or `failed`; nothing else ends here.
            _ => AuditAction::DeploymentFailed,
        }
    }
}

/// `deployment.failed` when the deployment could never be dispatched (no
/// runtime attached, or an undeliverable message). Jobs that failed record a
/// [`DeploymentSettled`] instead.
#[derive(Clone, Debug, Serialize)]
pub struct DispatchFailed {
    pub reason: String,
}

/// `deployment.retried`.
#[derive(Clone, Debug, Serialize)]
pub struct DeploymentRetried {
    /// Targets sent their job again.
    pub targets: usize,
}

/// Why a rollout halted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HaltReason {
    /// A person asked (`POST /v1/deployments/{id}/halt`).
    Requested,
    /// More targets failed (after their last attempt) than `max_failed_targets`.
    TooManyFailures,
}

/// `deployment.halted`.
#[derive(Clone, Debug, Serialize)]
pub struct DeploymentHalted {
    pub before: DeploymentStatus,
    pub after: DeploymentStatus,
    pub reason: HaltReason,
    /// The batch under way, of how many.
    pub batch: u32,
    pub batches: u32,
    /// Targets failed after their last attempt.
    pub failed_targets: usize,
    /// Targets still waiting for their batch, now skipped.
    pub skipped_targets: usize,
}

/// `deployment.resumed`.
#[derive(Clone, Debug, Serialize)]
pub struct DeploymentResumed {
    pub before: DeploymentStatus,
    pub after: DeploymentStatus,
    /// The batch it resumed after, of how many.
    pub batch: u32,
    pub batches: u32,
    /// Targets the halt skipped, waiting for their batch again.
    pub waiting_targets: usize,
    /// Failed targets accepted: only failures beyond them halt it again.
    pub accepted_failures: u32,
}

// Change requests.

/// A change request, as its events record it.
#[derive(Clone, Debug, Serialize)]
pub struct ChangeRequestState {
    pub name: Name,
    pub status: ChangeStatus,
    pub items: Vec<PackageId>,
    pub digests: Vec<Digest>,
    pub target_environment_id: EnvironmentId,
}

impl ChangeRequestState {
    pub fn of(cr: &ChangeRequest) -> Self {
        Self { name: cr.name.clone(), status: cr.status, items: cr.items.clone(), digests: cr.digests.clone(), target_environment_id: cr.target_environment_id }
    }
}

/// `change_request.created`.
#[derive(Clone, Debug, Serialize)]
pub struct ChangeRequestCreated {
    pub after: ChangeRequestState,
}

/// The change-request actions recorded as a before/after [`ChangeRequestChanged`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeRequestStep {
    Updated,
    Submitted,
    ApprovalsComplete,
    Closed,
    Deploying,
    DeploymentsCreated,
    Completed,
    Failed,
}

impl ChangeRequestStep {
    pub const ALL: [ChangeRequestStep; 8] =
        [Self::Updated, Self::Submitted, Self::ApprovalsComplete, Self::Closed, Self::Deploying, Self::DeploymentsCreated, Self::Completed, Self::Failed];

    pub fn action(self) -> AuditAction {
        match self {
            Self::Updated => AuditAction::ChangeRequestUpdated,
            Self::Submitted => AuditAction::ChangeRequestSubmitted,
            Self::ApprovalsComplete => AuditAction::ChangeRequestApprovalsComplete,
            Self::Closed => AuditAction::ChangeRequestClosed,
            Self::Deploying => AuditAction::ChangeRequestDeploying,
            Self::DeploymentsCreated => AuditAction::ChangeRequestDeploymentsCreated,
            Self::Completed => AuditAction::ChangeRequestCompleted,
            Self::Failed => AuditAction::ChangeRequestFailed,
        }
    }
}

/// A change request moved on, by `step`.
#[derive(Clone, Debug, Serialize)]
pub struct ChangeRequestChanged {
    /// Names the action; not part of the summary.
    #[serde(skip)]
    pub step: ChangeRequestStep,
    pub before: ChangeRequestState,
    pub after: ChangeRequestState,
    /// The outdated items deployed anyway, because the deploy said
    /// `accept_outdated` (recorded only on such a deploy).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub accepted_outdated: Vec<PackageId>,
}

impl ChangeRequestChanged {
    pub fn of(step: ChangeRequestStep, before: &ChangeRequest, after: &ChangeRequest) -> Self {
        Self { step, before: ChangeRequestState::of(before), after: ChangeRequestState::of(after), accepted_outdated: vec![] }
    }

    /// Records the outdated `items` the deploy accepted.
    pub fn accepting_outdated(self, items: Vec<PackageId>) -> Self {
        Self { accepted_outdated: items, ..self }
    }
}

impl AuditSummary for ChangeRequestChanged {
    type Id = ChangeRequestId;
    fn action(&self) -> AuditAction {
        self.step.action()
    }
}

/// An approver's decision: `change_request.approved` or `change_request.rejected`.
#[derive(Clone, Debug, Serialize)]
pub struct ChangeRequestDecided {
    pub decision: Decision,
    /// The items' digests the decision is bound to.
    pub digests: Vec<Digest>,
}

impl AuditSummary for ChangeRequestDecided {
    type Id = ChangeRequestId;
    fn action(&self) -> AuditAction {
        match self.decision {
            Decision::Approve => AuditAction::ChangeRequestApproved,
            Decision::Reject => AuditAction::ChangeRequestRejected,
        }
    }
}

// Webhooks. Never the secret, sealed or not.

/// What the trail records of a webhook.
#[derive(Clone, Debug, Serialize)]
pub struct WebhookState {
    pub name: Name,
    pub action: WebhookAction,
    pub environment_id: EnvironmentId,
    pub component_id: ComponentId,
    pub hold_if_frozen: bool,
    pub active: bool,
}

impl WebhookState {
    fn of(w: &Webhook) -> Self {
        Self {
            name: w.name.clone(),
            action: w.action,
            environment_id: w.environment_id,
            component_id: w.component_id,
            hold_if_frozen: w.hold_if_frozen,
            active: w.active,
        }
    }
}

/// `webhook.created`.
#[derive(Clone, Debug, Serialize)]
pub struct WebhookCreated {
    pub after: WebhookState,
}

impl WebhookCreated {
    pub fn of(w: &Webhook) -> Self {
        Self { after: WebhookState::of(w) }
    }
}

/// `webhook.updated`.
#[derive(Clone, Debug, Serialize)]
pub struct WebhookUpdated {
    pub before: WebhookState,
    pub after: WebhookState,
}

impl WebhookUpdated {
    pub fn of(before: &Webhook, after: &Webhook) -> Self {
        Self { before: WebhookState::of(before), after: WebhookState::of(after) }
    }
}

/// `webhook.deleted`.
#[derive(Clone, Debug, Serialize)]
pub struct WebhookDeleted {
    pub before: WebhookState,
}

impl WebhookDeleted {
    pub fn of(w: &Webhook) -> Self {
        Self { before: WebhookState::of(w) }
    }
}

/// `webhook.secret_rotated`.
#[derive(Clone, Debug, Serialize)]
pub struct WebhookSecretRotated {
    pub overlap_seconds: i64,
    /// When the previous secret stops verifying (absent: it stopped at once).
    pub previous_expires_at: Option<DateTime<Utc>>,
}

// Quarantine.

/// `quarantine.lifted`, on the environment: the version it held back.
#[derive(Clone, Debug, Serialize)]
pub struct QuarantineLifted {
    pub package_id: PackageId,
    pub component_id: ComponentId,
    pub version: VersionLabel,
    /// The deployment whose end had quarantined it.
    pub deployment_id: DeploymentId,
}

impl QuarantineLifted {
    pub fn of(q: &crate::quarantine::Quarantine) -> Self {
        Self { package_id: q.package_id, component_id: q.component_id, version: q.version.clone(), deployment_id: q.deployment_id }
    }
}

// API keys.

/// `api_key.created`: what the key may do and until when (never its secret).
#[derive(Clone, Debug, Serialize)]
pub struct ApiKeyCreated {
    pub after: ApiKeyCreatedAfter,
}

/// The `after` of `api_key.created`.
#[derive(Clone, Debug, Serialize)]
pub struct ApiKeyCreatedAfter {
    pub name: Name,
    pub roles: Vec<crate::values::Role>,
    pub expires_at: DateTime<Utc>,
}

impl ApiKeyCreated {
    pub fn of(key: &crate::api_key::ApiKey) -> Self {
        Self { after: ApiKeyCreatedAfter { name: key.name.clone(), roles: key.roles.clone(), expires_at: key.expires_at } }
    }
}

/// `api_key.revoked`.
#[derive(Clone, Debug, Serialize)]
pub struct ApiKeyRevoked {
    pub revoked_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    //! Each summary against the `json!` its call site built before it was
    //! typed (copied as it was): the same JSON, so the trail reads as before.
    use super::*;
    use crate::change_request::ChangeType;
    use crate::component::ContentRef;
    use crate::deployment::ActiveVersion;
    use crate::environment::NewEnvironment;
    use crate::package::{Manifest, ManifestEntry};
    use crate::policy::FreezeWindow;
    use crate::values::{Description, Version};
    use chrono::Duration;
    use serde_json::{Value, json};

    fn name(raw: &str) -> Name {
        Name::parse(raw).unwrap()
    }

    fn digest(c: char) -> Digest {
        Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).unwrap()
    }

    fn json_of(summary: &impl AuditSummary) -> Value {
        serde_json::to_value(summary).unwrap()
    }

    fn environment() -> Environment {
        let input = NewEnvironment { name: name("Production"), classification: Classification::Production, enabled: true, description: Description::default() };
        Environment::new(input, Utc::now())
    }

    fn component(references: Vec<ComponentId>) -> Component {
        let content = ContentRef { sha256: digest('c'), size: 3 };
        Component::new(name("orders"), ComponentType::Process, references, content, "alice", Utc::now()).0
    }

    fn package() -> Package {
        let entry = |n: &str| ManifestEntry {
            id: ComponentId::new(),
            name: n.into(),
            kind: ComponentType::Process,
            revision: 1,
            sha256: digest('e'),
            size: 1,
            extensions: Default::default(),
        };
        Package {
            id: PackageId::new(),
            component_id: ComponentId::new(),
            version: VersionLabel::parse("v2.1").unwrap(),
            notes: String::new(),
            shareable: false,
            deleted: false,
            status: crate::package::PackageStatus::Ready,
            failure: None,
            digest: Some(digest('d')),
            size: 10,
            manifest: Manifest { root: ComponentId::new(), components: vec![entry("a"), entry("b")] },
            requirements: vec![],
            commit: None,
            created_by: "alice".into(),
            created_at: Utc::now(),
        }
    }

    fn runtime() -> Runtime {
        Runtime {
            id: RuntimeId::new(),
            name: name("edge-1"),
            kind: RuntimeKind::OnPremise,
            registration_hash: None,
            credential_hash: None,
            registration_expires_at: None,
            pending_credential_hash: None,
            revoked_at: None,
            last_seen_at: None,
            agent_version: None,
            health: None,
            running: vec![],
            environments: vec![EnvironmentId::new(), EnvironmentId::new()],
            queue_url: "https://sqs.example/q".into(),
            created_at: Utc::now(),
        }
    }

    fn change_request(status: ChangeStatus) -> ChangeRequest {
        ChangeRequest {
            id: ChangeRequestId::new(),
            name: name("Quarterly release"),
            overview: "overview is not recorded".into(),
            change_type: ChangeType::Normal,
            status,
            target_environment_id: EnvironmentId::new(),
            items: vec![PackageId::new(), PackageId::new()],
            digests: vec![digest('a'), digest('b')],
            links: vec![],
            required_approvals: 1,
            deployments: vec![],
            created_by: "alice".into(),
            item_editors: vec![],
            created_at: Utc::now(),
            updated_at: Utc::now(),
            version: Version::FIRST,
        }
    }

    #[test]
    fn tenant_summaries_record_what_they_recorded_before() {
        let before = Tenant::new(name("Acme"), Plan::default(), Utc::now());
        let after = Tenant { suspended: true, plan: Plan::new(3, 4, 5).unwrap(), ..before.clone() };
        let tenant = &before;
        assert_eq!(json_of(&TenantCreated::of(tenant)), json!({"after": {"name": tenant.name, "plan": tenant.plan}}));
        assert_eq!(
            json_of(&TenantChanged::of(&before, &after)),
            json!({
                "before": {"name": before.name, "plan": before.plan, "suspended": before.suspended},
                "after": {"name": after.name, "plan": after.plan, "suspended": after.suspended},
            })
        );
    }

    #[test]
    fn a_tenant_change_is_a_suspension_a_reinstatement_or_an_update() {
        let active = Tenant::new(name("Acme"), Plan::default(), Utc::now());
        let suspended = Tenant { suspended: true, ..active.clone() };
        let renamed = Tenant { name: name("Acme Corp"), ..active.clone() };
        assert_eq!(TenantChanged::of(&active, &suspended).action(), AuditAction::TenantSuspended);
        assert_eq!(TenantChanged::of(&suspended, &active).action(), AuditAction::TenantReinstated);
        assert_eq!(TenantChanged::of(&active, &renamed).action(), AuditAction::TenantUpdated);
        assert_eq!(TenantChanged::of(&suspended, &suspended).action(), AuditAction::TenantUpdated);
    }

    #[test]
    fn environment_summaries_record_what_they_recorded_before() {
        let summary = |e: &Environment| json!({"name": e.name, "classification": e.classification, "enabled": e.enabled});
        let before = environment();
        let after = Environment { name: name("Prod"), enabled: false, ..before.clone() };
        assert_eq!(json_of(&EnvironmentCreated { after: EnvironmentState::of(&before) }), json!({"after": summary(&before)}));
        assert_eq!(
            json_of(&EnvironmentUpdated { before: EnvironmentState::of(&before), after: EnvironmentState::of(&after) }),
            json!({"before": summary(&before), "after": summary(&after)})
        );
        assert_eq!(json_of(&EnvironmentDeleted { before: EnvironmentState::of(&before) }), json!({"before": summary(&before)}));

        let environment = before;
        let before = Policy::default();
        let now = Utc::now();
        let policy = Policy {
            required_approvals: 2,
            freeze_windows: vec![FreezeWindow { start: now, end: now + Duration::hours(1), weekly: true }],
            version: Version(3),
            ..Policy::default()
        };
        assert_eq!(json_of(&PolicyUpdated::of(&environment, &before, &policy)), json!({"environment": environment.name, "before": before, "after": policy}));

        let runtime = RuntimeId::new();
        assert_eq!(json_of(&RuntimeAttached { runtime_id: runtime }), json!({"runtime_id": runtime}));
        assert_eq!(json_of(&RuntimeDetached { runtime_id: runtime }), json!({"runtime_id": runtime}));
    }

    #[test]
    fn runtime_summaries_record_what_they_recorded_before() {
        let runtime = runtime();
        assert_eq!(json_of(&RuntimeCreated::of(&runtime)), json!({"after": {"name": runtime.name, "kind": runtime.kind}}));
        assert_eq!(json_of(&RuntimeDeleted::of(&runtime)), json!({"before": {"name": runtime.name, "environments": runtime.environments}}));
        let agent_version = "1.4.2";
        assert_eq!(json_of(&RuntimeRegistered { agent_version: agent_version.into() }), json!({"agent_version": agent_version}));
    }

    #[test]
    fn component_and_package_summaries_record_what_they_recorded_before() {
        let component = component(vec![]);
        assert_eq!(
            json_of(&ComponentCreated::of(&component)),
            json!({"after": {"name": component.name, "type": component.kind, "revision": 1, "sha256": component.content.sha256}})
        );
        let before = component;
        let (after, _) = before.revised(vec![ComponentId::new()], ContentRef { sha256: digest('f'), size: 4 }, "bob", Utc::now());
        assert_eq!(
            json_of(&ComponentRevised::of(&before, &after)),
            json!({"before": {"revision": before.revision, "sha256": before.content.sha256}, "after": {"revision": after.revision, "sha256": after.content.sha256, "references": after.references}})
        );

        let package = package();
        assert_eq!(
            json_of(&PackageCreated::of(&package)),
            json!({"after": {"component_id": package.component_id, "version": package.version, "digest": package.digest, "components": package.manifest.components.len()}})
        );
        assert_eq!(json_of(&PackageDeleted { version: package.version.clone() }), json!({"version": package.version}));
    }

    #[test]
    fn a_requested_deployment_records_what_it_recorded_before() {
        let package = package();
        let mut d = Deployment::new_deploy(EnvironmentId::new(), &package, "alice", "first".into(), None);
        d.scheduled_at = Some(Utc::now());
        d.required_approvals = 2;
        for actor in [Actor::user("alice"), Actor::system("auto-rollback")] {
            let ctx_actor = &actor;
            assert_eq!(
                json_of(&DeploymentCreated::of(&d, &actor)),
                json!({
                    "kind": d.kind, "environment_id": d.environment_id, "component_id": d.component_id, "package_id": d.package_id,
                    "version": d.version, "status": d.status, "required_approvals": d.required_approvals, "scheduled_at": d.scheduled_at,
                    "automatic": ctx_actor.kind == ActorKind::System, "notes": d.notes,
                })
            );
        }
    }

    #[test]
    fn a_deployment_is_requested_rolled_back_or_undeployed_by_its_kind() {
        let package = package();
        let active = ActiveVersion {
            environment_id: EnvironmentId::new(),
            component_id: package.component_id,
            package_id: package.id,
            version: package.version.clone(),
            digest: package.digest.clone().unwrap(),
            deployment_id: DeploymentId::new(),
            activated_at: Utc::now(),
            components: vec![],
            extensions_version: None,
        };
        let action = |d: &Deployment| DeploymentCreated::of(d, &Actor::user("alice")).action();
        assert_eq!(action(&Deployment::new_deploy(active.environment_id, &package, "alice", String::new(), None)), AuditAction::DeploymentRequested);
        assert_eq!(action(&Deployment::new_redeploy(&package, "alice", String::new(), &active)), AuditAction::DeploymentRequested);
        assert_eq!(action(&Deployment::new_rollback(&package, "alice", String::new(), &active)), AuditAction::DeploymentRollbackRequested);
        let undeploy = Deployment::new_undeploy(&active, "alice", None);
        assert_eq!(DeploymentCreated::of(&undeploy, &Actor::user("alice")).action(), AuditAction::DeploymentUndeployRequested);
    }

    #[test]
    fn deployment_decisions_record_what_they_recorded_before() {
        for decision in [Decision::Approve, Decision::Reject] {
            let (digests, comment) = (vec![digest('d')], "looks fine".to_string());
            let summary = DeploymentDecided { decision, digests: digests.clone(), comment: comment.clone() };
            assert_eq!(json_of(&summary), json!({"decision": decision, "digests": digests, "comment": comment}));
        }
        assert_eq!(DeploymentDecided { decision: Decision::Approve, digests: vec![], comment: String::new() }.action(), AuditAction::DeploymentApproved);
        assert_eq!(DeploymentDecided { decision: Decision::Reject, digests: vec![], comment: String::new() }.action(), AuditAction::DeploymentRejected);

        let at = Some(Utc::now());
        for (after, approved, action) in
            [(DeploymentStatus::Rejected, 0, AuditAction::DeploymentClosed), (DeploymentStatus::Scheduled, 2, AuditAction::DeploymentApprovalsComplete)]
        {
            let current_status = DeploymentStatus::PendingApproval;
            let summary = DeploymentDecisionsApplied { before: current_status, after, approvals: approved, scheduled_at: at };
            assert_eq!(json_of(&summary), json!({"before": current_status, "after": after, "approvals": approved, "scheduled_at": at}));
            assert_eq!(summary.action(), action);
        }
    }

    #[test]
    fn the_deployment_lifecycle_summaries_record_what_they_recorded_before() {
        use DeploymentStatus::*;
        let until = Utc::now();
        assert_eq!(json_of(&DeploymentHeld { reason: HoldReason::FreezeWindow, until }), json!({"reason": "freeze_window", "until": until}));
        let scheduled_at = Some(until);
        assert_eq!(
            json_of(&DeploymentReleased { before: Scheduled, after: Queued, scheduled_at }),
            json!({"before": Scheduled, "after": Queued, "scheduled_at": scheduled_at})
        );
        assert_eq!(json_of(&DeploymentCancelled { before: Queued, after: Cancelled }), json!({"before": Queued, "after": Cancelled}));
        assert_eq!(
            json_of(&DeploymentStarted { before: Queued, after: InProgress, runtimes: 3 }),
            json!({"before": Queued, "after": InProgress, "runtimes": 3})
        );
        let reason = "no runtime attached";
        assert_eq!(json_of(&DispatchFailed { reason: reason.into() }), json!({"reason": reason}));
        assert_eq!(json_of(&DeploymentRetried { targets: 2 }), json!({"targets": 2}));
        let halted = DeploymentHalted {
            before: InProgress,
            after: Halted,
            reason: HaltReason::TooManyFailures,
            batch: 2,
            batches: 3,
            failed_targets: 1,
            skipped_targets: 2,
        };
        assert_eq!(
            json_of(&halted),
            json!({"before": InProgress, "after": Halted, "reason": "too_many_failures", "batch": 2, "batches": 3, "failed_targets": 1, "skipped_targets": 2})
        );
        assert_eq!(halted.action(), AuditAction::DeploymentHalted);
        let resumed = DeploymentResumed { before: Halted, after: InProgress, batch: 2, batches: 3, waiting_targets: 2, accepted_failures: 1 };
        assert_eq!(json_of(&resumed), json!({"before": Halted, "after": InProgress, "batch": 2, "batches": 3, "waiting_targets": 2, "accepted_failures": 1}));
        assert_eq!(resumed.action(), AuditAction::DeploymentResumed);

        let targets = BTreeMap::from([(TargetState::Deployed, 2), (TargetState::Failed, 1), (TargetState::Skipped, 1)]);
        let settled = DeploymentSettled { before: InProgress, after: PartiallyFailed, targets: targets.clone() };
        assert_eq!(json_of(&settled), json!({"before": InProgress, "after": PartiallyFailed, "targets": targets}));
    }

    #[test]
    fn a_settled_deployment_is_recorded_as_deployment_dot_its_status() {
        use DeploymentStatus::*;
        for status in [Succeeded, PartiallyFailed, RolledBack, Failed] {
            let settled = DeploymentSettled { before: InProgress, after: status, targets: BTreeMap::new() };
            assert_eq!(settled.action().as_str(), format!("deployment.{}", status.as_str()));
        }
    }

    #[test]
    fn change_request_summaries_record_what_they_recorded_before() {
        let summary = |cr: &ChangeRequest| json!({"name": cr.name, "status": cr.status, "items": cr.items, "digests": cr.digests, "target_environment_id": cr.target_environment_id});
        let cr = change_request(ChangeStatus::Draft);
        assert_eq!(json_of(&ChangeRequestCreated { after: ChangeRequestState::of(&cr) }), json!({"after": summary(&cr)}));

        let before = cr;
        let after = ChangeRequest { status: ChangeStatus::Submitted, ..before.clone() };
        for step in ChangeRequestStep::ALL {
            let changed = ChangeRequestChanged::of(step, &before, &after);
            assert_eq!(json_of(&changed), json!({"before": summary(&before), "after": summary(&after)}), "the step is not part of the summary");
            assert_eq!(changed.action(), step.action());
        }

        for decision in [Decision::Approve, Decision::Reject] {
            let digests = before.digests.clone();
            assert_eq!(json_of(&ChangeRequestDecided { decision, digests: digests.clone() }), json!({"decision": decision, "digests": digests}));
        }
        assert_eq!(ChangeRequestDecided { decision: Decision::Approve, digests: vec![] }.action(), AuditAction::ChangeRequestApproved);
        assert_eq!(ChangeRequestDecided { decision: Decision::Reject, digests: vec![] }.action(), AuditAction::ChangeRequestRejected);
    }

    #[test]
    fn each_change_request_step_is_a_distinct_change_request_action() {
        let actions: std::collections::HashSet<AuditAction> = ChangeRequestStep::ALL.iter().map(|s| s.action()).collect();
        assert_eq!(actions.len(), ChangeRequestStep::ALL.len());
        assert!(actions.iter().all(|a| a.entity_type() == crate::audit::EntityType::ChangeRequest));
    }

    #[test]
    fn an_override_and_a_lifted_quarantine_record_what_they_held_back() {
        let package = package();
        let d = Deployment::new_deploy(EnvironmentId::new(), &package, "alice", String::new(), None);
        let overriding = DeploymentCreated::of(&d, &Actor::user("alice")).overriding_quarantine();
        assert_eq!((overriding.action(), &json_of(&overriding)["quarantine_overridden"]), (AuditAction::DeploymentRequested, &json!(true)));

        let q = crate::quarantine::Quarantine {
            environment_id: d.environment_id,
            package_id: package.id,
            component_id: package.component_id,
            version: package.version.clone(),
            deployment_id: d.id,
            quarantined_at: Utc::now(),
        };
        let lifted = QuarantineLifted::of(&q);
        assert_eq!(lifted.action(), AuditAction::QuarantineLifted);
        assert_eq!(
            json_of(&lifted),
            json!({"package_id": package.id, "component_id": package.component_id, "version": package.version, "deployment_id": d.id})
        );
    }

    #[test]
    fn api_key_summaries_record_name_roles_and_times_but_no_hash() {
        use crate::api_key::ApiKey;
        use crate::values::Role;
        let token = crate::secret::ApiKeyToken::generate(TenantId::new(), crate::ids::ApiKeyId::new()).unwrap();
        let now = Utc::now();
        let key = ApiKey {
            id: token.key,
            name: name("ci"),
            roles: vec![Role::Deployer],
            hash: token.hash(),
            created_by: "alice".into(),
            created_at: now,
            expires_at: now + Duration::days(90),
            last_used_at: None,
            revoked_at: None,
        };
        let created = json_of(&ApiKeyCreated::of(&key));
        assert_eq!(created, json!({"after": {"name": "ci", "roles": ["deployer"], "expires_at": key.expires_at}}));
        assert_eq!(ApiKeyCreated::of(&key).action().as_str(), "api_key.created");
        assert_eq!(json_of(&ApiKeyRevoked { revoked_at: now }), json!({"revoked_at": now}));
        assert_eq!(ApiKeyRevoked { revoked_at: now }.action().entity_type(), crate::audit::EntityType::ApiKey);
    }
}
