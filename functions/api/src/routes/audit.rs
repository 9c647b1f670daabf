use crate::ctx::Ctx;
use crate::state::AppState;
use crate::views::ListOf;
use axum::Json;
use axum::extract::State;
use axum::http::request::Parts;
use berth_domain::DomainError;
use berth_domain::audit::AuditEvent;
use berth_domain::usecases::{AuditFilter, VerifyCursor, VerifyReport, VerifyScope};
use berth_web::extract::serde_urlencoded_query;
use berth_web::{ApiError, PageQuery};

#[derive(serde::Deserialize)]
struct Filter {
    entity_type: Option<String>,
    entity_id: Option<String>,
    actor: Option<String>,
    action: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

fn time(field: &str, raw: Option<String>) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
    raw.map(|r| r.parse().map_err(|_| ApiError::from(DomainError::invalid(field, "must be an RFC 3339 time")))).transpose()
}

/// The tenant's audit events, oldest first; filters: entity, actor, action, time range.
#[utoipa::path(get, path = "/v1/audit", tag = "audit",
    params(("entity_type" = Option<String>, Query), ("entity_id" = Option<String>, Query), ("actor" = Option<String>, Query), ("action" = Option<String>, Query),
        ("from" = Option<String>, Query), ("to" = Option<String>, Query), ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, description = "{items: [audit event], next_cursor}")), security(("bearer" = [])))]
pub async fn list_audit(State(state): State<AppState>, Ctx(ctx): Ctx, PageQuery(page): PageQuery, parts: Parts) -> Result<Json<ListOf<AuditEvent>>, ApiError> {
    let raw: Filter = serde_urlencoded_query(parts.uri.query().unwrap_or(""))?;
    let filter = AuditFilter {
        entity_type: raw.entity_type,
        entity_id: raw.entity_id,
        actor: raw.actor,
        action: raw.action,
        from: time("from", raw.from)?,
        to: time("to", raw.to)?,
    };
    let page = state.berth.list_audit(&ctx, &filter, &page).await?;
    Ok(Json(ListOf::from_page(page, |e| e)))
}

#[derive(serde::Deserialize)]
struct VerifyQuery {
    full: Option<String>,
    cursor: Option<String>,
}

/// Verifies a bounded slice of the hash chain and reports the first broken link.
/// Without `full`: from the last verified checkpoint to the head (any reader).
/// With `full=true` (admins): from the genesis, or from `cursor` (a previous `next_cursor`).
#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit",
    params(("full" = Option<bool>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, description = "{ok, checked, first_broken, full, from_seq, to_seq, head_seq, remaining, next_cursor, checkpoint}"),
        (status = 403, description = "full=true without the admin role")),
    security(("bearer" = [])))]
pub async fn verify_audit(State(state): State<AppState>, Ctx(ctx): Ctx, parts: Parts) -> Result<Json<VerifyReport>, ApiError> {
    let raw: VerifyQuery = serde_urlencoded_query(parts.uri.query().unwrap_or(""))?;
    let full = match raw.full.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(DomainError::invalid("full", "must be true or false").into()),
    };
    let scope = match (full, raw.cursor) {
        (true, cursor) => VerifyScope::Full { after: cursor.as_deref().map(VerifyCursor::parse).transpose()? },
        (false, None) => VerifyScope::Incremental,
        (false, Some(_)) => return Err(DomainError::invalid("cursor", "is only accepted with full=true").into()),
    };
    Ok(Json(state.berth.verify_audit(&ctx, scope).await?))
}
