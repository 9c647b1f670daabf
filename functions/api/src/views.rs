//! Request and response bodies, in the shapes the OpenAPI document describes.

use berth_domain::change_request::{ChangeRequest, ChangeStatus, ChangeType};
use berth_domain::component::{Component, ComponentType, Revision};
use berth_domain::deployment::{Deployment, DeploymentKind, DeploymentStatus, Target, TargetState};
use berth_domain::environment::{Environment, EnvironmentPatch, NewEnvironment};
use berth_domain::package::{Manifest, OutdatedComponent, Package, Requirement, VersionLabel};
use berth_domain::policy::{Approval, Decision, FreezeWindow, Policy};
use berth_domain::runtime::{Runtime, RuntimeKind, RuntimeStatus};
use berth_domain::tenant::{PlanPatch, Tenant, TenantPatch};
use berth_domain::usecases::ActiveView;
use berth_domain::validation::ValidationReport;
use berth_domain::values::{Classification, Description, Name, Plan, Role, Version};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Serialize, Deserialize, ToSchema, Clone, Copy)]
pub struct PlanView {
    pub connection_licenses: u32,
    pub max_runtimes: u32,
    pub max_environments: u32,
}

impl From<Plan> for PlanView {
    fn from(p: Plan) -> Self {
        Self { connection_licenses: p.connection_licenses, max_runtimes: p.max_runtimes, max_environments: p.max_environments }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TenantView {
    pub id: Uuid,
    pub name: String,
    pub plan: PlanView,
    pub suspended: bool,
    pub etag: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&Tenant> for TenantView {
    fn from(t: &Tenant) -> Self {
        Self {
            id: t.id.as_uuid(),
            name: t.name.to_string(),
            plan: t.plan.into(),
            suspended: t.suspended,
            etag: t.version.etag(),
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Acme", "plan": {"connection_licenses": 10, "max_runtimes": 5, "max_environments": 4}}))]
pub struct CreateTenant {
    #[schema(value_type = String)]
    pub name: Name,
    pub plan: Option<PlanInput>,
}

/// Absent limits take the default plan's value (on create) or keep theirs (on update).
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct PlanInput {
    pub connection_licenses: Option<u32>,
    pub max_runtimes: Option<u32>,
    pub max_environments: Option<u32>,
}

impl From<PlanInput> for PlanPatch {
    fn from(p: PlanInput) -> Self {
        PlanPatch { connection_licenses: p.connection_licenses, max_runtimes: p.max_runtimes, max_environments: p.max_environments }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"plan": {"max_runtimes": 10}}))]
pub struct PatchTenant {
    #[schema(value_type = Option<String>)]
    pub name: Option<Name>,
    pub plan: Option<PlanInput>,
    pub suspended: Option<bool>,
}

impl From<PatchTenant> for TenantPatch {
    fn from(p: PatchTenant) -> Self {
        TenantPatch { name: p.name, plan: p.plan.map(Into::into), suspended: p.suspended }
    }
}

#[derive(Serialize, ToSchema)]
pub struct EnvironmentView {
    pub id: Uuid,
    pub name: String,
    #[schema(value_type = String, example = "test")]
    pub classification: Classification,
    pub enabled: bool,
    pub description: String,
    pub etag: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&Environment> for EnvironmentView {
    fn from(e: &Environment) -> Self {
        Self {
            id: e.id.as_uuid(),
            name: e.name.to_string(),
            classification: e.classification,
            enabled: e.enabled,
            description: e.description.as_str().to_string(),
            etag: e.version.etag(),
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Production", "classification": "production", "enabled": true, "description": "Customer-facing integrations"}))]
pub struct CreateEnvironment {
    #[schema(value_type = String)]
    pub name: Name,
    /// `test` or `production`; fixed for the environment's life.
    #[schema(value_type = String, example = "test")]
    pub classification: Classification,
    /// Defaults to true.
    pub enabled: Option<bool>,
    #[schema(value_type = Option<String>)]
    pub description: Option<Description>,
}

impl From<CreateEnvironment> for NewEnvironment {
    fn from(c: CreateEnvironment) -> Self {
        NewEnvironment { name: c.name, classification: c.classification, enabled: c.enabled.unwrap_or(true), description: c.description.unwrap_or_default() }
    }
}

/// `classification` is not accepted: it never changes.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"description": "Customer-facing integrations (EU)"}))]
pub struct PatchEnvironment {
    #[schema(value_type = Option<String>)]
    pub name: Option<Name>,
    pub enabled: Option<bool>,
    #[schema(value_type = Option<String>)]
    pub description: Option<Description>,
}

impl From<PatchEnvironment> for EnvironmentPatch {
    fn from(p: PatchEnvironment) -> Self {
        EnvironmentPatch { name: p.name, enabled: p.enabled, description: p.description }
    }
}

#[derive(Serialize, ToSchema)]
pub struct RuntimeView {
    pub id: Uuid,
    pub name: String,
    #[schema(value_type = String, example = "on_premise")]
    pub kind: RuntimeKind,
    #[schema(value_type = String, example = "online")]
    pub status: RuntimeStatus,
    pub last_seen_at: Option<DateTime<Utc>>,
    pub agent_version: Option<String>,
    pub environments: Vec<Uuid>,
    pub created_at: DateTime<Utc>,
    /// Only in the response to `POST /v1/runtimes`, once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration_token: Option<String>,
}

impl RuntimeView {
    pub fn new(r: &Runtime, status: RuntimeStatus) -> Self {
        Self {
            id: r.id.as_uuid(),
            name: r.name.to_string(),
            kind: r.kind,
            status,
            last_seen_at: r.last_seen_at,
            agent_version: r.agent_version.clone(),
            environments: r.environments.iter().map(|e| e.as_uuid()).collect(),
            created_at: r.created_at,
            registration_token: None,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "atom-prod-1", "kind": "on_premise"}))]
pub struct CreateRuntime {
    #[schema(value_type = String)]
    pub name: Name,
    /// `on_premise` (default) or `cloud`.
    #[schema(value_type = Option<String>, example = "on_premise")]
    pub kind: Option<RuntimeKind>,
}

#[derive(Serialize, ToSchema)]
pub struct MeView {
    pub sub: String,
    pub tenant_id: Uuid,
    pub tenant_name: String,
    pub tenant_suspended: bool,
    pub roles: Vec<String>,
}

/// `{items, next_cursor}` of every list.
#[derive(Serialize, ToSchema)]
pub struct ListOf<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> ListOf<T> {
    pub fn from_page<U>(page: berth_domain::page::Page<U>, f: impl FnMut(U) -> T) -> Self {
        let page = page.map(f);
        Self { items: page.items, next_cursor: page.next_cursor }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ComponentView {
    pub id: Uuid,
    pub name: String,
    #[serde(rename = "type")]
    #[schema(value_type = String, example = "process")]
    pub kind: ComponentType,
    /// Independent components are never bundled into another's package.
    pub independent: bool,
    pub revision: u32,
    pub references: Vec<Uuid>,
    pub content_sha256: String,
    pub size: u64,
    pub etag: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&Component> for ComponentView {
    fn from(c: &Component) -> Self {
        Self {
            id: c.id.as_uuid(),
            name: c.name.to_string(),
            kind: c.kind,
            independent: c.kind.independent(),
            revision: c.revision,
            references: c.references.iter().map(|r| r.as_uuid()).collect(),
            content_sha256: c.content.sha256.as_str().to_string(),
            size: c.content.size,
            etag: Version(u64::from(c.revision)).etag(),
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct RevisionView {
    pub component_id: Uuid,
    pub revision: u32,
    pub references: Vec<Uuid>,
    pub content_sha256: String,
    pub size: u64,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

impl From<&Revision> for RevisionView {
    fn from(r: &Revision) -> Self {
        Self {
            component_id: r.component_id.as_uuid(),
            revision: r.revision,
            references: r.references.iter().map(|r| r.as_uuid()).collect(),
            content_sha256: r.content.sha256.as_str().to_string(),
            size: r.content.size,
            created_by: r.created_by.clone(),
            created_at: r.created_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Orders to ERP", "type": "process", "content": "PHByb2Nlc3MgbmFtZT0ib3JkZXJzIi8+", "references": ["5d0c8a52-1f0e-4c53-9a43-6c1d2f0e7b31"]}))]
pub struct CreateComponent {
    #[schema(value_type = String)]
    pub name: Name,
    #[serde(rename = "type")]
    #[schema(value_type = String, example = "process")]
    pub kind: ComponentType,
    /// Base64 (standard alphabet); at most 4 MiB once decoded.
    pub content: String,
    #[serde(default)]
    pub references: Vec<Uuid>,
}

/// A new revision; absent fields keep the current revision's value.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"content": "PHByb2Nlc3MgbmFtZT0ib3JkZXJzIiB2ZXJzaW9uPSIyIi8+"}))]
pub struct CreateRevision {
    pub content: Option<String>,
    pub references: Option<Vec<Uuid>>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"component_id": "5d0c8a52-1f0e-4c53-9a43-6c1d2f0e7b31", "version": "1.4.0", "notes": "Adds retry on ERP timeouts", "shareable": false}))]
pub struct CreatePackage {
    pub component_id: Uuid,
    /// Absent: the next whole number for the component ("1", "2", ...).
    #[schema(value_type = Option<String>)]
    pub version: Option<VersionLabel>,
    pub notes: Option<String>,
    pub shareable: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct PackageView {
    pub id: Uuid,
    pub component_id: Uuid,
    pub version: String,
    pub notes: String,
    pub shareable: bool,
    pub deleted: bool,
    /// `sha256:<hex>` of the archive.
    pub digest: String,
    pub size: u64,
    #[schema(value_type = Object)]
    pub manifest: Manifest,
    #[schema(value_type = Vec<Object>)]
    pub requirements: Vec<Requirement>,
    /// Only on single-package reads: bundled components revised since packaging.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub outdated_components: Option<Vec<OutdatedComponent>>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

impl PackageView {
    pub fn new(p: &Package, outdated: Option<Vec<OutdatedComponent>>) -> Self {
        Self {
            id: p.id.as_uuid(),
            component_id: p.component_id.as_uuid(),
            version: p.version.to_string(),
            notes: p.notes.clone(),
            shareable: p.shareable,
            deleted: p.deleted,
            digest: p.digest.as_str().to_string(),
            size: p.size,
            manifest: p.manifest.clone(),
            requirements: p.requirements.clone(),
            outdated_components: outdated,
            created_by: p.created_by.clone(),
            created_at: p.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct DownloadView {
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

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
    pub digest: String,
    pub notes: String,
    pub requested_by: String,
    pub approvals: Vec<ApprovalView>,
    pub required_approvals: u32,
    pub previous_package_id: Option<Uuid>,
    /// Set on undeploys sent to a single runtime that was detached.
    pub runtime_id: Option<Uuid>,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
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
            approvals: vec![],
            required_approvals: d.required_approvals,
            previous_package_id: d.previous_package_id.map(|p| p.as_uuid()),
            runtime_id: d.only_runtime.map(|r| r.as_uuid()),
            scheduled_at: d.scheduled_at,
            created_at: d.created_at,
            started_at: d.started_at,
            finished_at: d.finished_at,
        }
    }
}

/// A deployment request; `POST /v1/deployments/validate` takes the same body
/// (a portal dry-runs exactly what it will send).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"package_id": "8f3b2a10-6c4d-4e8f-b1a2-3c4d5e6f7a8b", "environment_id": "0e7c2f4a-8b1d-4c6e-9f3a-2d5b7c9e1f40", "notes": "Release 1.4.0"}))]
pub struct CreateDeployment {
    pub package_id: Uuid,
    pub environment_id: Uuid,
    pub notes: Option<String>,
    /// In the future: held as `scheduled` until then.
    pub scheduled_at: Option<DateTime<Utc>>,
    /// Accepted for forward compatibility; every runtime is deployed at once.
    #[schema(value_type = Option<Object>)]
    pub rollout: Option<serde_json::Value>,
    /// Inside a freeze window: hold the deployment until the window ends instead of refusing it.
    pub hold_if_frozen: Option<bool>,
}

/// `POST /v1/environments/{id}/active/{component_id}/rollback` (the body may be left out).
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"notes": "back to the last good version", "hold_if_frozen": false}))]
pub struct RollbackRequest {
    pub notes: Option<String>,
    /// Inside a freeze window: hold the rollback until the window ends instead of refusing it.
    pub hold_if_frozen: Option<bool>,
}

/// `POST /v1/change-requests/{id}/deploy` (the body may be left out).
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"hold_if_frozen": false}))]
pub struct DeployChangeRequest {
    /// Inside a freeze window: hold its deployments until the window ends instead of refusing.
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
}

impl From<ValidationReport> for ValidationView {
    fn from(r: ValidationReport) -> Self {
        let map =
            |issues: Vec<berth_domain::validation::Issue>| issues.into_iter().map(|i| IssueView { code: i.code.to_string(), message: i.message }).collect();
        Self { errors: map(r.errors), warnings: map(r.warnings) }
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
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct EventView {
    pub at: DateTime<Utc>,
    pub runtime_id: Option<Uuid>,
    pub message: String,
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

#[derive(Serialize, ToSchema)]
pub struct ApprovalView {
    pub approver: String,
    #[schema(value_type = String, example = "approve")]
    pub decision: Decision,
    pub comment: String,
    pub digests: Vec<String>,
    pub created_at: DateTime<Utc>,
}

impl From<&Approval> for ApprovalView {
    fn from(a: &Approval) -> Self {
        Self {
            approver: a.approver.clone(),
            decision: a.decision,
            comment: a.comment.clone(),
            digests: a.digests.iter().map(|d| d.as_str().to_string()).collect(),
            created_at: a.created_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"decision": "approve", "comment": "Tested in staging"}))]
pub struct CreateApproval {
    #[schema(value_type = String, example = "approve")]
    pub decision: Decision,
    pub comment: Option<String>,
}

/// An environment's policy. Absent fields take their defaults.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"required_approvals": 1, "approver_roles": ["approver"], "allow_self_approval": false, "deployer_roles": ["deployer", "admin"], "require_success_in": ["6a2d9c14-3e5f-4b7a-8c1d-0f2e4a6b8c9d"], "freeze_windows": [], "auto_rollback": true}))]
pub struct PolicyBody {
    #[serde(default)]
    pub required_approvals: u32,
    #[serde(default = "default_approver_roles")]
    #[schema(value_type = Vec<String>)]
    pub approver_roles: Vec<Role>,
    #[serde(default)]
    pub allow_self_approval: bool,
    #[serde(default = "default_deployer_roles")]
    #[schema(value_type = Vec<String>)]
    pub deployer_roles: Vec<Role>,
    #[serde(default)]
    pub require_success_in: Vec<Uuid>,
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub freeze_windows: Vec<FreezeWindow>,
    #[serde(default)]
    pub auto_rollback: bool,
    /// Ignored on input (send `If-Match`), so a policy read can be sent back as it is; the current etag on output.
    #[serde(default)]
    pub etag: String,
}

fn default_approver_roles() -> Vec<Role> {
    Policy::default().approver_roles
}
fn default_deployer_roles() -> Vec<Role> {
    Policy::default().deployer_roles
}

impl From<&Policy> for PolicyBody {
    fn from(p: &Policy) -> Self {
        Self {
            required_approvals: p.required_approvals,
            approver_roles: p.approver_roles.clone(),
            allow_self_approval: p.allow_self_approval,
            deployer_roles: p.deployer_roles.clone(),
            require_success_in: p.require_success_in.iter().map(|e| e.as_uuid()).collect(),
            freeze_windows: p.freeze_windows.clone(),
            auto_rollback: p.auto_rollback,
            etag: p.version.etag(),
        }
    }
}

impl From<PolicyBody> for Policy {
    fn from(b: PolicyBody) -> Self {
        Policy {
            required_approvals: b.required_approvals,
            approver_roles: b.approver_roles,
            allow_self_approval: b.allow_self_approval,
            deployer_roles: b.deployer_roles,
            require_success_in: b.require_success_in.into_iter().map(berth_domain::ids::EnvironmentId::from_uuid).collect(),
            freeze_windows: b.freeze_windows,
            auto_rollback: b.auto_rollback,
            version: Version(0),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ChangeItemView {
    pub package_id: Uuid,
    pub digest: String,
}

#[derive(Serialize, ToSchema)]
pub struct ChangeRequestView {
    pub id: Uuid,
    pub name: String,
    pub overview: String,
    #[schema(value_type = String, example = "normal")]
    pub change_type: ChangeType,
    #[schema(value_type = String, example = "draft")]
    pub status: ChangeStatus,
    pub target_environment_id: Uuid,
    pub items: Vec<ChangeItemView>,
    pub links: Vec<String>,
    pub approvals: Vec<ApprovalView>,
    pub required_approvals: u32,
    pub deployments: Vec<Uuid>,
    pub created_by: String,
    pub etag: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ChangeRequestView {
    pub fn new(cr: &ChangeRequest, approvals: &[Approval]) -> Self {
        Self {
            id: cr.id.as_uuid(),
            name: cr.name.to_string(),
            overview: cr.overview.clone(),
            change_type: cr.change_type,
            status: cr.status,
            target_environment_id: cr.target_environment_id.as_uuid(),
            items: cr.items.iter().zip(&cr.digests).map(|(p, d)| ChangeItemView { package_id: p.as_uuid(), digest: d.as_str().to_string() }).collect(),
            links: cr.links.clone(),
            approvals: approvals.iter().map(ApprovalView::from).collect(),
            required_approvals: cr.required_approvals,
            deployments: cr.deployments.iter().map(|d| d.as_uuid()).collect(),
            created_by: cr.created_by.clone(),
            etag: cr.version.etag(),
            created_at: cr.created_at,
            updated_at: cr.updated_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeItemInput {
    pub package_id: Uuid,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Release 1.4", "overview": "ERP retry", "change_type": "normal", "target_environment_id": "0e7c2f4a-8b1d-4c6e-9f3a-2d5b7c9e1f40", "items": [{"package_id": "8f3b2a10-6c4d-4e8f-b1a2-3c4d5e6f7a8b"}], "links": ["https://tickets.example/CHG-1042"]}))]
pub struct CreateChangeRequest {
    #[schema(value_type = String)]
    pub name: Name,
    #[serde(default)]
    pub overview: String,
    #[schema(value_type = String, example = "normal")]
    pub change_type: ChangeType,
    pub target_environment_id: Uuid,
    pub items: Vec<ChangeItemInput>,
    #[serde(default)]
    pub links: Vec<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"overview": "ERP retry, with the new timeout"}))]
pub struct PatchChangeRequest {
    #[schema(value_type = Option<String>)]
    pub name: Option<Name>,
    pub overview: Option<String>,
    #[schema(value_type = Option<String>)]
    pub change_type: Option<ChangeType>,
    pub items: Option<Vec<ChangeItemInput>>,
    pub links: Option<Vec<String>>,
}

pub fn package_ids(items: Vec<ChangeItemInput>) -> Vec<berth_domain::ids::PackageId> {
    items.into_iter().map(|i| berth_domain::ids::PackageId::from_uuid(i.package_id)).collect()
}
