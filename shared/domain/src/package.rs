//! Packages: immutable, point-in-time snapshots of a component and the
//! transitive closure of what it references, except independent components,
//! which are recorded as requirements instead of being bundled.

use crate::DomainError;
use crate::component::{Component, ComponentType};
use crate::extension::ExtensionPoints;
use crate::ids::{ComponentId, PackageId};
use crate::runtime::Digest;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;

/// A package version label: unique per component; `1`, `v2.1`, `2026-11-rc1`...
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct VersionLabel(String);

impl VersionLabel {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let v = raw.trim();
        if v.is_empty() || v.len() > 64 {
            return Err("must be 1 to 64 characters".into());
        }
        if !v.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b)) {
            return Err("may contain only letters, digits, '.', '_', '-' and '+'".into());
        }
        Ok(Self(v.to_string()))
    }
    pub fn number(n: u64) -> Self {
        Self(n.to_string())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for VersionLabel {
    type Error = String;
    fn try_from(v: String) -> Result<Self, String> {
        Self::parse(&v)
    }
}
impl From<VersionLabel> for String {
    fn from(v: VersionLabel) -> String {
        v.0
    }
}
impl fmt::Display for VersionLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One bundled component, exactly as packaged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub id: ComponentId,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ComponentType,
    pub revision: u32,
    pub sha256: Digest,
    pub size: u64,
    /// The extension points it declared when packaged.
    #[serde(default, skip_serializing_if = "ExtensionPoints::is_empty")]
    pub extensions: ExtensionPoints,
}

/// What a package holds: the root first, then everything it bundles.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub root: ComponentId,
    pub components: Vec<ManifestEntry>,
}

/// An independent component the package needs deployed on its own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requirement {
    pub id: ComponentId,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ComponentType,
}

/// A bundled component revised since it was packaged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutdatedComponent {
    pub id: ComponentId,
    pub name: String,
    pub packaged_revision: u32,
    pub current_revision: u32,
}

/// Free text notes of a package: at most 2000 characters.
pub const MAX_NOTES_CHARS: usize = 2000;

/// Where a package's archive is: packages above `Settings::sync_package_max_bytes`
/// are reserved `building` and written by the package builder afterwards.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PackageStatus {
    /// Reserved (its version taken, its manifest known); the archive is being written.
    Building,
    /// The archive is written: `digest` and `size` are known. Packages stored
    /// before builds could be asynchronous have no status and read as ready.
    #[default]
    Ready,
    /// The archive could not be written (`failure` says why); it never will be.
    Failed,
}

impl PackageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Building => "building",
            Self::Ready => "ready",
            Self::Failed => "failed",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Package {
    pub id: PackageId,
    pub component_id: ComponentId,
    pub version: VersionLabel,
    pub notes: String,
    pub shareable: bool,
    pub deleted: bool,
    pub status: PackageStatus,
    /// Why the build failed (only when `failed`).
    pub failure: Option<String>,
    /// SHA-256 of the archive blob: known once the package is ready.
    pub digest: Option<Digest>,
    /// The archive's size in bytes (0 until ready).
    pub size: u64,
    pub manifest: Manifest,
    pub requirements: Vec<Requirement>,
    /// The source commit it was built from, as CI reported it.
    pub commit: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

impl Package {
    /// The sum of the bundled contents' sizes: what the archive will hold,
    /// known before it is written.
    pub fn content_bytes(&self) -> u64 {
        self.manifest.content_bytes()
    }

    /// The archive's digest, for deploying it: refused `package_not_ready`
    /// while it is building or when its build failed.
    pub fn ready_digest(&self) -> Result<&Digest, DomainError> {
        match (self.status, &self.digest) {
            (PackageStatus::Ready, Some(digest)) => Ok(digest),
            _ => Err(DomainError::conflict("package_not_ready", self.not_ready_reason())),
        }
    }

    /// Why the package cannot be deployed or downloaded yet (or ever).
    pub fn not_ready_reason(&self) -> String {
        match self.status {
            PackageStatus::Failed => {
                format!("package version {} failed to build: {}", self.version, self.failure.as_deref().unwrap_or("no reason recorded"))
            }
            _ => format!("package version {} is still building; try again when its status is ready", self.version),
        }
    }

    /// This package, built: ready with the archive's digest and size.
    pub fn built(&self, digest: Digest, size: u64) -> Self {
        Self { status: PackageStatus::Ready, failure: None, digest: Some(digest), size, ..self.clone() }
    }

    /// This package, its build failed for `reason`.
    pub fn build_failed(&self, reason: &str) -> Self {
        Self { status: PackageStatus::Failed, failure: Some(reason.to_string()), digest: None, size: 0, ..self.clone() }
    }
}

impl Manifest {
    /// The sum of the bundled contents' sizes.
    pub fn content_bytes(&self) -> u64 {
        self.components.iter().map(|c| c.size).fold(0u64, u64::saturating_add)
    }
}

/// The snapshot of `root` over `components` (every component reachable from
/// it, as loaded now): the manifest of what is bundled and the independent
/// requirements. Breadth-first, so the order is stable: root, then its
/// references in order, then theirs.
pub fn snapshot(root: &Component, components: &HashMap<ComponentId, Component>) -> Result<(Manifest, Vec<Requirement>), DomainError> {
    let entry = |c: &Component| ManifestEntry {
        id: c.id,
        name: c.name.to_string(),
        kind: c.kind,
        revision: c.revision,
        sha256: c.content.sha256.clone(),
        size: c.content.size,
        extensions: c.extensions.clone(),
    };
    let mut bundled = vec![entry(root)];
    let mut requirements = vec![];
    let mut seen: HashSet<ComponentId> = HashSet::from([root.id]);
    let mut queue: VecDeque<ComponentId> = root.references.iter().copied().collect();
    while let Some(id) = queue.pop_front() {
        if !seen.insert(id) {
            continue;
        }
        let c = components.get(&id).ok_or_else(|| DomainError::conflict("reference_missing", format!("referenced component {id} no longer exists")))?;
        if c.kind.independent() {
            requirements.push(Requirement { id: c.id, name: c.name.to_string(), kind: c.kind });
        } else {
            bundled.push(entry(c));
            queue.extend(c.references.iter().copied());
        }
    }
    Ok((Manifest { root: root.id, components: bundled }, requirements))
}

/// The ids whose references a snapshot must follow from `c`: none for an
/// independent component that is not the root.
pub fn followed_references(c: &Component, is_root: bool) -> &[ComponentId] {
    if c.kind.independent() && !is_root { &[] } else { &c.references }
}

/// Bundled components whose current revision is newer than the packaged one.
pub fn outdated(manifest: &Manifest, current: &HashMap<ComponentId, Component>) -> Vec<OutdatedComponent> {
    manifest
        .components
        .iter()
        .filter_map(|e| {
            let now = current.get(&e.id)?;
            (now.revision > e.revision).then(|| OutdatedComponent {
                id: e.id,
                name: now.name.to_string(),
                packaged_revision: e.revision,
                current_revision: now.revision,
            })
        })
        .collect()
}

/// True when giving `component` the references `new_refs` would close a
/// cycle, given every other component's current references.
pub fn closes_cycle(component: ComponentId, new_refs: &[ComponentId], references_of: &HashMap<ComponentId, Vec<ComponentId>>) -> bool {
    let mut seen = HashSet::new();
    let mut stack: Vec<ComponentId> = new_refs.to_vec();
    while let Some(id) = stack.pop() {
        if id == component {
            return true;
        }
        if seen.insert(id) {
            if let Some(refs) = references_of.get(&id) {
                stack.extend(refs.iter().copied());
            }
        }
    }
    false
}

/// A package archive (gzipped tar) holds its manifest at this path...
pub const ARCHIVE_MANIFEST: &str = "manifest.json";

/// ...and each bundled component's content at this one.
pub fn archive_content_path(component: crate::ids::ComponentId) -> String {
    format!("components/{component}/content")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::component::ContentRef;
    use crate::values::Name;

    fn component(name: &str, kind: ComponentType, references: Vec<ComponentId>) -> Component {
        let content = ContentRef { sha256: Digest::parse(&format!("sha256:{}", "b".repeat(64))).unwrap(), size: 10 };
        Component::new(Name::parse(name).unwrap(), kind, references, content, "alice", Utc::now()).0
    }

    fn index(cs: &[&Component]) -> HashMap<ComponentId, Component> {
        cs.iter().map(|c| (c.id, (*c).clone())).collect()
    }

    #[test]
    fn a_parent_process_bundles_its_child_map_and_connection_but_only_requires_its_certificate() {
        let connection = component("DB", ComponentType::Connection, vec![]);
        let map = component("Map", ComponentType::Map, vec![connection.id]);
        let child = component("Child", ComponentType::Process, vec![map.id]);
        let cert = component("TLS", ComponentType::Certificate, vec![]);
        let parent = component("Parent", ComponentType::Process, vec![child.id, cert.id]);
        let all = index(&[&connection, &map, &child, &cert, &parent]);

        let (manifest, requirements) = snapshot(&parent, &all).unwrap();
        let names: Vec<&str> = manifest.components.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["Parent", "Child", "Map", "DB"]);
        assert_eq!(manifest.root, parent.id);
        assert_eq!(requirements, vec![Requirement { id: cert.id, name: "TLS".into(), kind: ComponentType::Certificate }]);
    }

    #[test]
    fn a_component_referenced_twice_is_bundled_once() {
        let shared = component("Shared", ComponentType::Profile, vec![]);
        let a = component("A", ComponentType::Map, vec![shared.id]);
        let root = component("Root", ComponentType::Process, vec![a.id, shared.id]);
        let (manifest, _) = snapshot(&root, &index(&[&shared, &a, &root])).unwrap();
        assert_eq!(manifest.components.len(), 3);
    }

    #[test]
    fn what_an_independent_component_references_is_not_bundled() {
        let inner = component("Inner", ComponentType::Process, vec![]);
        let api = component("API", ComponentType::ApiService, vec![inner.id]);
        let root = component("Root", ComponentType::Process, vec![api.id]);
        let (manifest, requirements) = snapshot(&root, &index(&[&inner, &api, &root])).unwrap();
        assert_eq!(manifest.components.len(), 1);
        assert_eq!(requirements.len(), 1);
    }

    #[test]
    fn packaging_an_independent_component_bundles_it_as_the_root() {
        let cert = component("TLS", ComponentType::Certificate, vec![]);
        let (manifest, requirements) = snapshot(&cert, &index(&[&cert])).unwrap();
        assert_eq!(manifest.components[0].id, cert.id);
        assert!(requirements.is_empty());
    }

    #[test]
    fn a_bundled_component_revised_since_packaging_is_outdated() {
        let map = component("Map", ComponentType::Map, vec![]);
        let root = component("Root", ComponentType::Process, vec![map.id]);
        let (manifest, _) = snapshot(&root, &index(&[&map, &root])).unwrap();
        let (map2, _) = map.revised(vec![], map.content.clone(), "bob", Utc::now());
        let outdated = outdated(&manifest, &index(&[&map2, &root]));
        assert_eq!(outdated, vec![OutdatedComponent { id: map.id, name: "Map".into(), packaged_revision: 1, current_revision: 2 }]);
    }

    #[test]
    fn a_reference_back_to_an_ancestor_closes_a_cycle() {
        let (a, b, c) = (ComponentId::new(), ComponentId::new(), ComponentId::new());
        let graph = HashMap::from([(b, vec![c]), (c, vec![a])]);
        assert!(closes_cycle(a, &[b], &graph));
        assert!(closes_cycle(a, &[a], &graph), "a self-reference is a cycle");
        assert!(!closes_cycle(a, &[c], &HashMap::new()));
    }

    #[test]
    fn version_labels_are_bounded_and_plain() {
        assert!(VersionLabel::parse("v2.1-rc1+build.5").is_ok());
        assert!(VersionLabel::parse("").is_err());
        assert!(VersionLabel::parse("has space").is_err());
        assert!(VersionLabel::parse(&"1".repeat(65)).is_err());
    }
}
