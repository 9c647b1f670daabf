//! What every resource's views share: the shape of a list.
//! Each resource's request and response bodies live beside its routes
//! (`routes/<resource>/views.rs`).

use serde::Serialize;
use utoipa::ToSchema;

/// `{items, next_cursor}` of every list.
#[derive(Serialize, ToSchema)]
pub struct ListOf<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> ListOf<T> {
    pub fn from_page<U>(page: berth_domain::page::Page<U>, f: impl FnMut(U) -> T) -> Self {
        let page = page.map(f);
        Self { items: page.items, next_cursor: page.next_cursor }
    }
}

/// RFC 9457 problem details: the body of every 4xx and 5xx answer, as
/// `application/problem+json`. Clients branch on `code`, which is stable.
#[derive(Serialize, ToSchema)]
pub struct ProblemView {
    #[serde(rename = "type")]
    #[schema(example = "https://berth.dev/problems/not_found")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[schema(example = "not_found")]
    pub code: String,
    /// The fields at fault (422), each with its JSON path.
    pub errors: Vec<FieldErrorView>,
}

/// One invalid field of a 422.
#[derive(Serialize, ToSchema)]
pub struct FieldErrorView {
    pub field: String,
    pub message: String,
}
