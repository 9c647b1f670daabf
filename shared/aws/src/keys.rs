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
//! | audit checkpoint (how far verified) | `T#<t>#AUDIT` | `CHECKPOINT` |
//! | component | `T#<t>#CMP` | `C#<component>` |
//! | component name (uniqueness) | `T#<t>#CMPNAME` | `<type>#<lowercased name>` |
//! | revision | `T#<t>#CMP#<component>#REV` | `R#<revision, 10 digits>` |
//! | package | `T#<t>#PKG` | `P#<package>` (GSI1: `T#<t>#CMP#<component>#PKG` / `P#<package>`) |
//! | package version (uniqueness) | `T#<t>#CMP#<component>#PKGVER` | `<version label>` |
//! | package activity (written by deployments) | `T#<t>#PKGACTIVE#<package>` | `<environment>` |
//! | deployment | `T#<t>#DEP` | `D#<deployment>` (GSI1 while scheduled/queued: `SWEEP#SCHEDULED`/`SWEEP#QUEUED` / `<time>#<t>#<deployment>`; while pending approval: `T#<t>#AWAITING` / `<created_at>#D#<deployment>`) |
//! | in-flight lock | `T#<t>#ENV#<env>#INFLIGHT` | `<component>` |
//! | active version | `T#<t>#ENV#<env>#ACTIVE` | `<component>` |
//! | connection slot (GSI1 only: an active version or in-flight lock bundling connections) | — | — (GSI1: `T#<t>#CONNSLOTS` / `<env>#A#<component>` active, `<env>#F#<component>` in flight) |
//! | quarantined version | `T#<t>#ENV#<env>#QUARANTINE` | `<package>` |
//! | target | `T#<t>#DEP#<deployment>#TGT` | `<runtime>` (GSI1 while delivered: `SWEEP#TARGETS` / `<deadline>#<t>#<deployment>#<runtime>`) |
//! | job → deployment | `T#<t>#RT#<runtime>#JOB` | `<job>` |
//! | deployment event | `T#<t>#DEP#<deployment>#EV` | `<time>#<uuid>` |
//! | approval | `T#<t>#DEP#<deployment>#APPROVAL` | `<approver>` |
//! | package success (promotion) | `T#<t>#PKGSUCCESS#<package>` | `<environment>` |
//! | change request | `T#<t>#CR` | `C#<change request>` (GSI1 while submitted: `T#<t>#AWAITING` / `<created_at>#C#<change request>`) |
//! | change request approval | `T#<t>#CR#<change request>#APPROVAL` | `<approver>#<digests hash>` |
//! | policy | `T#<t>#POLICY` | `<environment>` |
//! | an environment's extension values (secrets sealed) | `T#<t>#EXT` | `<environment>` |
//! | the latest connection test of a component in an environment | `T#<t>#CONNTEST` | `<environment>#<component>` |
//! | idempotency key | `T#<t>#IDEM` or `PLATFORM#IDEM` | `<key>` |
//! | webhook | `T#<t>#WEBHOOK` | `W#<webhook>` |
//! | webhook → tenant (global: deliveries carry no token) | `WEBHOOK#<webhook>` | `TENANT` |
//! | webhook attempts in one minute (TTL) | `T#<t>#WEBHOOK#<webhook>#ATTEMPTS` | `<window start, 12 digits>` |
//! | delivery id claim, with its authenticated delivery (TTL) | `T#<t>#WEBHOOK#<webhook>#DELIVERYID` | `<delivery id>` |
//! | delivery history (TTL) | `T#<t>#WEBHOOK#<webhook>#DELIVERY` | `<received at>#<uuid>` |
//! | API key | `T#<t>#APIKEY` | `K#<api key>` |
//! | pending content upload (TTL) | `T#<t>#UPLOAD` | `U#<upload>` |

use berth_domain::ids::{ApiKeyId, ChangeRequestId, ComponentId, DeploymentId, EnvironmentId, JobId, PackageId, RuntimeId, TenantId, UploadId, WebhookId};
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
pub fn audit_checkpoint(t: TenantId) -> (String, String) {
    (audit_events(t), "CHECKPOINT".into())
}

pub fn components(t: TenantId) -> String {
    format!("T#{t}#CMP")
}
pub fn component(t: TenantId, c: ComponentId) -> (String, String) {
    (components(t), format!("C#{c}"))
}
pub fn component_name(t: TenantId, kind: &str, unique_name: &str) -> (String, String) {
    (format!("T#{t}#CMPNAME"), format!("{kind}#{unique_name}"))
}
pub fn revisions(t: TenantId, c: ComponentId) -> String {
    format!("T#{t}#CMP#{c}#REV")
}
pub fn revision(t: TenantId, c: ComponentId, n: u32) -> (String, String) {
    (revisions(t, c), format!("R#{n:010}"))
}
pub fn packages(t: TenantId) -> String {
    format!("T#{t}#PKG")
}
pub fn package(t: TenantId, p: PackageId) -> (String, String) {
    (packages(t), format!("P#{p}"))
}
/// GSI1 partition listing one component's packages.
pub fn component_packages(t: TenantId, c: ComponentId) -> String {
    format!("T#{t}#CMP#{c}#PKG")
}
pub fn package_versions(t: TenantId, c: ComponentId) -> String {
    format!("T#{t}#CMP#{c}#PKGVER")
}
pub fn package_version(t: TenantId, c: ComponentId, label: &str) -> (String, String) {
    (package_versions(t, c), label.to_string())
}
pub fn package_activity(t: TenantId, p: PackageId) -> String {
    format!("T#{t}#PKGACTIVE#{p}")
}

pub fn deployments(t: TenantId) -> String {
    format!("T#{t}#DEP")
}
pub fn deployment(t: TenantId, d: DeploymentId) -> (String, String) {
    (deployments(t), format!("D#{d}"))
}
pub fn in_flights(t: TenantId, e: EnvironmentId) -> String {
    format!("T#{t}#ENV#{e}#INFLIGHT")
}
pub fn in_flight(t: TenantId, e: EnvironmentId, c: ComponentId) -> (String, String) {
    (in_flights(t, e), c.to_string())
}
pub fn actives(t: TenantId, e: EnvironmentId) -> String {
    format!("T#{t}#ENV#{e}#ACTIVE")
}
pub fn active(t: TenantId, e: EnvironmentId, c: ComponentId) -> (String, String) {
    (actives(t, e), c.to_string())
}
/// GSI1 partition of the tenant's connection-holding slots (active versions
/// and in-flight locks that bundle connections; the others have no GSI1 key).
pub fn connection_slots(t: TenantId) -> String {
    format!("T#{t}#CONNSLOTS")
}
/// GSI1 sort key of one slot: by environment, active (`A`) before in flight (`F`), then component.
pub fn connection_slot(e: EnvironmentId, c: ComponentId, in_flight: bool) -> String {
    format!("{e}#{}#{c}", if in_flight { "F" } else { "A" })
}
pub fn quarantines(t: TenantId, e: EnvironmentId) -> String {
    format!("T#{t}#ENV#{e}#QUARANTINE")
}
pub fn quarantine(t: TenantId, e: EnvironmentId, p: PackageId) -> (String, String) {
    (quarantines(t, e), p.to_string())
}
pub fn package_active_marker(t: TenantId, p: PackageId, e: EnvironmentId) -> (String, String) {
    (package_activity(t, p), e.to_string())
}
pub fn change_requests(t: TenantId) -> String {
    format!("T#{t}#CR")
}
pub fn change_request(t: TenantId, c: ChangeRequestId) -> (String, String) {
    (change_requests(t), format!("C#{c}"))
}
pub fn change_approvals(t: TenantId, c: ChangeRequestId) -> String {
    format!("T#{t}#CR#{c}#APPROVAL")
}
/// One decision per approver and exact set of digests: when a change
/// request's items change, its approvers decide anew.
pub fn change_approval(t: TenantId, c: ChangeRequestId, approver: &str, digests: &[berth_domain::runtime::Digest]) -> (String, String) {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    for d in digests {
        h.update(d.as_str());
    }
    (change_approvals(t, c), format!("{approver}#{}", &hex::encode(h.finalize())[..16]))
}
/// GSI1 partition of what waits on approvers' decisions (sparse: deployments
/// pending approval and change requests submitted), oldest first.
pub fn awaiting_decision(t: TenantId) -> String {
    format!("T#{t}#AWAITING")
}
/// GSI1 key of a deployment pending approval.
pub fn awaiting_deployment(t: TenantId, d: DeploymentId, created_at: chrono::DateTime<chrono::Utc>) -> (String, String) {
    (awaiting_decision(t), format!("{}#D#{d}", time(created_at)))
}
/// GSI1 key of a change request submitted.
pub fn awaiting_change_request(t: TenantId, c: ChangeRequestId, created_at: chrono::DateTime<chrono::Utc>) -> (String, String) {
    (awaiting_decision(t), format!("{}#C#{c}", time(created_at)))
}
pub fn approvals(t: TenantId, d: DeploymentId) -> String {
    format!("T#{t}#DEP#{d}#APPROVAL")
}
/// Environments where a package succeeded (promotion order).
pub fn package_successes(t: TenantId, p: PackageId) -> String {
    format!("T#{t}#PKGSUCCESS#{p}")
}
pub fn policy(t: TenantId, e: EnvironmentId) -> (String, String) {
    (format!("T#{t}#POLICY"), e.to_string())
}
pub fn extensions(t: TenantId, e: EnvironmentId) -> (String, String) {
    (format!("T#{t}#EXT"), e.to_string())
}
/// The tenant's connection tests: the latest per (environment, component).
pub fn connection_tests(t: TenantId) -> String {
    format!("T#{t}#CONNTEST")
}
pub fn connection_test(t: TenantId, e: EnvironmentId, c: ComponentId) -> (String, String) {
    (connection_tests(t), format!("{e}#{c}"))
}
pub fn targets(t: TenantId, d: DeploymentId) -> String {
    format!("T#{t}#DEP#{d}#TGT")
}
pub fn target(t: TenantId, d: DeploymentId, r: RuntimeId) -> (String, String) {
    (targets(t, d), r.to_string())
}
pub fn job(t: TenantId, r: RuntimeId, j: JobId) -> (String, String) {
    (format!("T#{t}#RT#{r}#JOB"), j.to_string())
}
pub fn events(t: TenantId, d: DeploymentId) -> String {
    format!("T#{t}#DEP#{d}#EV")
}
/// A timeline line: in time order, unique even within one microsecond.
pub fn event(t: TenantId, d: DeploymentId, at: chrono::DateTime<chrono::Utc>) -> (String, String) {
    (events(t, d), format!("{}#{}", time(at), uuid::Uuid::new_v4()))
}
/// GSI1 key of the tenants list: oldest first.
pub fn tenants_index(t: TenantId, created_at: chrono::DateTime<chrono::Utc>) -> (String, String) {
    (TENANTS_INDEX_PK.to_string(), format!("{}#{t}", created_at.to_rfc3339()))
}
/// Platform-wide sweeper partitions of GSI1 (sparse: only items needing a sweep).
pub const SWEEP_TARGETS: &str = "SWEEP#TARGETS";
pub const SWEEP_SCHEDULED: &str = "SWEEP#SCHEDULED";
pub const SWEEP_QUEUED: &str = "SWEEP#QUEUED";
/// GSI1 key of a deployment the sweeper watches: due at `at` (scheduled), or
/// queued since `at`.
pub fn sweep_deployment(partition: &str, at: chrono::DateTime<chrono::Utc>, t: TenantId, d: DeploymentId) -> (String, String) {
    (partition.to_string(), format!("{}#{t}#{d}", time(at)))
}
/// GSI1 key of a delivered job, by its deadline.
pub fn sweep_target(deadline: chrono::DateTime<chrono::Utc>, t: TenantId, d: DeploymentId, r: RuntimeId) -> (String, String) {
    (SWEEP_TARGETS.to_string(), format!("{}#{t}#{d}#{r}", time(deadline)))
}
/// Sortable time in keys.
pub fn time(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// S3: content by SHA-256 (hex, no prefix), under the tenant.
pub fn content_object(t: TenantId, sha256_hex: &str) -> String {
    format!("tenants/{t}/content/{sha256_hex}")
}
/// S3: what a client uploads through presigned URLs, until it is checked and
/// copied to its content address. Under `staging/` (not `tenants/`) so that
/// one lifecycle rule can expire whatever is left behind.
pub fn staged_object(t: TenantId, u: UploadId) -> String {
    format!("staging/tenants/{t}/{u}")
}
pub fn upload(t: TenantId, u: UploadId) -> (String, String) {
    (format!("T#{t}#UPLOAD"), format!("U#{u}"))
}
/// S3: a package's archive, under the tenant.
pub fn package_object(t: TenantId, p: PackageId) -> String {
    format!("tenants/{t}/packages/{p}.tar.gz")
}

pub fn idempotency(scope: IdempotencyScope, key: &str) -> (String, String) {
    let pk = match scope {
        IdempotencyScope::Tenant(t) => format!("T#{t}#IDEM"),
        IdempotencyScope::Platform => "PLATFORM#IDEM".into(),
    };
    (pk, key.to_string())
}

pub fn webhooks(t: TenantId) -> String {
    format!("T#{t}#WEBHOOK")
}
pub fn webhook(t: TenantId, w: WebhookId) -> (String, String) {
    (webhooks(t), format!("W#{w}"))
}
/// Outside the tenant's partitions on purpose: a delivery names only the
/// webhook, and this is how its tenant is found.
pub fn webhook_tenant(w: WebhookId) -> (String, String) {
    (format!("WEBHOOK#{w}"), "TENANT".into())
}
pub fn webhook_attempts(t: TenantId, w: WebhookId, window_start: i64) -> (String, String) {
    (format!("T#{t}#WEBHOOK#{w}#ATTEMPTS"), format!("{window_start:012}"))
}
pub fn delivery_claim(t: TenantId, w: WebhookId, delivery: &str) -> (String, String) {
    (format!("T#{t}#WEBHOOK#{w}#DELIVERYID"), delivery.to_string())
}
pub fn deliveries(t: TenantId, w: WebhookId) -> String {
    format!("T#{t}#WEBHOOK#{w}#DELIVERY")
}
/// A history line: in time order (listed newest first), unique even within one microsecond.
pub fn delivery(t: TenantId, w: WebhookId, received_at: chrono::DateTime<chrono::Utc>) -> (String, String) {
    (deliveries(t, w), format!("{}#{}", time(received_at), uuid::Uuid::new_v4()))
}
pub fn api_keys(t: TenantId) -> String {
    format!("T#{t}#APIKEY")
}
pub fn api_key(t: TenantId, k: ApiKeyId) -> (String, String) {
    (api_keys(t), format!("K#{k}"))
}

/// Name of a runtime's job queue and of its dead-letter queue.
pub fn runtime_queue_names(prefix: &str, r: RuntimeId) -> (String, String) {
    let name = format!("{prefix}rt-{}", r.simple());
    let dlq = format!("{name}-dlq");
    (name, dlq)
}
