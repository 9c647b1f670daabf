//! Request and response bodies of the deployment routes.

use super::rollout::RolloutBody;
use crate::routes::governance::views::ApprovalView;
use berth_domain::deployment::{Deployment, DeploymentKind, DeploymentStatus, Target, TargetState};
use berth_domain::package::OutdatedComponent;
use berth_domain::policy::Approval;
use berth_domain::quarantine::Quarantine;
use berth_domain::usecases::ActiveView;
use berth_domain::validation::ValidationReport;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Serialize, ToSchema)]
pub struct DeploymentView {
    pub id: Uuid,
    #[schema(value_type = String, example = "deploy")]
    pub kind: DeploymentKind,
    #[schema(value_type = String, example = "queued")]
    pub status: DeploymentStatus,
    pub environment_id: Uuid,
    pub component_id: Uuid,
    pub package_id: Uuid,
    pub version: String,
    /// The package's digest; all zeros while `waiting_for_package`.
    pub digest: String,
    pub notes: String,
    /// `webhook:<id>` or `api-key:<id>` when CI asked for it.
    pub requested_by: String,
    pub commit: Option<String>,
    pub approvals: Vec<ApprovalView>,
    pub required_approvals: u32,
    pub previous_package_id: Option<Uuid>,
    /// Set on undeploys sent to a single runtime that was detached.
    pub runtime_id: Option<Uuid>,
    pub scheduled_at: Option<DateTime<Utc>>,
    /// How it goes out, as resolved when it was requested.
    pub rollout: RolloutBody,
    /// In batches, once started: the batch under way, of how many, and when the next starts (it bakes until then).
    pub batch: Option<u32>,
    pub batches: Option<u32>,
    pub next_batch_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// A change request's deployment of a promoted package: the environment it
    /// was promoted from (where it last succeeded among the policy's `require_success_in`).
    pub source_environment_id: Option<Uuid>,
    /// Deployed although its package was outdated: the change request's deploy said `accept_outdated`.
    pub accepted_outdated: bool,
    /// The target environment's extensions version it was validated with.
    pub extensions_version: Option<u64>,
    /// Whether the extension values of what it bundles changed since the
    /// deployment it replaces was requested (null: it replaces none).
    pub extensions_changed: Option<bool>,
    /// Recorded before its package was built (a `package_and_deploy` webhook or a
    /// `latest_revision` deploy above `BERTH_SYNC_PACKAGE_MAX_BYTES`): dispatched
    /// when the package is ready, failed `package_failed` if its build fails.
    pub waiting_for_package: bool,
    /// Only on `POST /v1/deployments` with `latest_revision`: whether the package was created for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package_created: Option<bool>,
}

impl DeploymentView {
    pub fn with_approvals(d: &Deployment, approvals: &[Approval]) -> Self {
        let mut view = Self::from(d);
        view.approvals = approvals.iter().map(ApprovalView::from).collect();
        view
    }
}

impl From<&Deployment> for DeploymentView {
    fn from(d: &Deployment) -> Self {
        Self {
            id: d.id.as_uuid(),
            kind: d.kind,
            status: d.status,
            environment_id: d.environment_id.as_uuid(),
            component_id: d.component_id.as_uuid(),
            package_id: d.package_id.as_uuid(),
            version: d.version.to_string(),
            digest: d.digest.as_str().to_string(),
            notes: d.notes.clone(),
            requested_by: d.requested_by.clone(),
            commit: d.commit.clone(),
            approvals: vec![],
            required_approvals: d.required_approvals,
            previous_package_id: d.previous_package_id.map(|p| p.as_uuid()),
            runtime_id: d.only_runtime.map(|r| r.as_uuid()),
            scheduled_at: d.scheduled_at,
            rollout: RolloutBody::from(&d.rollout),
            batch: d.progress.map(|p| p.batch),
            batches: d.progress.map(|p| p.batches),
            next_batch_at: d.progress.and_then(|p| p.next_batch_at),
            created_at: d.created_at,
            started_at: d.started_at,
            finished_at: d.finished_at,
            source_environment_id: d.source_environment_id.map(|e| e.as_uuid()),
            accepted_outdated: d.accepted_outdated,
            extensions_version: d.extensions_version,
            extensions_changed: d.extensions_changed,
            waiting_for_package: d.waiting_for_package,
            package_created: None,
        }
    }
}

/// A deployment request; `POST /v1/deployments/validate` takes the same body
/// (a portal dry-runs exactly what it will send). Names the package
/// (`package_id`), or the component whose latest revision to deploy
/// (`component_id` with `latest_revision: true`; not for `/validate`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"package_id": "8f3b2a10-6c4d-4e8f-b1a2-3c4d5e6f7a8b", "environment_id": "0e7c2f4a-8b1d-4c6e-9f3a-2d5b7c9e1f40", "notes": "Release 1.4.0"}))]
pub struct CreateDeployment {
    /// The package to deploy; leave out with `latest_revision`.
    pub package_id: Option<Uuid>,
    /// Required (absent, it is refused 422 with the other missing fields).
    #[schema(required = true, value_type = Uuid)]
    pub environment_id: Option<Uuid>,
    #[schema(max_length = 2000)]
    pub notes: Option<String>,
    /// In the future: held as `scheduled` until then.
    pub scheduled_at: Option<DateTime<Utc>>,
    /// How it goes out: fields left out take the environment policy's; it may only be more careful.
    pub rollout: Option<RolloutBody>,
    /// Inside a freeze window: hold the deployment until the window ends instead of refusing it.
    pub hold_if_frozen: Option<bool>,
    /// The source commit it deploys (absent: the package's).
    #[schema(schema_with = crate::routes::packages::views::commit)]
    pub commit: Option<String>,
    /// Deploy the version even though it is quarantined in the environment (it
    /// was rolled back there); recorded in the deployment's audit event as
    /// `"quarantine_overridden": true`. Without it, a quarantined version is refused 409 `quarantined`.
    pub override_quarantine: Option<bool>,
    /// With `latest_revision`: the component whose latest revision to deploy.
    pub component_id: Option<Uuid>,
    /// `true`: deploy the component's latest revision, reusing its newest package
    /// when that is up to date, else packaging it first (as `POST /v1/packages`).
    pub latest_revision: Option<bool>,
}

/// What a deployment request names to deploy.
pub enum Deploying {
    Package(berth_domain::ids::PackageId),
    LatestRevision(berth_domain::ids::ComponentId),
}

impl CreateDeployment {
    /// What to deploy where: exactly one of `package_id` and `latest_revision:
    /// true` (with `component_id`), and an `environment_id`; 422 naming every
    /// field at fault otherwise.
    pub fn deploying(&self) -> Result<(Deploying, berth_domain::ids::EnvironmentId), berth_domain::DomainError> {
        use berth_domain::FieldError;
        let mut errors = vec![];
        let latest = self.latest_revision.unwrap_or(false);
        let what = match (self.package_id, latest, self.component_id) {
            (Some(p), false, None) => Some(Deploying::Package(berth_domain::ids::PackageId::from_uuid(p))),
            (None, true, Some(c)) => Some(Deploying::LatestRevision(berth_domain::ids::ComponentId::from_uuid(c))),
            (Some(_), true, _) => {
                errors.push(FieldError::new("package_id", "give either package_id or latest_revision: true, not both"));
                errors.push(FieldError::new("latest_revision", "give either package_id or latest_revision: true, not both"));
                None
            }
            (Some(_), false, Some(_)) => {
                errors.push(FieldError::new("component_id", "only with latest_revision: true (a package names its component)"));
                None
            }
            (None, true, None) => {
                errors.push(FieldError::new("component_id", "required with latest_revision: true"));
                None
            }
            (None, false, _) => {
                errors.push(FieldError::new("package_id", "required, unless latest_revision is true"));
                errors.push(FieldError::new("latest_revision", "must be true when package_id is left out"));
                None
            }
        };
        if self.environment_id.is_none() {
            errors.push(FieldError::new("environment_id", "required"));
        }
        match (what, self.environment_id) {
            (Some(what), Some(env)) if errors.is_empty() => Ok((what, berth_domain::ids::EnvironmentId::from_uuid(env))),
            _ => Err(berth_domain::DomainError::Validation { code: "validation_failed", errors }),
        }
    }
}

/// `POST /v1/environments/{id}/active/{component_id}/rollback` (the body may be left out).
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"notes": "back to the last good version", "hold_if_frozen": false}))]
pub struct RollbackRequest {
    #[schema(max_length = 2000)]
    pub notes: Option<String>,
    /// Inside a freeze window: hold the rollback until the window ends instead of refusing it.
    pub hold_if_frozen: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct IssueView {
    pub code: String,
    pub message: String,
}

#[derive(Serialize, ToSchema)]
pub struct ValidationView {
    pub errors: Vec<IssueView>,
    pub warnings: Vec<IssueView>,
    /// The target environment's extensions version the report was made at (a deployment records it).
    pub extensions_version: u64,
    /// Whether the extension values of what the package bundles changed since the
    /// component's active deployment there was requested (null: none is active).
    pub extensions_changed: Option<bool>,
}

impl From<ValidationReport> for ValidationView {
    fn from(r: ValidationReport) -> Self {
        let map =
            |issues: Vec<berth_domain::validation::Issue>| issues.into_iter().map(|i| IssueView { code: i.code.to_string(), message: i.message }).collect();
        Self { errors: map(r.errors), warnings: map(r.warnings), extensions_version: r.extensions_version, extensions_changed: r.extensions_changed }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TargetView {
    pub runtime_id: Uuid,
    pub job_id: Uuid,
    #[schema(value_type = String, example = "deployed")]
    pub state: TargetState,
    pub message: String,
    pub deadline: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// Its rollout batch (1 when all go at once).
    pub batch: u32,
    /// Its try: 1, one more for each retry.
    pub attempt: u32,
    /// Failed with a try left (`auto_retry`): sent a new job then.
    pub retry_at: Option<DateTime<Utc>>,
}

impl From<&Target> for TargetView {
    fn from(t: &Target) -> Self {
        Self {
            runtime_id: t.runtime_id.as_uuid(),
            job_id: t.job_id.as_uuid(),
            state: t.state,
            message: t.message.clone(),
            deadline: t.deadline,
            updated_at: t.updated_at,
            batch: t.batch,
            attempt: t.attempt,
            retry_at: t.retry_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct EventView {
    pub at: DateTime<Utc>,
    pub runtime_id: Option<Uuid>,
    pub message: String,
}

/// `GET /v1/environments/{id}/active`: what the environment runs (`items`),
/// and the versions quarantined there.
#[derive(Serialize, ToSchema)]
pub struct ActiveVersionsView {
    pub items: Vec<ActiveVersionView>,
    /// Always null: the list is whole.
    pub next_cursor: Option<String>,
    /// Versions that were rolled back in the environment: deploying one is
    /// refused 409 `quarantined` unless the request overrides it.
    pub quarantined: Vec<QuarantinedVersionView>,
}

#[derive(Serialize, ToSchema)]
pub struct QuarantinedVersionView {
    pub package_id: Uuid,
    pub component_id: Uuid,
    pub version: String,
    /// The deployment whose end quarantined it (one that ended `rolled_back`, or a rollback away from it).
    pub deployment_id: Uuid,
    pub quarantined_at: DateTime<Utc>,
}

impl From<&Quarantine> for QuarantinedVersionView {
    fn from(q: &Quarantine) -> Self {
        Self {
            package_id: q.package_id.as_uuid(),
            component_id: q.component_id.as_uuid(),
            version: q.version.to_string(),
            deployment_id: q.deployment_id.as_uuid(),
            quarantined_at: q.quarantined_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ActiveVersionView {
    pub component_id: Uuid,
    pub package_id: Uuid,
    pub version: String,
    pub digest: String,
    pub deployment_id: Uuid,
    pub activated_at: DateTime<Utc>,
    /// A bundled component was revised since packaging: redeploy to pick it up.
    pub outdated: bool,
    #[schema(value_type = Vec<Object>)]
    pub outdated_components: Vec<OutdatedComponent>,
    /// An attached runtime reports another digest (or none) for the component.
    pub out_of_sync: bool,
    pub out_of_sync_runtimes: Vec<Uuid>,
}

impl From<&ActiveView> for ActiveVersionView {
    fn from(v: &ActiveView) -> Self {
        Self {
            component_id: v.active.component_id.as_uuid(),
            package_id: v.active.package_id.as_uuid(),
            version: v.active.version.to_string(),
            digest: v.active.digest.as_str().to_string(),
            deployment_id: v.active.deployment_id.as_uuid(),
            activated_at: v.active.activated_at,
            outdated: !v.outdated_components.is_empty(),
            outdated_components: v.outdated_components.clone(),
            out_of_sync: !v.out_of_sync_runtimes.is_empty(),
            out_of_sync_runtimes: v.out_of_sync_runtimes.iter().map(|r| r.as_uuid()).collect(),
        }
    }
}
