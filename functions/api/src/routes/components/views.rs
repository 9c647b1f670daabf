//! Request and response bodies of the component routes.

use crate::routes::extensions::views::ExtensionPointsBody;
use berth_domain::component::{Component, ComponentType, Revision};
use berth_domain::values::{Name, Version};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

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
    /// What its current revision lets each environment set.
    pub extensions: ExtensionPointsBody,
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
            extensions: ExtensionPointsBody::from(&c.extensions),
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
    pub extensions: ExtensionPointsBody,
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
            extensions: ExtensionPointsBody::from(&r.extensions),
            created_by: r.created_by.clone(),
            created_at: r.created_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Orders to ERP", "type": "process", "content": "PHByb2Nlc3MgbmFtZT0ib3JkZXJzIi8+", "references": ["5d0c8a52-1f0e-4c53-9a43-6c1d2f0e7b31"]}))]
pub struct CreateComponent {
    #[schema(schema_with = berth_web::schema::name)]
    pub name: Name,
    #[serde(rename = "type")]
    #[schema(schema_with = component_type)]
    pub kind: ComponentType,
    /// Base64 (standard alphabet); at most 4 MiB once decoded.
    #[schema(schema_with = berth_web::schema::base64)]
    pub content: String,
    #[serde(default)]
    #[schema(max_items = 200)]
    pub references: Vec<Uuid>,
    /// What the revision lets each environment set (connection fields, properties, lookup tables).
    pub extensions: Option<ExtensionPointsBody>,
}

/// `ComponentType`'s names.
fn component_type() -> utoipa::openapi::Object {
    berth_web::schema::one_of(&[
        "process",
        "map",
        "profile",
        "connection",
        "lookup_table",
        "script",
        "api_service",
        "api_proxy",
        "certificate",
        "custom_library",
        "flow_service",
        "process_route",
        "processing_group",
    ])
}

/// A new revision; absent fields keep the current revision's value.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"content": "PHByb2Nlc3MgbmFtZT0ib3JkZXJzIiB2ZXJzaW9uPSIyIi8+"}))]
pub struct CreateRevision {
    /// Base64, as in `CreateComponent`.
    #[schema(schema_with = berth_web::schema::optional_base64)]
    pub content: Option<String>,
    #[schema(max_items = 200)]
    pub references: Option<Vec<Uuid>>,
    /// The extension points it declares (absent: those of the revision before).
    pub extensions: Option<ExtensionPointsBody>,
}
