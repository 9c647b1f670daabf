//! Managing webhooks (admins) and reading their delivery history. The
//! deliveries themselves are in `deliveries.rs`.

use super::Berth;
use super::tenants::check_if_match;
use crate::audit::AuditDraft;
use crate::audit::summary::{WebhookCreated, WebhookDeleted, WebhookSecretRotated, WebhookUpdated};
use crate::context::{Permission, TenantCtx};
use crate::ids::WebhookId;
use crate::page::{Page, PageRequest};
use crate::values::Version;
use crate::webhook::{Delivery, NewWebhook, Webhook, WebhookPatch, WebhookSecret, overlap};
use crate::{DomainError, Result};
use chrono::Utc;

/// A webhook and its signing secret in clear: shown once, never again.
#[derive(Debug)]
pub struct WebhookWithSecret {
    pub webhook: Webhook,
    pub secret: WebhookSecret,
}

impl Berth {
    /// Creates a webhook acting with its creator's roles as they are now.
    #[tracing::instrument(skip(self, ctx, input), fields(tenant_id = %ctx.tenant, request_id = %ctx.request_id))]
    pub async fn create_webhook(&self, ctx: &TenantCtx, input: NewWebhook) -> Result<WebhookWithSecret> {
        ctx.require(Permission::ManageWebhooks)?;
        self.get_environment(ctx, input.environment_id).await?;
        self.get_component(ctx, input.component_id).await?;
        let secret = WebhookSecret::generate()?;
        let sealed = self.ports.sealer.seal(ctx.tenant, secret.key()).await?;
        let webhook = Webhook::new(input, ctx.roles.clone(), &ctx.actor.id, sealed, Utc::now());
        let audit = AuditDraft::by(ctx, webhook.id, WebhookCreated::of(&webhook));
        self.ports.webhooks.create_webhook(ctx.tenant, &webhook, audit).await?;
        Ok(WebhookWithSecret { webhook, secret })
    }

    pub async fn get_webhook(&self, ctx: &TenantCtx, id: WebhookId) -> Result<Webhook> {
        ctx.require(Permission::Read)?;
        self.ports.webhooks.get_webhook(ctx.tenant, id).await?.ok_or(DomainError::not_found("webhook"))
    }

    pub async fn list_webhooks(&self, ctx: &TenantCtx, page: &PageRequest) -> Result<Page<Webhook>> {
        ctx.require(Permission::Read)?;
        self.ports.webhooks.list_webhooks(ctx.tenant, page).await
    }

    #[tracing::instrument(skip(self, ctx, patch), fields(tenant_id = %ctx.tenant, request_id = %ctx.request_id))]
    pub async fn patch_webhook(&self, ctx: &TenantCtx, id: WebhookId, patch: WebhookPatch, if_match: Option<Version>) -> Result<Webhook> {
        let before = self.get_webhook(ctx, id).await?;
        ctx.require(Permission::ManageWebhooks)?;
        check_if_match(before.version, if_match)?;
        if let Some(env) = patch.environment_id {
            self.get_environment(ctx, env).await?;
        }
        if let Some(component) = patch.component_id {
            self.get_component(ctx, component).await?;
        }
        let after = before.patched(patch, Utc::now());
        let audit = AuditDraft::by(ctx, id, WebhookUpdated::of(&before, &after));
        self.ports.webhooks.update_webhook(ctx.tenant, &after, before.version, audit).await?;
        Ok(after)
    }

    #[tracing::instrument(skip(self, ctx), fields(tenant_id = %ctx.tenant, request_id = %ctx.request_id))]
    pub async fn delete_webhook(&self, ctx: &TenantCtx, id: WebhookId) -> Result<()> {
        let webhook = self.get_webhook(ctx, id).await?;
        ctx.require(Permission::ManageWebhooks)?;
        let audit = AuditDraft::by(ctx, id, WebhookDeleted::of(&webhook));
        self.ports.webhooks.delete_webhook(ctx.tenant, &webhook, audit).await
    }

    /// A new signing secret; the current one keeps verifying for `overlap_seconds` (a day by default).
    #[tracing::instrument(skip(self, ctx), fields(tenant_id = %ctx.tenant, request_id = %ctx.request_id))]
    pub async fn rotate_webhook_secret(&self, ctx: &TenantCtx, id: WebhookId, overlap_seconds: Option<i64>) -> Result<WebhookWithSecret> {
        let before = self.get_webhook(ctx, id).await?;
        ctx.require(Permission::ManageWebhooks)?;
        let overlap = overlap(overlap_seconds)?;
        let secret = WebhookSecret::generate()?;
        let sealed = self.ports.sealer.seal(ctx.tenant, secret.key()).await?;
        let now = Utc::now();
        let after = before.rotated(sealed, overlap, now);
        let summary = WebhookSecretRotated { overlap_seconds: overlap.num_seconds(), previous_expires_at: after.previous_secret_expires_at(now) };
        self.ports.webhooks.update_webhook(ctx.tenant, &after, before.version, AuditDraft::by(ctx, id, summary)).await?;
        Ok(WebhookWithSecret { webhook: after, secret })
    }

    /// The webhook's deliveries, newest first: never their bodies or headers.
    pub async fn list_deliveries(&self, ctx: &TenantCtx, id: WebhookId, page: &PageRequest) -> Result<Page<Delivery>> {
        self.get_webhook(ctx, id).await?;
        self.ports.webhooks.list_deliveries(ctx.tenant, id, page).await
    }
}
