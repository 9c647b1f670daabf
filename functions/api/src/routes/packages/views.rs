//! Request and response bodies of the package routes.

use berth_domain::package::{Manifest, OutdatedComponent, Package, Requirement, VersionLabel};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"component_id": "5d0c8a52-1f0e-4c53-9a43-6c1d2f0e7b31", "version": "1.4.0", "notes": "Adds retry on ERP timeouts", "shareable": false}))]
pub struct CreatePackage {
    pub component_id: Uuid,
    /// Absent: the next whole number for the component ("1", "2", ...).
    #[schema(schema_with = berth_web::schema::optional_version_label)]
    pub version: Option<VersionLabel>,
    #[schema(max_length = 2000)]
    pub notes: Option<String>,
    pub shareable: Option<bool>,
    /// The source commit it is built from (recorded, shown on the package and its deployments).
    #[schema(schema_with = commit)]
    pub commit: Option<String>,
}

/// A commit: 1 to 200 characters, no control character (`check_commit`).
pub(crate) fn commit() -> utoipa::openapi::Object {
    berth_web::schema::printable(200, true)
}

#[derive(Serialize, ToSchema)]
pub struct PackageView {
    pub id: Uuid,
    pub component_id: Uuid,
    pub version: String,
    pub notes: String,
    pub shareable: bool,
    pub deleted: bool,
    /// `building` (accepted with 202; its archive is being written), `ready`, or `failed`.
    #[schema(value_type = String, pattern = "^(building|ready|failed)$")]
    pub status: &'static str,
    /// Why the build failed: only when `failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// `sha256:<hex>` of the archive; null until the package is ready.
    pub digest: Option<String>,
    /// The archive's size in bytes (0 until ready).
    pub size: u64,
    #[schema(value_type = Object)]
    pub manifest: Manifest,
    #[schema(value_type = Vec<Object>)]
    pub requirements: Vec<Requirement>,
    /// Only on single-package reads: bundled components revised since packaging.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub outdated_components: Option<Vec<OutdatedComponent>>,
    pub commit: Option<String>,
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
            status: p.status.as_str(),
            failure: p.failure.clone(),
            digest: p.digest.as_ref().map(|d| d.as_str().to_string()),
            size: p.size,
            manifest: p.manifest.clone(),
            requirements: p.requirements.clone(),
            outdated_components: outdated,
            commit: p.commit.clone(),
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
