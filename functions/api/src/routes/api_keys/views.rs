//! Request and response bodies of the API key routes.

use berth_domain::api_key::{ApiKey, NewApiKey};
use berth_domain::values::{Name, Role};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Serialize, ToSchema)]
pub struct ApiKeyView {
    pub id: Uuid,
    pub name: String,
    #[schema(value_type = Vec<String>, example = json!(["developer", "deployer"]))]
    pub roles: Vec<Role>,
    /// Who made it (`sub` of their token).
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// To the minute: a use within a minute of the last one recorded is not recorded.
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// The key itself (`bak_…`): only in the response to `POST /v1/api-keys`, once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl From<&ApiKey> for ApiKeyView {
    fn from(k: &ApiKey) -> Self {
        Self {
            id: k.id.as_uuid(),
            name: k.name.to_string(),
            roles: k.roles.clone(),
            created_by: k.created_by.clone(),
            created_at: k.created_at,
            expires_at: k.expires_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
            key: None,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "ci-main", "roles": ["developer", "deployer"], "expires_at": "2027-03-01T00:00:00Z"}))]
pub struct CreateApiKey {
    #[schema(schema_with = berth_web::schema::name)]
    pub name: Name,
    /// At least one; each must be a role your own token carries (403 `roles_exceed_creator` otherwise).
    #[schema(schema_with = roles)]
    pub roles: Vec<Role>,
    /// Default: 90 days from now; at most 365 days ahead.
    pub expires_at: Option<DateTime<Utc>>,
}

/// One tenant role or more.
fn roles() -> utoipa::openapi::schema::Array {
    berth_web::schema::array_of(&berth_web::schema::TENANT_ROLES, 1, false)
}

impl From<CreateApiKey> for NewApiKey {
    fn from(b: CreateApiKey) -> Self {
        Self { name: b.name, roles: b.roles, expires_at: b.expires_at }
    }
}
