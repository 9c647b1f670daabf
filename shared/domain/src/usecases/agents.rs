use super::Berth;
use crate::audit::AuditDraft;
use crate::audit::summary::RuntimeRegistered;
use crate::context::Actor;
use crate::ids::{RuntimeId, TenantId};
use crate::refusal::Refusal;
use crate::runtime::{CredentialMatch, Heartbeat, RegistrationRefusal, Runtime, RuntimeStatus};
use crate::secret::{RuntimeToken, TokenKind};
use crate::values::Name;
use crate::{DomainError, Result};
use chrono::Utc;

/// Reads of a runtime before a concurrent change to its credentials is
/// taken as an error rather than read again.
const PROMOTION_ATTEMPTS: usize = 3;

/// What an agent receives when it registers.
#[derive(Debug)]
pub struct Registration {
    pub tenant: TenantId,
    pub runtime_id: RuntimeId,
    /// Shown once; only its hash is stored.
    pub credential: RuntimeToken,
}

/// An authenticated runtime, as the agent API sees it.
#[derive(Clone, Debug)]
pub struct RuntimeCtx {
    pub tenant: TenantId,
    pub runtime: Runtime,
    /// `runtime:<id>` in the audit trail.
    pub actor: Actor,
    pub request_id: String,
    pub client_request_id: Option<String>,
}

/// Which request an agent call answers (ids for the audit trail).
#[derive(Clone, Debug, Default)]
pub struct AgentRequest {
    pub request_id: String,
    pub client_request_id: Option<String>,
}

fn invalid_token() -> DomainError {
    DomainError::unauthenticated("invalid or already used registration token")
}

fn expired_token() -> DomainError {
    DomainError::Unauthenticated {
        code: "registration_token_expired",
        message: "the registration token has expired; ask an admin to issue a new one (POST /v1/runtimes/{id}/registration-token)".into(),
    }
}

pub(super) fn invalid_credential() -> DomainError {
    DomainError::unauthenticated("invalid runtime credential")
}

impl Berth {
    /// Exchanges a one-time registration token for a runtime credential.
    #[tracing::instrument(skip_all, fields(request_id = %request.request_id))]
    pub async fn register_agent(&self, raw_token: &str, name: Option<Name>, agent_version: &str, request: &AgentRequest) -> Result<Registration> {
        let token = RuntimeToken::parse(TokenKind::Registration, raw_token).ok_or_else(invalid_token)?;
        let runtime = self.ports.runtimes.get_runtime(token.tenant, token.runtime).await?.ok_or_else(invalid_token)?;
        runtime.check_registration(&token.hash(), Utc::now()).map_err(|refusal| match refusal {
            RegistrationRefusal::Invalid => invalid_token(),
            RegistrationRefusal::Expired => expired_token(),
        })?;
        let stored = runtime.registration_hash.as_ref().ok_or_else(invalid_token)?;
        self.refuse_if_suspended(token.tenant).await?;
        let credential = RuntimeToken::generate(TokenKind::RuntimeCredential, token.tenant, runtime.id)?;
        let origin = RuntimeCtx {
            tenant: token.tenant,
            actor: Actor::runtime(runtime.id),
            runtime: runtime.clone(),
            request_id: request.request_id.clone(),
            client_request_id: request.client_request_id.clone(),
        };
        let audit = AuditDraft::by(&origin, runtime.id, RuntimeRegistered { agent_version: agent_version.to_string() });
        self.ports.runtimes.complete_registration(token.tenant, runtime.id, stored, &credential.hash(), name.as_ref(), agent_version, audit).await.map_err(
            |e| match e {
                DomainError::Refused(Refusal::RegistrationUsed) => invalid_token(),
                other => other,
            },
        )?;
        tracing::info!(tenant_id = %token.tenant, runtime_id = %runtime.id, "agent registered");
        Ok(Registration { tenant: token.tenant, runtime_id: runtime.id, credential })
    }

    /// Checks a runtime credential: 401 unless it is the runtime's current
    /// one or its rotated one (whose first use makes it the only one); 403
    /// `tenant_suspended` while its tenant is suspended.
    pub async fn authenticate_runtime(&self, raw_credential: &str, request: &AgentRequest) -> Result<RuntimeCtx> {
        let token = RuntimeToken::parse(TokenKind::RuntimeCredential, raw_credential).ok_or_else(invalid_credential)?;
        let presented = token.hash();
        let mut runtime = self.ports.runtimes.get_runtime(token.tenant, token.runtime).await?.ok_or_else(invalid_credential)?;
        // A promotion races only with another one of the same credential (or a
        // revoke, re-issue, rotation): read again and judge what is stored then.
        for _ in 0..PROMOTION_ATTEMPTS {
            match runtime.credential_match(&presented) {
                None => return Err(invalid_credential()),
                Some(CredentialMatch::Current) => break,
                Some(CredentialMatch::Pending) => {
                    let (expected, promoted) = (runtime.credentials(), runtime.credentials().promoted());
                    match self.ports.runtimes.swap_credentials(token.tenant, runtime.id, &expected, &promoted, None).await {
                        Ok(()) => {
                            tracing::info!(tenant_id = %token.tenant, runtime_id = %runtime.id, "rotated runtime credential first used; the old one no longer works");
                            runtime.credential_hash = promoted.credential_hash;
                            runtime.pending_credential_hash = None;
                            break;
                        }
                        Err(DomainError::Refused(Refusal::Stale(_))) => {
                            runtime = self.ports.runtimes.get_runtime(token.tenant, token.runtime).await?.ok_or_else(invalid_credential)?;
                        }
                        Err(other) => return Err(other),
                    }
                }
            }
        }
        if runtime.credential_match(&presented) != Some(CredentialMatch::Current) {
            return Err(invalid_credential());
        }
        self.refuse_if_suspended(token.tenant).await?;
        Ok(RuntimeCtx {
            tenant: token.tenant,
            actor: Actor::runtime(runtime.id),
            runtime,
            request_id: request.request_id.clone(),
            client_request_id: request.client_request_id.clone(),
        })
    }

    /// A suspended tenant's agents may do nothing at all: no registration, no
    /// heartbeat, no job, no report (within `TENANT_CACHE_TTL` of the suspension).
    async fn refuse_if_suspended(&self, tenant: TenantId) -> Result<()> {
        if self.tenant_of_token(tenant).await?.suspended {
            return Err(DomainError::forbidden("tenant_suspended", "the tenant is suspended: its runtimes get no jobs and may report nothing"));
        }
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant, runtime_id = %ctx.runtime.id))]
    /// Records the heartbeat; returns the runtime's status as of it.
    pub async fn heartbeat(&self, ctx: &RuntimeCtx, heartbeat: Heartbeat) -> Result<RuntimeStatus> {
        self.ports.runtimes.record_heartbeat(ctx.tenant, ctx.runtime.id, &heartbeat).await?;
        self.count(ctx.tenant, crate::metrics::MetricEvent::Heartbeat { runtime: ctx.runtime.id });
        let mut runtime = ctx.runtime.clone();
        runtime.last_seen_at = Some(heartbeat.at);
        Ok(self.runtime_status(&runtime))
    }
}
