//! Typed identifiers. Each is a UUID underneath; the type keeps a runtime id
//! from ever being passed where an environment id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh id: UUIDv7, so ids sort by creation time (lists come
            /// back oldest first) while keeping 74 random bits.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
            pub fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
            /// 32 lowercase hex digits, no hyphens (used inside tokens and queue names).
            pub fn simple(&self) -> String {
                self.0.simple().to_string()
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

typed_id!(
    /// An account: every other entity belongs to exactly one tenant.
    TenantId
);
typed_id!(
    /// A deployment target environment (Test, Production, ...).
    EnvironmentId
);
typed_id!(
    /// A runtime (agent) machine of a tenant.
    RuntimeId
);
typed_id!(
    /// One entry of a tenant's audit trail.
    AuditEventId
);
typed_id!(
    /// Something a tenant builds (a process, a map, a connection, ...).
    ComponentId
);
typed_id!(
    /// An immutable packaged snapshot of a component.
    PackageId
);
typed_id!(
    /// One package version deployed (or undeployed) to one environment.
    DeploymentId
);
typed_id!(
    /// One runtime's part of a deployment, as the agent sees it.
    JobId
);
typed_id!(
    /// A governed bundle of packages released together.
    ChangeRequestId
);
typed_id!(
    /// Content a client uploads straight to S3 (presigned), before it becomes a revision.
    UploadId
);
typed_id!(
    /// A tenant's signed inbound endpoint for CI (`/hooks/v1/{id}`).
    WebhookId
);
typed_id!(
    /// A tenant's API key: a pipeline's credential on the portal API.
    ApiKeyId
);
