//! Every key format of the table, in one place. Each partition key of tenant
//! data starts with `T#<tenant>`, so IAM `dynamodb:LeadingKeys` can fence a
//! tenant's credentials to its own items.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | tenant | `T#<t>` | `TENANT` (GSI1: `TENANTS` / `<created_at>#<t>`) |
//! | environment | `T#<t>#ENV` | `E#<env>` |
//! | environment name (uniqueness) | `T#<t>#ENVNAME` | `<lowercased name>` |
//! | runtime | `T#<t>#RT` | `R#<runtime>` |
//! | attachment | `T#<t>#ENV#<env>#RT` | `R#<runtime>` |
//! | audit event | `T#<t>#AUDIT` | `E#<seq, 20 digits>` |
//! | audit head | `T#<t>#AUDIT` | `HEAD` |
//! | idempotency key | `T#<t>#IDEM` or `PLATFORM#IDEM` | `<key>` |

use berth_domain::ids::{EnvironmentId, RuntimeId, TenantId};
use berth_domain::ports::IdempotencyScope;

pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const GSI1: &str = "gsi1";
pub const GSI1_PK: &str = "gsi1pk";
pub const GSI1_SK: &str = "gsi1sk";
/// Epoch seconds after which DynamoDB's TTL may delete the item.
pub const TTL_ATTRIBUTE: &str = "expires_at";

pub fn tenant(t: TenantId) -> (String, String) {
    (format!("T#{t}"), "TENANT".into())
}
pub const TENANTS_INDEX_PK: &str = "TENANTS";

pub fn environments(t: TenantId) -> String {
    format!("T#{t}#ENV")
}
pub fn environment(t: TenantId, e: EnvironmentId) -> (String, String) {
    (environments(t), format!("E#{e}"))
}
pub fn environment_name(t: TenantId, unique_name: &str) -> (String, String) {
    (format!("T#{t}#ENVNAME"), unique_name.to_string())
}

pub fn runtimes(t: TenantId) -> String {
    format!("T#{t}#RT")
}
pub fn runtime(t: TenantId, r: RuntimeId) -> (String, String) {
    (runtimes(t), format!("R#{r}"))
}
pub fn attachments(t: TenantId, e: EnvironmentId) -> String {
    format!("T#{t}#ENV#{e}#RT")
}
pub fn attachment(t: TenantId, e: EnvironmentId, r: RuntimeId) -> (String, String) {
    (attachments(t, e), format!("R#{r}"))
}

pub fn audit_events(t: TenantId) -> String {
    format!("T#{t}#AUDIT")
}
pub fn audit_event(t: TenantId, seq: u64) -> (String, String) {
    (audit_events(t), format!("E#{seq:020}"))
}
pub fn audit_head(t: TenantId) -> (String, String) {
    (audit_events(t), "HEAD".into())
}

pub fn idempotency(scope: IdempotencyScope, key: &str) -> (String, String) {
    let pk = match scope {
        IdempotencyScope::Tenant(t) => format!("T#{t}#IDEM"),
        IdempotencyScope::Platform => "PLATFORM#IDEM".into(),
    };
    (pk, key.to_string())
}

/// Name of a runtime's job queue and of its dead-letter queue.
pub fn runtime_queue_names(prefix: &str, r: RuntimeId) -> (String, String) {
    let name = format!("{prefix}rt-{}", r.simple());
    let dlq = format!("{name}-dlq");
    (name, dlq)
}
