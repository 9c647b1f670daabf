pub(crate) mod rollout;
pub(crate) mod views;

use super::created;
use crate::ctx::Ctx;
use crate::state::AppState;
use crate::views::ListOf;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use berth_domain::DomainError;
use berth_domain::context::TenantCtx;
use berth_domain::deployment::DeploymentStatus;
use berth_domain::ids::{ComponentId, DeploymentId, EnvironmentId, PackageId};
use berth_domain::ports::DeploymentFilter;
use berth_domain::usecases::{NewDeployment, NewLatestDeployment};
use berth_web::extract::{hold_if_frozen_of, path_id, serde_urlencoded_query};
use berth_web::{ApiError, JsonBody, OptionalJsonBody, PageQuery};
use views::{
    ActiveVersionView, ActiveVersionsView, CreateDeployment, Deploying, DeploymentView, EventView, QuarantinedVersionView, RollbackRequest, TargetView,
    ValidationView,
};

/// The dry run: blocking `errors` and `warnings`, without deploying.
#[utoipa::path(post, path = "/v1/deployments/validate", tag = "deployments", request_body = CreateDeployment,
    responses((status = 200, body = ValidationView)), security(("bearer" = [])))]
pub async fn validate_deployment(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    JsonBody(body): JsonBody<CreateDeployment>,
) -> Result<Json<ValidationView>, ApiError> {
    let (package, env) = match body.deploying()? {
        (Deploying::Package(p), env) => (p, env),
        (Deploying::LatestRevision(_), _) => return Err(DomainError::invalid("latest_revision", "the dry run takes a package_id").into()),
    };
    if let Some(rollout) = &body.rollout {
        state.berth.check_rollout(&ctx, env, &rollout.into()).await?;
    }
    let report = state.berth.validate_deployment_overriding(&ctx, package, env, body.override_quarantine.unwrap_or(false)).await?;
    Ok(Json(report.into()))
}

/// Deploys a package version to an environment (refused with the first blocking error's code),
/// or, with `latest_revision: true`, the component's latest revision (`package_created` says
/// whether it was packaged for this).
#[utoipa::path(post, path = "/v1/deployments", tag = "deployments", request_body = CreateDeployment,
    responses((status = 201, body = DeploymentView),
        (status = 409, description = "package_not_ready, environment_not_enabled, quarantined, deployment_in_progress, no_runtimes, requirement_missing, connection_licenses_exceeded, ..."),
        (status = 422, description = "both or neither of package_id and latest_revision: true")),
    security(("bearer" = [])))]
pub async fn create_deployment(State(state): State<AppState>, Ctx(ctx): Ctx, JsonBody(body): JsonBody<CreateDeployment>) -> Result<Response, ApiError> {
    let (package_id, environment_id) = match body.deploying()? {
        (Deploying::Package(p), env) => (p, env),
        (Deploying::LatestRevision(component), env) => return deploy_latest_revision(&state, &ctx, component, env, body).await,
    };
    let input = NewDeployment {
        package_id,
        environment_id,
        notes: body.notes.unwrap_or_default(),
        scheduled_at: body.scheduled_at,
        hold_if_frozen: body.hold_if_frozen.unwrap_or(false),
        commit: body.commit,
        override_quarantine: body.override_quarantine.unwrap_or(false),
        rollout: body.rollout.as_ref().map(Into::into),
    };
    let d = state.berth.create_deployment(&ctx, input).await?;
    Ok(created(format!("/v1/deployments/{}", d.id), None, DeploymentView::from(&d)))
}

async fn deploy_latest_revision(
    state: &AppState,
    ctx: &TenantCtx,
    component: ComponentId,
    environment_id: EnvironmentId,
    body: CreateDeployment,
) -> Result<Response, ApiError> {
    let input = NewLatestDeployment {
        component_id: component,
        environment_id,
        notes: body.notes.unwrap_or_default(),
        scheduled_at: body.scheduled_at,
        hold_if_frozen: body.hold_if_frozen.unwrap_or(false),
        commit: body.commit,
        override_quarantine: body.override_quarantine.unwrap_or(false),
        rollout: body.rollout.as_ref().map(Into::into),
    };
    let latest = state.berth.deploy_latest_revision(ctx, input).await?;
    let view = DeploymentView { package_created: Some(latest.package_created), ..DeploymentView::from(&latest.deployment) };
    Ok(created(format!("/v1/deployments/{}", latest.deployment.id), None, view))
}

#[derive(serde::Deserialize)]
struct Filter {
    environment_id: Option<String>,
    component_id: Option<String>,
    status: Option<String>,
}

fn uuid_param<T: std::str::FromStr>(field: &str, raw: Option<String>) -> Result<Option<T>, ApiError> {
    raw.map(|r| r.parse::<T>().map_err(|_| ApiError::from(DomainError::invalid(field, "must be a UUID")))).transpose()
}

/// Deployments, newest first: the history per environment and component.
#[utoipa::path(get, path = "/v1/deployments", tag = "deployments",
    params(("environment_id" = Option<String>, Query), ("component_id" = Option<String>, Query), ("status" = Option<String>, Query), ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = ListOf<DeploymentView>)), security(("bearer" = [])))]
pub async fn list_deployments(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PageQuery(page): PageQuery,
    parts: Parts,
) -> Result<Json<ListOf<DeploymentView>>, ApiError> {
    let raw: Filter = serde_urlencoded_query(parts.uri.query().unwrap_or(""))?;
    let filter = DeploymentFilter {
        environment: uuid_param::<EnvironmentId>("environment_id", raw.environment_id)?,
        component: uuid_param::<ComponentId>("component_id", raw.component_id)?,
        status: raw
            .status
            .map(|s| DeploymentStatus::parse(&s).ok_or_else(|| ApiError::from(DomainError::invalid("status", "is not a deployment status"))))
            .transpose()?,
    };
    let page = state.berth.list_deployments(&ctx, &filter, &page).await?;
    let mut items = Vec::with_capacity(page.items.len());
    for d in &page.items {
        items.push(DeploymentView::with_approvals(d, &state.berth.deployment_approvals(&ctx, d.id).await?));
    }
    Ok(Json(ListOf { items, next_cursor: page.next_cursor }))
}

#[utoipa::path(get, path = "/v1/deployments/{id}", tag = "deployments", responses((status = 200, body = DeploymentView), (status = 404)), security(("bearer" = [])))]
pub async fn get_deployment(State(state): State<AppState>, Ctx(ctx): Ctx, Path(id): Path<String>) -> Result<Json<DeploymentView>, ApiError> {
    let d = state.berth.get_deployment(&ctx, path_id::<DeploymentId>(&id, "deployment")?).await?;
    // One that needed no approval has none: no Query for them (the bench's latency phase; most deployments).
    let approvals = if d.required_approvals == 0 { vec![] } else { state.berth.deployment_approvals(&ctx, d.id).await? };
    Ok(Json(DeploymentView::with_approvals(&d, &approvals)))
}

/// Per-runtime state.
#[utoipa::path(get, path = "/v1/deployments/{id}/targets", tag = "deployments", responses((status = 200, body = ListOf<TargetView>)), security(("bearer" = [])))]
pub async fn list_targets(State(state): State<AppState>, Ctx(ctx): Ctx, Path(id): Path<String>) -> Result<Json<ListOf<TargetView>>, ApiError> {
    let targets = state.berth.list_targets(&ctx, path_id::<DeploymentId>(&id, "deployment")?).await?;
    Ok(Json(ListOf { items: targets.iter().map(TargetView::from).collect(), next_cursor: None }))
}

/// The timeline.
#[utoipa::path(get, path = "/v1/deployments/{id}/events", tag = "deployments", params(("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = ListOf<EventView>)), security(("bearer" = [])))]
pub async fn list_events(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    PageQuery(page): PageQuery,
) -> Result<Json<ListOf<EventView>>, ApiError> {
    let page = state.berth.list_deployment_events(&ctx, path_id::<DeploymentId>(&id, "deployment")?, &page).await?;
    Ok(Json(ListOf::from_page(page, |e| EventView { at: e.at, runtime_id: e.runtime_id.map(|r| r.as_uuid()), message: e.message })))
}

#[utoipa::path(post, path = "/v1/deployments/{id}/cancel", tag = "deployments", responses((status = 200, body = DeploymentView), (status = 409, description = "deployment_started")), security(("bearer" = [])))]
pub async fn cancel_deployment(State(state): State<AppState>, Ctx(ctx): Ctx, Path(id): Path<String>) -> Result<Json<DeploymentView>, ApiError> {
    Ok(Json(DeploymentView::from(&state.berth.cancel_deployment(&ctx, path_id::<DeploymentId>(&id, "deployment")?).await?)))
}

/// Sends the failed targets their job again.
#[utoipa::path(post, path = "/v1/deployments/{id}/retry", tag = "deployments", responses((status = 200, body = DeploymentView), (status = 409, description = "not_retryable")), security(("bearer" = [])))]
pub async fn retry_deployment(State(state): State<AppState>, Ctx(ctx): Ctx, Path(id): Path<String>) -> Result<Json<DeploymentView>, ApiError> {
    Ok(Json(DeploymentView::from(&state.berth.retry_deployment(&ctx, path_id::<DeploymentId>(&id, "deployment")?).await?)))
}

/// Stops a rollout in batches before its next batch (audited `deployment.halted`): the targets
/// waiting for theirs are `skipped`, the jobs already sent finish.
#[utoipa::path(post, path = "/v1/deployments/{id}/halt", tag = "deployments",
    responses((status = 200, body = DeploymentView), (status = 403, description = "forbidden: not one of the policy's deployer roles"),
        (status = 409, description = "not_haltable: not in progress in batches, or no target waits for its batch")),
    security(("bearer" = [])))]
pub async fn halt_deployment(State(state): State<AppState>, Ctx(ctx): Ctx, Path(id): Path<String>) -> Result<Json<DeploymentView>, ApiError> {
    Ok(Json(DeploymentView::from(&state.berth.halt_deployment(&ctx, path_id::<DeploymentId>(&id, "deployment")?).await?)))
}

/// Resumes a halted rollout (audited `deployment.resumed`): the targets the halt skipped wait for
/// their batch again and the next batch starts; the failures so far are accepted.
#[utoipa::path(post, path = "/v1/deployments/{id}/resume", tag = "deployments",
    responses((status = 200, body = DeploymentView), (status = 403, description = "forbidden: not one of the policy's deployer roles"),
        (status = 409, description = "not_halted, deployment_in_progress (another deployment of the component took over), freeze_window, environment_not_enabled")),
    security(("bearer" = [])))]
pub async fn resume_deployment(State(state): State<AppState>, Ctx(ctx): Ctx, Path(id): Path<String>) -> Result<Json<DeploymentView>, ApiError> {
    Ok(Json(DeploymentView::from(&state.berth.resume_deployment(&ctx, path_id::<DeploymentId>(&id, "deployment")?).await?)))
}

/// What the environment runs, with `outdated` and `out_of_sync`, and the versions quarantined there.
#[utoipa::path(get, path = "/v1/environments/{id}/active", tag = "deployments", responses((status = 200, body = ActiveVersionsView)), security(("bearer" = [])))]
pub async fn active_versions(State(state): State<AppState>, Ctx(ctx): Ctx, Path(id): Path<String>) -> Result<Json<ActiveVersionsView>, ApiError> {
    let env = path_id::<EnvironmentId>(&id, "environment")?;
    let views = state.berth.active_versions(&ctx, env).await?;
    let quarantined = state.berth.quarantined_versions(&ctx, env).await?;
    Ok(Json(ActiveVersionsView {
        items: views.iter().map(ActiveVersionView::from).collect(),
        next_cursor: None,
        quarantined: quarantined.iter().map(QuarantinedVersionView::from).collect(),
    }))
}

/// Lifts a version's quarantine in the environment (audited `quarantine.lifted`):
/// it may be deployed there again without `override_quarantine`.
#[utoipa::path(delete, path = "/v1/environments/{id}/quarantine/{package_id}", tag = "deployments",
    responses((status = 204), (status = 403, description = "forbidden: deployers and admins only"), (status = 404, description = "not quarantined there")),
    security(("bearer" = [])))]
pub async fn lift_quarantine(State(state): State<AppState>, Ctx(ctx): Ctx, Path((id, package)): Path<(String, String)>) -> Result<StatusCode, ApiError> {
    let env = path_id::<EnvironmentId>(&id, "environment")?;
    let package = path_id::<PackageId>(&package, "package")?;
    state.berth.lift_quarantine(&ctx, env, package).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Undeploys a component: returns the undeploy deployment (202: it runs on the
/// runtimes, or waits for approvals or a freeze window's end as the policy says).
#[utoipa::path(delete, path = "/v1/environments/{id}/active/{component_id}", tag = "deployments",
    params(("hold_if_frozen" = Option<bool>, Query, description = "inside a freeze window: hold until it ends instead of refusing")),
    responses((status = 202, body = DeploymentView), (status = 403, description = "forbidden: not one of the policy's deployer roles"),
        (status = 404, description = "not active there"), (status = 409, description = "freeze_window, deployment_in_progress, environment_not_enabled")),
    security(("bearer" = [])))]
pub async fn undeploy(State(state): State<AppState>, Ctx(ctx): Ctx, Path((id, component)): Path<(String, String)>, parts: Parts) -> Result<Response, ApiError> {
    let env = path_id::<EnvironmentId>(&id, "environment")?;
    let component = path_id::<ComponentId>(&component, "component")?;
    let d = state.berth.undeploy(&ctx, env, component, hold_if_frozen_of(&parts)?).await?;
    Ok((StatusCode::ACCEPTED, Json(DeploymentView::from(&d))).into_response())
}

/// Rolls the component back to the version active before the current one, through the
/// environment's policy as a deploy (roles, freeze windows, approvals).
#[utoipa::path(post, path = "/v1/environments/{id}/active/{component_id}/rollback", tag = "deployments", request_body = Option<RollbackRequest>,
    responses((status = 201, body = DeploymentView), (status = 403, description = "forbidden"), (status = 404, description = "not active there"),
        (status = 409, description = "no_previous_version, freeze_window, deployment_in_progress, ...")),
    security(("bearer" = [])))]
pub async fn roll_back(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path((id, component)): Path<(String, String)>,
    OptionalJsonBody(body): OptionalJsonBody<RollbackRequest>,
) -> Result<Response, ApiError> {
    let env = path_id::<EnvironmentId>(&id, "environment")?;
    let component = path_id::<ComponentId>(&component, "component")?;
    let d = state.berth.roll_back(&ctx, env, component, body.notes.unwrap_or_default(), body.hold_if_frozen.unwrap_or(false)).await?;
    Ok(created(format!("/v1/deployments/{}", d.id), None, DeploymentView::from(&d)))
}
