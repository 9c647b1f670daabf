//! The response body of `GET /v1/me`.

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Serialize, ToSchema)]
pub struct MeView {
    pub sub: String,
    pub tenant_id: Uuid,
    pub tenant_name: String,
    pub tenant_suspended: bool,
    pub roles: Vec<String>,
}
