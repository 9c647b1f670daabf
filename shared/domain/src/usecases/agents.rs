use super::Berth;
use crate::audit::AuditDraft;
use crate::audit::summary::RuntimeRegistered;
use crate::context::Actor;
use crate::ids::{RuntimeId, TenantId};
use crate::refusal::Refusal;
use crate::runtime::{Heartbeat, Runtime, RuntimeStatus};
use crate::secret::{RuntimeToken, TokenKind};
use crate::values::Name;
use crate::{DomainError, Result};

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
    DomainError::Unauthenticated { message: "invalid or already used registration token".into() }
}

fn invalid_credential() -> DomainError {
    DomainError::Unauthenticated { message: "invalid runtime credential".into() }
}

impl Berth {
    /// Exchanges a one-time registration token for a runtime credential.
    #[tracing::instrument(skip_all, fields(request_id = %request.request_id))]
    pub async fn register_agent(&self, raw_token: &str, name: Option<Name>, agent_version: &str, request: &AgentRequest) -> Result<Registration> {
        let token = RuntimeToken::parse(TokenKind::Registration, raw_token).ok_or_else(invalid_token)?;
        let runtime = self.ports.runtimes.get_runtime(token.tenant, token.runtime).await?.ok_or_else(invalid_token)?;
        let stored = runtime.registration_hash.as_ref().ok_or_else(invalid_token)?;
        if !stored.matches(&token.hash()) {
            return Err(invalid_token());
        }
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
    /// one; 403 `tenant_suspended` while its tenant is suspended.
    pub async fn authenticate_runtime(&self, raw_credential: &str, request: &AgentRequest) -> Result<RuntimeCtx> {
        let token = RuntimeToken::parse(TokenKind::RuntimeCredential, raw_credential).ok_or_else(invalid_credential)?;
        let runtime = self.ports.runtimes.get_runtime(token.tenant, token.runtime).await?.ok_or_else(invalid_credential)?;
        match &runtime.credential_hash {
            Some(stored) if stored.matches(&token.hash()) => {}
            _ => return Err(invalid_credential()),
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
        let mut runtime = ctx.runtime.clone();
        runtime.last_seen_at = Some(heartbeat.at);
        Ok(self.runtime_status(&runtime))
    }
}
