use super::Berth;
use crate::audit::AuditDraft;
use crate::audit::summary::{RuntimeAttached, RuntimeCreated, RuntimeDeleted, RuntimeDetached};
use crate::context::{Permission, TenantCtx};
use crate::deployment::Deployment;
use crate::ids::{EnvironmentId, RuntimeId};
use crate::page::{Page, PageRequest};
use crate::policy::Change;
use crate::runtime::{RegistrationTtl, Runtime, RuntimeKind, RuntimeStatus};
use crate::secret::{RuntimeToken, TokenKind};
use crate::values::Name;
use crate::{DomainError, Result};
use chrono::Utc;

/// A new runtime and the one-time token its agent registers with.
#[derive(Debug)]
pub struct CreatedRuntime {
    pub runtime: Runtime,
    /// Shown to the caller once; only its hash is stored.
    pub registration_token: RuntimeToken,
}

impl Berth {
    pub fn runtime_status(&self, runtime: &Runtime) -> RuntimeStatus {
        runtime.status(Utc::now(), self.settings.runtime_offline_after)
    }

    /// `create_runtime_with` a registration token valid for the default day.
    pub async fn create_runtime(&self, ctx: &TenantCtx, name: Name, kind: RuntimeKind) -> Result<CreatedRuntime> {
        self.create_runtime_with(ctx, name, kind, RegistrationTtl::default()).await
    }

    /// Creates the runtime's job queue, then the runtime; if the second step
    /// fails (a plan limit, say) the queue is removed again. Its registration
    /// token is accepted for `ttl`.
    #[tracing::instrument(skip(self, ctx), fields(tenant_id = %ctx.tenant, request_id = %ctx.request_id))]
    pub async fn create_runtime_with(&self, ctx: &TenantCtx, name: Name, kind: RuntimeKind, ttl: RegistrationTtl) -> Result<CreatedRuntime> {
        ctx.require(Permission::ManageRuntimes)?;
        let now = Utc::now();
        let id = RuntimeId::new();
        let token = RuntimeToken::generate(TokenKind::Registration, ctx.tenant, id)?;
        let queue_url = self.ports.queues.create_runtime_queue(ctx.tenant, id).await?;
        let runtime = Runtime {
            id,
            name,
            kind,
            registration_hash: Some(token.hash()),
            credential_hash: None,
            registration_expires_at: Some(ttl.expiry_from(now)),
            pending_credential_hash: None,
            revoked_at: None,
            last_seen_at: None,
            agent_version: None,
            health: None,
            running: vec![],
            environments: vec![],
            queue_url,
            created_at: now,
        };
        let audit = AuditDraft::by(ctx, id, RuntimeCreated::of(&runtime));
        if let Err(err) = self.ports.runtimes.create_runtime(ctx.tenant, &runtime, audit).await {
            if let Err(cleanup) = self.ports.queues.delete_runtime_queue(ctx.tenant, id, &runtime.queue_url).await {
                tracing::warn!(error = %cleanup, runtime_id = %id, "could not remove the queue of a runtime that was not created");
            }
            return Err(err);
        }
        Ok(CreatedRuntime { runtime, registration_token: token })
    }

    pub async fn get_runtime(&self, ctx: &TenantCtx, id: RuntimeId) -> Result<Runtime> {
        ctx.require(Permission::Read)?;
        self.ports.runtimes.get_runtime(ctx.tenant, id).await?.ok_or(DomainError::not_found("runtime"))
    }

    pub async fn list_runtimes(&self, ctx: &TenantCtx, page: &PageRequest) -> Result<Page<Runtime>> {
        ctx.require(Permission::Read)?;
        self.ports.runtimes.list_runtimes(ctx.tenant, page).await
    }

    /// Deletes the runtime (detaching it everywhere), then its queue.
    #[tracing::instrument(skip(self, ctx), fields(tenant_id = %ctx.tenant, request_id = %ctx.request_id))]
    pub async fn delete_runtime(&self, ctx: &TenantCtx, id: RuntimeId) -> Result<()> {
        let runtime = self.get_runtime(ctx, id).await?;
        ctx.require(Permission::ManageRuntimes)?;
        // Deleting detaches it from every environment: each one's policy must allow that.
        for env in &runtime.environments {
            self.policy_of(ctx.tenant, *env).await?.judge(Change::DetachRuntime, &ctx.roles, Utc::now(), false).enforce()?;
        }
        let audit = AuditDraft::by(ctx, id, RuntimeDeleted::of(&runtime));
        self.ports.runtimes.delete_runtime(ctx.tenant, &runtime, audit).await?;
        for env in &runtime.environments {
            self.withdraw_jobs(ctx.tenant, *env, id, "the runtime was deleted").await?;
        }
        self.ports.queues.delete_runtime_queue(ctx.tenant, id, &runtime.queue_url).await
    }

    /// Attaches a runtime to an environment; attaching twice changes nothing.
    /// Refused inside a freeze window (see `attach_runtime_or_hold`).
    pub async fn attach_runtime(&self, ctx: &TenantCtx, env: EnvironmentId, runtime: RuntimeId) -> Result<bool> {
        Ok(self.attach_runtime_or_hold(ctx, env, runtime, false).await?.is_some())
    }

    /// Attaches a runtime to an environment and sends it a `sync` of every
    /// version the environment runs: `None` when it was attached already
    /// (nothing is sent), else the syncs. Inside a freeze window it is refused,
    /// or (`hold_if_frozen`) attached now with its syncs held to the window's end.
    #[tracing::instrument(skip(self, ctx), fields(tenant_id = %ctx.tenant, request_id = %ctx.request_id))]
    pub async fn attach_runtime_or_hold(
        &self,
        ctx: &TenantCtx,
        env: EnvironmentId,
        runtime: RuntimeId,
        hold_if_frozen: bool,
    ) -> Result<Option<Vec<Deployment>>> {
        self.get_environment(ctx, env).await?;
        self.get_runtime(ctx, runtime).await?;
        ctx.require(Permission::ManageRuntimes)?;
        let clearance = self.policy_of(ctx.tenant, env).await?.judge(Change::AttachRuntime, &ctx.roles, Utc::now(), hold_if_frozen).enforce()?;
        let audit = AuditDraft::by(ctx, env, RuntimeAttached { runtime_id: runtime });
        if !self.ports.runtimes.attach_runtime(ctx.tenant, env, runtime, audit).await? {
            return Ok(None);
        }
        Ok(Some(self.after_attach(ctx, env, runtime, clearance).await?))
    }

    #[tracing::instrument(skip(self, ctx), fields(tenant_id = %ctx.tenant, request_id = %ctx.request_id))]
    pub async fn detach_runtime(&self, ctx: &TenantCtx, env: EnvironmentId, runtime: RuntimeId) -> Result<()> {
        self.get_environment(ctx, env).await?;
        ctx.require(Permission::ManageRuntimes)?;
        self.policy_of(ctx.tenant, env).await?.judge(Change::DetachRuntime, &ctx.roles, Utc::now(), false).enforce()?;
        let audit = AuditDraft::by(ctx, env, RuntimeDetached { runtime_id: runtime });
        self.ports.runtimes.detach_runtime(ctx.tenant, env, runtime, audit).await?;
        self.after_detach(ctx, env, runtime).await
    }

    pub async fn list_environment_runtimes(&self, ctx: &TenantCtx, env: EnvironmentId, page: &PageRequest) -> Result<Page<Runtime>> {
        self.get_environment(ctx, env).await?;
        self.ports.runtimes.list_environment_runtimes(ctx.tenant, env, page).await
    }
}
