//! The operations of the served OpenAPI document, as the matrix needs them:
//! method, path template, who may call (from `security`) and a request body
//! (from the body schema's `example`).

use reqwest::Method;
use serde_json::Value;

/// How an operation authenticates its caller, from its `security`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    /// The `bearer` scheme: a JWT of a tenant user (or, under
    /// `/platform/`, of a platform operator).
    Jwt { platform: bool },
    /// The `runtime_credential` scheme: an agent's credential.
    RuntimeCredential,
    /// The `webhook_signature` scheme: a request signed with a webhook's secret.
    WebhookSignature,
    /// No `security` (or an empty requirement): anyone may call.
    Public,
}

#[derive(Clone, Debug)]
pub struct Operation {
    pub method: Method,
    pub path: String,
    pub security: Security,
    /// The example request body, with the example's ids still in it.
    pub body: Option<Value>,
}

impl Operation {
    pub fn label(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

const METHODS: [&str; 7] = ["get", "put", "post", "delete", "patch", "head", "options"];

/// Every operation of `doc`, or every reason the matrix cannot call one.
pub fn operations(doc: &Value) -> Result<Vec<Operation>, Vec<String>> {
    let mut ops = vec![];
    let mut problems = vec![];
    let paths = doc["paths"].as_object().expect("the document has paths");
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("a path item").iter().filter(|(m, _)| METHODS.contains(&m.as_str())) {
            let method: Method = method.to_uppercase().parse().expect("an HTTP method");
            let label = format!("{method} {path}");
            let security = match security_of(op) {
                Ok(s) => s,
                Err(why) => {
                    problems.push(format!("{label}: {why}"));
                    continue;
                }
            };
            let security = match security {
                Security::Jwt { .. } => Security::Jwt { platform: path.starts_with("/platform/") },
                other => other,
            };
            for p in op["parameters"].as_array().into_iter().flatten() {
                if p["in"] == "query" && p["required"] == true {
                    problems.push(format!("{label}: required query parameter `{}` has no value in the matrix", p["name"]));
                }
            }
            let body = if op["requestBody"].is_null() {
                None
            } else {
                match example_body(doc, &op["requestBody"]) {
                    Some(b) => Some(b),
                    None => {
                        problems.push(format!(
                            "{label}: its request body has no example; add #[schema(example = json!({{...}}))] to the body's type so the matrix can send it"
                        ));
                        continue;
                    }
                }
            };
            ops.push(Operation { method, path: path.clone(), security, body });
        }
    }
    if problems.is_empty() { Ok(ops) } else { Err(problems) }
}

fn security_of(op: &Value) -> Result<Security, String> {
    let requirements = match op.get("security") {
        None | Some(Value::Null) => return Ok(Security::Public),
        Some(Value::Array(r)) => r,
        Some(other) => return Err(format!("`security` is not a list: {other}")),
    };
    if requirements.is_empty() || requirements.iter().any(|r| r.as_object().is_some_and(|o| o.is_empty())) {
        return Ok(Security::Public);
    }
    let names: Vec<&String> = requirements.iter().filter_map(Value::as_object).flat_map(|o| o.keys()).collect();
    match names.as_slice() {
        [n] if n.as_str() == "bearer" => Ok(Security::Jwt { platform: false }),
        [n] if n.as_str() == "runtime_credential" => Ok(Security::RuntimeCredential),
        [n] if n.as_str() == "webhook_signature" => Ok(Security::WebhookSignature),
        _ => Err(format!("security schemes {names:?} are unknown to the matrix; teach tests/attack/doc.rs `security_of` which cells apply")),
    }
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str().and_then(|r| r.strip_prefix("#/components/schemas/")) {
        Some(name) => &doc["components"]["schemas"][name],
        None => schema,
    }
}

/// The body's example: on the media type, or on its (referenced) schema.
fn example_body(doc: &Value, request_body: &Value) -> Option<Value> {
    let media = &request_body["content"]["application/json"];
    if let Some(e) = media.get("example") {
        return Some(e.clone());
    }
    if let Some(e) = media["examples"].as_object().and_then(|e| e.values().next()) {
        return Some(e["value"].clone());
    }
    let schema = resolve(doc, &media["schema"]);
    schema.get("example").cloned().or_else(|| schema["examples"].as_array().and_then(|e| e.first()).cloned())
}
