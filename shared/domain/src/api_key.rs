//! API keys: a pipeline's credential on the portal API, made by an admin,
//! holding at most the roles its creator held, for a bounded time.

use crate::context::TenantCtx;
use crate::ids::ApiKeyId;
use crate::secret::SecretHash;
use crate::values::{Name, Role};
use crate::{DomainError, Result};
use chrono::{DateTime, Duration, Utc};

/// How long a key lives when its creator names no expiry.
pub const DEFAULT_LIFETIME_DAYS: i64 = 90;
/// The longest a key may live.
pub const MAX_LIFETIME_DAYS: i64 = 365;
/// `last_used_at` is written at most this often per key, so a busy pipeline
/// does not turn every request into a write.
pub const LAST_USE_PRECISION_SECS: i64 = 60;

/// A stored API key. Only the SHA-256 of its clear form is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub name: Name,
    pub roles: Vec<Role>,
    pub hash: SecretHash,
    /// The actor id of the admin who made it.
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// What an admin asks for.
#[derive(Clone, Debug)]
pub struct NewApiKey {
    pub name: Name,
    pub roles: Vec<Role>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Why a presented key is not accepted. The caller is told none of this:
/// every case answers the same 401.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyRefusal {
    WrongSecret,
    Revoked,
    Expired,
}

impl ApiKey {
    /// A new key for `ctx`'s tenant: 422 for no roles, a role that is not a
    /// tenant role, or an expiry in the past or more than a year ahead; 403
    /// `roles_exceed_creator` for a role the creator does not hold.
    pub fn new(ctx: &TenantCtx, input: NewApiKey, id: ApiKeyId, hash: SecretHash, now: DateTime<Utc>) -> Result<Self> {
        let roles = Self::roles_within(&ctx.roles, input.roles)?;
        let expires_at = Self::expiry(input.expires_at, now)?;
        Ok(Self { id, name: input.name, roles, hash, created_by: ctx.actor.id.clone(), created_at: now, expires_at, last_used_at: None, revoked_at: None })
    }

    /// The requested roles, each once, in the order given; each must be one
    /// the creator holds itself. An admin does not stand in for the other
    /// roles: an environment's policy may name deployers or approvers
    /// without admins, so a role the creator lacks could grant more.
    fn roles_within(creator: &[Role], requested: Vec<Role>) -> Result<Vec<Role>> {
        if requested.is_empty() {
            return Err(DomainError::invalid("roles", "must name at least one role"));
        }
        if requested.contains(&Role::PlatformAdmin) {
            return Err(DomainError::invalid("roles", "platform_admin is not a tenant role"));
        }
        let mut roles: Vec<Role> = Vec::with_capacity(requested.len());
        for role in requested {
            if !roles.contains(&role) {
                roles.push(role);
            }
        }
        let lacking: Vec<&str> = roles.iter().filter(|r| !creator.contains(r)).map(|r| r.as_str()).collect();
        if !lacking.is_empty() {
            return Err(DomainError::forbidden(
                "roles_exceed_creator",
                format!("a key gets only roles its creator holds; you do not hold {}", lacking.join(", ")),
            ));
        }
        Ok(roles)
    }

    /// `requested`, or 90 days from `now`; refused unless in the future and at most 365 days ahead.
    fn expiry(requested: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
        let Some(at) = requested else { return Ok(now + Duration::days(DEFAULT_LIFETIME_DAYS)) };
        if at <= now {
            return Err(DomainError::invalid("expires_at", "must be in the future"));
        }
        if at > now + Duration::days(MAX_LIFETIME_DAYS) {
            return Err(DomainError::invalid("expires_at", format!("must be at most {MAX_LIFETIME_DAYS} days ahead")));
        }
        Ok(at)
    }

    /// Whether `presented` (the hash of what the caller sent) opens this key at `now`.
    /// The hash is compared in constant time, and first, whatever the key's state.
    pub fn check(&self, presented: &SecretHash, now: DateTime<Utc>) -> std::result::Result<(), KeyRefusal> {
        let matches = self.hash.matches(presented);
        if !matches {
            return Err(KeyRefusal::WrongSecret);
        }
        if self.revoked_at.is_some() {
            return Err(KeyRefusal::Revoked);
        }
        if now >= self.expires_at {
            return Err(KeyRefusal::Expired);
        }
        Ok(())
    }

    /// Whether a use at `now` is worth recording: never recorded, or the last
    /// record is at least `LAST_USE_PRECISION_SECS` old.
    pub fn use_worth_recording(&self, now: DateTime<Utc>) -> bool {
        self.last_used_at.is_none_or(|last| now - last >= Duration::seconds(LAST_USE_PRECISION_SECS))
    }

    /// The latest recorded use a new record may replace (see `ApiKeyStore::record_api_key_use`).
    pub fn last_use_replaceable_before(now: DateTime<Utc>) -> DateTime<Utc> {
        now - Duration::seconds(LAST_USE_PRECISION_SECS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::Actor;
    use crate::ids::{ApiKeyId, TenantId};
    use crate::secret::ApiKeyToken;

    fn ctx(roles: &[Role]) -> TenantCtx {
        TenantCtx {
            tenant: TenantId::new(),
            actor: Actor::user("alice"),
            roles: roles.to_vec(),
            request_id: "r".into(),
            client_request_id: None,
            tenant_suspended: false,
        }
    }

    fn input(roles: &[Role], expires_at: Option<DateTime<Utc>>) -> NewApiKey {
        NewApiKey { name: Name::parse("ci").unwrap(), roles: roles.to_vec(), expires_at }
    }

    fn made(creator: &[Role], roles: &[Role], expires_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Result<ApiKey> {
        let ctx = ctx(creator);
        let token = ApiKeyToken::generate(ctx.tenant, ApiKeyId::new()).unwrap();
        ApiKey::new(&ctx, input(roles, expires_at), token.key, token.hash(), now)
    }

    #[test]
    fn a_key_without_an_expiry_lives_ninety_days_and_keeps_each_role_once() {
        let now = Utc::now();
        let key = made(&[Role::Admin, Role::Deployer], &[Role::Deployer, Role::Admin, Role::Deployer], None, now).unwrap();
        assert_eq!(key.expires_at, now + Duration::days(90));
        assert_eq!(key.roles, [Role::Deployer, Role::Admin]);
        assert_eq!((key.created_by.as_str(), key.last_used_at, key.revoked_at), ("alice", None, None));
    }

    #[test]
    fn a_role_the_creator_does_not_hold_is_refused_even_to_an_admin() {
        let now = Utc::now();
        let refused = made(&[Role::Admin], &[Role::Admin, Role::Deployer], None, now).unwrap_err();
        assert_eq!(refused.code(), "roles_exceed_creator");
        assert!(refused.to_string().contains("deployer") && !refused.to_string().contains("admin"), "names only what is lacking: {refused}");
        assert!(matches!(refused, DomainError::Forbidden { .. }));
    }

    #[test]
    fn no_roles_or_platform_admin_is_invalid() {
        let now = Utc::now();
        for roles in [&[][..], &[Role::PlatformAdmin]] {
            let DomainError::Validation { errors, .. } = made(&[Role::Admin, Role::PlatformAdmin], roles, None, now).unwrap_err() else { panic!("422") };
            assert_eq!(errors[0].field, "roles");
        }
    }

    #[test]
    fn an_expiry_must_be_ahead_and_within_a_year() {
        let now = Utc::now();
        for bad in [now, now - Duration::seconds(1), now + Duration::days(365) + Duration::seconds(1)] {
            let DomainError::Validation { errors, .. } = made(&[Role::Admin], &[Role::Admin], Some(bad), now).unwrap_err() else { panic!("422") };
            assert_eq!(errors[0].field, "expires_at", "{bad}");
        }
        for good in [now + Duration::seconds(1), now + Duration::days(365)] {
            assert_eq!(made(&[Role::Admin], &[Role::Admin], Some(good), now).unwrap().expires_at, good);
        }
    }

    #[test]
    fn a_key_opens_only_with_its_secret_before_it_expires_and_until_revoked() {
        let now = Utc::now();
        let ctx = ctx(&[Role::Admin]);
        let token = ApiKeyToken::generate(ctx.tenant, ApiKeyId::new()).unwrap();
        let other = ApiKeyToken::generate(ctx.tenant, token.key).unwrap();
        let mut key = ApiKey::new(&ctx, input(&[Role::Admin], Some(now + Duration::hours(1))), token.key, token.hash(), now).unwrap();
        assert_eq!(key.check(&token.hash(), now), Ok(()));
        assert_eq!(key.check(&other.hash(), now), Err(KeyRefusal::WrongSecret));
        assert_eq!(key.check(&token.hash(), now + Duration::hours(1)), Err(KeyRefusal::Expired));
        key.revoked_at = Some(now);
        assert_eq!(key.check(&token.hash(), now), Err(KeyRefusal::Revoked));
    }

    #[test]
    fn a_use_is_recorded_at_most_once_a_minute() {
        let now = Utc::now();
        let mut key = made(&[Role::Admin], &[Role::Admin], None, now).unwrap();
        assert!(key.use_worth_recording(now));
        key.last_used_at = Some(now);
        assert!(!key.use_worth_recording(now + Duration::seconds(59)));
        assert!(key.use_worth_recording(now + Duration::seconds(60)));
        assert_eq!(ApiKey::last_use_replaceable_before(now), now - Duration::seconds(60));
    }
}
