//! Request and response bodies of the tenant routes.

use berth_domain::tenant::{PlanPatch, Tenant, TenantPatch};
use berth_domain::values::{Name, Plan};
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
    #[schema(schema_with = berth_web::schema::name)]
    pub name: Name,
    pub plan: Option<PlanInput>,
}

/// Absent limits take the default plan's value (on create) or keep theirs (on update).
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct PlanInput {
    #[serde(default, deserialize_with = "berth_web::extract::whole::optional")]
    #[schema(maximum = 100_000)]
    pub connection_licenses: Option<u32>,
    #[serde(default, deserialize_with = "berth_web::extract::whole::optional")]
    #[schema(maximum = 100_000)]
    pub max_runtimes: Option<u32>,
    #[serde(default, deserialize_with = "berth_web::extract::whole::optional")]
    #[schema(maximum = 100_000)]
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
    #[schema(schema_with = berth_web::schema::optional_name)]
    pub name: Option<Name>,
    pub plan: Option<PlanInput>,
    pub suspended: Option<bool>,
}

impl From<PatchTenant> for TenantPatch {
    fn from(p: PatchTenant) -> Self {
        TenantPatch { name: p.name, plan: p.plan.map(Into::into), suspended: p.suspended }
    }
}
