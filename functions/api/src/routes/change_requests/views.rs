//! Request and response bodies of the change-request routes.

use crate::routes::deployments::views::{IssueView, ValidationView};
use crate::routes::governance::views::ApprovalView;
use berth_domain::change_request::{ChangeRequest, ChangeStatus, ChangeType};
use berth_domain::policy::Approval;
use berth_domain::usecases::{ItemReport, ItemScan};
use berth_domain::values::Name;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// `POST /v1/change-requests/{id}/deploy` (the body may be left out).
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"hold_if_frozen": false, "accept_outdated": false}))]
pub struct DeployChangeRequest {
    /// Inside a freeze window: hold its deployments until the window ends instead of refusing.
    pub hold_if_frozen: Option<bool>,
    /// Deploy items whose components were revised since packaging (see `/scan`) as
    /// packaged; without it they are refused 409 `outdated_items`. Recorded in the
    /// change request's audit event and on each such deployment.
    pub accept_outdated: Option<bool>,
}

/// `POST /v1/change-requests/{id}/validate`: the dry run of each item.
#[derive(Serialize, ToSchema)]
pub struct ChangeValidationView {
    pub items: Vec<ItemValidationView>,
}

#[derive(Serialize, ToSchema)]
pub struct ItemValidationView {
    pub component_id: Uuid,
    pub package_id: Uuid,
    pub errors: Vec<IssueView>,
    pub warnings: Vec<IssueView>,
}

impl From<&[ItemReport]> for ChangeValidationView {
    fn from(reports: &[ItemReport]) -> Self {
        let items = reports
            .iter()
            .map(|r| {
                let v = ValidationView::from(r.report.clone());
                ItemValidationView { component_id: r.component_id.as_uuid(), package_id: r.package_id.as_uuid(), errors: v.errors, warnings: v.warnings }
            })
            .collect();
        Self { items }
    }
}

/// `POST /v1/change-requests/{id}/scan`: which items are outdated, and what changed.
#[derive(Serialize, ToSchema)]
pub struct ChangeScanView {
    pub items: Vec<ItemScanView>,
}

#[derive(Serialize, ToSchema)]
pub struct ItemScanView {
    pub component_id: Uuid,
    pub package_id: Uuid,
    pub version: String,
    /// The component or a bundled child was revised since packaging.
    pub outdated: bool,
    /// Each component revised since packaging (the item's own and its bundled children).
    pub changes: Vec<RevisedComponentView>,
}

#[derive(Serialize, ToSchema)]
pub struct RevisedComponentView {
    pub component_id: Uuid,
    pub name: String,
    pub packaged_revision: u32,
    pub current_revision: u32,
}

impl From<&[ItemScan]> for ChangeScanView {
    fn from(scan: &[ItemScan]) -> Self {
        let items = scan
            .iter()
            .map(|i| ItemScanView {
                component_id: i.component_id.as_uuid(),
                package_id: i.package_id.as_uuid(),
                version: i.version.clone(),
                outdated: i.outdated(),
                changes: i
                    .changes
                    .iter()
                    .map(|c| RevisedComponentView {
                        component_id: c.id.as_uuid(),
                        name: c.name.clone(),
                        packaged_revision: c.packaged_revision,
                        current_revision: c.current_revision,
                    })
                    .collect(),
            })
            .collect();
        Self { items }
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
    #[schema(schema_with = berth_web::schema::name)]
    pub name: Name,
    #[serde(default)]
    #[schema(max_length = 4000)]
    pub overview: String,
    #[schema(schema_with = change_type)]
    pub change_type: ChangeType,
    pub target_environment_id: Uuid,
    /// 1 to 50 packages, each once.
    #[schema(schema_with = items)]
    pub items: Vec<ChangeItemInput>,
    /// At most 20 http(s) URLs (printable ASCII), each at most 2000 characters.
    #[serde(default)]
    #[schema(schema_with = links)]
    pub links: Vec<String>,
}

/// At most 20 http(s) URLs of at most 2000 printable ASCII characters (`check_parts`).
fn links_of(optional: bool) -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
    let link = ObjectBuilder::new().schema_type(Type::String).max_length(Some(2000)).pattern(Some("^https?://[!-~]*$"));
    let array = ArrayBuilder::new().items(link).max_items(Some(20));
    if optional { array.schema_type(SchemaType::from_iter([Type::Array, Type::Null])).build() } else { array.build() }
}

/// 1 to 50 packages, each once (`check_parts`).
fn items_of(optional: bool) -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, SchemaType, Type};
    let array = ArrayBuilder::new().items(utoipa::openapi::Ref::from_schema_name("ChangeItemInput")).min_items(Some(1)).max_items(Some(50)).unique_items(true);
    if optional { array.schema_type(SchemaType::from_iter([Type::Array, Type::Null])).build() } else { array.build() }
}

fn items() -> utoipa::openapi::schema::Array {
    items_of(false)
}

fn optional_items() -> utoipa::openapi::schema::Array {
    items_of(true)
}

fn links() -> utoipa::openapi::schema::Array {
    links_of(false)
}

fn optional_links() -> utoipa::openapi::schema::Array {
    links_of(true)
}

/// `ChangeType`'s names.
fn change_type() -> utoipa::openapi::Object {
    berth_web::schema::one_of(&["standard", "normal", "emergency"])
}

/// `ChangeType`'s names, or null.
fn optional_change_type() -> utoipa::openapi::Object {
    berth_web::schema::optional_one_of(&["standard", "normal", "emergency"])
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"overview": "ERP retry, with the new timeout"}))]
pub struct PatchChangeRequest {
    #[schema(schema_with = berth_web::schema::optional_name)]
    pub name: Option<Name>,
    #[schema(max_length = 4000)]
    pub overview: Option<String>,
    #[schema(schema_with = optional_change_type)]
    pub change_type: Option<ChangeType>,
    #[schema(schema_with = optional_items)]
    pub items: Option<Vec<ChangeItemInput>>,
    #[schema(schema_with = optional_links)]
    pub links: Option<Vec<String>>,
}

pub fn package_ids(items: Vec<ChangeItemInput>) -> Vec<berth_domain::ids::PackageId> {
    items.into_iter().map(|i| berth_domain::ids::PackageId::from_uuid(i.package_id)).collect()
}
