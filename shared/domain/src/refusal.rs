//! What a store refuses to write, typed. A store reports which of its
//! conditions failed (`Refusal`); the domain chooses the words a client reads,
//! here and nowhere else (`Refusal::into_error`). Use cases that react to a
//! refusal (a lost race, a version number taken) match on it, not on codes.

use crate::DomainError;
use crate::component::ComponentType;
use crate::ids::DeploymentId;
use crate::package::VersionLabel;
use crate::values::Name;

/// A kind of stored item, for the refusals that apply to several.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entity {
    Tenant,
    Environment,
    Runtime,
    Component,
    Package,
    Deployment,
    Target,
    ChangeRequest,
    Policy,
    /// A runtime's attachment to an environment.
    Attachment,
    Webhook,
    /// A version's quarantine in an environment.
    Quarantine,
    ApiKey,
    /// An environment's extension values.
    Extensions,
}

/// A unique name or label another item holds already.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Taken {
    EnvironmentName,
    ComponentName { kind: ComponentType, name: Name },
    PackageVersion(VersionLabel),
}

/// A plan limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quota {
    Environments,
    Runtimes,
}

/// Whose approval decision a refusal is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decided {
    Deployment,
    ChangeRequest,
}

/// A write a store refused because of what it holds.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{self:?}")]
pub enum Refusal {
    /// The item is not as the caller read it: its version, status or state moved on.
    Stale(Entity),
    /// An item with this id exists already (a new item's id collided).
    Exists(Entity),
    /// The item does not exist (any more).
    Missing(Entity),
    Taken(Taken),
    /// Another deployment holds the (environment, component) lock.
    InFlight {
        deployment: Option<DeploymentId>,
    },
    QuotaExceeded(Quota),
    /// An environment with attached runtimes cannot be deleted.
    HasRuntimes,
    /// The registration token was exchanged for a credential already.
    RegistrationUsed,
    /// A decision on something no longer waiting for approvals.
    NotAwaitingApproval(Decided),
    /// A second decision by the same approver.
    AlreadyDecided(Decided),
    /// Package archives are written once.
    ArchiveExists,
    /// A package archive could not be written: this bundled content is not stored.
    ContentMissing(crate::runtime::Digest),
    /// A list cursor that the list did not issue (or issued for another partition).
    InvalidCursor,
}

impl Entity {
    pub fn name(self) -> &'static str {
        match self {
            Self::Tenant => "tenant",
            Self::Environment => "environment",
            Self::Runtime => "runtime",
            Self::Component => "component",
            Self::Package => "package",
            Self::Deployment => "deployment",
            Self::Target => "job",
            Self::ChangeRequest => "change request",
            Self::Policy => "policy",
            Self::Attachment => "attachment",
            Self::Webhook => "webhook",
            Self::Quarantine => "quarantine",
            Self::ApiKey => "API key",
            Self::Extensions => "extensions",
        }
    }

    fn exists_code(self) -> &'static str {
        match self {
            Self::Tenant => "tenant_exists",
            Self::Environment => "environment_exists",
            Self::Runtime => "runtime_exists",
            Self::Component => "component_exists",
            Self::Package => "package_exists",
            Self::Deployment => "deployment_exists",
            Self::Target => "job_exists",
            Self::ChangeRequest => "change_request_exists",
            Self::Policy => "policy_exists",
            Self::Attachment => "attachment_exists",
            Self::Webhook => "webhook_exists",
            Self::Quarantine => "quarantine_exists",
            Self::ApiKey => "api_key_exists",
            Self::Extensions => "extensions_exist",
        }
    }
}

impl Refusal {
    /// The error a client reads for this refusal: its stable code and words.
    pub fn into_error(self) -> DomainError {
        match self {
            // Versioned resources are updated with `If-Match`: a stale one is 412.
            Self::Stale(
                Entity::Tenant
                | Entity::Environment
                | Entity::Component
                | Entity::Policy
                | Entity::ChangeRequest
                | Entity::Package
                | Entity::Webhook
                | Entity::Extensions,
            ) => DomainError::PreconditionFailed,
            Self::Stale(Entity::Deployment) => DomainError::conflict("status_changed", "the deployment changed meanwhile"),
            Self::Stale(Entity::Target) => DomainError::conflict("target_changed", "the job changed meanwhile"),
            Self::Stale(Entity::Runtime) => DomainError::conflict("runtime_changed", "the runtime changed meanwhile; try again"),
            Self::Stale(entity @ (Entity::Attachment | Entity::Quarantine)) => DomainError::not_found(entity.name()),
            Self::Stale(Entity::ApiKey) => DomainError::conflict("api_key_changed", "the API key changed meanwhile"),
            Self::Exists(entity) => DomainError::conflict(entity.exists_code(), format!("a {} with this id exists", entity.name())),
            Self::Missing(entity) => DomainError::not_found(entity.name()),
            Self::Taken(Taken::EnvironmentName) => DomainError::conflict("name_exists", "an environment with this name exists"),
            Self::Taken(Taken::ComponentName { kind, name }) => DomainError::conflict("name_exists", format!("a {} named \"{name}\" exists", kind.as_str())),
            Self::Taken(Taken::PackageVersion(version)) => {
                DomainError::conflict("version_exists", format!("the component already has a package version \"{version}\""))
            }
            Self::InFlight { deployment } => DomainError::conflict(
                "deployment_in_progress",
                match deployment {
                    Some(d) => format!("deployment {d} of this component to this environment is still in flight"),
                    None => "another deployment of this component to this environment is in flight".to_string(),
                },
            ),
            Self::QuotaExceeded(quota) => DomainError::QuotaExceeded {
                message: match quota {
                    Quota::Environments => "the tenant's plan allows no more environments".into(),
                    Quota::Runtimes => "the tenant's plan allows no more runtimes".into(),
                },
            },
            Self::HasRuntimes => DomainError::conflict("environment_has_runtimes", "detach every runtime before deleting the environment"),
            Self::RegistrationUsed => DomainError::conflict("registration_token_used", "the registration token was used already"),
            Self::NotAwaitingApproval(Decided::Deployment) => {
                DomainError::conflict("not_pending_approval", "the deployment is no longer waiting for approvals")
            }
            Self::NotAwaitingApproval(Decided::ChangeRequest) => DomainError::conflict("not_submitted", "the change request is not waiting for approvals"),
            Self::AlreadyDecided(Decided::Deployment) => DomainError::conflict("already_decided", "you have already decided on this deployment"),
            Self::AlreadyDecided(Decided::ChangeRequest) => DomainError::conflict("already_decided", "you have already decided on these items"),
            Self::ArchiveExists => DomainError::conflict("package_archive_exists", "the package archive exists and is never overwritten"),
            Self::ContentMissing(digest) => DomainError::conflict("content_missing", format!("bundled content {} is not stored", digest.as_str())),
            Self::InvalidCursor => DomainError::invalid("cursor", "is not a cursor this list issued"),
        }
    }
}

impl From<Refusal> for DomainError {
    fn from(refusal: Refusal) -> Self {
        DomainError::Refused(refusal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_versioned_resource_is_a_failed_precondition_and_a_stale_deployment_a_conflict() {
        assert!(matches!(Refusal::Stale(Entity::Environment).into_error(), DomainError::PreconditionFailed));
        assert_eq!(Refusal::Stale(Entity::Deployment).into_error().code(), "status_changed");
        assert_eq!(Refusal::Stale(Entity::Target).into_error().code(), "target_changed");
    }

    #[test]
    fn an_in_flight_lock_reads_the_same_wherever_it_is_found() {
        let d = DeploymentId::new();
        let error = Refusal::InFlight { deployment: Some(d) }.into_error();
        assert_eq!(error.code(), "deployment_in_progress");
        assert!(error.to_string().contains(&d.to_string()));
        assert_eq!(Refusal::InFlight { deployment: None }.into_error().code(), "deployment_in_progress");
    }

    #[test]
    fn a_refused_error_reports_the_code_of_its_wording() {
        let refused = DomainError::from(Refusal::QuotaExceeded(Quota::Runtimes));
        assert_eq!(refused.code(), "quota_exceeded");
        assert_eq!(DomainError::from(Refusal::Exists(Entity::ChangeRequest)).code(), "change_request_exists");
    }
}
