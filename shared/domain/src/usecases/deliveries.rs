//! A webhook delivery: CI asks Berth to package and deploy, or to deploy a
//! version, without a person's login. The order of the checks is the point:
//!
//! 1. the webhook must exist (404, the same for an unknown id and a deleted one);
//! 2. at most `DELIVERIES_PER_MINUTE` attempts a minute (429), counted before
//!    any secret is opened, so a flood costs one counter write per request;
//! 3. the signature (401, recorded as refused); nothing in the request is
//!    trusted before it verifies;
//! 4. the delivery id is claimed once (409 `duplicate_delivery`, nothing else happens);
//! 5. the request goes through the same use cases, policy and validation as a
//!    person's, acting as `webhook:<id>` with its creator's roles at creation.

use super::Berth;
use super::{NewDeployment, NewPackage};
use crate::context::TenantCtx;
use crate::deployment::DeploymentStatus;
use crate::ids::{DeploymentId, PackageId, TenantId, WebhookId};
use crate::package::VersionLabel;
use crate::page::PageRequest;
use crate::webhook::signature::{Check, Presented};
use crate::webhook::{
    DELIVERIES_PER_MINUTE, Delivery, DeliveryId, DeliveryOutcome, DeliveryRequest, SIGNATURE_TOLERANCE_SECS, Webhook, WebhookAction, WebhookSecret,
    check_commit,
};
use crate::{DomainError, Result};
use chrono::{DateTime, Utc};

/// A delivery as the HTTP edge received it: raw, untrusted.
#[derive(Clone, Debug, Default)]
pub struct IncomingDelivery {
    /// The path's webhook id, unparsed.
    pub webhook: String,
    pub berth_signature: Option<String>,
    pub github_signature: Option<String>,
    /// `Berth-Delivery` (or `X-GitHub-Delivery`).
    pub delivery_id: Option<String>,
    /// `X-GitHub-Event`.
    pub github_event: Option<String>,
    pub body: Vec<u8>,
    pub request_id: String,
}

/// What an accepted (or ignored) delivery did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryReceipt {
    pub delivery_id: DeliveryId,
    pub outcome: DeliveryOutcome,
    pub package_id: Option<PackageId>,
    pub deployment_id: Option<DeploymentId>,
    /// The deployment's status now (absent when nothing was deployed).
    pub status: Option<DeploymentStatus>,
}

/// A delivery and where its deployment is now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryStatus {
    pub delivery: Delivery,
    pub status: Option<DeploymentStatus>,
}

fn refused(code: &'static str, message: &str) -> DomainError {
    DomainError::Unauthenticated { code, message: message.to_string() }
}

/// The one answer for every webhook id that leads nowhere.
fn no_webhook() -> DomainError {
    DomainError::not_found("webhook")
}

impl Berth {
    /// Finds a webhook by id alone (a delivery carries no token). Unknown and
    /// deleted ids get the same answer after the same one read; a malformed
    /// one gets it at once (no webhook can have it).
    async fn webhook_by_id(&self, raw: &str) -> Result<(TenantId, Webhook)> {
        let id: WebhookId = raw.parse().map_err(|_| no_webhook())?;
        let tenant = self.ports.webhooks.webhook_tenant(id).await?.ok_or_else(no_webhook)?;
        let webhook = self.ports.webhooks.get_webhook(tenant, id).await?.ok_or_else(no_webhook)?;
        Ok((tenant, webhook))
    }

    /// Checks `presented` over `payload` against the webhook's live secrets.
    async fn check_signature(&self, tenant: TenantId, webhook: &Webhook, presented: &Presented, payload: &[u8], now: DateTime<Utc>) -> Result<()> {
        let mut keys = vec![];
        for secret in webhook.live_secrets(now) {
            keys.push(WebhookSecret::from_opened(self.ports.sealer.open(tenant, &secret.sealed).await?)?);
        }
        match presented.check(keys.iter().map(WebhookSecret::key), payload, now.timestamp()) {
            Check::Valid => Ok(()),
            Check::Stale => Err(DomainError::Unauthenticated {
                code: "stale_signature",
                message: format!("the signature's timestamp is more than {SIGNATURE_TOLERANCE_SECS} seconds from our clock"),
            }),
            Check::Invalid => Err(refused("bad_signature", "the signature does not match the webhook's secret")),
        }
    }

    /// Receives one delivery (see the module's documentation for the order of checks).
    #[tracing::instrument(skip(self, incoming), fields(webhook_id = %incoming.webhook, request_id = %incoming.request_id))]
    pub async fn receive_delivery(&self, incoming: IncomingDelivery) -> Result<DeliveryReceipt> {
        let now = Utc::now();
        let (tenant, webhook) = self.webhook_by_id(&incoming.webhook).await?;

        let window = now.timestamp() - now.timestamp().rem_euclid(60);
        if self.ports.webhooks.count_attempt(tenant, webhook.id, window).await? > DELIVERIES_PER_MINUTE {
            let retry_after_secs = u64::try_from(window + 60 - now.timestamp()).unwrap_or(1).max(1);
            return Err(DomainError::RateLimited {
                message: format!("this webhook accepts at most {DELIVERIES_PER_MINUTE} deliveries a minute"),
                retry_after_secs,
            });
        }

        let claimed_id = incoming.delivery_id.as_deref().and_then(DeliveryId::parse);
        // A refused delivery without a usable id is still recorded, under one of ours.
        let history_id = claimed_id.clone().unwrap_or_else(DeliveryId::unidentified);
        let mut record = Delivery {
            webhook_id: webhook.id,
            id: history_id,
            received_at: now,
            outcome: DeliveryOutcome::Refused,
            code: None,
            package_id: None,
            deployment_id: None,
            commit: None,
            authenticated: false,
        };

        let presented = match (&incoming.berth_signature, &incoming.github_signature) {
            (Some(header), _) => Presented::parse_berth(header),
            (None, Some(header)) => Presented::parse_github(header),
            (None, None) => None,
        };
        let verified = match &presented {
            None if incoming.berth_signature.is_none() && incoming.github_signature.is_none() => {
                Err(refused("signature_required", "sign the delivery: Berth-Signature (or GitHub's X-Hub-Signature-256)"))
            }
            None => Err(refused("bad_signature", "the signature header is malformed")),
            Some(p) => self.check_signature(tenant, &webhook, p, &incoming.body, now).await,
        };
        if let Err(e) = verified {
            return Err(self.refuse(tenant, record, e).await);
        }
        record.authenticated = true;

        let Some(delivery_id) = claimed_id else {
            let e = DomainError::Validation {
                code: "delivery_id_required",
                errors: vec![crate::FieldError::new("Berth-Delivery", "send a unique delivery id (1 to 128 letters, digits, - _ . :)")],
            };
            record.authenticated = false; // not claimable: it has no id of its own
            return Err(self.refuse(tenant, record, e).await);
        };
        let tenant_record = self.tenant_of_token(tenant).await?;
        if !self.ports.webhooks.claim_delivery(tenant, webhook.id, &delivery_id).await? {
            return Err(DomainError::conflict("duplicate_delivery", format!("delivery {delivery_id} was received before; it is not acted on again")));
        }

        let ctx = TenantCtx {
            tenant,
            actor: webhook.actor(),
            roles: webhook.roles.clone(),
            request_id: incoming.request_id.clone(),
            client_request_id: Some(delivery_id.to_string()),
            tenant_suspended: tenant_record.suspended,
        };
        let result = self.act(&ctx, &webhook, &incoming, &delivery_id, &mut record).await;
        match result {
            Ok(receipt) => {
                record.outcome = receipt.outcome;
                self.ports.webhooks.record_delivery(tenant, &record).await?;
                let code = if receipt.outcome == crate::webhook::DeliveryOutcome::Ignored { "ignored" } else { "accepted" };
                self.count(tenant, crate::metrics::MetricEvent::WebhookDelivery { accepted: true, code: code.into() });
                Ok(receipt)
            }
            Err(e @ (DomainError::Unexpected(_) | DomainError::Unavailable(_))) => {
                // Our failure, not the sender's: let it retry the same delivery.
                if let Err(release) = self.ports.webhooks.release_delivery(tenant, webhook.id, &delivery_id).await {
                    tracing::error!(error = %release, "could not release the delivery id of a failed delivery");
                }
                Err(e)
            }
            Err(e) => Err(self.refuse(tenant, record, e).await),
        }
    }

    /// Records `delivery` as refused with `e`'s code, and returns `e`.
    async fn refuse(&self, tenant: TenantId, mut delivery: Delivery, e: DomainError) -> DomainError {
        let e = e.worded();
        delivery.outcome = DeliveryOutcome::Refused;
        delivery.code = Some(e.code().to_string());
        self.count(tenant, crate::metrics::MetricEvent::WebhookDelivery { accepted: false, code: e.code().to_string() });
        if let Err(store) = self.ports.webhooks.record_delivery(tenant, &delivery).await {
            tracing::error!(error = %store, code = e.code(), "could not record a refused delivery");
        }
        e
    }

    /// Does what the webhook does, as the webhook.
    async fn act(&self, ctx: &TenantCtx, webhook: &Webhook, incoming: &IncomingDelivery, id: &DeliveryId, record: &mut Delivery) -> Result<DeliveryReceipt> {
        if !webhook.active {
            return Err(DomainError::forbidden("webhook_disabled", "this webhook is disabled"));
        }
        let request = if incoming.github_signature.is_some() && incoming.berth_signature.is_none() {
            match DeliveryRequest::from_github_body(incoming.github_event.as_deref(), &incoming.body)? {
                Some(r) => r,
                None => {
                    return Ok(DeliveryReceipt {
                        delivery_id: id.clone(),
                        outcome: DeliveryOutcome::Ignored,
                        package_id: None,
                        deployment_id: None,
                        status: None,
                    });
                }
            }
        } else {
            DeliveryRequest::from_berth_body(&incoming.body)?
        };
        if let Some(commit) = &request.commit {
            check_commit(commit)?;
        }
        record.commit = request.commit.clone();
        let version = request.version.as_deref().map(VersionLabel::parse).transpose().map_err(|m| DomainError::invalid("version", m))?;
        let notes = request.notes.clone().unwrap_or_else(|| format!("delivery {id} of webhook \"{}\"", webhook.name));

        let package_id = match webhook.action {
            WebhookAction::PackageAndDeploy => self.latest_package(ctx, webhook, version, &notes, request.commit.clone()).await?,
            WebhookAction::DeployVersion => {
                let version = version.ok_or_else(|| DomainError::Validation {
                    code: "version_required",
                    errors: vec![crate::FieldError::new("version", "this webhook deploys the version the delivery names")],
                })?;
                self.package_by_version(ctx, webhook, &version).await?
            }
        };
        record.package_id = Some(package_id);
        let deployment = self
            .create_deployment_as(
                ctx,
                NewDeployment {
                    package_id,
                    environment_id: webhook.environment_id,
                    notes,
                    scheduled_at: None,
                    hold_if_frozen: webhook.hold_if_frozen,
                    // A webhook requests, never bypasses: only a person may override a quarantine.
                    override_quarantine: false,
                    commit: request.commit,
                    rollout: None,
                },
                // A package this delivery made may still be building: the deployment waits for it.
                webhook.action == WebhookAction::PackageAndDeploy,
            )
            .await?;
        record.deployment_id = Some(deployment.id);
        Ok(DeliveryReceipt {
            delivery_id: id.clone(),
            outcome: DeliveryOutcome::Accepted,
            package_id: Some(package_id),
            deployment_id: Some(deployment.id),
            status: Some(deployment.status),
        })
    }

    /// The newest package when it is a snapshot of the component as it is
    /// now; else a new package of it (labelled `version`, if given).
    async fn latest_package(
        &self,
        ctx: &TenantCtx,
        webhook: &Webhook,
        version: Option<VersionLabel>,
        notes: &str,
        commit: Option<String>,
    ) -> Result<PackageId> {
        if let Some(newest) = self.up_to_date_package(ctx, webhook.component_id).await? {
            return Ok(newest.id);
        }
        let input = NewPackage { component_id: webhook.component_id, version, notes: notes.to_string(), shareable: false, commit };
        Ok(self.create_package(ctx, input).await?.id)
    }

    /// The component's package labelled `version`.
    async fn package_by_version(&self, ctx: &TenantCtx, webhook: &Webhook, version: &VersionLabel) -> Result<PackageId> {
        let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
        loop {
            let batch = self.list_packages(ctx, Some(webhook.component_id), &page).await?;
            if let Some(p) = batch.items.iter().find(|p| &p.version == version && !p.deleted) {
                return Ok(p.id);
            }
            match batch.next_cursor {
                Some(c) => page.cursor = Some(c),
                None => return Err(DomainError::not_found("package version")),
            }
        }
    }

    /// Where a delivery's deployment is now, for a pipeline waiting on it:
    /// signed like a delivery, over `"<t>.<delivery id>"`.
    pub async fn delivery_status(&self, webhook: &str, delivery: &str, berth_signature: Option<&str>) -> Result<DeliveryStatus> {
        let now = Utc::now();
        let (tenant, webhook) = self.webhook_by_id(webhook).await?;
        let presented = berth_signature
            .map(|h| Presented::parse_berth(h).ok_or_else(|| refused("bad_signature", "the signature header is malformed")))
            .transpose()?
            .ok_or_else(|| refused("signature_required", "sign the request: Berth-Signature over \"<t>.<delivery id>\""))?;
        self.check_signature(tenant, &webhook, &presented, delivery.as_bytes(), now).await?;
        let id = DeliveryId::parse(delivery).ok_or(DomainError::not_found("delivery"))?;
        let delivery = self.ports.webhooks.get_delivery(tenant, webhook.id, &id).await?.ok_or(DomainError::not_found("delivery"))?;
        let status = match delivery.deployment_id {
            Some(d) => self.ports.deployments.get_deployment(tenant, d).await?.map(|d| d.status),
            None => None,
        };
        Ok(DeliveryStatus { delivery, status })
    }
}
