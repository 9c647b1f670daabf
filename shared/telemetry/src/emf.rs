//! Metrics in CloudWatch's embedded metric format (EMF): one JSON line per
//! event on stdout, which Lambda ships to CloudWatch Logs, which extracts the
//! metrics. Namespace `Berth`, one dimension (`function`), the tenant a
//! property (searchable in Logs Insights, but no metric per tenant).
//!
//! Written here rather than with `metrics_cloudwatch_embedded`: that crate
//! aggregates through the process-wide `metrics` recorder and attaches
//! properties to the recorder, not to an event, so a per-event tenant would
//! race between the concurrent requests of `berth-local` (and tests); a line
//! per event is also what EMF is cheapest at.

use berth_domain::deployment::DeploymentStatus;
use berth_domain::ids::TenantId;
use berth_domain::metrics::{MetricEvent, Metrics};
use serde_json::{Map, Value, json};
use std::io::Write;
use std::sync::{Arc, Mutex};

/// The CloudWatch namespace of every Berth metric.
pub const NAMESPACE: &str = "Berth";
/// The one dimension: which function counted it.
pub const FUNCTION_DIMENSION: &str = "function";

/// Where EMF lines go: stdout in Lambda, a buffer in tests. Clones share it.
#[derive(Clone)]
pub struct EmfSink(Arc<Mutex<Box<dyn Write + Send>>>);

impl EmfSink {
    pub fn stdout() -> Self {
        Self::writer(std::io::stdout())
    }

    pub fn writer(writer: impl Write + Send + 'static) -> Self {
        Self(Arc::new(Mutex::new(Box::new(writer))))
    }

    /// Writes `line` and its newline in one write, so log lines never split it.
    fn write_line(&self, line: &str) {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        let mut out = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Err(e) = out.write_all(&bytes).and_then(|()| out.flush()) {
            // A lost metric must not fail a deployment.
            tracing::warn!(error = %e, "could not write a metric");
        }
    }
}

/// Records `Berth`'s events as EMF lines, from the function `function`.
pub struct EmfMetrics {
    function: String,
    sink: EmfSink,
}

impl EmfMetrics {
    pub fn new(function: impl Into<String>, sink: EmfSink) -> Self {
        Self { function: function.into(), sink }
    }

    /// What a Lambda main uses: lines on stdout.
    pub fn stdout(function: impl Into<String>) -> Arc<Self> {
        Arc::new(Self::new(function, EmfSink::stdout()))
    }
}

impl Metrics for EmfMetrics {
    fn record(&self, tenant: TenantId, event: MetricEvent) {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        if let Some(document) = emf_document(&self.function, tenant, &event, now) {
            self.sink.write_line(&document.to_string());
        }
    }
}

/// A metric's name, unit and value, as EMF spells them.
struct Measure {
    name: &'static str,
    unit: &'static str,
    value: f64,
}

fn count(name: &'static str) -> Measure {
    Measure { name, unit: "Count", value: 1.0 }
}

fn label<T: serde::Serialize>(value: T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// The EMF document for `event`, or `None` for an event no metric counts
/// (a deployment that ended cancelled, say).
pub fn emf_document(function: &str, tenant: TenantId, event: &MetricEvent, timestamp_ms: u64) -> Option<Value> {
    let mut properties = Map::new();
    let measure = match event {
        MetricEvent::DeploymentRequested { deployment, kind } => {
            properties.insert("deployment_id".into(), deployment.to_string().into());
            properties.insert("kind".into(), label(kind));
            count("DeploymentRequested")
        }
        MetricEvent::DeploymentSettled { deployment, kind, status } => {
            properties.insert("deployment_id".into(), deployment.to_string().into());
            properties.insert("kind".into(), label(kind));
            properties.insert("status".into(), label(status));
            match status {
                DeploymentStatus::Succeeded => count("DeploymentSucceeded"),
                DeploymentStatus::Failed | DeploymentStatus::PartiallyFailed => count("DeploymentFailed"),
                DeploymentStatus::RolledBack => count("DeploymentRolledBack"),
                _ => return None,
            }
        }
        MetricEvent::JobFinished { deployment, runtime, succeeded, latency } => {
            properties.insert("deployment_id".into(), deployment.to_string().into());
            properties.insert("runtime_id".into(), runtime.to_string().into());
            properties.insert("outcome".into(), if *succeeded { "succeeded" } else { "failed" }.into());
            Measure { name: "JobLatency", unit: "Milliseconds", value: latency.as_millis() as f64 }
        }
        MetricEvent::Heartbeat { runtime } => {
            properties.insert("runtime_id".into(), runtime.to_string().into());
            count("AgentHeartbeat")
        }
        MetricEvent::WebhookDelivery { accepted, code } => {
            properties.insert("code".into(), code.clone().into());
            count(if *accepted { "WebhookDeliveryAccepted" } else { "WebhookDeliveryRefused" })
        }
    };
    let mut document = json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [[FUNCTION_DIMENSION]],
                "Metrics": [{ "Name": measure.name, "Unit": measure.unit }],
            }],
        },
        FUNCTION_DIMENSION: function,
        "tenant_id": tenant.to_string(),
    });
    if let Some(fields) = document.as_object_mut() {
        fields.extend(properties);
        fields.insert(measure.name.into(), json!(measure.value));
    }
    Some(document)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_domain::deployment::DeploymentKind;
    use berth_domain::ids::{DeploymentId, RuntimeId};
    use std::time::Duration;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("the buffer").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_succeeded_deployment_is_one_count_in_the_berth_namespace_by_function_with_the_tenant_as_a_property() {
        let tenant = TenantId::new();
        let event = MetricEvent::DeploymentSettled { deployment: DeploymentId::new(), kind: DeploymentKind::Deploy, status: DeploymentStatus::Succeeded };
        let doc = emf_document("agent-gateway", tenant, &event, 1_700_000_000_000).expect("a document");
        assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_000u64);
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Berth");
        assert_eq!(directive["Dimensions"], json!([["function"]]), "the tenant is no dimension");
        assert_eq!(directive["Metrics"], json!([{ "Name": "DeploymentSucceeded", "Unit": "Count" }]));
        assert_eq!(doc["function"], "agent-gateway");
        assert_eq!(doc["tenant_id"], tenant.to_string());
        assert_eq!(doc["DeploymentSucceeded"], 1.0);
        assert_eq!(doc["status"], "succeeded");
    }

    #[test]
    fn each_ending_has_its_own_metric_and_a_cancelled_deployment_none() {
        let name = |status| {
            let event = MetricEvent::DeploymentSettled { deployment: DeploymentId::new(), kind: DeploymentKind::Deploy, status };
            emf_document("f", TenantId::new(), &event, 0).map(|d| d["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"].as_str().unwrap_or("").to_string())
        };
        assert_eq!(name(DeploymentStatus::Failed).as_deref(), Some("DeploymentFailed"));
        assert_eq!(name(DeploymentStatus::PartiallyFailed).as_deref(), Some("DeploymentFailed"));
        assert_eq!(name(DeploymentStatus::RolledBack).as_deref(), Some("DeploymentRolledBack"));
        assert_eq!(name(DeploymentStatus::Cancelled), None);
    }

    #[test]
    fn job_latency_is_in_milliseconds() {
        let event =
            MetricEvent::JobFinished { deployment: DeploymentId::new(), runtime: RuntimeId::new(), succeeded: true, latency: Duration::from_millis(1234) };
        let doc = emf_document("agent-gateway", TenantId::new(), &event, 0).expect("a document");
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Metrics"], json!([{ "Name": "JobLatency", "Unit": "Milliseconds" }]));
        assert_eq!(doc["JobLatency"], 1234.0);
        assert_eq!(doc["outcome"], "succeeded");
    }

    #[test]
    fn every_event_is_one_json_line() {
        let buffer = Buffer::default();
        let metrics = EmfMetrics::new("webhooks", EmfSink::writer(buffer.clone()));
        metrics.record(TenantId::new(), MetricEvent::WebhookDelivery { accepted: false, code: "bad_signature".into() });
        metrics.record(TenantId::new(), MetricEvent::Heartbeat { runtime: RuntimeId::new() });
        let text = String::from_utf8(buffer.0.lock().expect("the buffer").clone()).expect("UTF-8");
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect("each line is JSON")).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["WebhookDeliveryRefused"], 1.0);
        assert_eq!(lines[0]["code"], "bad_signature");
        assert_eq!(lines[1]["AgentHeartbeat"], 1.0);
    }
}
