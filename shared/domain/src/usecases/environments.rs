use super::Berth;
use super::tenants::check_if_match;
use crate::audit::AuditDraft;
use crate::audit::summary::{EnvironmentCreated, EnvironmentDeleted, EnvironmentState, EnvironmentUpdated};
use crate::context::{Permission, TenantCtx};
use crate::environment::{Environment, EnvironmentPatch, NewEnvironment};
use crate::ids::EnvironmentId;
use crate::page::{Page, PageRequest};
use crate::values::Version;
use crate::{DomainError, Result};
use chrono::Utc;

impl Berth {
    #[tracing::instrument(skip(self, ctx, input), fields(tenant_id = %ctx.tenant, request_id = %ctx.request_id))]
    pub async fn create_environment(&self, ctx: &TenantCtx, input: NewEnvironment) -> Result<Environment> {
        ctx.require(Permission::ManageEnvironments)?;
        let env = Environment::new(input, Utc::now());
        let audit = AuditDraft::by(ctx, env.id, EnvironmentCreated { after: EnvironmentState::of(&env) });
        self.ports.environments.create_environment(ctx.tenant, &env, audit).await?;
        Ok(env)
    }

    pub async fn get_environment(&self, ctx: &TenantCtx, id: EnvironmentId) -> Result<Environment> {
        ctx.require(Permission::Read)?;
        self.ports.environments.get_environment(ctx.tenant, id).await?.ok_or(DomainError::not_found("environment"))
    }

    pub async fn list_environments(&self, ctx: &TenantCtx, page: &PageRequest) -> Result<Page<Environment>> {
        ctx.require(Permission::Read)?;
        self.ports.environments.list_environments(ctx.tenant, page).await
    }

    #[tracing::instrument(skip(self, ctx, patch), fields(tenant_id = %ctx.tenant, request_id = %ctx.request_id))]
    pub async fn patch_environment(&self, ctx: &TenantCtx, id: EnvironmentId, patch: EnvironmentPatch, if_match: Option<Version>) -> Result<Environment> {
        let before = self.get_environment(ctx, id).await?;
        ctx.require(Permission::ManageEnvironments)?;
        check_if_match(before.version, if_match)?;
        let after = before.patched(patch, Utc::now());
        let audit = AuditDraft::by(ctx, id, EnvironmentUpdated { before: EnvironmentState::of(&before), after: EnvironmentState::of(&after) });
        self.ports.environments.update_environment(ctx.tenant, &before, &after, audit).await?;
        Ok(after)
    }

    #[tracing::instrument(skip(self, ctx), fields(tenant_id = %ctx.tenant, request_id = %ctx.request_id))]
    pub async fn delete_environment(&self, ctx: &TenantCtx, id: EnvironmentId) -> Result<()> {
        let env = self.get_environment(ctx, id).await?;
        ctx.require(Permission::ManageEnvironments)?;
        let audit = AuditDraft::by(ctx, id, EnvironmentDeleted { before: EnvironmentState::of(&env) });
        self.ports.environments.delete_environment(ctx.tenant, &env, audit).await
    }
}
