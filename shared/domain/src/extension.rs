//! Environment extensions: what a component revision lets each environment
//! set (connection fields, typed properties, lookup tables), the values one
//! environment sets, and what a deployment checks of them.
//!
//! A secret connection value is sealed (`ports::ExtensionSealer`) before it
//! is stored and never comes back out through a read: what is stored of it is
//! its sealed form and when and by whom it was set. The clear value exists
//! only in a `Sensitive`, whose `Debug` hides it.

use crate::error::FieldError;
use crate::ids::{ComponentId, EnvironmentId, JobId, RuntimeId};
use crate::secret::Sensitive;
use crate::webhook::SealedSecret;
use crate::{DomainError, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

/// Longest name of a connection field, property or lookup table.
pub const MAX_NAME_CHARS: usize = 128;
/// Most entries of each list of extension points.
pub const MAX_POINTS: usize = 100;
/// Most source keys of one lookup table (declared, or mapped by an environment).
pub const MAX_LOOKUP_KEYS: usize = 1000;
/// Longest lookup source key.
pub const MAX_KEY_CHARS: usize = 256;
/// Largest single value, in bytes. Secrets are sealed one by one with KMS
/// `Encrypt`, which takes at most 4096 bytes.
pub const MAX_VALUE_BYTES: usize = 4096;
/// Largest stored form of one environment's values: they are one DynamoDB
/// item (at most 400 KB), with room to spare.
pub const MAX_STORED_BYTES: usize = 300 * 1024;

/// What a component revision lets each environment set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtensionPoints {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connection_fields: Vec<ConnectionField>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<PropertyPoint>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lookups: Vec<LookupPoint>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionField {
    pub name: String,
    /// Write-only: sealed when set, never returned.
    pub secret: bool,
    /// A deployment is refused (`extension_missing`) where it has no value.
    pub required: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PropertyType {
    String,
    Number,
    Boolean,
}

impl PropertyType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Number => "number",
            Self::Boolean => "boolean",
        }
    }
}

/// A property's value: a JSON string, number or boolean.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PropertyValue {
    Boolean(bool),
    Number(serde_json::Number),
    String(String),
}

impl PropertyValue {
    pub fn kind(&self) -> PropertyType {
        match self {
            Self::Boolean(_) => PropertyType::Boolean,
            Self::Number(_) => PropertyType::Number,
            Self::String(_) => PropertyType::String,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PropertyPoint {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: PropertyType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<PropertyValue>,
}

/// A lookup table the component uses, with the source keys it looks up: an
/// environment maps each to its own target value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookupPoint {
    pub table: String,
    pub keys: Vec<String>,
}

fn check_name(v: &mut Vec<FieldError>, field: String, name: &str) {
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS {
        v.push(FieldError::new(field, format!("must be 1 to {MAX_NAME_CHARS} characters")));
    } else if name.chars().any(char::is_control) {
        v.push(FieldError::new(field, "must not contain control characters"));
    }
}

fn check_unique<'a>(v: &mut Vec<FieldError>, list: &str, names: impl Iterator<Item = &'a str>) {
    let mut seen = HashSet::new();
    for (i, name) in names.enumerate() {
        if !seen.insert(name) {
            v.push(FieldError::new(format!("{list}[{i}]"), format!("\"{name}\" is declared twice")));
        }
    }
}

fn check_key(v: &mut Vec<FieldError>, field: String, key: &str) {
    let chars = key.chars().count();
    if chars == 0 || chars > MAX_KEY_CHARS {
        v.push(FieldError::new(field, format!("a source key must be 1 to {MAX_KEY_CHARS} characters")));
    }
}

impl ExtensionPoints {
    pub fn is_empty(&self) -> bool {
        self.connection_fields.is_empty() && self.properties.is_empty() && self.lookups.is_empty()
    }

    /// Checks the declaration: names 1-128 characters and unique in their
    /// list, each default of its property's type, at most `MAX_POINTS` per list.
    pub fn check(&self) -> Result<()> {
        let mut v = vec![];
        let p = "extensions";
        for (list, len) in [("connection_fields", self.connection_fields.len()), ("properties", self.properties.len()), ("lookups", self.lookups.len())] {
            if len > MAX_POINTS {
                v.push(FieldError::new(format!("{p}.{list}"), format!("at most {MAX_POINTS} entries")));
            }
        }
        for (i, f) in self.connection_fields.iter().enumerate() {
            check_name(&mut v, format!("{p}.connection_fields[{i}].name"), &f.name);
        }
        check_unique(&mut v, &format!("{p}.connection_fields"), self.connection_fields.iter().map(|f| f.name.as_str()));
        for (i, prop) in self.properties.iter().enumerate() {
            check_name(&mut v, format!("{p}.properties[{i}].name"), &prop.name);
            if let Some(default) = &prop.default
                && default.kind() != prop.kind
            {
                v.push(FieldError::new(format!("{p}.properties[{i}].default"), format!("must be a {} (the property's type)", prop.kind.as_str())));
            }
        }
        check_unique(&mut v, &format!("{p}.properties"), self.properties.iter().map(|prop| prop.name.as_str()));
        for (i, l) in self.lookups.iter().enumerate() {
            check_name(&mut v, format!("{p}.lookups[{i}].table"), &l.table);
            if l.keys.len() > MAX_LOOKUP_KEYS {
                v.push(FieldError::new(format!("{p}.lookups[{i}].keys"), format!("at most {MAX_LOOKUP_KEYS} keys")));
            }
            for (k, key) in l.keys.iter().enumerate() {
                check_key(&mut v, format!("{p}.lookups[{i}].keys[{k}]"), key);
            }
            check_unique(&mut v, &format!("{p}.lookups[{i}].keys"), l.keys.iter().map(String::as_str));
        }
        check_unique(&mut v, &format!("{p}.lookups"), self.lookups.iter().map(|l| l.table.as_str()));
        if v.is_empty() { Ok(()) } else { Err(DomainError::Validation { code: "validation_failed", errors: v }) }
    }

    fn connection_field(&self, name: &str) -> Option<&ConnectionField> {
        self.connection_fields.iter().find(|f| f.name == name)
    }
    fn property(&self, name: &str) -> Option<&PropertyPoint> {
        self.properties.iter().find(|p| p.name == name)
    }
    fn lookup(&self, table: &str) -> Option<&LookupPoint> {
        self.lookups.iter().find(|l| l.table == table)
    }
}

/// A connection field's stored value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ConnectionValue {
    Plain {
        value: String,
    },
    /// Sealed (bound to its tenant, environment, component and field); never shown.
    Secret {
        sealed: SealedSecret,
        updated_at: DateTime<Utc>,
        updated_by: String,
    },
}

/// One component's values in one environment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentValues {
    /// The environment's extensions version in which these values last changed.
    pub changed_in: u64,
    #[serde(default)]
    pub connection: BTreeMap<String, ConnectionValue>,
    #[serde(default)]
    pub properties: BTreeMap<String, PropertyValue>,
    #[serde(default)]
    pub lookups: BTreeMap<String, BTreeMap<String, String>>,
}

impl ComponentValues {
    /// No value at all (the values were removed, or never set).
    pub fn is_empty(&self) -> bool {
        self.connection.is_empty() && self.properties.is_empty() && self.lookups.is_empty()
    }

    /// Whether `field` has a value (an empty string is none).
    pub fn has_connection(&self, field: &str) -> bool {
        match self.connection.get(field) {
            Some(ConnectionValue::Plain { value }) => !value.is_empty(),
            Some(ConnectionValue::Secret { .. }) => true,
            None => false,
        }
    }
}

/// One environment's values: one version for all of them, bumped by every write.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentExtensions {
    /// 0 before the first write.
    pub version: u64,
    #[serde(default)]
    pub components: BTreeMap<ComponentId, ComponentValues>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_by: Option<String>,
}

/// A write of an environment's values (`PUT .../extensions`): per component
/// its values, or `None` to remove all of them. Components left out keep theirs.
#[derive(Clone, Debug, Default)]
pub struct ExtensionsInput {
    pub components: BTreeMap<ComponentId, Option<ComponentInput>>,
}

/// One component's values as written. Within a component the write is whole:
/// a non-secret field, property or table left out has no value afterwards;
/// only a secret field left out keeps its value (`None`, i.e. `null`, clears it).
#[derive(Clone, Debug, Default)]
pub struct ComponentInput {
    pub connection: BTreeMap<String, Option<Sensitive>>,
    /// `None` (`null`): no value; the declared default applies.
    pub properties: BTreeMap<String, Option<PropertyValue>>,
    pub lookups: BTreeMap<String, BTreeMap<String, String>>,
}

/// Which values of one component a write changed: names only (`connection.<field>`,
/// `properties.<name>`, `lookups.<table>`), never values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ComponentChange {
    pub component_id: ComponentId,
    pub changed: Vec<String>,
}

/// Where a sealed secret belongs: the whole of it is bound to the sealed form
/// (KMS encryption context), so it opens nowhere else.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SecretScope {
    pub tenant: crate::ids::TenantId,
    pub environment: EnvironmentId,
    pub component: ComponentId,
    pub field: String,
}

/// Checks a write against what each component's latest revision declares.
/// `declared` holds every component the write names that exists, with its
/// name; one it names that does not exist is refused first.
pub fn check_input(input: &ExtensionsInput, declared: &BTreeMap<ComponentId, (String, ExtensionPoints)>) -> Result<()> {
    let missing: Vec<FieldError> = input
        .components
        .keys()
        .filter(|id| !declared.contains_key(id))
        .map(|id| FieldError::new(format!("components.{id}"), format!("no component {id}")))
        .collect();
    if !missing.is_empty() {
        return Err(DomainError::Validation { code: "component_not_found", errors: missing });
    }
    let (mut unknown, mut invalid) = (vec![], vec![]);
    for (id, values) in &input.components {
        let (Some(values), Some((name, points))) = (values, declared.get(id)) else { continue };
        let at = |rest: String| format!("components.{id}.{rest}");
        if points.is_empty() && !(values.connection.is_empty() && values.properties.is_empty() && values.lookups.is_empty()) {
            unknown.push(FieldError::new(format!("components.{id}"), format!("component \"{name}\" declares no extension points")));
            continue;
        }
        for (field, value) in &values.connection {
            if points.connection_field(field).is_none() {
                unknown.push(FieldError::new(at(format!("connection.{field}")), format!("component \"{name}\" declares no connection field \"{field}\"")));
            } else if value.as_ref().is_some_and(|v| v.reveal().len() > MAX_VALUE_BYTES) {
                invalid.push(FieldError::new(at(format!("connection.{field}")), format!("must be at most {MAX_VALUE_BYTES} bytes")));
            }
        }
        for (prop, value) in &values.properties {
            match (points.property(prop), value) {
                (None, _) => unknown.push(FieldError::new(at(format!("properties.{prop}")), format!("component \"{name}\" declares no property \"{prop}\""))),
                (Some(p), Some(v)) if v.kind() != p.kind => {
                    invalid.push(FieldError::new(at(format!("properties.{prop}")), format!("must be a {}", p.kind.as_str())))
                }
                (Some(_), Some(PropertyValue::String(s))) if s.len() > MAX_VALUE_BYTES => {
                    invalid.push(FieldError::new(at(format!("properties.{prop}")), format!("must be at most {MAX_VALUE_BYTES} bytes")))
                }
                _ => {}
            }
        }
        for (table, mapping) in &values.lookups {
            if points.lookup(table).is_none() {
                unknown.push(FieldError::new(at(format!("lookups.{table}")), format!("component \"{name}\" declares no lookup table \"{table}\"")));
                continue;
            }
            if mapping.len() > MAX_LOOKUP_KEYS {
                invalid.push(FieldError::new(at(format!("lookups.{table}")), format!("at most {MAX_LOOKUP_KEYS} keys")));
            }
            for (key, target) in mapping {
                check_key(&mut invalid, at(format!("lookups.{table}")), key);
                if target.len() > MAX_VALUE_BYTES {
                    invalid.push(FieldError::new(at(format!("lookups.{table}.{key}")), format!("must be at most {MAX_VALUE_BYTES} bytes")));
                }
            }
        }
    }
    if !unknown.is_empty() {
        unknown.extend(invalid);
        return Err(DomainError::Validation { code: "extension_unknown", errors: unknown });
    }
    if !invalid.is_empty() {
        return Err(DomainError::Validation { code: "validation_failed", errors: invalid });
    }
    Ok(())
}

/// The secret values a write sets, each with where it belongs: to seal before `merged`.
pub fn secrets_to_seal<'a>(
    input: &'a ExtensionsInput,
    declared: &BTreeMap<ComponentId, (String, ExtensionPoints)>,
) -> Vec<(ComponentId, &'a str, &'a Sensitive)> {
    let mut out = vec![];
    for (id, values) in &input.components {
        let (Some(values), Some((_, points))) = (values, declared.get(id)) else { continue };
        for (field, value) in &values.connection {
            if let (Some(value), Some(f)) = (value, points.connection_field(field))
                && f.secret
            {
                out.push((*id, field.as_str(), value));
            }
        }
    }
    out
}

/// `before` with a (checked) write applied, and what it changed, per component.
/// `sealed` holds the sealed form of every secret `secrets_to_seal` listed.
/// After it, a component written holds only fields its latest revision declares.
pub fn merged(
    before: &EnvironmentExtensions,
    input: &ExtensionsInput,
    declared: &BTreeMap<ComponentId, (String, ExtensionPoints)>,
    sealed: &BTreeMap<(ComponentId, String), SealedSecret>,
    by: &str,
    now: DateTime<Utc>,
) -> (EnvironmentExtensions, Vec<ComponentChange>) {
    let version = before.version + 1;
    let mut after = EnvironmentExtensions { version, components: before.components.clone(), updated_at: Some(now), updated_by: Some(by.to_string()) };
    let mut changes = vec![];
    for (id, values) in &input.components {
        let old = before.components.get(id);
        let new = match (values, declared.get(id)) {
            (Some(values), Some((_, points))) => Some(component_after(*id, old, values, points, sealed, by, now)),
            _ => None,
        };
        let changed = changed_names(old, new.as_ref(), values.as_ref());
        let mut new = new.unwrap_or_default();
        new.changed_in = if changed.is_empty() { old.map_or(version, |o| o.changed_in) } else { version };
        // A component whose values were all removed stays, empty, so a later
        // deployment can still tell that they changed (and when).
        if new.is_empty() && old.is_none() {
            after.components.remove(id);
        } else {
            after.components.insert(*id, new);
        }
        if !changed.is_empty() {
            changes.push(ComponentChange { component_id: *id, changed });
        }
    }
    (after, changes)
}

fn component_after(
    id: ComponentId,
    old: Option<&ComponentValues>,
    input: &ComponentInput,
    points: &ExtensionPoints,
    sealed: &BTreeMap<(ComponentId, String), SealedSecret>,
    by: &str,
    now: DateTime<Utc>,
) -> ComponentValues {
    let mut out = ComponentValues::default();
    for field in &points.connection_fields {
        let kept = old.and_then(|o| o.connection.get(&field.name));
        let value = match (input.connection.get(&field.name), field.secret) {
            (Some(Some(_)), true) => {
                sealed.get(&(id, field.name.clone())).map(|s| ConnectionValue::Secret { sealed: s.clone(), updated_at: now, updated_by: by.to_string() })
            }
            (Some(Some(v)), false) => Some(ConnectionValue::Plain { value: v.reveal().to_string() }),
            // Left out, a secret keeps its value (a value stored in clear before the field became secret does not).
            (None, true) => kept.filter(|k| matches!(k, ConnectionValue::Secret { .. })).cloned(),
            (Some(None), _) | (None, false) => None,
        };
        if let Some(value) = value {
            out.connection.insert(field.name.clone(), value);
        }
    }
    for prop in &points.properties {
        if let Some(Some(v)) = input.properties.get(&prop.name) {
            out.properties.insert(prop.name.clone(), v.clone());
        }
    }
    for lookup in &points.lookups {
        if let Some(mapping) = input.lookups.get(&lookup.table).filter(|m| !m.is_empty()) {
            out.lookups.insert(lookup.table.clone(), mapping.clone());
        }
    }
    out
}

/// The names of what differs between `old` and `new`; a secret set by the
/// write counts as changed (its clear value is never compared).
fn changed_names(old: Option<&ComponentValues>, new: Option<&ComponentValues>, input: Option<&ComponentInput>) -> Vec<String> {
    let empty = ComponentValues::default();
    let (old, new) = (old.unwrap_or(&empty), new.unwrap_or(&empty));
    let mut changed = std::collections::BTreeSet::new();
    let fields: std::collections::BTreeSet<&String> = old.connection.keys().chain(new.connection.keys()).collect();
    for f in fields {
        let set_now = input.is_some_and(|i| matches!(i.connection.get(f), Some(Some(_))));
        let differs = match (old.connection.get(f), new.connection.get(f)) {
            (Some(ConnectionValue::Secret { .. }), Some(ConnectionValue::Secret { .. })) => set_now,
            (a, b) => a != b,
        };
        if differs {
            changed.insert(format!("connection.{f}"));
        }
    }
    for p in old.properties.keys().chain(new.properties.keys()) {
        if old.properties.get(p) != new.properties.get(p) {
            changed.insert(format!("properties.{p}"));
        }
    }
    for t in old.lookups.keys().chain(new.lookups.keys()) {
        if old.lookups.get(t) != new.lookups.get(t) {
            changed.insert(format!("lookups.{t}"));
        }
    }
    changed.into_iter().collect()
}

/// Checks that the stored form fits one item.
pub fn check_size(after: &EnvironmentExtensions) -> Result<()> {
    let size = serde_json::to_vec(after).map_err(DomainError::unexpected)?.len();
    if size > MAX_STORED_BYTES {
        return Err(DomainError::TooLarge { message: format!("the environment's extensions would take {size} bytes; at most {MAX_STORED_BYTES} are kept") });
    }
    Ok(())
}

/// What a deployment finds missing in the target environment's values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExtensionGap {
    /// A required connection field has no value: the deployment is refused.
    Missing { component_id: ComponentId, component: String, field: String },
    /// A source key the component looks up has no mapping: a warning.
    Unresolved { component_id: ComponentId, component: String, table: String, key: String },
}

/// The gaps of `values` for the components a package bundles (each with the
/// extension points it was packaged with), in the package's order.
pub fn gaps<'a>(bundled: impl IntoIterator<Item = (ComponentId, &'a str, &'a ExtensionPoints)>, values: &EnvironmentExtensions) -> Vec<ExtensionGap> {
    let empty = ComponentValues::default();
    let mut out = vec![];
    for (id, name, points) in bundled {
        let have = values.components.get(&id).unwrap_or(&empty);
        for field in points.connection_fields.iter().filter(|f| f.required && !have.has_connection(&f.name)) {
            out.push(ExtensionGap::Missing { component_id: id, component: name.to_string(), field: field.name.clone() });
        }
        for lookup in &points.lookups {
            let mapping = have.lookups.get(&lookup.table);
            for key in lookup.keys.iter().filter(|k| !mapping.is_some_and(|m| m.contains_key(*k))) {
                out.push(ExtensionGap::Unresolved { component_id: id, component: name.to_string(), table: lookup.table.clone(), key: key.clone() });
            }
        }
    }
    out
}

/// The values one job of one component uses in one environment: secrets in
/// clear (only ever built server-side, to hand to the runtime that applies
/// them), every declared property with its value or default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResolvedExtensions {
    pub component_id: ComponentId,
    /// The environment's extensions version they were read at.
    pub version: u64,
    pub connection: BTreeMap<String, Sensitive>,
    pub properties: BTreeMap<String, PropertyValue>,
    pub lookups: BTreeMap<String, BTreeMap<String, String>>,
}

/// Resolves one component's values against the points it declares: fields
/// not declared are left out; `opened` holds its secret fields in clear.
pub fn resolve(
    component: ComponentId,
    version: u64,
    values: Option<&ComponentValues>,
    points: &ExtensionPoints,
    mut opened: BTreeMap<String, Sensitive>,
) -> ResolvedExtensions {
    let empty = ComponentValues::default();
    let values = values.unwrap_or(&empty);
    let mut out = ResolvedExtensions { component_id: component, version, ..Default::default() };
    for field in &points.connection_fields {
        let value = match values.connection.get(&field.name) {
            Some(ConnectionValue::Plain { value }) => Some(Sensitive::new(value.clone())),
            Some(ConnectionValue::Secret { .. }) => opened.remove(&field.name),
            None => None,
        };
        if let Some(value) = value {
            out.connection.insert(field.name.clone(), value);
        }
    }
    for prop in &points.properties {
        if let Some(v) = values.properties.get(&prop.name).or(prop.default.as_ref()) {
            out.properties.insert(prop.name.clone(), v.clone());
        }
    }
    for lookup in &points.lookups {
        if let Some(m) = values.lookups.get(&lookup.table) {
            out.lookups.insert(lookup.table.clone(), m.clone());
        }
    }
    out
}

/// How a connection test went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionTestStatus {
    /// Waiting for the runtime to run it (it sees it at its next heartbeat).
    Pending,
    Succeeded,
    Failed,
    /// The runtime did not report within [`CONNECTION_TEST_TIMEOUT`]: it is
    /// no longer handed out, and a late report is refused.
    TimedOut,
}

/// How long a runtime has to run a connection test and report. It learns of
/// the test at its next heartbeat (every 30 s by the reference agent), so
/// this leaves room for a slow connection and a few missed heartbeats.
pub const CONNECTION_TEST_TIMEOUT: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// The latest test of one component's connection in one environment, run by
/// one runtime attached there with the environment's values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionTest {
    pub id: JobId,
    pub environment_id: EnvironmentId,
    pub component_id: ComponentId,
    pub runtime_id: RuntimeId,
    pub status: ConnectionTestStatus,
    /// What the runtime reported (redacted as any job message); empty while pending.
    pub message: String,
    pub requested_at: DateTime<Utc>,
    pub requested_by: String,
    /// When it ended; `None` while pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
}

impl ConnectionTest {
    /// The test as it stands at `now`: one still pending past
    /// [`CONNECTION_TEST_TIMEOUT`] has timed out (decided on read; the stored
    /// item stays pending, and ends only by a newer test).
    pub fn as_of(self, now: DateTime<Utc>) -> Self {
        let deadline = self.requested_at + CONNECTION_TEST_TIMEOUT;
        if self.status != ConnectionTestStatus::Pending || now < deadline {
            return self;
        }
        let message = format!("the runtime did not report within {} minutes", CONNECTION_TEST_TIMEOUT.num_minutes());
        Self { status: ConnectionTestStatus::TimedOut, message, at: Some(deadline), ..self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_connection_test_still_pending_after_five_minutes_has_timed_out_and_an_ended_one_stays_as_it_ended() {
        let requested_at = Utc::now();
        let test = ConnectionTest {
            id: JobId::new(),
            environment_id: EnvironmentId::new(),
            component_id: ComponentId::new(),
            runtime_id: RuntimeId::new(),
            status: ConnectionTestStatus::Pending,
            message: String::new(),
            requested_at,
            requested_by: "alice".into(),
            at: None,
        };
        let almost = requested_at + CONNECTION_TEST_TIMEOUT - chrono::TimeDelta::seconds(1);
        assert_eq!(test.clone().as_of(almost).status, ConnectionTestStatus::Pending);
        let late = test.clone().as_of(requested_at + CONNECTION_TEST_TIMEOUT);
        assert_eq!((late.status, late.at), (ConnectionTestStatus::TimedOut, Some(requested_at + CONNECTION_TEST_TIMEOUT)));
        assert_eq!(late.message, "the runtime did not report within 5 minutes");
        let ended = ConnectionTest { status: ConnectionTestStatus::Failed, message: "refused".into(), at: Some(requested_at), ..test };
        assert_eq!(ended.clone().as_of(requested_at + chrono::TimeDelta::hours(1)), ended);
    }

    fn points() -> ExtensionPoints {
        serde_json::from_value(json!({
            "connection_fields": [{"name": "url", "secret": false, "required": true}, {"name": "password", "secret": true, "required": true}],
            "properties": [{"name": "timeout", "type": "number", "default": 30}],
            "lookups": [{"table": "countries", "keys": ["DE", "FR"]}]
        }))
        .unwrap()
    }

    fn declared(id: ComponentId) -> BTreeMap<ComponentId, (String, ExtensionPoints)> {
        BTreeMap::from([(id, ("CRM".to_string(), points()))])
    }

    fn write(id: ComponentId, connection: &[(&str, Option<&str>)], timeout: Option<i64>) -> ExtensionsInput {
        let input = ComponentInput {
            connection: connection.iter().map(|(k, v)| (k.to_string(), v.map(Sensitive::new))).collect(),
            properties: timeout.map(|t| ("timeout".to_string(), Some(PropertyValue::Number(t.into())))).into_iter().collect(),
            lookups: BTreeMap::from([("countries".to_string(), BTreeMap::from([("DE".to_string(), "Germany".to_string())]))]),
        };
        ExtensionsInput { components: BTreeMap::from([(id, Some(input))]) }
    }

    fn sealed_for(input: &ExtensionsInput, d: &BTreeMap<ComponentId, (String, ExtensionPoints)>) -> BTreeMap<(ComponentId, String), SealedSecret> {
        secrets_to_seal(input, d).into_iter().map(|(c, f, v)| ((c, f.to_string()), SealedSecret(format!("sealed:{}", v.reveal().len())))).collect()
    }

    #[test]
    fn a_declaration_with_a_repeated_name_or_a_default_of_the_wrong_type_is_refused() {
        let mut p = points();
        p.connection_fields.push(ConnectionField { name: "url".into(), secret: false, required: false });
        p.properties[0].default = Some(PropertyValue::String("thirty".into()));
        p.lookups[0].table = "x".repeat(129);
        let DomainError::Validation { errors, .. } = p.check().unwrap_err() else { panic!("a validation error") };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["extensions.connection_fields[2]", "extensions.properties[0].default", "extensions.lookups[0].table"]);
        assert!(points().check().is_ok());
    }

    #[test]
    fn a_write_to_an_undeclared_field_is_extension_unknown_and_a_wrong_type_is_invalid() {
        let id = ComponentId::new();
        let d = declared(id);
        let mut input = write(id, &[("user", Some("bob"))], None);
        assert_eq!(check_input(&input, &d).unwrap_err().code(), "extension_unknown");
        input = write(id, &[("url", Some("https://crm.test"))], None);
        if let Some(Some(c)) = input.components.get_mut(&id) {
            c.properties.insert("timeout".into(), Some(PropertyValue::Boolean(true)));
        }
        let DomainError::Validation { code, errors } = check_input(&input, &d).unwrap_err() else { panic!() };
        assert_eq!((code, errors[0].field.clone()), ("validation_failed", format!("components.{id}.properties.timeout")));
        let other = write(ComponentId::new(), &[], None);
        assert_eq!(check_input(&other, &d).unwrap_err().code(), "component_not_found");
    }

    #[test]
    fn a_secret_left_out_keeps_its_value_null_clears_it_and_changes_name_fields_not_values() {
        let id = ComponentId::new();
        let d = declared(id);
        let first = write(id, &[("url", Some("https://crm.test")), ("password", Some("hunter2"))], Some(10));
        check_input(&first, &d).unwrap();
        let (v1, changes) = merged(&EnvironmentExtensions::default(), &first, &d, &sealed_for(&first, &d), "alice", Utc::now());
        assert_eq!(v1.version, 1);
        assert!(matches!(v1.components[&id].connection["password"], ConnectionValue::Secret { .. }));
        assert_eq!(changes[0].changed, ["connection.password", "connection.url", "lookups.countries", "properties.timeout"]);
        assert!(!serde_json::to_string(&v1).unwrap().contains("hunter2"), "the clear secret is not stored");

        let keep = write(id, &[("url", Some("https://crm.test"))], Some(10));
        let (v2, changes) = merged(&v1, &keep, &d, &BTreeMap::new(), "bob", Utc::now());
        assert_eq!(v2.version, 2);
        assert_eq!(v2.components[&id].connection["password"], v1.components[&id].connection["password"]);
        assert!(changes.is_empty(), "nothing changed: {changes:?}");
        assert_eq!(v2.components[&id].changed_in, 1, "the component's values last changed in version 1");

        let clear = write(id, &[("url", Some("https://crm.test")), ("password", None)], None);
        let (v3, changes) = merged(&v2, &clear, &d, &BTreeMap::new(), "bob", Utc::now());
        assert!(!v3.components[&id].connection.contains_key("password"));
        assert_eq!(changes[0].changed, ["connection.password", "properties.timeout"]);
        assert_eq!(v3.components[&id].changed_in, 3);

        let removed = ExtensionsInput { components: BTreeMap::from([(id, None)]) };
        let (v4, changes) = merged(&v3, &removed, &d, &BTreeMap::new(), "bob", Utc::now());
        assert!(v4.components[&id].is_empty());
        assert_eq!(v4.components[&id].changed_in, 4, "removed values leave when they changed");
        assert_eq!(changes[0].changed, ["connection.url", "lookups.countries"]);
    }

    #[test]
    fn a_missing_required_field_and_an_unmapped_source_key_are_the_gaps_of_a_deployment() {
        let id = ComponentId::new();
        let d = declared(id);
        let input = write(id, &[("url", Some("https://crm.test"))], None);
        let (values, _) = merged(&EnvironmentExtensions::default(), &input, &d, &BTreeMap::new(), "alice", Utc::now());
        let p = points();
        assert_eq!(
            gaps([(id, "CRM", &p)], &values),
            vec![
                ExtensionGap::Missing { component_id: id, component: "CRM".into(), field: "password".into() },
                ExtensionGap::Unresolved { component_id: id, component: "CRM".into(), table: "countries".into(), key: "FR".into() },
            ]
        );
    }

    #[test]
    fn resolving_applies_defaults_and_hands_secrets_only_as_sensitive_values() {
        let id = ComponentId::new();
        let d = declared(id);
        let input = write(id, &[("url", Some("https://crm.test")), ("password", Some("hunter2"))], None);
        let (values, _) = merged(&EnvironmentExtensions::default(), &input, &d, &sealed_for(&input, &d), "alice", Utc::now());
        let opened = BTreeMap::from([("password".to_string(), Sensitive::new("hunter2"))]);
        let resolved = resolve(id, values.version, values.components.get(&id), &points(), opened);
        assert_eq!(resolved.connection["password"].reveal(), "hunter2");
        assert_eq!(resolved.properties["timeout"], PropertyValue::Number(30.into()));
        assert!(!format!("{resolved:?}").contains("hunter2"));
    }
}
