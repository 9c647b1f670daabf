//! Everything this test's Berth has stored: every item of its DynamoDB table,
//! every object of its bucket, and tenant A's audit chain as the API reports
//! it. Two equal snapshots mean nothing was written in between.

use crate::estate::call;
use aws_sdk_dynamodb::types::AttributeValue;
use berth_tests::{TestApp, expect_status};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::collections::BTreeSet;

#[derive(Debug, PartialEq)]
pub struct Stored {
    pub items: BTreeSet<String>,
    pub objects: BTreeSet<String>,
    pub audit_events: usize,
    pub audit_verify: Value,
}

impl Stored {
    pub async fn read(app: &TestApp, a_admin: &str) -> Stored {
        // Verified first: verifying stores a checkpoint (the observer's own
        // write), which the scan below then sees in both snapshots alike. Only
        // the outcome and the chain's length are compared: what one call checks
        // depends on the checkpoint the call before it left.
        let verify = expect_status(call(app, Method::GET, "/v1/audit/verify", a_admin, None).await, StatusCode::OK).await;
        let audit_verify = serde_json::json!({"ok": verify["ok"], "head_seq": verify["head_seq"], "first_broken": verify["first_broken"]});
        let mut items = BTreeSet::new();
        let mut start = None;
        loop {
            let page = app.clients.dynamo.scan().table_name(&app.names.table).set_exclusive_start_key(start).send().await.expect("the table is scanned");
            items.extend(page.items().iter().filter(|item| !refusal_record(item)).map(|item| canonical(&AttributeValue::M(item.clone())).to_string()));
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                break;
            }
        }
        let mut objects = BTreeSet::new();
        let mut token = None;
        loop {
            let page = app.clients.s3.list_objects_v2().bucket(&app.names.bucket).set_continuation_token(token).send().await.expect("the bucket is listed");
            objects.extend(page.contents().iter().map(|o| format!("{} {} {}", o.key().unwrap_or(""), o.e_tag().unwrap_or(""), o.size().unwrap_or(0))));
            token = page.next_continuation_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        Stored { items, objects, audit_events: audit_len(app, a_admin).await, audit_verify }
    }

    /// What differs from `before`, item by item.
    pub fn diff(&self, before: &Stored) -> String {
        let mut lines = vec![];
        for gone in before.items.difference(&self.items) {
            lines.push(format!("  - item {gone}"));
        }
        for new in self.items.difference(&before.items) {
            lines.push(format!("  + item {new}"));
        }
        for gone in before.objects.difference(&self.objects) {
            lines.push(format!("  - object {gone}"));
        }
        for new in self.objects.difference(&before.objects) {
            lines.push(format!("  + object {new}"));
        }
        if self.audit_events != before.audit_events || self.audit_verify != before.audit_verify {
            lines.push(format!(
                "  audit: {} events {} before, {} events {} after",
                before.audit_events, before.audit_verify, self.audit_events, self.audit_verify
            ));
        }
        lines.join("\n")
    }
}

async fn audit_len(app: &TestApp, a_admin: &str) -> usize {
    let mut n = 0;
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/audit?limit=100&cursor={c}"),
            None => "/v1/audit?limit=100".to_string(),
        };
        let page = expect_status(call(app, Method::GET, &path, a_admin, None).await, StatusCode::OK).await;
        n += page["items"].as_array().expect("items").len();
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return n,
        }
    }
}

/// An item as JSON with sorted keys, so it prints the same every time.
fn canonical(v: &AttributeValue) -> Value {
    match v {
        // Sorted explicitly: with serde_json's `preserve_order` on in the build
        // graph, a map keeps insertion order, and a HashMap's order is random.
        AttributeValue::M(m) => {
            Value::Object(m.iter().collect::<std::collections::BTreeMap<_, _>>().into_iter().map(|(k, v)| (k.clone(), canonical(v))).collect())
        }
        AttributeValue::L(l) => Value::Array(l.iter().map(canonical).collect()),
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::N(n) => serde_json::json!({"N": n}),
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::Ss(s) => serde_json::json!({"SS": s.iter().collect::<BTreeSet<_>>()}),
        AttributeValue::Ns(n) => serde_json::json!({"NS": n.iter().collect::<BTreeSet<_>>()}),
        other => Value::String(format!("{other:?}")),
    }
}

/// The writes a refused webhook delivery makes by design: its line in the
/// webhook's delivery history (admins see who knocked) and its count toward
/// the webhook's rate limit. Nothing else may change.
fn refusal_record(item: &std::collections::HashMap<String, AttributeValue>) -> bool {
    let pk = item.get("pk").and_then(|v| v.as_s().ok()).map(String::as_str).unwrap_or("");
    pk.starts_with("T#") && pk.contains("#WEBHOOK#") && (pk.ends_with("#DELIVERY") || pk.ends_with("#ATTEMPTS"))
}
