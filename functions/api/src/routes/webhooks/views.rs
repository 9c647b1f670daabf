//! Request and response bodies of the webhook routes. A signing secret
//! appears in exactly two responses (create, rotate) and nowhere else.

use berth_domain::ids::{ComponentId, DeploymentId, EnvironmentId, PackageId, WebhookId};
use berth_domain::values::Name;
use berth_domain::webhook::{Delivery, DeliveryOutcome, NewWebhook, Webhook, WebhookAction, WebhookPatch};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct WebhookView {
    #[schema(value_type = String, format = Uuid)]
    pub id: WebhookId,
    pub name: String,
    /// `package_and_deploy` or `deploy_version`.
    #[schema(schema_with = action)]
    pub action: WebhookAction,
    #[schema(value_type = String, format = Uuid)]
    pub environment_id: EnvironmentId,
    #[schema(value_type = String, format = Uuid)]
    pub component_id: ComponentId,
    pub hold_if_frozen: bool,
    pub active: bool,
    /// Where CI sends deliveries, relative to the API's base URL.
    pub delivery_path: String,
    /// The roles a delivery acts with: its creator's when it was created.
    pub roles: Vec<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the previous secret stops verifying, while a rotation's overlap lasts.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub etag: String,
}

impl From<&Webhook> for WebhookView {
    fn from(w: &Webhook) -> Self {
        Self {
            id: w.id,
            name: w.name.to_string(),
            action: w.action,
            environment_id: w.environment_id,
            component_id: w.component_id,
            hold_if_frozen: w.hold_if_frozen,
            active: w.active,
            delivery_path: w.delivery_path(),
            roles: w.roles.iter().map(|r| r.as_str().to_string()).collect(),
            created_by: w.created_by.clone(),
            created_at: w.created_at,
            updated_at: w.updated_at,
            previous_secret_expires_at: w.previous_secret_expires_at(Utc::now()),
            etag: w.version.etag(),
        }
    }
}

/// A webhook with its signing secret: shown by create and rotate only, once.
#[derive(Serialize, ToSchema)]
pub struct WebhookWithSecretView {
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// `whsec_...`: the HMAC key, whole. Store it in your CI's secrets now: it is never shown again.
    pub secret: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "main branch to Test", "action": "package_and_deploy",
    "environment_id": "0190a7b4-0000-7000-8000-000000000001", "component_id": "0190a7b4-0000-7000-8000-000000000002", "hold_if_frozen": false}))]
pub struct CreateWebhook {
    #[schema(schema_with = berth_web::schema::name)]
    pub name: Name,
    #[schema(schema_with = action)]
    pub action: WebhookAction,
    #[schema(value_type = String, format = Uuid)]
    pub environment_id: EnvironmentId,
    #[schema(value_type = String, format = Uuid)]
    pub component_id: ComponentId,
    /// Inside a freeze window: hold the deployment until the window ends instead of refusing it (default false).
    pub hold_if_frozen: Option<bool>,
}

impl From<CreateWebhook> for NewWebhook {
    fn from(c: CreateWebhook) -> Self {
        NewWebhook {
            name: c.name,
            action: c.action,
            environment_id: c.environment_id,
            component_id: c.component_id,
            hold_if_frozen: c.hold_if_frozen.unwrap_or(false),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"hold_if_frozen": true, "active": true}))]
pub struct PatchWebhook {
    #[schema(schema_with = berth_web::schema::optional_name)]
    pub name: Option<Name>,
    #[schema(schema_with = optional_action)]
    pub action: Option<WebhookAction>,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub environment_id: Option<EnvironmentId>,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub component_id: Option<ComponentId>,
    pub hold_if_frozen: Option<bool>,
    /// A disabled webhook refuses deliveries (`webhook_disabled`).
    pub active: Option<bool>,
}

impl From<PatchWebhook> for WebhookPatch {
    fn from(p: PatchWebhook) -> Self {
        WebhookPatch {
            name: p.name,
            action: p.action,
            environment_id: p.environment_id,
            component_id: p.component_id,
            hold_if_frozen: p.hold_if_frozen,
            active: p.active,
        }
    }
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"overlap_seconds": 3600}))]
pub struct RotateSecret {
    /// How long the current secret keeps verifying: 0 to 604800 seconds (default 86400).
    #[serde(default, deserialize_with = "berth_web::extract::whole::optional")]
    #[schema(minimum = 0, maximum = 604_800)]
    pub overlap_seconds: Option<i64>,
}

/// `WebhookAction`'s names.
fn action() -> utoipa::openapi::Object {
    berth_web::schema::one_of(&["package_and_deploy", "deploy_version"])
}

/// `WebhookAction`'s names, or null.
fn optional_action() -> utoipa::openapi::Object {
    berth_web::schema::optional_one_of(&["package_and_deploy", "deploy_version"])
}

/// One delivery: never its body or headers.
#[derive(Serialize, ToSchema)]
pub struct DeliveryView {
    pub id: String,
    pub received_at: DateTime<Utc>,
    /// `accepted`, `ignored` or `refused`.
    #[schema(value_type = String, example = "accepted")]
    pub outcome: DeliveryOutcome,
    /// The refusal's code (`bad_signature`, `stale_signature`, `quarantined`, ...).
    pub code: Option<String>,
    /// Whether the sender proved it holds the secret.
    pub authenticated: bool,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub package_id: Option<PackageId>,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub deployment_id: Option<DeploymentId>,
    pub commit: Option<String>,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        Self {
            id: d.id.to_string(),
            received_at: d.received_at,
            outcome: d.outcome,
            code: d.code,
            authenticated: d.authenticated,
            package_id: d.package_id,
            deployment_id: d.deployment_id,
            commit: d.commit,
        }
    }
}
