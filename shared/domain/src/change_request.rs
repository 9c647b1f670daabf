//! Change requests: a named, governed set of packages released together to
//! one environment, approved as a whole and bound to the exact digests.

use crate::ids::{ChangeRequestId, DeploymentId, EnvironmentId, PackageId};
use crate::runtime::Digest;
use crate::values::{Name, Version};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeType {
    Standard,
    Normal,
    Emergency,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeStatus {
    Draft,
    Submitted,
    Approved,
    Rejected,
    Deploying,
    Completed,
    Failed,
}

impl ChangeStatus {
    pub fn as_str(self) -> String {
        serde_json::to_value(self).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
    }
    /// Its items may still change.
    pub fn editable(self) -> bool {
        matches!(self, Self::Draft | Self::Submitted | Self::Approved)
    }
}

pub const MAX_ITEMS: usize = 50;
pub const MAX_LINKS: usize = 20;
pub const MAX_OVERVIEW_CHARS: usize = 4000;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChangeRequest {
    pub id: ChangeRequestId,
    pub name: Name,
    pub overview: String,
    pub change_type: ChangeType,
    pub status: ChangeStatus,
    pub target_environment_id: EnvironmentId,
    pub items: Vec<PackageId>,
    /// The items' package digests, in item order (what approvals are bound to).
    pub digests: Vec<Digest>,
    pub links: Vec<String>,
    /// Set when it is submitted, from the target environment's policy.
    pub required_approvals: u32,
    pub deployments: Vec<DeploymentId>,
    pub created_by: String,
    /// Everyone who changed its items after creating it (see `authors`).
    #[serde(default)]
    pub item_editors: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: Version,
}

impl ChangeRequest {
    /// Who may not approve it (separation of duties): its creator and
    /// everyone who changed its items.
    pub fn authors(&self) -> Vec<&str> {
        std::iter::once(self.created_by.as_str()).chain(self.item_editors.iter().map(String::as_str)).collect()
    }
}

/// Checks a change request's free-form parts; returns the cleaned links.
pub fn check_parts(overview: &str, items: &[PackageId], links: &[String]) -> crate::Result<()> {
    let mut v = crate::error::Validator::default();
    if overview.chars().count() > MAX_OVERVIEW_CHARS {
        v.push("overview", format!("must be at most {MAX_OVERVIEW_CHARS} characters"));
    }
    if items.is_empty() || items.len() > MAX_ITEMS {
        v.push("items", format!("must hold 1 to {MAX_ITEMS} packages"));
    }
    let mut seen = std::collections::HashSet::new();
    if items.iter().any(|i| !seen.insert(*i)) {
        v.push("items", "must not name a package twice");
    }
    if links.len() > MAX_LINKS {
        v.push("links", format!("at most {MAX_LINKS} links"));
    }
    for (i, link) in links.iter().enumerate() {
        if !(link.starts_with("https://") || link.starts_with("http://")) || link.len() > 2000 || link.chars().any(char::is_whitespace) {
            v.push(&format!("links[{i}]"), "must be an http(s) URL of at most 2000 characters");
        }
    }
    v.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_request_needs_distinct_items_and_web_links() {
        let p = PackageId::new();
        assert!(check_parts("", &[p], &["https://tickets.example/CHG-1".into()]).is_ok());
        assert!(check_parts("", &[], &[]).is_err(), "no items");
        assert!(check_parts("", &[p, p], &[]).is_err(), "a package twice");
        assert!(check_parts("", &[p], &["javascript:alert(1)".into()]).is_err());
        assert!(check_parts(&"x".repeat(MAX_OVERVIEW_CHARS + 1), &[p], &[]).is_err());
    }

    #[test]
    fn items_are_editable_until_deployment_starts() {
        assert!(ChangeStatus::Submitted.editable());
        assert!(ChangeStatus::Approved.editable());
        assert!(!ChangeStatus::Deploying.editable());
    }
}
