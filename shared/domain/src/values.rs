//! Validated value types: an invalid name or plan cannot exist.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A display name: 1 to 100 characters as sent, no control characters, not
/// only white space; stored trimmed. (Checked as sent, not once trimmed, so
/// that the OpenAPI document can state the rule as a length and a pattern.)
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Name(String);

impl Name {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err("must not be empty".into());
        }
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(format!("must be at most {} characters", Self::MAX_CHARS));
        }
        if raw.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        Ok(Self(trimmed.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The form under which uniqueness is checked: names differing only in
    /// letter case are the same name.
    pub fn unique_key(&self) -> String {
        self.0.to_lowercase()
    }
}

impl TryFrom<String> for Name {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}
impl From<Name> for String {
    fn from(n: Name) -> Self {
        n.0
    }
}
impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Free text of at most 1000 characters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Description(String);

impl Description {
    pub const MAX_CHARS: usize = 1000;
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(format!("must be at most {} characters", Self::MAX_CHARS));
        }
        Ok(Self(raw.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for Description {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}
impl From<Description> for String {
    fn from(d: Description) -> Self {
        d.0
    }
}

/// What a caller may do. A token carries any number of roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Developer,
    Deployer,
    Approver,
    Admin,
    PlatformAdmin,
}

impl Role {
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "viewer" => Self::Viewer,
            "developer" => Self::Developer,
            "deployer" => Self::Deployer,
            "approver" => Self::Approver,
            "admin" => Self::Admin,
            "platform_admin" => Self::PlatformAdmin,
            _ => return None,
        })
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Developer => "developer",
            Self::Deployer => "deployer",
            Self::Approver => "approver",
            Self::Admin => "admin",
            Self::PlatformAdmin => "platform_admin",
        }
    }
}

/// An environment's fixed classification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Classification {
    Test,
    Production,
}

/// What a tenant's subscription allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Distinct connection components deployable at once, per classification.
    pub connection_licenses: u32,
    pub max_runtimes: u32,
    pub max_environments: u32,
}

impl Plan {
    pub const LIMIT_CEILING: u32 = 100_000;

    pub fn new(connection_licenses: u32, max_runtimes: u32, max_environments: u32) -> Result<Self, crate::DomainError> {
        let mut v = crate::error::Validator::default();
        for (field, value) in
            [("plan.connection_licenses", connection_licenses), ("plan.max_runtimes", max_runtimes), ("plan.max_environments", max_environments)]
        {
            if value > Self::LIMIT_CEILING {
                v.push(field, format!("must be at most {}", Self::LIMIT_CEILING));
            }
        }
        v.finish()?;
        Ok(Self { connection_licenses, max_runtimes, max_environments })
    }
}

impl Default for Plan {
    /// The plan a tenant gets when onboarding names none.
    fn default() -> Self {
        Self { connection_licenses: 10, max_runtimes: 10, max_environments: 10 }
    }
}

/// Optimistic-concurrency version of a mutable entity; its HTTP form is the etag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Version(pub u64);

impl Version {
    pub const FIRST: Version = Version(1);
    pub fn next(self) -> Version {
        Version(self.0 + 1)
    }
    /// The quoted HTTP entity tag, e.g. `"3"`.
    pub fn etag(self) -> String {
        format!("\"{}\"", self.0)
    }
    /// Reads an `If-Match` value: `"3"`, `W/"3"` or `3`.
    pub fn from_etag(raw: &str) -> Option<Version> {
        let raw = raw.trim();
        let raw = raw.strip_prefix("W/").unwrap_or(raw);
        raw.trim_matches('"').parse().ok().map(Version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_trimmed_and_kept() {
        assert_eq!(Name::parse("  Production ").unwrap().as_str(), "Production");
    }

    #[test]
    fn an_empty_or_blank_name_is_refused() {
        assert!(Name::parse("").is_err());
        assert!(Name::parse("   ").is_err());
    }

    #[test]
    fn a_name_over_100_characters_is_refused() {
        assert!(Name::parse(&"é".repeat(100)).is_ok());
        assert!(Name::parse(&"é".repeat(101)).is_err());
    }

    #[test]
    fn a_name_with_control_characters_is_refused() {
        assert!(Name::parse("Prod\u{0}").is_err());
        assert!(Name::parse("Pr\nod").is_err());
        assert!(Name::parse("\tProd\n").is_err(), "even where trimming would remove them");
    }

    #[test]
    fn a_name_is_measured_as_sent() {
        assert!(Name::parse(&format!(" {} ", "a".repeat(98))).is_ok());
        assert!(Name::parse(&format!(" {}", "a".repeat(100))).is_err());
    }

    #[test]
    fn names_differing_in_case_share_a_uniqueness_key() {
        assert_eq!(Name::parse("Test").unwrap().unique_key(), Name::parse("TEST").unwrap().unique_key());
    }

    #[test]
    fn an_etag_round_trips_through_if_match_forms() {
        let v = Version(7);
        assert_eq!(Version::from_etag(&v.etag()), Some(v));
        assert_eq!(Version::from_etag("W/\"7\""), Some(v));
        assert_eq!(Version::from_etag("7"), Some(v));
        assert_eq!(Version::from_etag("\"seven\""), None);
    }

    #[test]
    fn roles_parse_only_known_names() {
        assert_eq!(Role::parse("deployer"), Some(Role::Deployer));
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn a_plan_over_the_ceiling_is_refused() {
        assert!(Plan::new(1, 2, 3).is_ok());
        assert!(Plan::new(1, Plan::LIMIT_CEILING + 1, 3).is_err());
    }
}
