//! Request and response bodies of the environment routes.

use berth_domain::environment::{Environment, EnvironmentPatch, NewEnvironment};
use berth_domain::values::{Classification, Description, Name};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

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
    #[schema(schema_with = berth_web::schema::name)]
    pub name: Name,
    /// `test` or `production`; fixed for the environment's life.
    #[schema(schema_with = classification)]
    pub classification: Classification,
    /// Defaults to true.
    pub enabled: Option<bool>,
    #[schema(value_type = Option<String>, max_length = 1000)]
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
    #[schema(schema_with = berth_web::schema::optional_name)]
    pub name: Option<Name>,
    pub enabled: Option<bool>,
    #[schema(value_type = Option<String>, max_length = 1000)]
    pub description: Option<Description>,
}

/// `Classification`'s names.
fn classification() -> utoipa::openapi::Object {
    berth_web::schema::one_of(&["test", "production"])
}

impl From<PatchEnvironment> for EnvironmentPatch {
    fn from(p: PatchEnvironment) -> Self {
        EnvironmentPatch { name: p.name, enabled: p.enabled, description: p.description }
    }
}
