//! Components and their linear history of revisions.

use crate::extension::ExtensionPoints;
use crate::ids::ComponentId;
use crate::runtime::Digest;
use crate::values::Name;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What a component is. Independent types are never bundled into another
/// component's package: they are deployed on their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComponentType {
    Process,
    Map,
    Profile,
    Connection,
    LookupTable,
    Script,
    ApiService,
    ApiProxy,
    Certificate,
    CustomLibrary,
    FlowService,
    ProcessRoute,
    ProcessingGroup,
}

impl ComponentType {
    pub fn independent(self) -> bool {
        matches!(
            self,
            Self::ApiService | Self::ApiProxy | Self::Certificate | Self::CustomLibrary | Self::FlowService | Self::ProcessRoute | Self::ProcessingGroup
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Process => "process",
            Self::Map => "map",
            Self::Profile => "profile",
            Self::Connection => "connection",
            Self::LookupTable => "lookup_table",
            Self::Script => "script",
            Self::ApiService => "api_service",
            Self::ApiProxy => "api_proxy",
            Self::Certificate => "certificate",
            Self::CustomLibrary => "custom_library",
            Self::FlowService => "flow_service",
            Self::ProcessRoute => "process_route",
            Self::ProcessingGroup => "processing_group",
        }
    }
}

/// Largest content of one revision, decoded (the API takes it base64 in JSON).
pub const MAX_CONTENT_BYTES: usize = 4 * 1024 * 1024;
/// Most references one revision may hold.
pub const MAX_REFERENCES: usize = 200;

/// Content as stored: addressed by its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentRef {
    pub sha256: Digest,
    pub size: u64,
}

/// A component at its current revision.
#[derive(Clone, Debug, PartialEq)]
pub struct Component {
    pub id: ComponentId,
    pub name: Name,
    pub kind: ComponentType,
    pub revision: u32,
    pub references: Vec<ComponentId>,
    pub content: ContentRef,
    /// What its current revision lets each environment set.
    pub extensions: ExtensionPoints,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One entry of a component's history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Revision {
    pub component_id: ComponentId,
    pub revision: u32,
    pub references: Vec<ComponentId>,
    pub content: ContentRef,
    #[serde(default, skip_serializing_if = "ExtensionPoints::is_empty")]
    pub extensions: ExtensionPoints,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

impl Component {
    /// The component's first revision.
    pub fn new(name: Name, kind: ComponentType, references: Vec<ComponentId>, content: ContentRef, by: &str, now: DateTime<Utc>) -> (Component, Revision) {
        let component = Component {
            id: ComponentId::new(),
            name,
            kind,
            revision: 1,
            references,
            content,
            extensions: ExtensionPoints::default(),
            created_at: now,
            updated_at: now,
        };
        let revision = component.current_revision(by);
        (component, revision)
    }

    /// The same first (or next) revision, declaring `extensions` (see `new`, `revised`).
    pub fn declaring((mut component, mut revision): (Component, Revision), extensions: ExtensionPoints) -> (Component, Revision) {
        revision.extensions = extensions.clone();
        component.extensions = extensions;
        (component, revision)
    }

    /// The next revision with `references` and `content`; it declares the
    /// extension points of the revision before it unless `declaring` says otherwise.
    pub fn revised(&self, references: Vec<ComponentId>, content: ContentRef, by: &str, now: DateTime<Utc>) -> (Component, Revision) {
        let mut next = self.clone();
        next.revision = self.revision + 1;
        next.references = references;
        next.content = content;
        next.updated_at = now;
        let revision = next.current_revision(by);
        (next, revision)
    }

    fn current_revision(&self, by: &str) -> Revision {
        Revision {
            component_id: self.id,
            revision: self.revision,
            references: self.references.clone(),
            content: self.content.clone(),
            extensions: self.extensions.clone(),
            created_by: by.to_string(),
            created_at: self.updated_at,
        }
    }
}

/// Drops repeated references, keeping the first occurrence's order.
pub fn dedup_references(references: Vec<ComponentId>) -> Vec<ComponentId> {
    let mut seen = std::collections::HashSet::new();
    references.into_iter().filter(|r| seen.insert(*r)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_and_api_services_are_independent_but_maps_are_not() {
        assert!(ComponentType::Certificate.independent());
        assert!(ComponentType::ApiService.independent());
        assert!(!ComponentType::Map.independent());
        assert!(!ComponentType::Process.independent());
    }

    #[test]
    fn revising_a_component_numbers_the_revision_and_keeps_its_identity() {
        let content = ContentRef { sha256: Digest::parse(&format!("sha256:{}", "a".repeat(64))).unwrap(), size: 3 };
        let (c, r1) = Component::new(Name::parse("Orders").unwrap(), ComponentType::Process, vec![], content.clone(), "alice", Utc::now());
        let (next, r2) = c.revised(vec![ComponentId::new()], content, "bob", Utc::now());
        assert_eq!((r1.revision, r2.revision), (1, 2));
        assert_eq!(next.id, c.id);
        assert_eq!(r2.created_by, "bob");
        assert_eq!(next.references.len(), 1);
    }

    #[test]
    fn repeated_references_are_kept_once_in_order() {
        let (a, b) = (ComponentId::new(), ComponentId::new());
        assert_eq!(dedup_references(vec![a, b, a]), vec![a, b]);
    }
}
