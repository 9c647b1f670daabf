//! The ports through which use cases reach storage and queues. Adapters
//! (`berth-aws`) implement them; every tenant-scoped method takes the tenant
//! first, and every mutation takes the audit event that is written with it,
//! atomically. A write the store refuses because of what it holds fails with
//! `DomainError::Refused(Refusal)`: the store says which condition failed, the
//! domain words it (`refusal.rs`). Stores hold no business rule: where a write
//! depends on one (the in-flight lock, the sweeper's watch), they ask the domain.

use crate::Result;
use crate::audit::{AuditCheckpoint, AuditDraft, AuditEvent, AuditHead};
use crate::component::{Component, ContentRef, Revision};
use crate::deployment::{ActiveVersion, Deployment, DeploymentEvent, DeploymentStatus, JobMessage, Target, TargetState};
use crate::environment::Environment;
use crate::extension::{EnvironmentExtensions, SecretScope};
use crate::ids::WebhookId;
use crate::ids::{ComponentId, PackageId};
use crate::ids::{DeploymentId, JobId};
use crate::ids::{EnvironmentId, RuntimeId, TenantId};
use crate::package::{Manifest, Package, VersionLabel};
use crate::page::{Page, PageRequest};
use crate::policy::{Approval, Policy};
use crate::quarantine::Quarantine;
use crate::runtime::Digest;
use crate::runtime::{Credentials, Heartbeat, Runtime};
use crate::secret::{SecretHash, Sensitive};
use crate::tenant::Tenant;
use crate::values::{Name, Version};
use crate::webhook::{Delivery, DeliveryId, SealedSecret, Webhook};
use async_trait::async_trait;

#[async_trait]
pub trait TenantStore: Send + Sync {
    async fn create_tenant(&self, tenant: &Tenant, audit: AuditDraft) -> Result<()>;
    async fn get_tenant(&self, id: TenantId) -> Result<Option<Tenant>>;
    async fn list_tenants(&self, page: &PageRequest) -> Result<Page<Tenant>>;
    /// Refused `Stale(Tenant)` unless the stored version is `expected`.
    async fn update_tenant(&self, tenant: &Tenant, expected: Version, audit: AuditDraft) -> Result<()>;
}

#[async_trait]
pub trait EnvironmentStore: Send + Sync {
    /// Refused `Taken(EnvironmentName)` or `QuotaExceeded(Environments)` (the tenant's `max_environments`).
    async fn create_environment(&self, tenant: TenantId, env: &Environment, audit: AuditDraft) -> Result<()>;
    async fn get_environment(&self, tenant: TenantId, id: EnvironmentId) -> Result<Option<Environment>>;
    async fn list_environments(&self, tenant: TenantId, page: &PageRequest) -> Result<Page<Environment>>;
    /// Replaces `before` by `after`; refused `Stale(Environment)` if `before` is stale, `Taken` if renamed to a name in use.
    async fn update_environment(&self, tenant: TenantId, before: &Environment, after: &Environment, audit: AuditDraft) -> Result<()>;
    /// Refused `HasRuntimes` while runtimes are attached.
    async fn delete_environment(&self, tenant: TenantId, env: &Environment, audit: AuditDraft) -> Result<()>;
}

#[async_trait]
pub trait RuntimeStore: Send + Sync {
    /// Refused `QuotaExceeded(Runtimes)` (the tenant's `max_runtimes`).
    async fn create_runtime(&self, tenant: TenantId, runtime: &Runtime, audit: AuditDraft) -> Result<()>;
    async fn get_runtime(&self, tenant: TenantId, id: RuntimeId) -> Result<Option<Runtime>>;
    async fn list_runtimes(&self, tenant: TenantId, page: &PageRequest) -> Result<Page<Runtime>>;
    /// Deletes the runtime and detaches it from every environment, atomically;
    /// refused `Stale(Runtime)` if its attachments changed meanwhile.
    async fn delete_runtime(&self, tenant: TenantId, runtime: &Runtime, audit: AuditDraft) -> Result<()>;
    /// Returns false when it was attached already (nothing changes); refused
    /// `Missing(Runtime)` / `Missing(Environment)` when either is gone.
    async fn attach_runtime(&self, tenant: TenantId, env: EnvironmentId, runtime: RuntimeId, audit: AuditDraft) -> Result<bool>;
    /// Refused `Missing(Attachment)` when it was not attached.
    async fn detach_runtime(&self, tenant: TenantId, env: EnvironmentId, runtime: RuntimeId, audit: AuditDraft) -> Result<()>;
    async fn list_environment_runtimes(&self, tenant: TenantId, env: EnvironmentId, page: &PageRequest) -> Result<Page<Runtime>>;
    /// Swaps the registration hash for a credential hash, once (leaving
    /// `Credentials::registered`: no pending credential, no expiry, not
    /// revoked): refused `RegistrationUsed` if the registration hash is no
    /// longer there.
    async fn complete_registration(
        &self,
        tenant: TenantId,
        runtime: RuntimeId,
        registration: &SecretHash,
        credential: &SecretHash,
        name: Option<&Name>,
        agent_version: &str,
        audit: AuditDraft,
    ) -> Result<()>;
    async fn record_heartbeat(&self, tenant: TenantId, runtime: RuntimeId, heartbeat: &Heartbeat) -> Result<()>;
    /// Replaces the runtime's credentials with `new` if they are still
    /// `expected` (as read), with `audit` when given: refused `Stale(Runtime)`
    /// otherwise (a concurrent rotation, revoke, re-issue or registration), or
    /// when the runtime is gone.
    async fn swap_credentials(&self, tenant: TenantId, runtime: RuntimeId, expected: &Credentials, new: &Credentials, audit: Option<AuditDraft>) -> Result<()>;
}

/// Each runtime has its own job queue.
#[async_trait]
pub trait RuntimeQueues: Send + Sync {
    /// Creates the queue (and its dead-letter queue); returns its URL.
    async fn create_runtime_queue(&self, tenant: TenantId, runtime: RuntimeId) -> Result<String>;
    async fn delete_runtime_queue(&self, tenant: TenantId, runtime: RuntimeId, queue_url: &str) -> Result<()>;
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Events in `seq` order.
    async fn list_audit(&self, tenant: TenantId, page: &PageRequest) -> Result<Page<AuditEvent>>;
    async fn audit_head(&self, tenant: TenantId) -> Result<AuditHead>;
    /// Up to `max` events with a `seq` above `after`, in `seq` order, read
    /// in as few (and as large) store reads as the store allows.
    async fn audit_events_after(&self, tenant: TenantId, after: u64, max: usize) -> Result<Vec<AuditEvent>>;
    async fn audit_event(&self, tenant: TenantId, seq: u64) -> Result<Option<AuditEvent>>;
    async fn audit_checkpoint(&self, tenant: TenantId) -> Result<Option<AuditCheckpoint>>;
    /// Stores `checkpoint` if it is past the stored one (checkpoints only move
    /// forward); false when another verification already got as far.
    async fn advance_audit_checkpoint(&self, tenant: TenantId, checkpoint: &AuditCheckpoint) -> Result<bool>;
}

/// Who an idempotency key belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdempotencyScope {
    Tenant(TenantId),
    Platform,
}

/// A response kept so a retried request gets the same answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reservation {
    /// The key is new: the caller runs the request and then completes or releases it.
    Reserved,
    /// Another request with this key is running now.
    InProgress { fingerprint: String },
    /// Done before: replay this (if the fingerprint matches).
    Completed { fingerprint: String, response: StoredResponse },
}

/// How long an idempotency key is remembered (its response replayed).
pub const IDEMPOTENCY_KEEP_SECS: i64 = 24 * 3600;
/// A reservation left by a request that died is taken over after this long.
pub const IDEMPOTENCY_TAKEOVER_SECS: i64 = 120;

#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    async fn reserve(&self, scope: IdempotencyScope, key: &str, fingerprint: &str) -> Result<Reservation>;
    async fn complete(&self, scope: IdempotencyScope, key: &str, fingerprint: &str, response: &StoredResponse) -> Result<()>;
    /// Forgets a reservation whose request failed, so it can be retried.
    async fn release(&self, scope: IdempotencyScope, key: &str) -> Result<()>;
}

#[async_trait]
pub trait ComponentStore: Send + Sync {
    /// Refused `Taken(ComponentName)` when the tenant has a component of that type and name.
    async fn create_component(&self, tenant: TenantId, component: &Component, first: &Revision, audit: AuditDraft) -> Result<()>;
    async fn get_component(&self, tenant: TenantId, id: ComponentId) -> Result<Option<Component>>;
    /// Those of `ids` that exist, in no particular order.
    async fn get_components(&self, tenant: TenantId, ids: &[ComponentId]) -> Result<Vec<Component>>;
    async fn list_components(&self, tenant: TenantId, page: &PageRequest) -> Result<Page<Component>>;
    /// Appends `revision` (= `after.revision`); refused `Stale(Component)` unless the
    /// stored component is still at the revision before it.
    async fn add_revision(&self, tenant: TenantId, after: &Component, revision: &Revision, audit: AuditDraft) -> Result<()>;
    async fn get_revision(&self, tenant: TenantId, id: ComponentId, revision: u32) -> Result<Option<Revision>>;
    async fn list_revisions(&self, tenant: TenantId, id: ComponentId, page: &PageRequest) -> Result<Page<Revision>>;
}

/// A package archive as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveInfo {
    pub digest: Digest,
    pub size: u64,
}

/// A short-lived URL for one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresignedUrl {
    pub url: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// Immutable blobs: component content and package archives.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Stores content under its SHA-256 (a second put of the same bytes is a no-op).
    async fn put_content(&self, tenant: TenantId, bytes: Vec<u8>) -> Result<ContentRef>;
    /// Streams `manifest.json` and every bundled content into one archive and
    /// writes it, once: refused `ArchiveExists` if it exists.
    async fn write_package_archive(&self, tenant: TenantId, package: PackageId, manifest: &Manifest) -> Result<ArchiveInfo>;
    async fn delete_package_archive(&self, tenant: TenantId, package: PackageId) -> Result<()>;
    async fn presign_package_download(&self, tenant: TenantId, package: PackageId, ttl: std::time::Duration) -> Result<PresignedUrl>;
}

/// Pending uploads of content (see `upload`). Not audited: the revision an
/// upload becomes is.
#[async_trait]
pub trait UploadStore: Send + Sync {
    /// Records a new upload, kept until its `expires_at`.
    async fn create_upload(&self, tenant: TenantId, upload: &crate::upload::Upload) -> Result<()>;
    /// The upload, unless it expired (whether or not the store removed it yet).
    async fn get_upload(&self, tenant: TenantId, id: crate::ids::UploadId) -> Result<Option<crate::upload::Upload>>;
    /// Replaces the upload if its stored state is still `from`: false
    /// otherwise, or when it is gone.
    async fn update_upload(&self, tenant: TenantId, upload: &crate::upload::Upload, from: &crate::upload::UploadState) -> Result<bool>;
}

/// What a staged object turned out to hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StagedObject {
    pub size: u64,
    /// `None` when the size was not the expected one (it was not read).
    pub sha256: Option<Digest>,
}

/// Staged uploads: objects a client writes through presigned URLs, under the
/// tenant, until they are checked and copied to their content address.
#[async_trait]
pub trait StagingStore: Send + Sync {
    /// A presigned PUT of the whole object.
    async fn presign_staged_put(&self, tenant: TenantId, upload: crate::ids::UploadId, ttl: std::time::Duration) -> Result<PresignedUrl>;
    /// Starts a multipart upload of the object; returns its id.
    async fn start_staged_multipart(&self, tenant: TenantId, upload: crate::ids::UploadId) -> Result<String>;
    /// A presigned PUT of part `part` (from 1) of the multipart upload.
    async fn presign_staged_part(
        &self,
        tenant: TenantId,
        upload: crate::ids::UploadId,
        multipart: &str,
        part: u32,
        ttl: std::time::Duration,
    ) -> Result<PresignedUrl>;
    /// Assembles the object from the parts stored (listed by the store, not
    /// told by the client): false when not all `parts` are there (or the
    /// multipart upload is gone without an object). Assembled already: true.
    async fn finish_staged_multipart(&self, tenant: TenantId, upload: crate::ids::UploadId, multipart: &str, parts: u32) -> Result<bool>;
    /// The staged object's size and, when it is `expected_size`, its SHA-256
    /// (read as a stream: memory stays flat whatever the size); `None` when there is none.
    async fn inspect_staged(&self, tenant: TenantId, upload: crate::ids::UploadId, expected_size: u64) -> Result<Option<StagedObject>>;
    /// Copies the staged object to the content address of `content` (a no-op
    /// when that content is stored already).
    async fn promote_staged(&self, tenant: TenantId, upload: crate::ids::UploadId, content: &ContentRef) -> Result<()>;
    /// Removes the staged object (a multipart upload left unfinished is
    /// aborted by the bucket's lifecycle rule).
    async fn discard_staged(&self, tenant: TenantId, upload: crate::ids::UploadId) -> Result<()>;
}

#[async_trait]
pub trait PackageStore: Send + Sync {
    /// Refused `Taken(PackageVersion)` when the component has a package of that version.
    async fn create_package(&self, tenant: TenantId, package: &Package, audit: AuditDraft) -> Result<()>;
    async fn get_package(&self, tenant: TenantId, id: PackageId) -> Result<Option<Package>>;
    /// Newest first; only `component`'s when given.
    async fn list_packages(&self, tenant: TenantId, component: Option<ComponentId>, page: &PageRequest) -> Result<Page<Package>>;
    async fn version_exists(&self, tenant: TenantId, component: ComponentId, version: &VersionLabel) -> Result<bool>;
    /// How many packages the component has had (deleted ones included).
    async fn count_packages(&self, tenant: TenantId, component: ComponentId) -> Result<u64>;
    /// Ends a package's build: replaces the stored package by `after` (ready
    /// with its digest and size, or failed with its reason), with `audit` when
    /// given, only while the stored one is `building`: refused `Stale(Package)`
    /// otherwise (another delivery ended it first, or it is gone).
    async fn finish_package_build(&self, tenant: TenantId, after: &Package, audit: Option<AuditDraft>) -> Result<()>;
    /// Refused `Missing(Package)` when there is no such package.
    async fn mark_package_deleted(&self, tenant: TenantId, id: PackageId, audit: AuditDraft) -> Result<()>;
}

/// Whether a package is the active version anywhere (deployments fill this in).
#[async_trait]
pub trait PackageActivity: Send + Sync {
    async fn is_package_active(&self, tenant: TenantId, package: PackageId) -> Result<bool>;
}

/// Filters of the deployments list.
#[derive(Clone, Debug, Default)]
pub struct DeploymentFilter {
    pub environment: Option<EnvironmentId>,
    pub component: Option<ComponentId>,
    pub status: Option<DeploymentStatus>,
}

/// What a finished deployment does to the environment's active versions.
#[derive(Clone, Debug)]
pub enum Activation {
    /// Becomes the active version; the one it replaces (if any) is superseded.
    Activate { new: ActiveVersion, previous: Option<ActiveVersion> },
    /// The component is no longer active (an undeploy).
    Deactivate { previous: ActiveVersion },
    /// Active versions stay as they are (failures, per-runtime undeploys).
    Unchanged,
}

impl Activation {
    /// The active version this activation replaces, if any.
    pub fn replaced(&self) -> Option<&ActiveVersion> {
        match self {
            Self::Activate { previous, .. } => previous.as_ref(),
            Self::Deactivate { previous } => Some(previous),
            Self::Unchanged => None,
        }
    }
}

/// A deployment or target the sweeper must look at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SweepItem {
    pub tenant: TenantId,
    pub deployment: DeploymentId,
    pub runtime: Option<RuntimeId>,
}

/// What a deployment request is judged on that its environment and package
/// ids name by key, read together (in DynamoDB, one BatchGetItem): each
/// `None` (or empty) when absent.
#[derive(Clone, Debug, Default)]
pub struct DeploySubject {
    pub environment: Option<Environment>,
    pub package: Option<Package>,
    pub policy: Option<Policy>,
    /// The package's quarantine in the environment.
    pub quarantine: Option<Quarantine>,
    pub extensions: EnvironmentExtensions,
    /// The tenant's audit head, for the change's audit event (`AuditDraft::after`).
    pub audit_head: Option<AuditHead>,
}

/// See `DeploymentStore::activation_reads`.
#[derive(Clone, Debug, Default)]
pub struct ActivationReads {
    pub package: Option<Package>,
    pub active: Option<ActiveVersion>,
    pub audit_head: Option<AuditHead>,
}

/// One (environment, component) slot's connection components: what is
/// active there, or what a deployment in flight there bundles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionSlot {
    pub environment: EnvironmentId,
    pub component: ComponentId,
    pub in_flight: bool,
    pub connections: Vec<ComponentId>,
}

#[async_trait]
pub trait SubjectReads: Send + Sync {
    async fn deploy_subject(&self, tenant: TenantId, env: EnvironmentId, package: PackageId) -> Result<DeploySubject>;
}

#[async_trait]
pub trait DeploymentStore: Send + Sync {
    /// Writes a new deployment. When it `holds_lock`, it also takes the
    /// (environment, component) lock: refused `InFlight { deployment }` naming the holder.
    /// `events` begin its timeline, in the same write.
    async fn create_deployment(&self, tenant: TenantId, deployment: &Deployment, audit: AuditDraft, events: &[DeploymentEvent]) -> Result<()>;
    async fn get_deployment(&self, tenant: TenantId, id: DeploymentId) -> Result<Option<Deployment>>;
    /// A deployment and the tenant's audit head, read together, for a change
    /// of it that is audited (the head a hint: see `AuditDraft::after`).
    async fn get_deployment_and_head(&self, tenant: TenantId, id: DeploymentId) -> Result<(Option<Deployment>, Option<AuditHead>)> {
        Ok((self.get_deployment(tenant, id).await?, None))
    }
    /// Newest first.
    async fn list_deployments(&self, tenant: TenantId, filter: &DeploymentFilter, page: &PageRequest) -> Result<Page<Deployment>>;
    /// The deployment holding the (environment, component) lock, if any.
    async fn in_flight(&self, tenant: TenantId, env: EnvironmentId, component: ComponentId) -> Result<Option<DeploymentId>>;
    /// The deployments holding a lock in the environment (in flight to all of its runtimes).
    async fn in_flight_deployments(&self, tenant: TenantId, env: EnvironmentId) -> Result<Vec<DeploymentId>>;
    /// For every deployment in flight in the environment: its component and the connections it bundles.
    /// Every (environment, component) slot of the tenant that holds
    /// connection licences: an active version, or a deployment in flight,
    /// that bundles connection components (one read of a sparse index in
    /// DynamoDB, not one per environment; like every index read there, it may
    /// lag a write by a moment). By environment; in each, the active versions
    /// by component, then the deployments in flight by component.
    async fn connection_slots(&self, tenant: TenantId) -> Result<Vec<ConnectionSlot>>;
    /// Moves a deployment from status `from` to `after.status` (refused `Stale(Deployment)`
    /// if it is no longer `from`, or, from `pending_approval`, if a decision arrived since
    /// `after.decisions` were counted), releasing its lock when `after.releases_lock_from(from)`.
    async fn transition(&self, tenant: TenantId, after: &Deployment, from: DeploymentStatus, audit: Option<AuditDraft>) -> Result<()> {
        self.transition_noting(tenant, after, from, audit, &[]).await
    }
    /// `transition`, appending `events` to the deployment's timeline in the same write.
    async fn transition_noting(
        &self,
        tenant: TenantId,
        after: &Deployment,
        from: DeploymentStatus,
        audit: Option<AuditDraft>,
        events: &[DeploymentEvent],
    ) -> Result<()>;
    /// Ends a deployment, applies `activation` and records `quarantine` (replacing any
    /// record of that package in that environment), in one transaction (refusals as `transition`).
    async fn finish_deployment(
        &self,
        tenant: TenantId,
        after: &Deployment,
        from: DeploymentStatus,
        activation: &Activation,
        quarantine: Option<&Quarantine>,
        audit: AuditDraft,
    ) -> Result<()> {
        self.finish_deployment_noting(tenant, after, from, activation, quarantine, audit, &[]).await
    }
    /// `finish_deployment`, appending `events` to the deployment's timeline in the same write.
    #[allow(clippy::too_many_arguments)]
    async fn finish_deployment_noting(
        &self,
        tenant: TenantId,
        after: &Deployment,
        from: DeploymentStatus,
        activation: &Activation,
        quarantine: Option<&Quarantine>,
        audit: AuditDraft,
        events: &[DeploymentEvent],
    ) -> Result<()>;
    /// Re-opens a failed deployment for a retry: takes the lock again, sets it
    /// in progress and resets `targets` (with their new job ids): refused
    /// `InFlight` if another deployment took the lock, `Stale(Deployment)` if it moved on.
    async fn reopen_deployment(&self, tenant: TenantId, after: &Deployment, from: DeploymentStatus, targets: &[Target], audit: AuditDraft) -> Result<()>;
    /// Moves a rollout in batches on (a batch baked or started, a halt, a resume):
    /// writes `after` only if the stored deployment is still `from` and at the
    /// rollout step before `after`'s (`progress.step - 1`), so that no move is
    /// made twice; releases or takes the lock as `after` moves from `from`.
    /// Refused `Stale(Deployment)` otherwise, `InFlight` naming the holder when
    /// another deployment took the lock.
    async fn step_rollout(&self, tenant: TenantId, after: &Deployment, from: DeploymentStatus, audit: Option<AuditDraft>) -> Result<()>;

    /// False when a target for that runtime exists already.
    async fn put_target_if_absent(&self, tenant: TenantId, target: &Target) -> Result<bool>;
    /// `put_target_if_absent` for many targets at once (one deployment's), in
    /// as few writes as the store allows: for each, in order, whether it was
    /// written (false: a target for its runtime, or its job id, existed).
    async fn put_targets_if_absent(&self, tenant: TenantId, targets: &[Target]) -> Result<Vec<bool>>;
    async fn get_target(&self, tenant: TenantId, deployment: DeploymentId, runtime: RuntimeId) -> Result<Option<Target>>;
    /// What settling a deployment of `package` to (`env`, `component`) reads:
    /// the package (its components become the active version's), the version
    /// active there now, and the tenant's audit head (a hint, see
    /// `AuditDraft::after`); read together where the store can.
    async fn activation_reads(&self, tenant: TenantId, package: PackageId, env: EnvironmentId, component: ComponentId) -> Result<ActivationReads>;
    /// A deployment and one of its targets, read together (a job's report needs both).
    async fn get_deployment_and_target(&self, tenant: TenantId, deployment: DeploymentId, runtime: RuntimeId) -> Result<(Option<Deployment>, Option<Target>)> {
        Ok((self.get_deployment(tenant, deployment).await?, self.get_target(tenant, deployment, runtime).await?))
    }
    async fn list_targets(&self, tenant: TenantId, deployment: DeploymentId) -> Result<Vec<Target>>;
    /// Replaces a target still in state `from` (refused `Stale(Target)` otherwise);
    /// `receipt` is the queue receipt of the job message it was last delivered with.
    async fn update_target(&self, tenant: TenantId, target: &Target, from: TargetState, receipt: Option<&str>) -> Result<()> {
        self.update_target_noting(tenant, target, from, receipt, None).await
    }
    /// `update_target`, appending `event` to the deployment's timeline in the same write.
    async fn update_target_noting(
        &self,
        tenant: TenantId,
        target: &Target,
        from: TargetState,
        receipt: Option<&str>,
        event: Option<&DeploymentEvent>,
    ) -> Result<()>;
    /// Replaces `from` (still in its state, with its job) by `target`, its next
    /// try with a new job, recording that job so it leads back to the
    /// deployment: refused `Stale(Target)` otherwise.
    async fn reset_target(&self, tenant: TenantId, target: &Target, from: &Target) -> Result<()>;
    /// The queue receipt stored with the target.
    async fn target_receipt(&self, tenant: TenantId, deployment: DeploymentId, runtime: RuntimeId) -> Result<Option<String>>;
    /// The deployment a runtime's job belongs to.
    async fn find_job(&self, tenant: TenantId, runtime: RuntimeId, job: JobId) -> Result<Option<DeploymentId>>;

    async fn add_event(&self, tenant: TenantId, deployment: DeploymentId, event: &DeploymentEvent) -> Result<()>;
    async fn list_events(&self, tenant: TenantId, deployment: DeploymentId, page: &PageRequest) -> Result<Page<DeploymentEvent>>;

    /// Records one approver's decision on a deployment still pending approval:
    /// refused `AlreadyDecided` for a second decision of the same person,
    /// `NotAwaitingApproval` when the deployment moved on.
    async fn add_approval(&self, tenant: TenantId, deployment: DeploymentId, approval: &Approval, audit: AuditDraft) -> Result<()>;
    async fn approvals(&self, tenant: TenantId, deployment: DeploymentId) -> Result<Vec<Approval>>;
    /// The environments in which this exact package has been deployed successfully.
    async fn succeeded_in(&self, tenant: TenantId, package: PackageId) -> Result<Vec<EnvironmentId>>;
    /// `succeeded_in`, each environment with the deployment that last succeeded there with the package.
    async fn package_successes(&self, tenant: TenantId, package: PackageId) -> Result<Vec<(EnvironmentId, DeploymentId)>>;

    async fn active_versions(&self, tenant: TenantId, env: EnvironmentId) -> Result<Vec<ActiveVersion>>;
    async fn active_version(&self, tenant: TenantId, env: EnvironmentId, component: ComponentId) -> Result<Option<ActiveVersion>>;

    /// The versions quarantined in the environment, by package (oldest version first).
    async fn quarantined(&self, tenant: TenantId, env: EnvironmentId) -> Result<Vec<Quarantine>>;
    async fn get_quarantine(&self, tenant: TenantId, env: EnvironmentId, package: PackageId) -> Result<Option<Quarantine>>;
    /// Removes the package's quarantine in the environment: refused `Missing(Quarantine)` when there is none.
    async fn lift_quarantine(&self, tenant: TenantId, env: EnvironmentId, package: PackageId, audit: AuditDraft) -> Result<()>;

    /// Across tenants, for the sweeper: delivered targets past their deadline,
    /// scheduled deployments that are due, and queued ones not picked up since `queued_before`.
    async fn overdue_targets(&self, now: chrono::DateTime<chrono::Utc>, limit: u32) -> Result<Vec<SweepItem>>;
    async fn due_scheduled(&self, now: chrono::DateTime<chrono::Utc>, limit: u32) -> Result<Vec<SweepItem>>;
    async fn stale_queued(&self, queued_before: chrono::DateTime<chrono::Utc>, limit: u32) -> Result<Vec<SweepItem>>;
}

/// A job message taken from a runtime's queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedJob {
    /// `None` when the message is not a job (it is deleted by the caller).
    pub job: Option<JobMessage>,
    pub receipt: String,
}

/// How `JobQueues::hide_job` words a receipt that is not that of a message in flight.
pub const NOT_A_RECEIPT: &str = "not the receipt handle of a message received from this runtime's queue and still in flight";

/// The deployments queue and the runtimes' job queues.
#[async_trait]
pub trait JobQueues: Send + Sync {
    async fn enqueue_deployment(&self, tenant: TenantId, deployment: DeploymentId) -> Result<()>;
    /// Queues a package reserved `building` for the package builder.
    async fn enqueue_package_build(&self, tenant: TenantId, package: PackageId) -> Result<()>;
    async fn send_job(&self, queue_url: &str, job: &JobMessage) -> Result<()>;
    /// Long-polls up to `wait` for one message, hiding it for `visibility`.
    async fn receive_job(&self, queue_url: &str, wait: std::time::Duration, visibility: std::time::Duration) -> Result<Option<ReceivedJob>>;
    /// Hides a received message for `visibility` from now on. A receipt that
    /// is not that of a message in flight is refused as an invalid `receipt_handle`.
    async fn hide_job(&self, queue_url: &str, receipt: &str, visibility: std::time::Duration) -> Result<()>;
    async fn delete_job(&self, queue_url: &str, receipt: &str) -> Result<()>;
}

#[async_trait]
pub trait PolicyStore: Send + Sync {
    async fn get_policy(&self, tenant: TenantId, env: EnvironmentId) -> Result<Option<Policy>>;
    /// Stores `policy`; refused `Stale(Policy)` unless the stored version is `expected` (0: none yet).
    async fn put_policy(&self, tenant: TenantId, env: EnvironmentId, policy: &Policy, expected: Version, audit: AuditDraft) -> Result<()>;
}

#[async_trait]
pub trait ChangeRequestStore: Send + Sync {
    async fn create_change_request(&self, tenant: TenantId, cr: &crate::change_request::ChangeRequest, audit: AuditDraft) -> Result<()>;
    async fn get_change_request(&self, tenant: TenantId, id: crate::ids::ChangeRequestId) -> Result<Option<crate::change_request::ChangeRequest>>;
    /// Newest first.
    async fn list_change_requests(&self, tenant: TenantId, page: &PageRequest) -> Result<Page<crate::change_request::ChangeRequest>>;
    /// Replaces it; refused `Stale(ChangeRequest)` unless the stored version is `expected`.
    async fn update_change_request(&self, tenant: TenantId, cr: &crate::change_request::ChangeRequest, expected: Version, audit: AuditDraft) -> Result<()>;
    /// One decision per approver and set of digests, while the request is submitted:
    /// refused `AlreadyDecided` / `NotAwaitingApproval`.
    async fn add_change_approval(&self, tenant: TenantId, cr: crate::ids::ChangeRequestId, approval: &Approval, audit: AuditDraft) -> Result<()>;
    async fn change_approvals(&self, tenant: TenantId, cr: crate::ids::ChangeRequestId) -> Result<Vec<Approval>>;
}

/// Something waiting on an approver's decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AwaitingDecision {
    /// A deployment `pending_approval`.
    Deployment(DeploymentId),
    /// A change request `submitted`.
    ChangeRequest(crate::ids::ChangeRequestId),
}

/// What waits on approvers' decisions, across deployments and change requests.
#[async_trait]
pub trait DecisionInbox: Send + Sync {
    /// The tenant's deployments pending approval and change requests submitted,
    /// oldest (by creation) first. Listed from an index that may lag a write a
    /// little: callers read each item and check its status.
    async fn awaiting_decision(&self, tenant: TenantId, page: &PageRequest) -> Result<Page<AwaitingDecision>>;
}

/// Short-lived AWS credentials for one assumed-role session. A secret: its
/// `Debug` shows only the access key id.
#[derive(Clone, PartialEq, Eq)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub expiration: chrono::DateTime<chrono::Utc>,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCredentials").field("access_key_id", &self.access_key_id).field("expiration", &self.expiration).finish_non_exhaustive()
    }
}

/// Vends AWS credentials (STS `AssumeRole` on the agents' queue role).
#[async_trait]
pub trait CredentialVendor: Send + Sync {
    /// The region of the runtime queues (and of the credentials' endpoint).
    fn region(&self) -> String;
    /// Assumes the role as `session_name`, narrowed by the session `policy`, for `duration`.
    async fn assume_role(&self, session_name: &str, policy: &serde_json::Value, duration: std::time::Duration) -> Result<AwsCredentials>;
}

/// A tenant's webhooks and their deliveries.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Writes the webhook and the global entry that finds its tenant by id.
    async fn create_webhook(&self, tenant: TenantId, webhook: &Webhook, audit: AuditDraft) -> Result<()>;
    async fn get_webhook(&self, tenant: TenantId, id: WebhookId) -> Result<Option<Webhook>>;
    /// Oldest first.
    async fn list_webhooks(&self, tenant: TenantId, page: &PageRequest) -> Result<Page<Webhook>>;
    /// Replaces it; refused `Stale(Webhook)` unless the stored version is `expected`, `Missing(Webhook)` when it is gone.
    async fn update_webhook(&self, tenant: TenantId, webhook: &Webhook, expected: Version, audit: AuditDraft) -> Result<()>;
    /// Deletes it and its global entry; refused `Missing(Webhook)` when it is gone.
    async fn delete_webhook(&self, tenant: TenantId, webhook: &Webhook, audit: AuditDraft) -> Result<()>;
    /// The tenant a webhook id belongs to, across tenants (deliveries carry no token).
    async fn webhook_tenant(&self, id: WebhookId) -> Result<Option<TenantId>>;
    /// Counts one delivery attempt in the minute starting at `window_start`
    /// (unix seconds); returns the count including this one. Windows expire.
    async fn count_attempt(&self, tenant: TenantId, webhook: WebhookId, window_start: i64) -> Result<u32>;
    /// Claims a delivery id for the webhook, once per `webhook::DELIVERY_DEDUPE_SECS`
    /// (a conditional put with a TTL): false when it was claimed before.
    async fn claim_delivery(&self, tenant: TenantId, webhook: WebhookId, id: &DeliveryId) -> Result<bool>;
    /// Gives a claim back, so the sender may retry a delivery that failed on our side.
    async fn release_delivery(&self, tenant: TenantId, webhook: WebhookId, id: &DeliveryId) -> Result<()>;
    /// Adds the delivery to the webhook's history (kept `webhook::DELIVERY_HISTORY_SECS`);
    /// an authenticated one can then be found by its id.
    async fn record_delivery(&self, tenant: TenantId, delivery: &Delivery) -> Result<()>;
    /// The authenticated delivery with this id.
    async fn get_delivery(&self, tenant: TenantId, webhook: WebhookId, id: &DeliveryId) -> Result<Option<Delivery>>;
    /// Newest first.
    async fn list_deliveries(&self, tenant: TenantId, webhook: WebhookId, page: &PageRequest) -> Result<Page<Delivery>>;
}

/// Seals secrets that must be read back in clear (webhook signing keys):
/// KMS in AWS. `tenant` is bound to the sealed form: it opens only for the same tenant.
#[async_trait]
pub trait SecretSealer: Send + Sync {
    async fn seal(&self, tenant: TenantId, plaintext: &[u8]) -> Result<SealedSecret>;
    async fn open(&self, tenant: TenantId, sealed: &SealedSecret) -> Result<Vec<u8>>;
}

/// Each environment's extension values, with one version per environment
/// that every write bumps.
#[async_trait]
pub trait ExtensionStore: Send + Sync {
    /// The environment's values (version 0 and none when never written).
    async fn get_extensions(&self, tenant: TenantId, env: EnvironmentId) -> Result<EnvironmentExtensions>;
    /// Stores `after` (its version is `expected` + 1): refused `Stale(Extensions)`
    /// unless the stored version is `expected` (0: none stored yet).
    async fn put_extensions(&self, tenant: TenantId, env: EnvironmentId, after: &EnvironmentExtensions, expected: u64, audit: AuditDraft) -> Result<()>;
    /// Stores a new test of a component's connection in an environment: it replaces the one before.
    async fn put_connection_test(&self, tenant: TenantId, test: &crate::extension::ConnectionTest) -> Result<()>;
    /// Stores how `test` ended: refused `Stale(Extensions)` unless the stored
    /// test for its environment and component is still that one, pending.
    async fn finish_connection_test(&self, tenant: TenantId, test: &crate::extension::ConnectionTest) -> Result<()>;
    /// The latest test of the component's connection in the environment.
    async fn get_connection_test(&self, tenant: TenantId, env: EnvironmentId, component: ComponentId) -> Result<Option<crate::extension::ConnectionTest>>;
    /// The tests still pending for `runtime`.
    async fn pending_connection_tests(&self, tenant: TenantId, runtime: RuntimeId) -> Result<Vec<crate::extension::ConnectionTest>>;
}

/// Seals environments' secret extension values: KMS in AWS. The whole
/// `SecretScope` (tenant, environment, component, field) is bound to the
/// sealed form: it opens only for the same scope.
#[async_trait]
pub trait ExtensionSealer: Send + Sync {
    async fn seal_extension(&self, scope: &SecretScope, value: &Sensitive) -> Result<SealedSecret>;
    async fn open_extension(&self, scope: &SecretScope, sealed: &SealedSecret) -> Result<Sensitive>;
}

/// A tenant's API keys. A key is never deleted: a revoked one stays, for history.
#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    /// Refused `Exists(ApiKey)` when a key with its id exists.
    async fn create_api_key(&self, tenant: TenantId, key: &crate::api_key::ApiKey, audit: AuditDraft) -> Result<()>;
    async fn get_api_key(&self, tenant: TenantId, id: crate::ids::ApiKeyId) -> Result<Option<crate::api_key::ApiKey>>;
    /// Oldest first.
    async fn list_api_keys(&self, tenant: TenantId, page: &PageRequest) -> Result<Page<crate::api_key::ApiKey>>;
    /// Marks the key revoked at `at`: refused `Missing(ApiKey)` when there is
    /// no such key, `Stale(ApiKey)` when it is revoked already.
    async fn revoke_api_key(&self, tenant: TenantId, id: crate::ids::ApiKeyId, at: chrono::DateTime<chrono::Utc>, audit: AuditDraft) -> Result<()>;
    /// Records a use at `at` unless one at or after `unless_since` is recorded
    /// already (or the key is gone); returns whether it wrote. Not audited.
    async fn record_api_key_use(
        &self,
        tenant: TenantId,
        id: crate::ids::ApiKeyId,
        at: chrono::DateTime<chrono::Utc>,
        unless_since: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool>;
}
