//! The items of `GET /v1/approvals/pending`.

use crate::routes::change_requests::views::ChangeRequestView;
use crate::routes::deployments::views::DeploymentView;
use berth_domain::usecases::Awaiting;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// One thing waiting on the caller's decision: a deployment or a change request.
#[derive(Serialize, ToSchema)]
pub struct PendingDecisionView {
    /// `deployment` or `change_request`.
    #[schema(example = "deployment")]
    pub kind: String,
    pub id: Uuid,
    pub environment_id: Uuid,
    pub requested_by: String,
    pub required_approvals: u32,
    /// Approvals counted so far.
    pub approvals: usize,
    pub created_at: DateTime<Utc>,
    /// The whole deployment, when `kind` is `deployment`; decide with `POST /v1/deployments/{id}/approvals`.
    pub deployment: Option<DeploymentView>,
    /// The whole change request, when `kind` is `change_request`; decide with `POST /v1/change-requests/{id}/approvals`.
    pub change_request: Option<ChangeRequestView>,
}

impl From<&Awaiting> for PendingDecisionView {
    fn from(a: &Awaiting) -> Self {
        match a {
            Awaiting::Deployment(d, approvals) => Self {
                kind: "deployment".into(),
                id: d.id.as_uuid(),
                environment_id: d.environment_id.as_uuid(),
                requested_by: d.requested_by.clone(),
                required_approvals: d.required_approvals,
                approvals: berth_domain::policy::approvals_for(approvals, std::slice::from_ref(&d.digest)),
                created_at: d.created_at,
                deployment: Some(DeploymentView::with_approvals(d, approvals)),
                change_request: None,
            },
            Awaiting::ChangeRequest(cr, approvals) => Self {
                kind: "change_request".into(),
                id: cr.id.as_uuid(),
                environment_id: cr.target_environment_id.as_uuid(),
                requested_by: cr.created_by.clone(),
                required_approvals: cr.required_approvals,
                approvals: berth_domain::policy::approvals_for(approvals, &cr.digests),
                created_at: cr.created_at,
                deployment: None,
                change_request: Some(ChangeRequestView::new(cr, approvals)),
            },
        }
    }
}
