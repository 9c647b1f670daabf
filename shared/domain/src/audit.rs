//! The audit trail: append-only, per tenant, each event carrying the hash of
//! the one before it, so that any edit or removal breaks the chain.

use crate::context::Actor;
use crate::ids::AuditEventId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub mod summary;

/// The kind of entity an event is recorded on: its `entity_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityType {
    Tenant,
    Environment,
    Runtime,
    Component,
    Package,
    Deployment,
    ChangeRequest,
    Webhook,
    ApiKey,
}

impl EntityType {
    pub const ALL: [EntityType; 9] =
        [Self::Tenant, Self::Environment, Self::Runtime, Self::Component, Self::Package, Self::Deployment, Self::ChangeRequest, Self::Webhook, Self::ApiKey];

    /// What the trail records as `entity_type` (the same string it serialises to).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tenant => "tenant",
            Self::Environment => "environment",
            Self::Runtime => "runtime",
            Self::Component => "component",
            Self::Package => "package",
            Self::Deployment => "deployment",
            Self::ChangeRequest => "change_request",
            Self::Webhook => "webhook",
            Self::ApiKey => "api_key",
        }
    }
}

/// Declares [`AuditAction`] from one table, so that `ALL`, `as_str` and
/// `entity_type` cannot miss a variant.
macro_rules! audit_actions {
    ($($(#[$doc:meta])* $variant:ident = $action:literal on $entity:ident,)+) => {
        /// Every kind of change Berth records in the audit trail. The strings are
        /// stored, filtered on and covered by the hash chain: never change one.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum AuditAction {
            $($(#[$doc])* $variant,)+
        }

        impl AuditAction {
            /// Every action, in the order declared.
            pub const ALL: &'static [AuditAction] = &[$(Self::$variant,)+];

            /// What the trail records as `action`: `<entity>.<verb>`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $action,)+
                }
            }

            /// The kind of entity the event is recorded on.
            pub fn entity_type(self) -> EntityType {
                match self {
                    $(Self::$variant => EntityType::$entity,)+
                }
            }
        }
    };
}

audit_actions! {
    /// A platform admin created the tenant.
    TenantCreated = "tenant.created" on Tenant,
    /// Patched without suspending or reinstating it (its name, its plan).
    TenantUpdated = "tenant.updated" on Tenant,
    TenantSuspended = "tenant.suspended" on Tenant,
    TenantReinstated = "tenant.reinstated" on Tenant,

    EnvironmentCreated = "environment.created" on Environment,
    EnvironmentUpdated = "environment.updated" on Environment,
    EnvironmentDeleted = "environment.deleted" on Environment,
    /// Its extension values were written (which fields changed, never values).
    EnvironmentExtensionsUpdated = "environment.extensions_updated" on Environment,
    /// The environment's policy was replaced; recorded on the environment.
    PolicyUpdated = "policy.updated" on Environment,
    /// A runtime was attached to the environment; recorded on the environment.
    RuntimeAttached = "runtime.attached" on Environment,
    /// A runtime was detached from the environment; recorded on the environment.
    RuntimeDetached = "runtime.detached" on Environment,

    RuntimeCreated = "runtime.created" on Runtime,
    RuntimeDeleted = "runtime.deleted" on Runtime,
    /// Its agent exchanged the registration token for a credential.
    RuntimeRegistered = "runtime.registered" on Runtime,
    /// An admin issued a new registration token, voiding any earlier one.
    RuntimeRegistrationTokenIssued = "runtime.registration_token_issued" on Runtime,
    /// Its agent rotated its credential (the new one is pending until used).
    RuntimeCredentialRotated = "runtime.credential_rotated" on Runtime,
    /// An admin revoked every credential of the runtime.
    RuntimeRevoked = "runtime.revoked" on Runtime,

    ComponentCreated = "component.created" on Component,
    /// A new revision was added.
    ComponentRevised = "component.revised" on Component,

    PackageCreated = "package.created" on Package,
    PackageDeleted = "package.deleted" on Package,
    /// The package builder could not write the archive of a package reserved
    /// `building` (`package.created` was recorded when it was reserved).
    PackageBuildFailed = "package.build_failed" on Package,

    /// A deploy or redeploy was requested (directly or by a change request).
    DeploymentRequested = "deployment.requested" on Deployment,
    /// A rollback was requested, by a person or automatically after a failure.
    DeploymentRollbackRequested = "deployment.rollback_requested" on Deployment,
    /// An undeploy was requested, or sent to a runtime detached from the environment.
    DeploymentUndeployRequested = "deployment.undeploy_requested" on Deployment,
    /// A runtime attached to the environment was sent the environment's active version.
    DeploymentSyncRequested = "deployment.sync_requested" on Deployment,
    DeploymentApproved = "deployment.approved" on Deployment,
    DeploymentRejected = "deployment.rejected" on Deployment,
    /// Enough approvals: released (queued, or scheduled).
    DeploymentApprovalsComplete = "deployment.approvals_complete" on Deployment,
    /// A rejection ended it.
    DeploymentClosed = "deployment.closed" on Deployment,
    /// The sweeper found a freeze window at its scheduled time and held it.
    DeploymentHeld = "deployment.held" on Deployment,
    /// The sweeper queued it at its scheduled time.
    DeploymentReleased = "deployment.released" on Deployment,
    DeploymentCancelled = "deployment.cancelled" on Deployment,
    /// The dispatcher sent its jobs.
    DeploymentStarted = "deployment.started" on Deployment,
    DeploymentSucceeded = "deployment.succeeded" on Deployment,
    DeploymentPartiallyFailed = "deployment.partially_failed" on Deployment,
    /// Its jobs failed, or it could never be dispatched.
    DeploymentFailed = "deployment.failed" on Deployment,
    DeploymentRolledBack = "deployment.rolled_back" on Deployment,
    /// Its failed targets were sent their job again.
    DeploymentRetried = "deployment.retried" on Deployment,
    /// Its rollout stopped before the next batch: too many failed targets, or a person halted it.
    DeploymentHalted = "deployment.halted" on Deployment,
    /// A person resumed its halted rollout.
    DeploymentResumed = "deployment.resumed" on Deployment,

    ChangeRequestCreated = "change_request.created" on ChangeRequest,
    ChangeRequestUpdated = "change_request.updated" on ChangeRequest,
    ChangeRequestSubmitted = "change_request.submitted" on ChangeRequest,
    ChangeRequestApproved = "change_request.approved" on ChangeRequest,
    ChangeRequestRejected = "change_request.rejected" on ChangeRequest,
    ChangeRequestApprovalsComplete = "change_request.approvals_complete" on ChangeRequest,
    /// A rejection ended it.
    ChangeRequestClosed = "change_request.closed" on ChangeRequest,
    ChangeRequestDeploying = "change_request.deploying" on ChangeRequest,
    ChangeRequestDeploymentsCreated = "change_request.deployments_created" on ChangeRequest,
    ChangeRequestCompleted = "change_request.completed" on ChangeRequest,
    /// A deployment could not be created, or one of its deployments failed.
    ChangeRequestFailed = "change_request.failed" on ChangeRequest,

    WebhookCreated = "webhook.created" on Webhook,
    /// Its name, target, action, freeze handling or activity changed.
    WebhookUpdated = "webhook.updated" on Webhook,
    WebhookDeleted = "webhook.deleted" on Webhook,
    /// A new signing secret; the previous one verifies until the overlap ends.
    WebhookSecretRotated = "webhook.secret_rotated" on Webhook,
    /// A person lifted a version's quarantine in the environment; recorded on the environment.
    QuarantineLifted = "quarantine.lifted" on Environment,
    /// An admin made an API key (its secret is never recorded).
    ApiKeyCreated = "api_key.created" on ApiKey,
    /// An admin revoked an API key.
    ApiKeyRevoked = "api_key.revoked" on ApiKey,
}

impl std::fmt::Display for AuditAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The summary of one kind of change, as the event records it. The type names
/// its action, so a call site cannot pair an action with another action's
/// summary, nor record it on another kind of entity's id.
///
/// It serialises to the event's `summary`: the field names and values are
/// part of the trail (read by clients, covered by the hash chain).
pub trait AuditSummary: Serialize {
    /// The id of the entity the event is recorded on.
    type Id: ToString;
    fn action(&self) -> AuditAction;
}

/// A change about to be recorded, written in the same transaction as the change.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditDraft {
    pub actor: Actor,
    pub action: String,
    pub entity_type: &'static str,
    pub entity_id: String,
    /// The server's id of the request that made the change (empty for system work).
    pub request_id: String,
    /// The id the client sent in `X-Request-Id`, kept beside the server's.
    pub client_request_id: Option<String>,
    /// A short before/after summary; never holds secrets.
    pub summary: serde_json::Value,
    /// The tenant's audit head as read with the change's other reads, if it
    /// was: the store chains to it first, and reads the head itself only if
    /// another write moved it since (saving a read when none did).
    pub head_hint: Option<AuditHead>,
}

/// Who made a change and in answer to which request: what every audit event records.
pub trait Origin {
    fn actor(&self) -> &Actor;
    /// The server's request id.
    fn request_id(&self) -> &str;
    /// The request id the client supplied, if any.
    fn client_request_id(&self) -> Option<&str>;
}

/// Implements `Origin` for a request context with `actor`, `request_id` and
/// `client_request_id` fields.
macro_rules! origin_of_context {
    ($($context:ty),+) => {$(
        impl $crate::audit::Origin for $context {
            fn actor(&self) -> &$crate::context::Actor {
                &self.actor
            }
            fn request_id(&self) -> &str {
                &self.request_id
            }
            fn client_request_id(&self) -> Option<&str> {
                self.client_request_id.as_deref()
            }
        }
    )+};
}

origin_of_context!(crate::context::TenantCtx, crate::context::PlatformCtx, crate::usecases::RuntimeCtx);

/// Work the system does on its own (dispatcher, sweeper, automatic rollback): no request.
impl Origin for Actor {
    fn actor(&self) -> &Actor {
        self
    }
    fn request_id(&self) -> &str {
        ""
    }
    fn client_request_id(&self) -> Option<&str> {
        None
    }
}

/// An actor and the server's request id, without the client's: for work done
/// on behalf of a request by code that is handed only those two.
#[derive(Clone, Copy, Debug)]
pub struct RequestOrigin<'a> {
    pub actor: &'a Actor,
    pub request_id: &'a str,
}

impl Origin for RequestOrigin<'_> {
    fn actor(&self) -> &Actor {
        self.actor
    }
    fn request_id(&self) -> &str {
        self.request_id
    }
    fn client_request_id(&self) -> Option<&str> {
        None
    }
}

impl AuditDraft {
    /// A draft from raw parts, for store tests and tools that write arbitrary
    /// events. Use cases record through [`AuditDraft::by`], whose typed summary
    /// names the action.
    pub fn new(actor: &Actor, request_id: &str, action: &str, entity_type: &'static str, entity_id: impl ToString, summary: serde_json::Value) -> Self {
        Self {
            actor: actor.clone(),
            action: action.to_string(),
            entity_type,
            entity_id: entity_id.to_string(),
            request_id: request_id.to_string(),
            client_request_id: None,
            summary,
            head_hint: None,
        }
    }

    /// This draft, to be chained first to `head` (see `head_hint`).
    pub fn after(self, head: Option<AuditHead>) -> Self {
        Self { head_hint: head, ..self }
    }

    /// The event for a change made by `origin` to the entity `entity_id`:
    /// the summary's action, on that action's entity type.
    pub fn by<S: AuditSummary>(origin: &impl Origin, entity_id: S::Id, summary: S) -> Self {
        let action = summary.action();
        // Summaries hold strings, numbers, ids and maps keyed by unit enums:
        // serialising them to JSON cannot fail.
        let summary = serde_json::to_value(&summary).unwrap_or_default();
        Self {
            client_request_id: origin.client_request_id().map(str::to_string),
            ..Self::new(origin.actor(), origin.request_id(), action.as_str(), action.entity_type().as_str(), entity_id, summary)
        }
    }
}

/// The last event of a tenant's chain (or the genesis, before the first).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditHead {
    pub seq: u64,
    pub hash: String,
}

impl AuditHead {
    pub fn genesis() -> Self {
        Self { seq: 0, hash: "0".repeat(64) }
    }
}

/// One recorded event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub id: AuditEventId,
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub actor: Actor,
    pub action: String,
    pub entity_type: String,
    pub entity_id: String,
    pub request_id: String,
    /// Absent on events recorded before it existed (and when the client sent none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_request_id: Option<String>,
    pub summary: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

/// The fields that the hash covers, in a fixed order.
#[derive(Serialize)]
struct Hashed<'a> {
    id: &'a AuditEventId,
    seq: u64,
    at: &'a DateTime<Utc>,
    actor: &'a Actor,
    action: &'a str,
    entity_type: &'a str,
    entity_id: &'a str,
    request_id: &'a str,
    /// Left out when absent, so events recorded before the field existed hash as they did.
    #[serde(skip_serializing_if = "Option::is_none")]
    client_request_id: Option<&'a str>,
    summary: &'a serde_json::Value,
    prev_hash: &'a str,
}

impl AuditEvent {
    /// Appends `draft` after `head`.
    pub fn chain(draft: AuditDraft, head: &AuditHead, at: DateTime<Utc>) -> Self {
        let mut event = AuditEvent {
            id: AuditEventId::new(),
            seq: head.seq + 1,
            at,
            actor: draft.actor,
            action: draft.action,
            entity_type: draft.entity_type.to_string(),
            entity_id: draft.entity_id,
            request_id: draft.request_id,
            client_request_id: draft.client_request_id,
            summary: draft.summary,
            prev_hash: head.hash.clone(),
            hash: String::new(),
        };
        event.hash = event.compute_hash();
        event
    }

    /// SHA-256 over the canonical JSON of every field but `hash` itself.
    /// Object keys are sorted (at every depth), so the hash does not depend on
    /// the order a store returns a map in.
    pub fn compute_hash(&self) -> String {
        let summary = canonical(&self.summary);
        let hashed = Hashed {
            id: &self.id,
            seq: self.seq,
            at: &self.at,
            actor: &self.actor,
            action: &self.action,
            entity_type: &self.entity_type,
            entity_id: &self.entity_id,
            request_id: &self.request_id,
            client_request_id: self.client_request_id.as_deref(),
            summary: &summary,
            prev_hash: &self.prev_hash,
        };
        // Serialising plain structs and BTreeMap-backed JSON values cannot fail.
        let bytes = serde_json::to_vec(&hashed).unwrap_or_default();
        hex::encode(Sha256::digest(bytes))
    }

    pub fn head(&self) -> AuditHead {
        AuditHead { seq: self.seq, hash: self.hash.clone() }
    }
}

/// The same JSON with every object's keys in sorted order.
fn canonical(value: &serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut sorted = serde_json::Map::new();
            for k in keys {
                sorted.insert(k.clone(), canonical(&map[k]));
            }
            serde_json::Value::Object(sorted)
        }
        serde_json::Value::Array(items) => serde_json::Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// Where a chain first breaks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BrokenLink {
    pub id: AuditEventId,
    pub seq: u64,
    pub reason: String,
}

/// Walks events in `seq` order from `from` and reports the first broken link.
pub fn verify_chain<'a>(from: &AuditHead, events: impl IntoIterator<Item = &'a AuditEvent>) -> Result<AuditHead, BrokenLink> {
    let mut head = from.clone();
    for e in events {
        let broken = |reason: &str| BrokenLink { id: e.id, seq: e.seq, reason: reason.to_string() };
        if e.seq != head.seq + 1 {
            return Err(broken("sequence gap: an event is missing or out of place"));
        }
        if e.prev_hash != head.hash {
            return Err(broken("prev_hash does not match the previous event's hash"));
        }
        if e.compute_hash() != e.hash {
            return Err(broken("hash does not match the event's content"));
        }
        head = e.head();
    }
    Ok(head)
}

/// Like [`verify_chain`], but also says how far the chain held: the head of
/// the last intact event (or `from`) and the first broken link, if any.
pub fn verify_links<'a>(from: &AuditHead, events: impl IntoIterator<Item = &'a AuditEvent>) -> (AuditHead, Option<BrokenLink>) {
    let mut head = from.clone();
    for e in events {
        match verify_chain(&head, std::iter::once(e)) {
            Ok(next) => head = next,
            Err(broken) => return (head, Some(broken)),
        }
    }
    (head, None)
}

/// How far a tenant's chain has been verified: its event `seq` hashed to
/// `hash`, linked back to the genesis. Incremental verifications start here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditCheckpoint {
    pub seq: u64,
    pub hash: String,
    /// When the verification that reached it ran.
    pub at: DateTime<Utc>,
    /// The actor id of the caller whose verification reached it.
    pub by: String,
}

impl AuditCheckpoint {
    pub fn head(&self) -> AuditHead {
        AuditHead { seq: self.seq, hash: self.hash.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn draft(action: &str) -> AuditDraft {
        AuditDraft::new(&Actor::user("alice"), "req-1", action, "environment", "e-1", json!({"name": "Test"}))
    }

    fn chain_of(n: usize) -> Vec<AuditEvent> {
        let mut head = AuditHead::genesis();
        (0..n)
            .map(|i| {
                let e = AuditEvent::chain(draft(&format!("a{i}")), &head, Utc::now());
                head = e.head();
                e
            })
            .collect()
    }

    /// Every action recorded today, as stored: a string missing here, or one
    /// here that no action records any more, is a change to the trail's format.
    const RECORDED: &[&str] = &[
        "tenant.created",
        "tenant.updated",
        "tenant.suspended",
        "tenant.reinstated",
        "environment.created",
        "environment.updated",
        "environment.deleted",
        "environment.extensions_updated",
        "policy.updated",
        "runtime.attached",
        "runtime.detached",
        "runtime.created",
        "runtime.deleted",
        "runtime.registered",
        "runtime.registration_token_issued",
        "runtime.credential_rotated",
        "runtime.revoked",
        "component.created",
        "component.revised",
        "package.created",
        "package.deleted",
        "package.build_failed",
        "deployment.requested",
        "deployment.rollback_requested",
        "deployment.undeploy_requested",
        "deployment.sync_requested",
        "deployment.approved",
        "deployment.rejected",
        "deployment.approvals_complete",
        "deployment.closed",
        "deployment.held",
        "deployment.released",
        "deployment.cancelled",
        "deployment.started",
        "deployment.succeeded",
        "deployment.partially_failed",
        "deployment.failed",
        "deployment.rolled_back",
        "deployment.retried",
        "deployment.halted",
        "deployment.resumed",
        "change_request.created",
        "change_request.updated",
        "change_request.submitted",
        "change_request.approved",
        "change_request.rejected",
        "change_request.approvals_complete",
        "change_request.closed",
        "change_request.deploying",
        "change_request.deployments_created",
        "change_request.completed",
        "change_request.failed",
        "webhook.created",
        "webhook.updated",
        "webhook.deleted",
        "webhook.secret_rotated",
        "quarantine.lifted",
        "api_key.created",
        "api_key.revoked",
    ];

    #[test]
    fn every_action_recorded_today_has_a_variant_and_no_other_does() {
        let all: Vec<&str> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(all, RECORDED);
    }

    #[test]
    fn action_strings_are_unique_dotted_and_begin_with_their_entity_type() {
        // Changes to what an environment runs on and enforces are recorded on
        // the environment, under the name of what changed.
        let on_the_environment = [AuditAction::PolicyUpdated, AuditAction::RuntimeAttached, AuditAction::RuntimeDetached, AuditAction::QuarantineLifted];
        let snake = |w: &str| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
        let mut seen = std::collections::HashSet::new();
        for action in AuditAction::ALL {
            let s = action.as_str();
            assert!(seen.insert(s), "{s} names two actions");
            let (entity, verb) = s.split_once('.').unwrap_or_else(|| panic!("{s} is not <entity>.<verb>"));
            assert!(snake(entity) && snake(verb), "{s} is not <entity>.<verb> in snake_case");
            assert_eq!(action.to_string(), s);
            if on_the_environment.contains(action) {
                assert_eq!(action.entity_type(), EntityType::Environment, "{s}");
            } else {
                assert_eq!(entity, action.entity_type().as_str(), "{s} begins with its entity type");
            }
        }
    }

    #[test]
    fn entity_types_serialise_to_the_strings_recorded() {
        for entity in EntityType::ALL {
            assert_eq!(serde_json::to_value(entity).unwrap(), json!(entity.as_str()));
            assert!(AuditAction::ALL.iter().any(|a| a.entity_type() == entity), "no action is recorded on {entity:?}");
        }
    }

    #[test]
    fn a_draft_records_its_summarys_action_on_that_actions_entity_type() {
        let actor = Actor::system("berth");
        let runtime = crate::ids::RuntimeId::new();
        let env = crate::ids::EnvironmentId::new();
        let draft = AuditDraft::by(&actor, env, summary::RuntimeAttached { runtime_id: runtime });
        assert_eq!((draft.action.as_str(), draft.entity_type, draft.entity_id), ("runtime.attached", "environment", env.to_string()));
        assert_eq!(draft.summary, json!({"runtime_id": runtime}));
        assert_eq!((draft.request_id.as_str(), draft.client_request_id), ("", None), "system work answers no request");

        let request = RequestOrigin { actor: &actor, request_id: "req-1" };
        let draft = AuditDraft::by(&request, crate::ids::DeploymentId::new(), summary::DeploymentRetried { targets: 1 });
        assert_eq!((draft.action.as_str(), draft.entity_type), ("deployment.retried", "deployment"));
        assert_eq!((draft.request_id.as_str(), draft.client_request_id), ("req-1", None));
    }

    #[test]
    fn each_event_carries_the_previous_events_hash() {
        let events = chain_of(3);
        assert_eq!(events[0].prev_hash, AuditHead::genesis().hash);
        assert_eq!(events[1].prev_hash, events[0].hash);
        assert_eq!(events[2].seq, 3);
    }

    #[test]
    fn an_untouched_chain_verifies() {
        let events = chain_of(5);
        assert_eq!(verify_chain(&AuditHead::genesis(), &events).unwrap().seq, 5);
    }

    #[test]
    fn an_edited_event_is_detected_at_that_event() {
        let mut events = chain_of(4);
        events[2].summary = json!({"name": "Tampered"});
        let broken = verify_chain(&AuditHead::genesis(), &events).unwrap_err();
        assert_eq!(broken.seq, 3);
    }

    #[test]
    fn a_removed_event_is_detected_as_a_gap() {
        let mut events = chain_of(4);
        events.remove(1);
        let broken = verify_chain(&AuditHead::genesis(), &events).unwrap_err();
        assert_eq!(broken.seq, 3);
        assert!(broken.reason.contains("gap"));
    }

    #[test]
    fn the_hash_does_not_depend_on_the_order_of_keys_in_the_summary() {
        let mut event = chain_of(1).remove(0);
        event.summary = serde_json::from_str(r#"{"b": {"y": 1, "x": [{"q": 1, "p": 2}]}, "a": 2}"#).unwrap();
        let hash = event.compute_hash();
        event.summary = serde_json::from_str(r#"{"a": 2, "b": {"x": [{"p": 2, "q": 1}], "y": 1}}"#).unwrap();
        assert_eq!(event.compute_hash(), hash);
    }

    #[test]
    fn the_client_request_id_is_covered_by_the_hash() {
        let mut event = AuditEvent::chain(AuditDraft { client_request_id: Some("client-1".into()), ..draft("a") }, &AuditHead::genesis(), Utc::now());
        assert_eq!(event.compute_hash(), event.hash);
        event.client_request_id = Some("client-2".into());
        assert_ne!(event.compute_hash(), event.hash, "editing the client's request id breaks the link");
    }

    #[test]
    fn a_rehashed_forgery_still_breaks_the_next_link() {
        let mut events = chain_of(3);
        events[0].action = "forged".into();
        events[0].hash = events[0].compute_hash();
        let broken = verify_chain(&AuditHead::genesis(), &events).unwrap_err();
        assert_eq!(broken.seq, 2);
    }

    #[test]
    fn verify_links_reports_how_far_the_chain_held_before_the_break() {
        let mut events = chain_of(5);
        events[3].summary = json!({"name": "Tampered"});
        let (held, broken) = verify_links(&AuditHead::genesis(), &events);
        assert_eq!(held, events[2].head());
        assert_eq!(broken.map(|b| b.seq), Some(4));
        assert_eq!(verify_links(&events[1].head(), &events[2..3]), (events[2].head(), None), "a chain checked from a verified event");
    }
}
