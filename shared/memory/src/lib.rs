//! Every port of `berth_domain::ports`, in memory: for use-case tests that run
//! in milliseconds. It answers as the DynamoDB/S3/SQS adapters (`berth-aws`)
//! do — the same typed refusals, the same orderings and cursors, the same
//! audit chain — and the contract suite (`tests/contract`) runs one set of
//! checks against both so that they cannot drift.
//!
//! One mutex guards plain maps. Each write checks every condition first, in
//! the order of the items of the adapter's transaction (so that when several
//! fail, the same refusal is reported), and only then changes anything and
//! appends its audit event: a refused write leaves no trace.
//!
//! [`Memory`] builds a ready `Berth` over one store.

mod api_keys;
mod audit;
mod blobs;
mod change_requests;
mod components;
mod credentials;
mod deployments;
mod environments;
mod extensions;
mod idempotency;
mod inbox;
mod memory;
mod packages;
mod page;
mod policies;
mod queues;
mod runtimes;
mod subjects;
mod tenants;
mod uploads;
mod webhooks;

pub use credentials::VendedSession;
pub use memory::Memory;

use berth_domain::api_key::ApiKey;
use berth_domain::audit::AuditDraft;
use berth_domain::change_request::ChangeRequest;
use berth_domain::component::{Component, Revision};
use berth_domain::ids::{ApiKeyId, ChangeRequestId, ComponentId, EnvironmentId, PackageId, RuntimeId, TenantId, WebhookId};
use berth_domain::package::Package;
use berth_domain::policy::{Approval, Policy};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Implements every port on maps in memory. Cheap to create: one per test.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

/// Everything stored.
#[derive(Default)]
pub(crate) struct State {
    pub tenants: BTreeMap<TenantId, tenants::TenantRow>,
    /// Each tenant's items. A tenant's partitions exist whether or not its
    /// tenant item does, as in DynamoDB (an audit chain, say).
    pub tenancies: HashMap<TenantId, Tenancy>,
    pub idempotency: HashMap<(Option<TenantId>, String), idempotency::Record>,
    pub blobs: blobs::Blobs,
    pub uploads: uploads::Uploads,
    pub queues: queues::Queues,
    pub sessions: Vec<credentials::VendedSession>,
    /// Webhook id -> its tenant: the global entry a delivery is routed by.
    pub webhook_tenants: HashMap<WebhookId, TenantId>,
}

/// One tenant's items, by the key they are looked up and listed by.
#[derive(Default)]
pub(crate) struct Tenancy {
    pub environments: BTreeMap<EnvironmentId, environments::EnvironmentRow>,
    /// Lower-cased name -> environment.
    pub environment_names: HashMap<String, EnvironmentId>,
    pub runtimes: BTreeMap<RuntimeId, runtimes::RuntimeRow>,
    /// (environment, runtime) -> attached at.
    pub attachments: BTreeMap<(EnvironmentId, RuntimeId), DateTime<Utc>>,
    pub audit: audit::Chain,
    pub components: BTreeMap<ComponentId, Component>,
    /// (type, lower-cased name) -> component.
    pub component_names: HashMap<(&'static str, String), ComponentId>,
    pub revisions: BTreeMap<(ComponentId, u32), Revision>,
    pub packages: BTreeMap<PackageId, Package>,
    /// (component, version label) -> package; kept when the package is deleted.
    pub package_versions: HashMap<(ComponentId, String), PackageId>,
    pub deployments: deployments::Deployments,
    pub policies: HashMap<EnvironmentId, Policy>,
    /// Each environment's extension values.
    pub extensions: HashMap<EnvironmentId, berth_domain::extension::EnvironmentExtensions>,
    /// The latest connection test per (environment, component).
    pub connection_tests: BTreeMap<(EnvironmentId, berth_domain::ids::ComponentId), berth_domain::extension::ConnectionTest>,
    pub change_requests: BTreeMap<ChangeRequestId, ChangeRequest>,
    /// (change request, `<approver>#<digests hash>`) -> decision.
    pub change_approvals: BTreeMap<(ChangeRequestId, String), Approval>,
    pub webhooks: webhooks::Webhooks,
    pub api_keys: BTreeMap<ApiKeyId, ApiKey>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// The state, for one synchronous step: never held across an `.await`.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock leaves the maps usable for the others.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    /// The tenant's partitions (empty ones the first time).
    pub(crate) fn t(&mut self, tenant: TenantId) -> &mut Tenancy {
        self.tenancies.entry(tenant).or_default()
    }

    /// Appends the audit event of a write that passed every check.
    pub(crate) fn record(&mut self, tenant: TenantId, draft: AuditDraft) {
        self.t(tenant).audit.append(draft);
    }
}

/// Sortable time in sort keys, as the DynamoDB adapter writes it (`keys::time`).
pub(crate) fn time_key(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}
