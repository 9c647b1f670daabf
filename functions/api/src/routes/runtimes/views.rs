//! Request and response bodies of the runtime routes.

use berth_domain::DomainError;
use berth_domain::deployment::{Deployment, DeploymentStatus};
use berth_domain::runtime::{RegistrationTtl, Runtime, RuntimeKind, RuntimeStatus};
use berth_domain::values::Name;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

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
    /// Only in the responses to `POST /v1/runtimes` and
    /// `POST /v1/runtimes/{id}/registration-token`, once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration_token: Option<String>,
    /// While a registration token is outstanding: when it stops being accepted.
    pub registration_token_expires_at: Option<DateTime<Utc>>,
    /// Set by `POST /v1/runtimes/{id}/revoke`: no credential of the runtime
    /// works until a re-issued registration token is used.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Only in the runtime's detail (and the answer to an attach): the syncs
    /// sent to it on an attach that have not succeeded yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub syncing: Option<Vec<SyncView>>,
}

/// A sync of an environment's active version sent to the runtime, not yet succeeded.
#[derive(Serialize, ToSchema)]
pub struct SyncView {
    pub environment_id: Uuid,
    pub component_id: Uuid,
    pub deployment_id: Uuid,
    pub version: String,
    /// The sync deployment's status: `scheduled` (held by a freeze window), `queued`, `in_progress`, or how it ended if not `succeeded`.
    #[schema(value_type = String, example = "in_progress")]
    pub status: DeploymentStatus,
}

impl From<&Deployment> for SyncView {
    fn from(d: &Deployment) -> Self {
        Self {
            environment_id: d.environment_id.as_uuid(),
            component_id: d.component_id.as_uuid(),
            deployment_id: d.id.as_uuid(),
            version: d.version.to_string(),
            status: d.status,
        }
    }
}

impl RuntimeView {
    /// The runtime's detail: with what it is syncing.
    pub fn detail(r: &Runtime, status: RuntimeStatus, syncing: &[Deployment]) -> Self {
        Self { syncing: Some(syncing.iter().map(SyncView::from).collect()), ..Self::new(r, status) }
    }

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
            syncing: None,
            registration_token_expires_at: r.registration_hash.as_ref().and(r.registration_expires_at),
            revoked_at: r.revoked_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "atom-prod-1", "kind": "on_premise", "registration_token_ttl_seconds": 86400}))]
pub struct CreateRuntime {
    #[schema(schema_with = berth_web::schema::name)]
    pub name: Name,
    /// `on_premise` (default) or `cloud`.
    #[schema(schema_with = runtime_kind)]
    pub kind: Option<RuntimeKind>,
    /// How long the registration token is accepted: 60 to 2592000 (30 days); default 86400 (24 h).
    #[serde(default, deserialize_with = "berth_web::extract::whole::optional")]
    #[schema(minimum = 60, maximum = 2_592_000)]
    pub registration_token_ttl_seconds: Option<i64>,
}

/// `RuntimeKind`'s names.
fn runtime_kind() -> utoipa::openapi::Object {
    berth_web::schema::optional_one_of(&["on_premise", "cloud"])
}

#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"registration_token_ttl_seconds": 3600}))]
pub struct IssueRegistrationToken {
    /// How long the new token is accepted: 60 to 2592000 (30 days); default 86400 (24 h).
    #[serde(default, deserialize_with = "berth_web::extract::whole::optional")]
    #[schema(minimum = 60, maximum = 2_592_000)]
    pub registration_token_ttl_seconds: Option<i64>,
}

/// Reads `registration_token_ttl_seconds` (422 outside its range).
pub fn registration_ttl(seconds: Option<i64>) -> Result<RegistrationTtl, DomainError> {
    RegistrationTtl::parse(seconds).map_err(|m| DomainError::invalid("registration_token_ttl_seconds", m))
}
