use crate::MemoryStore;
use berth_domain::Result;
use berth_domain::context::{Actor, PlatformCtx, TenantCtx};
use berth_domain::ids::TenantId;
use berth_domain::tenant::Tenant;
use berth_domain::usecases::{Berth, Ports, Settings};
use berth_domain::values::{Name, Plan, Role};
use std::sync::Arc;

/// A ready `Berth` over one in-memory store, and that store, to look inside
/// it and drive the queues by hand. Each test makes its own.
///
/// ```text
/// let memory = Memory::new();
/// let tenant = memory.tenant(Plan::default()).await;
/// let ctx = memory.ctx(tenant.id, "alice@acme.example", &[Role::Admin]);
/// memory.berth.create_environment(&ctx, ...).await?;
/// memory.dispatch_enqueued().await?; // what the dispatcher would do
/// ```
#[derive(Clone)]
pub struct Memory {
    pub berth: Berth,
    pub store: Arc<MemoryStore>,
}

impl Default for Memory {
    fn default() -> Self {
        Self::new()
    }
}

impl Memory {
    pub fn new() -> Self {
        Self::with_settings(Settings::default())
    }

    pub fn with_settings(settings: Settings) -> Self {
        let store = Arc::new(MemoryStore::new());
        let ports = Ports {
            tenants: store.clone(),
            environments: store.clone(),
            runtimes: store.clone(),
            queues: store.clone(),
            audit: store.clone(),
            idempotency: store.clone(),
            components: store.clone(),
            packages: store.clone(),
            blobs: store.clone(),
            package_activity: store.clone(),
            deployments: store.clone(),
            policies: store.clone(),
            change_requests: store.clone(),
            jobs: store.clone(),
            credentials: store.clone(),
            webhooks: store.clone(),
            sealer: store.clone(),
            api_keys: store.clone(),
            inbox: store.clone(),
            extensions: store.clone(),
            extension_sealer: store.clone(),
            uploads: store.clone(),
            staging: store.clone(),
            subjects: store.clone(),
        };
        let berth = Berth::new(ports, settings);
        Self { berth, store }
    }

    /// A platform operator's context, for the platform use cases.
    pub fn platform_ctx(&self) -> PlatformCtx {
        PlatformCtx { actor: Actor::user("operator@berth.example"), request_id: format!("req-{}", uuid::Uuid::new_v4()), client_request_id: None }
    }

    /// Onboards a tenant named "Acme" with `plan`, as a platform operator would.
    ///
    /// # Panics
    /// If the store refuses a new tenant, which a fresh id never is.
    pub async fn tenant(&self, plan: Plan) -> Tenant {
        self.tenant_named("Acme", plan).await.unwrap_or_else(|e| panic!("a new tenant is created: {e}"))
    }

    pub async fn tenant_named(&self, name: &str, plan: Plan) -> Result<Tenant> {
        let name = Name::parse(name).map_err(|m| berth_domain::DomainError::invalid("name", m))?;
        self.berth.create_tenant(&self.platform_ctx(), name, plan).await
    }

    /// A request of user `sub` of `tenant` holding `roles` (the tenant not suspended).
    pub fn ctx(&self, tenant: TenantId, sub: &str, roles: &[Role]) -> TenantCtx {
        TenantCtx {
            tenant,
            actor: Actor::user(sub),
            roles: roles.to_vec(),
            request_id: format!("req-{}", uuid::Uuid::new_v4()),
            client_request_id: None,
            tenant_suspended: false,
        }
    }

    /// Builds every package queued for the package builder so far, as it
    /// would; returns how many it built (or failed).
    pub async fn build_enqueued_packages(&self) -> Result<usize> {
        let mut built = 0;
        loop {
            let batch = self.store.take_enqueued_package_builds();
            if batch.is_empty() {
                return Ok(built);
            }
            for (tenant, package) in batch {
                self.berth.build_package(tenant, package).await?;
                built += 1;
            }
        }
    }

    /// Dispatches every deployment enqueued so far, as the dispatcher would,
    /// until none is left; returns how many it dispatched.
    pub async fn dispatch_enqueued(&self) -> Result<usize> {
        let mut dispatched = 0;
        loop {
            let batch = self.store.take_enqueued_deployments();
            if batch.is_empty() {
                return Ok(dispatched);
            }
            for (tenant, deployment) in batch {
                self.berth.dispatch_deployment(tenant, deployment).await?;
                dispatched += 1;
            }
        }
    }
}
