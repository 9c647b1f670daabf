//! Cursor pagination over a list's items in sort-key order. Sort keys are
//! those the DynamoDB adapter's items sort by, so both stores list in the same
//! order. A cursor names its list and the last key it returned; one issued for
//! another list (or another tenant's) is refused, as is anything made up.

use base64::Engine;
use berth_domain::page::{Page, PageRequest};
use berth_domain::refusal::Refusal;
use berth_domain::{DomainError, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Order {
    OldestFirst,
    NewestFirst,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cursor {
    list: String,
    after: String,
}

/// One page of `items` (each with its sort key) of the list named `list`.
/// `next_cursor` is set when more items follow the page.
pub(crate) fn page_of<T>(list: &str, mut items: Vec<(String, T)>, request: &PageRequest, order: Order) -> Result<Page<T>> {
    if request.limit == 0 {
        // DynamoDB refuses a query with a limit of 0 as a malformed request.
        return Err(DomainError::unexpected("a page limit must be at least 1"));
    }
    items.sort_by(|a, b| a.0.cmp(&b.0));
    if order == Order::NewestFirst {
        items.reverse();
    }
    let start = match &request.cursor {
        None => 0,
        Some(cursor) => {
            let after = decode(cursor, list)?;
            let past = |key: &String| match order {
                Order::OldestFirst => *key > after,
                Order::NewestFirst => *key < after,
            };
            items.iter().position(|(key, _)| past(key)).unwrap_or(items.len())
        }
    };
    let limit = usize::try_from(request.limit).unwrap_or(usize::MAX);
    let mut rest = items.into_iter().skip(start);
    let page: Vec<(String, T)> = rest.by_ref().take(limit).collect();
    let more = rest.next().is_some();
    let next_cursor = match page.last() {
        Some((key, _)) if more => Some(encode(list, key)?),
        _ => None,
    };
    Ok(Page { items: page.into_iter().map(|(_, item)| item).collect(), next_cursor })
}

fn encode(list: &str, after: &str) -> Result<String> {
    let json = serde_json::to_vec(&Cursor { list: list.to_string(), after: after.to_string() }).map_err(DomainError::unexpected)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json))
}

fn decode(cursor: &str, list: &str) -> Result<String> {
    let invalid = || DomainError::from(Refusal::InvalidCursor);
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if cursor.list != list {
        return Err(invalid());
    }
    Ok(cursor.after)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(n: usize) -> Vec<(String, usize)> {
        (0..n).map(|i| (format!("{i:02}"), i)).collect()
    }

    fn request(limit: u32, cursor: Option<String>) -> PageRequest {
        PageRequest { limit, cursor }
    }

    #[test]
    fn pages_follow_one_another_until_the_last_which_has_no_cursor() {
        let first = page_of("l", items(5), &request(2, None), Order::OldestFirst).unwrap();
        assert_eq!(first.items, [0, 1]);
        let second = page_of("l", items(5), &request(2, first.next_cursor), Order::OldestFirst).unwrap();
        assert_eq!(second.items, [2, 3]);
        let last = page_of("l", items(5), &request(2, second.next_cursor), Order::OldestFirst).unwrap();
        assert_eq!((last.items, last.next_cursor), (vec![4], None));
    }

    #[test]
    fn newest_first_pages_walk_backwards() {
        let first = page_of("l", items(3), &request(2, None), Order::NewestFirst).unwrap();
        assert_eq!(first.items, [2, 1]);
        let last = page_of("l", items(3), &request(2, first.next_cursor), Order::NewestFirst).unwrap();
        assert_eq!(last.items, [0]);
    }

    #[test]
    fn a_cursor_of_another_list_or_made_up_is_refused() {
        let cursor = page_of("a", items(3), &request(1, None), Order::OldestFirst).unwrap().next_cursor;
        let refused =
            |c: Option<String>| matches!(page_of("b", items(3), &request(1, c), Order::OldestFirst), Err(DomainError::Refused(Refusal::InvalidCursor)));
        assert!(refused(cursor));
        assert!(refused(Some("not a cursor".into())));
        assert!(refused(Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"list":"b"}"#))));
    }
}
