//! Webhooks: a tenant's signed endpoint through which CI packages and
//! deploys without a person's login. A webhook names one component and one
//! environment and does one thing (`WebhookAction`); a delivery asks it to,
//! and goes through the environment's policy exactly as a person's request
//! would: a webhook can request, never bypass.
//!
//! The signing secret is shown once. HMAC needs the key itself to verify, so
//! it cannot be stored as a hash: it is stored sealed (encrypted by the
//! `SecretSealer` port, KMS in AWS) and opened only to verify a delivery.

pub mod signature;

use crate::context::Actor;
use crate::ids::{ComponentId, DeploymentId, EnvironmentId, PackageId, WebhookId};
use crate::values::{Name, Role, Version};
use crate::{DomainError, Result};
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The largest delivery body accepted (413 above).
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// How far a `Berth-Signature` timestamp may be from the server's clock, either way.
pub const SIGNATURE_TOLERANCE_SECS: i64 = 300;
/// Deliveries (and attempts) accepted per webhook per minute (429 above).
pub const DELIVERIES_PER_MINUTE: u32 = 60;
/// How long the previous secret keeps verifying after a rotation, unless the rotation says otherwise.
pub const DEFAULT_OVERLAP_SECS: i64 = 24 * 3600;
/// The longest overlap a rotation may ask for.
pub const MAX_OVERLAP_SECS: i64 = 7 * 24 * 3600;
/// How long a delivery id is remembered: a replay within this is refused
/// (`duplicate_delivery`). GitHub's signature has no timestamp, so the id is
/// its only replay protection: a week covers GitHub's manual redeliveries.
pub const DELIVERY_DEDUPE_SECS: i64 = 7 * 24 * 3600;
/// How long the delivery history keeps an entry.
pub const DELIVERY_HISTORY_SECS: i64 = 30 * 24 * 3600;
/// The longest `Berth-Delivery` / `X-GitHub-Delivery` id accepted.
pub const MAX_DELIVERY_ID_CHARS: usize = 128;
/// The longest `commit` recorded.
pub const MAX_COMMIT_CHARS: usize = 200;

/// What a delivery asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookAction {
    /// Package the component's latest revision (reusing the newest package
    /// when that revision is packaged already) and deploy it.
    PackageAndDeploy,
    /// Deploy the package whose version label the delivery names.
    DeployVersion,
}

impl WebhookAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PackageAndDeploy => "package_and_deploy",
            Self::DeployVersion => "deploy_version",
        }
    }
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "package_and_deploy" => Some(Self::PackageAndDeploy),
            "deploy_version" => Some(Self::DeployVersion),
            _ => None,
        }
    }
}

/// A signing secret as stored: sealed by the `SecretSealer`, never in clear.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SealedSecret(pub String);

impl fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealedSecret(..)")
    }
}

/// One of a webhook's signing secrets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSecret {
    pub sealed: SealedSecret,
    pub created_at: DateTime<Utc>,
    /// Set when a rotation replaced it: it verifies until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

impl StoredSecret {
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|end| now < end)
    }
}

/// A tenant's webhook.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    pub id: WebhookId,
    pub name: Name,
    pub action: WebhookAction,
    pub environment_id: EnvironmentId,
    pub component_id: ComponentId,
    /// Inside a freeze window: hold the deployment until the window ends, instead of refusing it.
    pub hold_if_frozen: bool,
    /// A disabled webhook refuses deliveries (`webhook_disabled`).
    pub active: bool,
    /// The roles its creator held when creating it: it never acts with more.
    pub roles: Vec<Role>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: Version,
    /// The current secret first; a rotated-out one follows until it expires.
    pub secrets: Vec<StoredSecret>,
}

/// What a webhook is created with.
#[derive(Clone, Debug)]
pub struct NewWebhook {
    pub name: Name,
    pub action: WebhookAction,
    pub environment_id: EnvironmentId,
    pub component_id: ComponentId,
    pub hold_if_frozen: bool,
}

/// A change to a webhook; absent fields stay.
#[derive(Clone, Debug, Default)]
pub struct WebhookPatch {
    pub name: Option<Name>,
    pub action: Option<WebhookAction>,
    pub environment_id: Option<EnvironmentId>,
    pub component_id: Option<ComponentId>,
    pub hold_if_frozen: Option<bool>,
    pub active: Option<bool>,
}

impl Webhook {
    /// A new, active webhook acting with at most `roles` (its creator's), signed with `secret`.
    pub fn new(input: NewWebhook, roles: Vec<Role>, created_by: &str, secret: SealedSecret, now: DateTime<Utc>) -> Self {
        Self {
            id: WebhookId::new(),
            name: input.name,
            action: input.action,
            environment_id: input.environment_id,
            component_id: input.component_id,
            hold_if_frozen: input.hold_if_frozen,
            active: true,
            roles,
            created_by: created_by.to_string(),
            created_at: now,
            updated_at: now,
            version: Version::FIRST,
            secrets: vec![StoredSecret { sealed: secret, created_at: now, expires_at: None }],
        }
    }

    pub fn patched(&self, patch: WebhookPatch, now: DateTime<Utc>) -> Self {
        Self {
            name: patch.name.unwrap_or_else(|| self.name.clone()),
            action: patch.action.unwrap_or(self.action),
            environment_id: patch.environment_id.unwrap_or(self.environment_id),
            component_id: patch.component_id.unwrap_or(self.component_id),
            hold_if_frozen: patch.hold_if_frozen.unwrap_or(self.hold_if_frozen),
            active: patch.active.unwrap_or(self.active),
            updated_at: now,
            version: self.version.next(),
            ..self.clone()
        }
    }

    /// The actor a delivery acts as: `webhook:<id>`.
    pub fn actor(&self) -> Actor {
        Actor::webhook(self.id)
    }

    /// Where CI sends deliveries, relative to the API's base URL.
    pub fn delivery_path(&self) -> String {
        format!("/hooks/v1/{}", self.id)
    }

    /// The secrets that verify a signature now.
    pub fn live_secrets(&self, now: DateTime<Utc>) -> impl Iterator<Item = &StoredSecret> {
        self.secrets.iter().filter(move |s| s.is_live(now))
    }

    /// When the rotated-out secret stops verifying, if one still does.
    pub fn previous_secret_expires_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.live_secrets(now).filter_map(|s| s.expires_at).max()
    }

    /// The webhook after a rotation to `new`: the current secret keeps
    /// verifying for `overlap` (none: it stops now), anything older is dropped.
    pub fn rotated(&self, new: SealedSecret, overlap: Duration, now: DateTime<Utc>) -> Webhook {
        let mut secrets = vec![StoredSecret { sealed: new, created_at: now, expires_at: None }];
        if let Some(current) = self.secrets.iter().find(|s| s.expires_at.is_none())
            && overlap > Duration::zero()
        {
            secrets.push(StoredSecret { expires_at: Some(now + overlap), ..current.clone() });
        }
        Webhook { secrets, updated_at: now, version: self.version.next(), ..self.clone() }
    }
}

/// Reads a rotation's `overlap_seconds` (absent: a day).
pub fn overlap(seconds: Option<i64>) -> Result<Duration> {
    let secs = seconds.unwrap_or(DEFAULT_OVERLAP_SECS);
    if !(0..=MAX_OVERLAP_SECS).contains(&secs) {
        return Err(DomainError::invalid("overlap_seconds", format!("must be between 0 and {MAX_OVERLAP_SECS} seconds")));
    }
    Ok(Duration::seconds(secs))
}

/// A signing secret in clear: `whsec_` and 256 random bits, base64url. The
/// whole string, prefix included, is the HMAC key. Its `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    pub const PREFIX: &'static str = "whsec_";

    pub fn generate() -> Result<Self> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| DomainError::unexpected(e.to_string()))?;
        Ok(Self(format!("{}{}", Self::PREFIX, base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))))
    }

    /// A secret opened from its sealed form.
    pub fn from_opened(bytes: Vec<u8>) -> Result<Self> {
        String::from_utf8(bytes).map(Self).map_err(|_| DomainError::unexpected("an opened webhook secret is not UTF-8"))
    }

    /// The clear form, to show the caller exactly once (and to seal).
    pub fn reveal(&self) -> &str {
        &self.0
    }

    /// The HMAC key.
    pub fn key(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

/// The sender's id of a delivery (`Berth-Delivery`, `X-GitHub-Delivery`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeliveryId(String);

impl DeliveryId {
    /// 1 to 128 characters of letters, digits, `-`, `_`, `.` and `:`.
    pub fn parse(raw: &str) -> Option<Self> {
        let ok =
            !raw.is_empty() && raw.len() <= MAX_DELIVERY_ID_CHARS && raw.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
        ok.then(|| Self(raw.to_string()))
    }
    /// Ours, for recording a refused delivery that came without a usable id.
    pub fn unidentified() -> Self {
        Self(format!("unidentified-{}", uuid::Uuid::new_v4()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a delivery ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryOutcome {
    /// It packaged and/or requested a deployment.
    Accepted,
    /// Nothing to do (GitHub's `ping`).
    Ignored,
    /// Refused; `code` says why.
    Refused,
}

/// One delivery, as the webhook's history shows it: never its body or headers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub webhook_id: WebhookId,
    pub id: DeliveryId,
    pub received_at: DateTime<Utc>,
    pub outcome: DeliveryOutcome,
    /// The refusal's stable code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_id: Option<PackageId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<DeploymentId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Whether the sender proved it holds the secret. Only an authenticated
    /// delivery claims its id (and can be looked up by it); a refused
    /// unauthenticated one is history only, so nobody without the secret can
    /// take a delivery id from its owner.
    pub authenticated: bool,
}

/// The fields a delivery body may carry; anything else is ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeliveryRequest {
    pub notes: Option<String>,
    pub version: Option<String>,
    pub commit: Option<String>,
}

impl DeliveryRequest {
    /// A Berth delivery: a JSON object with optional `notes`, `version`,
    /// `commit` strings (an empty body asks with none of them).
    pub fn from_berth_body(body: &[u8]) -> Result<Self> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        let value: serde_json::Value = serde_json::from_slice(body).map_err(|_| invalid_body("the body is not JSON"))?;
        let object = value.as_object().ok_or_else(|| invalid_body("the body must be a JSON object"))?;
        let field = |name: &str| -> Result<Option<String>> {
            match object.get(name) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(DomainError::invalid(name, "must be a string")),
            }
        };
        Ok(Self { notes: field("notes")?, version: field("version")?, commit: field("commit")? })
    }

    /// A GitHub delivery of `event`: `None` when there is nothing to deploy.
    /// Only a `push` to the repository's default branch deploys (`after`
    /// becomes the commit; the head commit's first line, the notes): a `ping`,
    /// any other event, a push to another branch or a tag, and a branch
    /// deletion are answered without deploying. Unknown fields are ignored.
    pub fn from_github_body(event: Option<&str>, body: &[u8]) -> Result<Option<Self>> {
        if event != Some("push") {
            return Ok(None);
        }
        let value: serde_json::Value = serde_json::from_slice(body).map_err(|_| invalid_body("the body is not JSON"))?;
        let text = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(str::to_string);
        let default_branch = text(value.get("repository").and_then(|r| r.get("default_branch"))).map(|b| format!("refs/heads/{b}"));
        let pushed_to_default = default_branch.is_some() && text(value.get("ref")) == default_branch;
        if !pushed_to_default || value.get("deleted").and_then(|d| d.as_bool()) == Some(true) {
            return Ok(None);
        }
        let commit = text(value.get("after"));
        let message = text(value.get("head_commit").and_then(|c| c.get("message")));
        let notes = message.map(|m| m.lines().next().unwrap_or_default().to_string());
        Ok(Some(Self { notes, version: None, commit }))
    }
}

fn invalid_body(message: &str) -> DomainError {
    DomainError::Validation { code: "invalid_body", errors: vec![crate::FieldError::new("body", message)] }
}

/// Checks a `commit` before it is recorded.
pub fn check_commit(commit: &str) -> Result<()> {
    if commit.is_empty() || commit.chars().count() > MAX_COMMIT_CHARS || commit.chars().any(char::is_control) {
        return Err(DomainError::invalid("commit", format!("must be 1 to {MAX_COMMIT_CHARS} printable characters")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn webhook(now: DateTime<Utc>) -> Webhook {
        Webhook {
            id: WebhookId::new(),
            name: Name::parse("ci").unwrap(),
            action: WebhookAction::PackageAndDeploy,
            environment_id: EnvironmentId::new(),
            component_id: ComponentId::new(),
            hold_if_frozen: false,
            active: true,
            roles: vec![Role::Admin],
            created_by: "alice".into(),
            created_at: now,
            updated_at: now,
            version: Version::FIRST,
            secrets: vec![StoredSecret { sealed: SealedSecret("one".into()), created_at: now, expires_at: None }],
        }
    }

    #[test]
    fn after_a_rotation_both_secrets_verify_until_the_overlap_ends() {
        let now = Utc::now();
        let rotated = webhook(now).rotated(SealedSecret("two".into()), Duration::seconds(60), now);
        let live = |at| rotated.live_secrets(at).map(|s| s.sealed.0.clone()).collect::<Vec<_>>();
        assert_eq!(live(now + Duration::seconds(59)), ["two", "one"]);
        assert_eq!(live(now + Duration::seconds(60)), ["two"]);
        assert_eq!(rotated.previous_secret_expires_at(now), Some(now + Duration::seconds(60)));
    }

    #[test]
    fn a_rotation_without_overlap_stops_the_old_secret_at_once_and_drops_older_ones() {
        let now = Utc::now();
        let twice = webhook(now).rotated(SealedSecret("two".into()), Duration::seconds(60), now).rotated(SealedSecret("three".into()), Duration::zero(), now);
        assert_eq!(twice.secrets.iter().map(|s| s.sealed.0.as_str()).collect::<Vec<_>>(), ["three"]);
    }

    #[test]
    fn an_overlap_longer_than_a_week_or_negative_is_refused_and_none_means_a_day() {
        assert_eq!(overlap(None).unwrap(), Duration::hours(24));
        assert!(overlap(Some(-1)).is_err());
        assert!(overlap(Some(MAX_OVERLAP_SECS + 1)).is_err());
        assert_eq!(overlap(Some(0)).unwrap(), Duration::zero());
    }

    #[test]
    fn a_generated_secret_is_whsec_and_43_characters_and_debug_hides_it() {
        let s = WebhookSecret::generate().unwrap();
        assert!(s.reveal().starts_with("whsec_"));
        assert_eq!(s.reveal().len(), 6 + 43);
        assert!(!format!("{s:?}").contains(&s.reveal()[6..]));
    }

    #[test]
    fn delivery_ids_are_short_plain_tokens() {
        assert!(DeliveryId::parse("72d3162e-cc78-11e3-81ab-4c9367dc0958").is_some());
        for bad in ["", "a b", "x\n", &"a".repeat(129), "é"] {
            assert!(DeliveryId::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn a_berth_body_carries_notes_version_and_commit_and_may_be_empty() {
        let r = DeliveryRequest::from_berth_body(br#"{"notes":"n","version":"1.2","commit":"abc","other":1}"#).unwrap();
        assert_eq!(r, DeliveryRequest { notes: Some("n".into()), version: Some("1.2".into()), commit: Some("abc".into()) });
        assert_eq!(DeliveryRequest::from_berth_body(b"").unwrap(), DeliveryRequest::default());
        assert_eq!(DeliveryRequest::from_berth_body(b"[1]").unwrap_err().code(), "invalid_body");
        assert_eq!(DeliveryRequest::from_berth_body(br#"{"version":3}"#).unwrap_err().code(), "validation_failed");
    }

    #[test]
    fn a_github_push_to_the_default_branch_gives_its_after_as_the_commit() {
        let push = br#"{"ref":"refs/heads/main","after":"0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c","head_commit":{"message":"Fix the map\n\nbody"},"repository":{"default_branch":"main"},"x":{}}"#;
        let r = DeliveryRequest::from_github_body(Some("push"), push).unwrap().unwrap();
        assert_eq!(r.commit.as_deref(), Some("0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"));
        assert_eq!(r.notes.as_deref(), Some("Fix the map"));
    }

    #[test]
    fn a_ping_other_events_other_branches_and_deletions_deploy_nothing() {
        let push = |r#ref: &str, deleted: bool| {
            format!(r#"{{"ref":"{ref}","after":"abc","deleted":{deleted},"repository":{{"default_branch":"main"}}}}"#).into_bytes()
        };
        for (event, body) in [
            (Some("ping"), b"{}".to_vec()),
            (Some("pull_request"), push("refs/heads/main", false)),
            (None, push("refs/heads/main", false)),
            (Some("push"), push("refs/heads/feature", false)),
            (Some("push"), push("refs/tags/v1", false)),
            (Some("push"), push("refs/heads/main", true)),
            (Some("push"), br#"{"ref":"refs/heads/main","after":"abc"}"#.to_vec()),
        ] {
            assert_eq!(DeliveryRequest::from_github_body(event, &body).unwrap(), None, "{event:?} {}", String::from_utf8_lossy(&body));
        }
    }
}
