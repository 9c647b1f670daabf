//! Who is acting, for which tenant, and what they may do.

use crate::ids::TenantId;
use crate::values::Role;
use crate::{DomainError, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    User,
    Webhook,
    Runtime,
    System,
    /// A tenant's API key (`api-key:<id>`).
    ApiKey,
}

/// The author of a change, as the audit trail records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub kind: ActorKind,
    pub id: String,
}

impl Actor {
    pub fn user(sub: impl Into<String>) -> Self {
        Self { kind: ActorKind::User, id: sub.into() }
    }
    pub fn runtime(id: impl ToString) -> Self {
        Self { kind: ActorKind::Runtime, id: id.to_string() }
    }
    /// A webhook's deliveries act as `webhook:<id>`.
    pub fn webhook(id: crate::ids::WebhookId) -> Self {
        Self { kind: ActorKind::Webhook, id: format!("webhook:{id}") }
    }
    pub fn system(id: impl Into<String>) -> Self {
        Self { kind: ActorKind::System, id: id.into() }
    }
    /// An API key: `api-key:<id>` in the audit trail and in `requested_by` / `created_by`.
    pub fn api_key(id: crate::ids::ApiKeyId) -> Self {
        Self { kind: ActorKind::ApiKey, id: format!("api-key:{id}") }
    }
}

/// Things a tenant caller may be allowed to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    /// Read anything of the tenant.
    Read,
    /// Create, change and delete environments.
    ManageEnvironments,
    /// Create and delete runtimes, attach and detach them.
    ManageRuntimes,
    /// Create components and their revisions.
    BuildComponents,
    /// Create and delete packages.
    ManagePackages,
    /// Deploy, undeploy, cancel and retry.
    Deploy,
    /// Create, change, rotate and delete webhooks.
    ManageWebhooks,
    /// Create, read and revoke the tenant's API keys.
    ManageApiKeys,
    /// Read an environment's extension values (secrets only as set or not).
    ReadExtensions,
}

impl Permission {
    fn allowed_roles(self) -> &'static [Role] {
        match self {
            Permission::Read => &[Role::Viewer, Role::Developer, Role::Deployer, Role::Approver, Role::Admin],
            Permission::ManageEnvironments | Permission::ManageRuntimes | Permission::ManageWebhooks | Permission::ManageApiKeys => &[Role::Admin],
            Permission::ReadExtensions => &[Role::Admin],
            Permission::BuildComponents => &[Role::Developer, Role::Admin],
            Permission::ManagePackages => &[Role::Developer, Role::Deployer, Role::Admin],
            Permission::Deploy => &[Role::Deployer, Role::Admin],
        }
    }
    fn is_write(self) -> bool {
        !matches!(self, Permission::Read | Permission::ReadExtensions)
    }
}

/// Everything a use case needs to know about the request it serves. The
/// tenant comes from the verified token only.
#[derive(Clone, Debug)]
pub struct TenantCtx {
    pub tenant: TenantId,
    pub actor: Actor,
    pub roles: Vec<Role>,
    /// The server's id of this request.
    pub request_id: String,
    /// The id the client sent in `X-Request-Id`, if any (recorded, never trusted).
    pub client_request_id: Option<String>,
    pub tenant_suspended: bool,
}

impl TenantCtx {
    /// Refuses with 403 unless one of the caller's roles grants `permission`
    /// and, for a change, the tenant is not suspended.
    pub fn require(&self, permission: Permission) -> Result<()> {
        if !self.roles.iter().any(|r| permission.allowed_roles().contains(r)) {
            return Err(DomainError::forbidden("forbidden", "your roles do not allow this action"));
        }
        if permission.is_write() && self.tenant_suspended {
            return Err(DomainError::forbidden("tenant_suspended", "the tenant is suspended: it can read but not change anything"));
        }
        Ok(())
    }
}

/// A platform operator's request (no tenant).
#[derive(Clone, Debug)]
pub struct PlatformCtx {
    pub actor: Actor,
    pub request_id: String,
    pub client_request_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(roles: &[Role], suspended: bool) -> TenantCtx {
        TenantCtx {
            tenant: TenantId::new(),
            actor: Actor::user("alice"),
            roles: roles.to_vec(),
            request_id: "r".into(),
            client_request_id: None,
            tenant_suspended: suspended,
        }
    }

    #[test]
    fn a_viewer_may_read_but_not_manage_environments() {
        let c = ctx(&[Role::Viewer], false);
        assert!(c.require(Permission::Read).is_ok());
        assert_eq!(c.require(Permission::ManageEnvironments).unwrap_err().code(), "forbidden");
    }

    #[test]
    fn an_admin_of_a_suspended_tenant_may_read_but_not_change() {
        let c = ctx(&[Role::Admin], true);
        assert!(c.require(Permission::Read).is_ok());
        assert_eq!(c.require(Permission::ManageRuntimes).unwrap_err().code(), "tenant_suspended");
    }

    #[test]
    fn a_caller_without_roles_may_not_even_read() {
        assert!(ctx(&[], false).require(Permission::Read).is_err());
    }
}
