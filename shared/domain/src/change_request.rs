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
    pub const ALL: [Self; 7] = [Self::Draft, Self::Submitted, Self::Approved, Self::Rejected, Self::Deploying, Self::Completed, Self::Failed];
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

    /// Every move a change request makes: the change request after `step`,
    /// or why it cannot take that step. (Its version and `updated_at` are the
    /// store's business: `save_change` bumps them.)
    pub fn step(&self, step: ChangeStep) -> Result<ChangeRequest, ChangeRefused> {
        use ChangeStatus as S;
        use ChangeStep as E;
        let mut next = self.clone();
        match (self.status, step) {
            (S::Draft, E::Submit { required_approvals }) => {
                next.required_approvals = required_approvals;
                next.status = if required_approvals == 0 { S::Approved } else { S::Submitted };
            }
            (from, E::Submit { .. }) => return Err(ChangeRefused::NotDraft(from)),
            (S::Submitted, E::Approve) => next.status = S::Approved,
            (S::Submitted, E::Reject) => next.status = S::Rejected,
            (from, E::Approve | E::Reject) => return Err(ChangeRefused::NotSubmitted(from)),
            // New digests void the approvals given so far.
            (S::Approved, E::NewDigests) => next.status = S::Submitted,
            (from, E::Edit | E::NewDigests) if from.editable() => {}
            (from, E::Edit | E::NewDigests) => return Err(ChangeRefused::Locked(from)),
            (S::Approved, E::StartDeploying) => next.status = S::Deploying,
            (from, E::StartDeploying) => return Err(ChangeRefused::NotApproved(from)),
            (S::Deploying, E::Complete) => next.status = S::Completed,
            (S::Deploying, E::Fail) => next.status = S::Failed,
            (from, E::Complete | E::Fail) => return Err(ChangeRefused::NotDeploying(from)),
        }
        Ok(next)
    }
}

/// What happens to a change request (see `ChangeRequest::step`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeStep {
    /// Submitted for the approvals the target environment's policy requires
    /// now (approved at once when it requires none).
    Submit { required_approvals: u32 },
    /// Its last required approval arrived.
    Approve,
    /// An approver rejected it.
    Reject,
    /// Its name, overview, type, links or items change.
    Edit,
    /// An edit changed its items' digests.
    NewDigests,
    /// Its deployments are being created.
    StartDeploying,
    /// Every deployment succeeded (or was superseded after succeeding).
    Complete,
    /// A deployment could not be created, or one of them did not succeed.
    Fail,
}

/// Why a change request cannot take a step: the API's 409 code and message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChangeRefused {
    #[error("only a draft can be submitted; this one is {}", .0.as_str())]
    NotDraft(ChangeStatus),
    #[error("the change request is {}, not waiting for approvals", .0.as_str())]
    NotSubmitted(ChangeStatus),
    #[error("a change request that is {} cannot change", .0.as_str())]
    Locked(ChangeStatus),
    #[error("the change request is {}, not approved", .0.as_str())]
    NotApproved(ChangeStatus),
    #[error("the change request is {}: it has no deployments to complete", .0.as_str())]
    NotDeploying(ChangeStatus),
}

impl ChangeRefused {
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotDraft(_) => "not_draft",
            Self::NotSubmitted(_) => "not_submitted",
            Self::Locked(_) => "change_request_locked",
            Self::NotApproved(_) => "not_approved",
            Self::NotDeploying(_) => "not_deploying",
        }
    }
}

impl From<ChangeRefused> for crate::DomainError {
    fn from(refused: ChangeRefused) -> Self {
        crate::DomainError::conflict(refused.code(), refused.to_string())
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
        // A URL is printable ASCII (RFC 3986): other characters are percent-encoded.
        if !(link.starts_with("https://") || link.starts_with("http://")) || link.len() > 2000 || !link.bytes().all(|b| b.is_ascii_graphic()) {
            v.push(&format!("links[{i}]"), "must be an http(s) URL of at most 2000 printable ASCII characters");
        }
    }
    v.finish()
}

#[cfg(test)]
mod transitions;

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
