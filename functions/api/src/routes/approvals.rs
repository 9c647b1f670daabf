pub(crate) mod views;

use crate::ctx::Ctx;
use crate::state::AppState;
use crate::views::ListOf;
use axum::Json;
use axum::extract::State;
use berth_web::{ApiError, PageQuery};
use views::PendingDecisionView;

/// The approver's inbox: deployments pending approval and change requests submitted that the
/// caller may decide (one of the policy's approver roles, not their own request unless the
/// policy allows self-approval, not decided yet), oldest first. A page may hold fewer than
/// `limit` items while `next_cursor` goes on.
#[utoipa::path(get, path = "/v1/approvals/pending", operation_id = "list_pending_approvals", tag = "approvals", params(("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = ListOf<PendingDecisionView>)), security(("bearer" = [])))]
pub async fn pending(State(state): State<AppState>, Ctx(ctx): Ctx, PageQuery(page): PageQuery) -> Result<Json<ListOf<PendingDecisionView>>, ApiError> {
    let page = state.berth.approvals_inbox(&ctx, &page).await?;
    Ok(Json(ListOf::from_page(page, |a| PendingDecisionView::from(&a))))
}
