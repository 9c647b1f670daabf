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
