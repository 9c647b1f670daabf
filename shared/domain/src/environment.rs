use crate::ids::EnvironmentId;
use crate::values::{Classification, Description, Name, Version};
use chrono::{DateTime, Utc};

/// A named deployment target. Its classification is fixed at creation.
#[derive(Clone, Debug, PartialEq)]
pub struct Environment {
    pub id: EnvironmentId,
    pub name: Name,
    pub classification: Classification,
    /// "Connected": deployments to a disabled environment are refused.
    pub enabled: bool,
    pub description: Description,
    pub version: Version,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct NewEnvironment {
    pub name: Name,
    pub classification: Classification,
    pub enabled: bool,
    pub description: Description,
}

/// A partial change; `classification` is deliberately absent: it never changes.
#[derive(Clone, Debug, Default)]
pub struct EnvironmentPatch {
    pub name: Option<Name>,
    pub enabled: Option<bool>,
    pub description: Option<Description>,
}

impl Environment {
    pub fn new(input: NewEnvironment, now: DateTime<Utc>) -> Self {
        Self {
            id: EnvironmentId::new(),
            name: input.name,
            classification: input.classification,
            enabled: input.enabled,
            description: input.description,
            version: Version::FIRST,
            created_at: now,
            updated_at: now,
        }
    }

    pub fn patched(&self, patch: EnvironmentPatch, now: DateTime<Utc>) -> Environment {
        let mut next = self.clone();
        if let Some(name) = patch.name {
            next.name = name;
        }
        if let Some(enabled) = patch.enabled {
            next.enabled = enabled;
        }
        if let Some(d) = patch.description {
            next.description = d;
        }
        next.version = self.version.next();
        next.updated_at = now;
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Environment {
        Environment::new(
            NewEnvironment { name: Name::parse("Test").unwrap(), classification: Classification::Test, enabled: true, description: Description::default() },
            Utc::now(),
        )
    }

    #[test]
    fn a_new_environment_starts_at_version_one() {
        assert_eq!(env().version, Version::FIRST);
    }

    #[test]
    fn disabling_an_environment_bumps_its_version_and_keeps_its_classification() {
        let e = env();
        let next = e.patched(EnvironmentPatch { enabled: Some(false), ..Default::default() }, Utc::now());
        assert!(!next.enabled);
        assert_eq!(next.classification, Classification::Test);
        assert_eq!(next.version, Version(2));
    }
}
