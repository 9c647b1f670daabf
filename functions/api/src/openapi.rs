//! The OpenAPI document, generated from the handlers' annotations.

use crate::routes::*;
use crate::views::*;
use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Berth API", version = "1", description = "Deployment control plane for integration platforms."),
    paths(
        me, create_tenant, list_tenants, get_tenant, patch_tenant,
        create_environment, list_environments, get_environment, patch_environment, delete_environment,
        attach_runtime, detach_runtime, list_environment_runtimes,
        create_runtime, list_runtimes, get_runtime, delete_runtime,
        create_component, list_components, get_component, create_revision, list_revisions, get_revision,
        create_package, list_packages, get_package, download_package, delete_package,
        validate_deployment, create_deployment, list_deployments, get_deployment, list_targets, list_events, cancel_deployment, retry_deployment,
        active_versions, undeploy, roll_back, decide, get_policy, put_policy,
        change_requests::create, change_requests::list, change_requests::get, change_requests::patch, change_requests::submit,
        change_requests::decide, change_requests::deploy, change_requests::complete,
        list_audit, verify_audit,
    ),
    components(schemas(MeView, TenantView, PlanView, PlanInput, CreateTenant, PatchTenant, EnvironmentView, CreateEnvironment, PatchEnvironment, RuntimeView, CreateRuntime,
        ComponentView, RevisionView, CreateComponent, CreateRevision, CreatePackage, PackageView, DownloadView,
        DeploymentView, CreateDeployment, ValidationView, IssueView, TargetView, EventView, ActiveVersionView,
        ApprovalView, CreateApproval, PolicyBody, ChangeRequestView, ChangeItemView, CreateChangeRequest, PatchChangeRequest, ChangeItemInput, RollbackRequest, DeployChangeRequest)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()));
    }
}

pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
