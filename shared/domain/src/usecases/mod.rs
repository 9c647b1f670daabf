//! Use cases: one method per thing a caller can do. Each checks permission,
//! validates, applies the domain rules and calls the ports.

mod agents;
mod api_keys;
mod audit;
mod change_requests;
mod components;
mod credentials;
mod deliveries;
mod deployments;
mod dispatch;
mod environments;
mod extensions;
mod governance;
mod inbox;
mod jobs;
mod latest;
mod packages;
mod quarantine;
mod queue_access;
mod rollouts;
mod runtimes;
mod sweeper;
mod syncs;
mod tenants;
mod uploads;
mod usage;
mod webhooks;

pub use agents::{AgentRequest, Registration, RuntimeCtx};
pub use api_keys::{ApiKeyPrincipal, CreatedApiKey};
pub use audit::{AuditFilter, VerifyCursor, VerifyReport, VerifyScope};
pub use change_requests::{ChangeRequestInput, ChangeRequestPatch, ItemReport, ItemScan};
pub use components::{NewComponent, RevisionInput};
pub use credentials::IssuedRegistration;
pub use deliveries::{DeliveryReceipt, DeliveryStatus, IncomingDelivery};
pub use deployments::{ActiveView, NewDeployment};
pub use extensions::{ComponentValuesView, ExtensionsView, ShownValue};
pub use inbox::Awaiting;
pub use jobs::{JobEventOutcome, JobOffer, MAX_WAIT};
pub use latest::{LatestDeployment, NewLatestDeployment};
pub use packages::{NewPackage, PackageDetails};
pub use queue_access::{QUEUE_SESSION, QueueCredentials};
pub use runtimes::CreatedRuntime;
pub use sweeper::SweepReport;
pub use tenants::{TENANT_CACHE_TTL, TenantCache};
pub use uploads::{CompleteUpload, CompletedUpload, NewUpload, StartedUpload, UploadTarget};
pub use usage::{Allowance, ConnectionsInUse, LicenceUse, Usage};
pub use webhooks::WebhookWithSecret;

use crate::ports::{
    ApiKeyStore, AuditStore, BlobStore, ChangeRequestStore, ComponentStore, CredentialVendor, DecisionInbox, DeploymentStore, EnvironmentStore,
    ExtensionSealer, ExtensionStore, IdempotencyStore, JobQueues, PackageActivity, PackageStore, PolicyStore, RuntimeQueues, RuntimeStore, SecretSealer,
    TenantStore, WebhookStore,
};
use crate::ports::{StagingStore, SubjectReads, UploadStore};
use std::sync::Arc;

/// Settings the rules depend on.
#[derive(Clone, Debug)]
pub struct Settings {
    /// A runtime with no heartbeat for this long is `offline`.
    pub runtime_offline_after: chrono::Duration,
    /// A delivered job not finished within this is failed by the sweeper.
    pub job_deadline: chrono::Duration,
    /// At most this many audit events are checked by one `GET /v1/audit/verify`
    /// (one slice), so a call fits in API Gateway's 29 s whatever the chain's length.
    pub audit_verify_max_events: u64,
    /// Uploads larger than this are multipart, in parts of this size (at least 5 MiB).
    pub upload_part_bytes: u64,
    /// A package whose bundled content totals at most this many bytes is built
    /// inside `POST /v1/packages`; a larger one is reserved `building` and built
    /// by the package builder (API Gateway ends a request at 29 s).
    pub sync_package_max_bytes: u64,
}

/// 32 MiB: about 13 s of archive writing at the slowest rate measured (a
/// 160 MiB package took 64 s on LocalStack, 2.5 MiB/s), so a synchronous build
/// stays well inside API Gateway's 29 s; most packages are far smaller and
/// keep their one-request 201.
pub const DEFAULT_SYNC_PACKAGE_MAX_BYTES: u64 = 32 * 1024 * 1024;

impl Default for Settings {
    fn default() -> Self {
        Self {
            runtime_offline_after: chrono::Duration::seconds(90),
            job_deadline: chrono::Duration::minutes(15),
            audit_verify_max_events: 20_000,
            upload_part_bytes: crate::upload::DEFAULT_UPLOAD_PART_BYTES,
            sync_package_max_bytes: DEFAULT_SYNC_PACKAGE_MAX_BYTES,
        }
    }
}

/// The adapters a `Berth` runs on, one per port. An adapter crate builds it
/// (`berth_aws::build_berth` over DynamoDB/S3/SQS, `berth_memory::Memory` in
/// memory) and hands it to `Berth::new`.
#[derive(Clone)]
pub struct Ports {
    pub tenants: Arc<dyn TenantStore>,
    pub environments: Arc<dyn EnvironmentStore>,
    pub runtimes: Arc<dyn RuntimeStore>,
    pub queues: Arc<dyn RuntimeQueues>,
    pub audit: Arc<dyn AuditStore>,
    pub idempotency: Arc<dyn IdempotencyStore>,
    pub components: Arc<dyn ComponentStore>,
    pub packages: Arc<dyn PackageStore>,
    pub blobs: Arc<dyn BlobStore>,
    pub package_activity: Arc<dyn PackageActivity>,
    pub deployments: Arc<dyn DeploymentStore>,
    pub policies: Arc<dyn PolicyStore>,
    pub change_requests: Arc<dyn ChangeRequestStore>,
    pub jobs: Arc<dyn JobQueues>,
    /// Vends agents their queue credentials.
    pub credentials: Arc<dyn CredentialVendor>,
    pub webhooks: Arc<dyn WebhookStore>,
    /// Seals webhook signing secrets (KMS in AWS).
    pub sealer: Arc<dyn SecretSealer>,
    pub api_keys: Arc<dyn ApiKeyStore>,
    /// What waits on approvers (deployments and change requests).
    pub inbox: Arc<dyn DecisionInbox>,
    /// Environments' extension values.
    pub extensions: Arc<dyn ExtensionStore>,
    /// Seals secret extension values (KMS in AWS).
    pub extension_sealer: Arc<dyn ExtensionSealer>,
    /// Pending content uploads.
    pub uploads: Arc<dyn UploadStore>,
    /// Staged upload objects (S3 in AWS).
    pub staging: Arc<dyn StagingStore>,
    /// What a deployment request names by key, read at once.
    pub subjects: Arc<dyn SubjectReads>,
}

/// The application: every use case, over the ports it was built with. Only
/// its use cases reach the ports: callers ask it, they do not reach past it.
/// Built once per cold start and shared by reference.
#[derive(Clone)]
pub struct Berth {
    ports: Ports,
    settings: Settings,
    /// Tenant items this instance read lately (see `TENANT_CACHE_TTL`).
    tenant_cache: Arc<TenantCache>,
    /// Where outcomes are counted (nowhere unless `with_metrics`).
    metrics: Arc<dyn crate::metrics::Metrics>,
}

impl Berth {
    pub fn new(ports: Ports, settings: Settings) -> Self {
        Self { ports, settings, tenant_cache: Default::default(), metrics: Arc::new(crate::metrics::NoMetrics) }
    }

    /// This `Berth`, counting its outcomes in `metrics`.
    pub fn with_metrics(self, metrics: Arc<dyn crate::metrics::Metrics>) -> Self {
        Self { metrics, ..self }
    }

    pub(crate) fn count(&self, tenant: crate::ids::TenantId, event: crate::metrics::MetricEvent) {
        self.metrics.record(tenant, event);
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The idempotency store, for the web layer's idempotency middleware
    /// (which runs around the use cases, not inside one).
    pub fn idempotency_store(&self) -> Arc<dyn IdempotencyStore> {
        self.ports.idempotency.clone()
    }
}
