//! Request and response bodies of environment extensions: the extension
//! points a component revision declares, and an environment's values.

use berth_domain::extension::{ComponentInput, ConnectionField, ExtensionPoints, ExtensionsInput, LookupPoint, PropertyPoint, PropertyType, PropertyValue};
use berth_domain::ids::ComponentId;
use berth_domain::secret::Sensitive;
use berth_domain::usecases::{ExtensionsView, ShownValue};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;
use uuid::Uuid;

/// What a component revision lets each environment set. Names are 1 to 128
/// characters and unique within their list; a default is of its property's type.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "connection_fields": [{"name": "url", "secret": false, "required": true}, {"name": "password", "secret": true, "required": true}],
    "properties": [{"name": "batch_size", "type": "number", "default": 100}],
    "lookups": [{"table": "countries", "keys": ["DE", "FR"]}]
}))]
pub struct ExtensionPointsBody {
    #[serde(default)]
    #[schema(max_items = 100)]
    pub connection_fields: Vec<ConnectionFieldBody>,
    #[serde(default)]
    #[schema(max_items = 100)]
    pub properties: Vec<PropertyBody>,
    #[serde(default)]
    #[schema(max_items = 100)]
    pub lookups: Vec<LookupBody>,
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionFieldBody {
    #[schema(schema_with = point_name)]
    pub name: String,
    /// Write-only in every environment: sealed when set, never returned.
    #[serde(default)]
    pub secret: bool,
    /// A deployment is refused (`extension_missing`) where the field has no value.
    #[serde(default)]
    pub required: bool,
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PropertyBody {
    #[schema(schema_with = point_name)]
    pub name: String,
    #[serde(rename = "type")]
    #[schema(value_type = String, pattern = "^(string|number|boolean)$", example = "number")]
    pub kind: PropertyType,
    /// A string, number or boolean, of the property's type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = property_value_schema)]
    pub default: Option<PropertyValue>,
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LookupBody {
    #[schema(schema_with = point_name)]
    pub table: String,
    /// The source keys the component looks up: an environment without a
    /// mapping for one is warned of (`lookup_unresolved`).
    #[schema(schema_with = lookup_keys)]
    pub keys: Vec<String>,
}

impl From<ExtensionPointsBody> for ExtensionPoints {
    fn from(b: ExtensionPointsBody) -> Self {
        ExtensionPoints {
            connection_fields: b.connection_fields.into_iter().map(|f| ConnectionField { name: f.name, secret: f.secret, required: f.required }).collect(),
            properties: b.properties.into_iter().map(|p| PropertyPoint { name: p.name, kind: p.kind, default: p.default }).collect(),
            lookups: b.lookups.into_iter().map(|l| LookupPoint { table: l.table, keys: l.keys }).collect(),
        }
    }
}

impl From<&ExtensionPoints> for ExtensionPointsBody {
    fn from(p: &ExtensionPoints) -> Self {
        Self {
            connection_fields: p
                .connection_fields
                .iter()
                .map(|f| ConnectionFieldBody { name: f.name.clone(), secret: f.secret, required: f.required })
                .collect(),
            properties: p.properties.iter().map(|p| PropertyBody { name: p.name.clone(), kind: p.kind, default: p.default.clone() }).collect(),
            lookups: p.lookups.iter().map(|l| LookupBody { table: l.table.clone(), keys: l.keys.clone() }).collect(),
        }
    }
}

/// An environment's values, per component id. Within a component the write
/// is whole (what is left out has no value afterwards) except for secret
/// connection fields: left out (or sent back as read, `{"set": true, ...}`)
/// a secret keeps its value; `null` clears it. A component left out keeps
/// all its values; `"<component_id>": null` removes them.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"components": {"5d0c8a52-1f0e-4c53-9a43-6c1d2f0e7b31": {
    "connection": {"url": "https://crm.test.example", "password": "s3cret"},
    "properties": {"batch_size": 50},
    "lookups": {"countries": {"DE": "Germany", "FR": "France"}}
}}}))]
pub struct PutExtensions {
    /// Component id -> its values, or `null` to remove them.
    #[schema(value_type = Object)]
    pub components: BTreeMap<Uuid, Option<ComponentValuesBody>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentValuesBody {
    #[serde(default)]
    pub connection: BTreeMap<String, Option<ConnectionInput>>,
    #[serde(default)]
    pub properties: BTreeMap<String, Option<PropertyValue>>,
    #[serde(default)]
    pub lookups: BTreeMap<String, BTreeMap<String, String>>,
}

/// A connection field's value as written: the value, or a secret as read
/// (which keeps it).
#[derive(Deserialize)]
#[serde(untagged)]
pub enum ConnectionInput {
    Value(Sensitive),
    Kept(KeptSecret),
}

/// A secret sent back as a read showed it: it keeps its value. Its times
/// and author are accepted (so a read can be sent back) and not used.
#[allow(dead_code)]
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeptSecret {
    pub set: bool,
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub updated_by: Option<String>,
}

impl PutExtensions {
    pub fn into_input(self) -> Result<ExtensionsInput, berth_domain::DomainError> {
        let mut components = BTreeMap::new();
        for (id, values) in self.components {
            let values = match values {
                None => None,
                Some(v) => {
                    let mut connection = BTreeMap::new();
                    for (field, value) in v.connection {
                        match value {
                            None => {
                                connection.insert(field, None);
                            }
                            Some(ConnectionInput::Value(value)) => {
                                connection.insert(field, Some(value));
                            }
                            Some(ConnectionInput::Kept(kept)) if kept.set => {}
                            Some(ConnectionInput::Kept(_)) => {
                                return Err(berth_domain::DomainError::invalid(
                                    format!("components.{id}.connection.{field}"),
                                    "a value is a string, null (to clear it) or, for a secret kept as it is, {\"set\": true}",
                                ));
                            }
                        }
                    }
                    Some(ComponentInput { connection, properties: v.properties, lookups: v.lookups })
                }
            };
            components.insert(ComponentId::from_uuid(id), values);
        }
        Ok(ExtensionsInput { components })
    }
}

/// An environment's values: a secret field shows only `{"set": true, "updated_at", "updated_by"}`.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"components": {"5d0c8a52-1f0e-4c53-9a43-6c1d2f0e7b31": {
    "connection": {"url": "https://crm.test.example", "password": {"set": true, "updated_at": "2026-12-01T10:00:00Z", "updated_by": "alice@acme.example"}},
    "properties": {"batch_size": 50},
    "lookups": {"countries": {"DE": "Germany", "FR": "France"}}
}}, "version": 3, "etag": "\"3\"", "updated_at": "2026-12-01T10:00:00Z", "updated_by": "alice@acme.example"}))]
pub struct ExtensionsBody {
    #[schema(value_type = Object)]
    pub components: BTreeMap<Uuid, ComponentValuesShown>,
    /// Bumped by every write; deployments record the version they used.
    pub version: u64,
    pub etag: String,
    pub updated_at: Option<DateTime<Utc>>,
    pub updated_by: Option<String>,
}

#[derive(Serialize)]
pub struct ComponentValuesShown {
    pub connection: BTreeMap<String, ShownConnection>,
    pub properties: BTreeMap<String, PropertyValue>,
    pub lookups: BTreeMap<String, BTreeMap<String, String>>,
}

#[derive(Serialize)]
#[serde(untagged)]
pub enum ShownConnection {
    Plain(String),
    Secret { set: bool, updated_at: DateTime<Utc>, updated_by: String },
}

impl From<&ExtensionsView> for ExtensionsBody {
    fn from(v: &ExtensionsView) -> Self {
        let components = v
            .components
            .iter()
            .map(|(id, c)| {
                let connection = c
                    .connection
                    .iter()
                    .map(|(k, shown)| {
                        let shown = match shown {
                            ShownValue::Plain(value) => ShownConnection::Plain(value.clone()),
                            ShownValue::SecretSet { updated_at, updated_by } => {
                                ShownConnection::Secret { set: true, updated_at: *updated_at, updated_by: updated_by.clone() }
                            }
                        };
                        (k.clone(), shown)
                    })
                    .collect();
                (id.as_uuid(), ComponentValuesShown { connection, properties: c.properties.clone(), lookups: c.lookups.clone() })
            })
            .collect();
        Self { components, version: v.version.0, etag: v.version.etag(), updated_at: v.updated_at, updated_by: v.updated_by.clone() }
    }
}

/// A property's value as `PropertyValue` reads it: a string, a number or a boolean.
fn property_value_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
    Schema::OneOf(
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::String))
            .item(ObjectBuilder::new().schema_type(Type::Number))
            .item(ObjectBuilder::new().schema_type(Type::Boolean))
            .description(Some("a string, number or boolean, of the property's type"))
            .build(),
    )
}

/// An extension point's name (`check_name`): 1 to 128 characters, no control character.
fn point_name() -> utoipa::openapi::schema::Object {
    berth_web::schema::printable(berth_domain::extension::MAX_NAME_CHARS, false)
}

/// A lookup table's source keys: at most 1000, each 1 to 256 characters.
fn lookup_keys() -> utoipa::openapi::schema::Array {
    use berth_domain::extension::{MAX_KEY_CHARS, MAX_LOOKUP_KEYS};
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    let key = ObjectBuilder::new().schema_type(Type::String).min_length(Some(1)).max_length(Some(MAX_KEY_CHARS));
    ArrayBuilder::new().items(key).max_items(Some(MAX_LOOKUP_KEYS)).build()
}

/// The component whose active package to deploy again with the environment's current values.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"component_id": "5d0c8a52-1f0e-4c53-9a43-6c1d2f0e7b31"}))]
pub struct DeployExtensions {
    pub component_id: Uuid,
}

/// A component's connection in an environment: its latest test, if any.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"environment_id": "0e7c2f4a-8b1d-4c6e-9f3a-2d5b7c9e1f40", "component_id": "5d0c8a52-1f0e-4c53-9a43-6c1d2f0e7b31",
    "last_test": {"id": "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "status": "failed", "message": "connection refused", "at": "2026-12-02T09:00:00Z",
        "runtime_id": "01a233db-c232-7748-a4aa-a76ac922a4da", "requested_at": "2026-12-02T08:59:58Z", "requested_by": "user-1"}}))]
pub struct ConnectionView {
    pub environment_id: Uuid,
    pub component_id: Uuid,
    /// `null` when the connection was never tested there.
    pub last_test: Option<ConnectionTestView>,
}

/// One test of a connection, run by one runtime with the environment's values.
#[derive(Serialize, ToSchema)]
pub struct ConnectionTestView {
    pub id: Uuid,
    /// `pending` until the runtime reports (it sees the test at its next heartbeat), then `succeeded` or `failed`;
    /// `timed_out` when it did not report within 5 minutes.
    #[schema(pattern = "^(pending|succeeded|failed|timed_out)$")]
    pub status: String,
    /// What the runtime reported; empty while pending.
    pub message: String,
    /// When it ended; `null` while pending.
    pub at: Option<DateTime<Utc>>,
    pub runtime_id: Uuid,
    pub requested_at: DateTime<Utc>,
    pub requested_by: String,
}

impl ConnectionView {
    pub fn of(env: Uuid, component: Uuid, test: Option<&berth_domain::extension::ConnectionTest>) -> Self {
        use berth_domain::extension::ConnectionTestStatus as S;
        let last_test = test.map(|t| ConnectionTestView {
            id: t.id.as_uuid(),
            status: match t.status {
                S::Pending => "pending",
                S::Succeeded => "succeeded",
                S::Failed => "failed",
                S::TimedOut => "timed_out",
            }
            .to_string(),
            message: t.message.clone(),
            at: t.at,
            runtime_id: t.runtime_id.as_uuid(),
            requested_at: t.requested_at,
            requested_by: t.requested_by.clone(),
        });
        Self { environment_id: env, component_id: component, last_test }
    }
}
