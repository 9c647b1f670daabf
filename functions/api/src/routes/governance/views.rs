//! Request and response bodies of policies and approvals.

use crate::routes::deployments::rollout::{AutoRetryBody, RolloutBody};
use berth_domain::policy::{Approval, Decision, FreezeWindow, Policy};
use berth_domain::values::{Role, Version};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

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
    #[schema(schema_with = decision)]
    pub decision: Decision,
    #[schema(max_length = 2000)]
    pub comment: Option<String>,
}

/// `Decision`'s names.
fn decision() -> utoipa::openapi::Object {
    berth_web::schema::one_of(&["approve", "reject"])
}

/// Tenant roles (`platform_admin` is not one).
fn roles() -> utoipa::openapi::schema::Array {
    berth_web::schema::array_of(&berth_web::schema::TENANT_ROLES, 0, false)
}

/// Tenant roles, at least one.
fn some_roles() -> utoipa::openapi::schema::Array {
    berth_web::schema::array_of(&berth_web::schema::TENANT_ROLES, 1, false)
}

/// An environment's policy. Absent fields take their defaults.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"required_approvals": 1, "approver_roles": ["approver"], "allow_self_approval": false, "deployer_roles": ["deployer", "admin"], "require_success_in": ["6a2d9c14-3e5f-4b7a-8c1d-0f2e4a6b8c9d"], "freeze_windows": [], "auto_rollback": true}))]
pub struct PolicyBody {
    #[serde(default, deserialize_with = "berth_web::extract::whole::number")]
    #[schema(maximum = 10)]
    pub required_approvals: u32,
    /// At least one when `required_approvals` is above 0.
    #[serde(default = "default_approver_roles")]
    #[schema(schema_with = roles)]
    pub approver_roles: Vec<Role>,
    #[serde(default)]
    pub allow_self_approval: bool,
    #[serde(default = "default_deployer_roles")]
    #[schema(schema_with = some_roles)]
    pub deployer_roles: Vec<Role>,
    /// Environments of the tenant, other than this one.
    #[serde(default)]
    #[schema(max_items = 10)]
    pub require_success_in: Vec<Uuid>,
    #[serde(default)]
    #[schema(value_type = Vec<FreezeWindowView>, max_items = 50)]
    pub freeze_windows: Vec<FreezeWindow>,
    #[serde(default)]
    pub auto_rollback: bool,
    /// How its deployments go out by default (absent: all at once).
    #[serde(default)]
    pub rollout: Option<RolloutBody>,
    /// Failed targets are tried again by themselves (absent or null: off).
    #[serde(default)]
    pub auto_retry: Option<AutoRetryBody>,
    /// Ignored on input (send `If-Match`), so a policy read can be sent back as it is; the current etag on output.
    #[serde(default)]
    pub etag: String,
}

/// A period (UTC) in which deployments are refused or held; `weekly` repeats
/// it every 7 days (then it must last less than a week). `end` after `start`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = FreezeWindow)]
#[allow(dead_code, reason = "only the schema of berth_domain::policy::FreezeWindow, which the body reads")]
pub struct FreezeWindowView {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    #[serde(default)]
    pub weekly: bool,
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
            rollout: Some(RolloutBody::from(&p.rollout)),
            auto_retry: p.auto_retry.as_ref().map(AutoRetryBody::from),
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
            rollout: b.rollout.map(RolloutBody::into_rollout).unwrap_or_default(),
            auto_retry: b.auto_retry.map(Into::into),
            version: Version(0),
        }
    }
}
