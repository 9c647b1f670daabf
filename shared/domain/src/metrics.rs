//! What the use cases count: a narrow seam through which `Berth` tells an
//! operator's metrics what happened, once the outcome is known. The domain
//! names the events; an adapter (`berth_telemetry::EmfMetrics` in Lambda)
//! decides how they are written. Recording never fails a use case.

use crate::deployment::{DeploymentKind, DeploymentStatus};
use crate::ids::{DeploymentId, RuntimeId, TenantId};
use std::time::Duration;

/// One thing worth counting, for one tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetricEvent {
    /// A deployment was recorded (by a person, an API key, a webhook, a
    /// change request, or automatically: `kind` says which sort).
    DeploymentRequested { deployment: DeploymentId, kind: DeploymentKind },
    /// A deployment ended: `status` is one of `DeploymentStatus::is_outcome`.
    DeploymentSettled { deployment: DeploymentId, kind: DeploymentKind, status: DeploymentStatus },
    /// A runtime's job ended, `latency` after it was handed to the agent.
    JobFinished { deployment: DeploymentId, runtime: RuntimeId, succeeded: bool, latency: Duration },
    /// An agent reported in.
    Heartbeat { runtime: RuntimeId },
    /// A webhook delivery was acted on (`accepted`) or refused; `code` is the
    /// outcome (`accepted`, `ignored`) or the refusal's problem code.
    WebhookDelivery { accepted: bool, code: String },
}

/// Where `Berth` records its events. Implementations must be cheap and must
/// not block for long: they run on the request path.
pub trait Metrics: Send + Sync {
    fn record(&self, tenant: TenantId, event: MetricEvent);
}

/// Counts nothing: what a `Berth` records to unless given metrics.
pub struct NoMetrics;

impl Metrics for NoMetrics {
    fn record(&self, _: TenantId, _: MetricEvent) {}
}
