//! Cursor pagination, shared by every list.

use serde::Serialize;

/// What a caller asked for: at most `limit` items after `cursor`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u32,
    /// Opaque; only the store that issued it can read it.
    pub cursor: Option<String>,
}

impl PageRequest {
    pub const DEFAULT_LIMIT: u32 = 50;
    pub const MAX_LIMIT: u32 = 100;

    /// Validates a caller's `limit` (1..=100, default 50).
    pub fn new(limit: Option<u32>, cursor: Option<String>) -> Result<Self, crate::DomainError> {
        let limit = limit.unwrap_or(Self::DEFAULT_LIMIT);
        if limit == 0 || limit > Self::MAX_LIMIT {
            return Err(crate::DomainError::invalid("limit", format!("must be between 1 and {}", Self::MAX_LIMIT)));
        }
        Ok(Self { limit, cursor: cursor.filter(|c| !c.is_empty()) })
    }
    pub fn first(limit: u32) -> Self {
        Self { limit, cursor: None }
    }
}

/// One page of a list: the items and, when more exist, the cursor of the next page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page { items: self.items.into_iter().map(f).collect(), next_cursor: self.next_cursor }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_limit_defaults_to_fifty() {
        assert_eq!(PageRequest::new(None, None).unwrap().limit, 50);
    }

    #[test]
    fn a_limit_of_zero_or_over_a_hundred_is_refused() {
        assert!(PageRequest::new(Some(0), None).is_err());
        assert!(PageRequest::new(Some(101), None).is_err());
        assert!(PageRequest::new(Some(100), None).is_ok());
    }

    #[test]
    fn an_empty_cursor_means_the_first_page() {
        assert_eq!(PageRequest::new(None, Some(String::new())).unwrap().cursor, None);
    }
}
