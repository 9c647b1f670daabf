//! Request and response bodies, in the shapes DESIGN.md "Key shapes" gives.

use berth_domain::environment::{Environment, EnvironmentPatch, NewEnvironment};
use berth_domain::runtime::{Runtime, RuntimeKind, RuntimeStatus};
use berth_domain::tenant::{PlanPatch, Tenant, TenantPatch};
use berth_domain::values::{Classification, Description, Name, Plan};
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
