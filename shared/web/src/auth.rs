//! JWT verification. The algorithm is pinned by configuration (never taken
//! from the token), and `iss`, `exp` and `nbf` are always checked, with `aud`
//! (or, when `BERTH_JWT_CLIENT_ID` is set, `client_id`: Cognito access tokens
//! carry no `aud`). Production uses RS256/ES256 public keys (a PEM, or a JWKS
//! URL); a shared HS256 secret is accepted only by the local runner (`berth-local`).
//!
//! Which claims carry the tenant and the roles is configuration
//! ([`ClaimSettings`]), so tokens from Cognito, Auth0 or Keycloak are read
//! as they are issued: a top-level claim by name (Auth0's namespaced claims
//! are URLs, dots and all), or a JSON pointer (`/realm_access/roles`); and the
//! provider's group names may be mapped to Berth roles.
//!
//! A JWKS is cached for a TTL (`BERTH_JWKS_TTL_SECS`, 10 minutes by default).
//! Once the keys are half a TTL old, a request starts a refresh in the
//! background; a token with an unknown `kid` asks for one at once. Fetches are
//! single-flight and at most one per minute (or per half TTL, when shorter),
//! whatever triggers them. The key set is an `Arc` swapped under a std lock
//! held only for the swap, never across a fetch, so a slow JWKS holds up only
//! the tokens that need its answer.
//!
//! Failure behaviour, fail closed: when a refresh fails, the keys already
//! fetched stay trusted until their TTL; past it every JWKS token is refused
//! until a fetch succeeds. A key the provider removed stops verifying at the
//! first successful refresh, so at most one TTL after its removal.

use anyhow::{Context, bail};
use berth_domain::values::Role;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

/// The claims Berth reads, in Berth's own shape: what `claims_for` issues,
/// and what `verify` returns whatever the provider's shape (the tenant and
/// roles read from the configured claims, the roles already mapped).
/// `tenant_id` is absent on platform-admin tokens.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    pub iss: String,
    /// One audience or several (RFC 7519 §4.1.3); the verifier requires ours
    /// among them, unless it checks `client_id` instead (then it may be empty).
    #[serde(default, skip_serializing_if = "Audience::is_empty")]
    pub aud: Audience,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Default for Audience {
    fn default() -> Self {
        Audience::Many(Vec::new())
    }
}

impl Audience {
    fn is_empty(&self) -> bool {
        matches!(self, Audience::Many(v) if v.is_empty())
    }

    fn contains(&self, audience: &str) -> bool {
        match self {
            Audience::One(a) => a == audience,
            Audience::Many(all) => all.iter().any(|a| a == audience),
        }
    }
}

impl From<&str> for Audience {
    fn from(a: &str) -> Self {
        Audience::One(a.to_string())
    }
}

/// Where verification keys come from.
#[derive(Clone)]
pub enum KeySource {
    /// The local runner and tests only (`BERTH_JWT_HS256_SECRET`).
    Hs256Secret(String),
    /// `BERTH_JWT_PUBLIC_KEY` (PEM) with `BERTH_JWT_ALGORITHM` (RS256, the default, or ES256).
    PublicKeyPem { algorithm: Algorithm, pem: String },
    /// `BERTH_JWKS_URL`: keys chosen by `kid`, each pinned to its own algorithm.
    Jwks { url: String, cache: JwksCachePolicy },
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Hs256Secret(_) => f.write_str("Hs256Secret(<redacted>)"),
            KeySource::PublicKeyPem { algorithm, .. } => write!(f, "PublicKeyPem({algorithm:?})"),
            KeySource::Jwks { url, cache } => write!(f, "Jwks({url}, {cache:?})"),
        }
    }
}

/// How long fetched JWKS keys are trusted, and how often they may be fetched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JwksCachePolicy {
    /// Keys fetched longer ago than this are not trusted: they are fetched
    /// again, and every token is refused while that fails.
    pub ttl: Duration,
    /// At most one fetch per this interval (capped at half the TTL), on a
    /// schedule or on an unknown `kid` alike.
    pub min_refetch_interval: Duration,
}

impl Default for JwksCachePolicy {
    fn default() -> Self {
        Self { ttl: Duration::from_secs(600), min_refetch_interval: Duration::from_secs(60) }
    }
}

/// Where one claim is read from in a verified token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClaimPath {
    /// A top-level claim by its literal name (`tenant_id`, `cognito:groups`,
    /// `https://berth.example/roles`: dots and slashes are part of the name).
    Name(String),
    /// A JSON pointer (RFC 6901) into the claims, e.g. `/realm_access/roles`.
    Pointer(String),
}

impl ClaimPath {
    /// A value starting with `/` is a JSON pointer, anything else a claim name.
    pub fn parse(raw: &str) -> Self {
        if raw.starts_with('/') { ClaimPath::Pointer(raw.to_string()) } else { ClaimPath::Name(raw.to_string()) }
    }

    fn find<'a>(&self, claims: &'a Value) -> Option<&'a Value> {
        match self {
            ClaimPath::Name(name) => claims.get(name),
            ClaimPath::Pointer(pointer) => claims.pointer(pointer),
        }
        // A JSON null is no value at all (some providers emit absent claims as null).
        .filter(|v| !v.is_null())
    }
}

impl std::fmt::Display for ClaimPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClaimPath::Name(s) | ClaimPath::Pointer(s) => f.write_str(s),
        }
    }
}

/// The provider's group names mapped to Berth roles (`BERTH_JWT_ROLE_MAP`,
/// e.g. `berth-admins=admin,berth-deployers=deployer`). A name the map does
/// not mention counts only when it is itself a Berth role name; a name may be
/// mapped to several roles by repeating it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoleMap(BTreeMap<String, Vec<Role>>);

impl RoleMap {
    pub fn parse(raw: &str) -> anyhow::Result<Self> {
        let mut map: BTreeMap<String, Vec<Role>> = BTreeMap::new();
        for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (group, role) = entry
                .split_once('=')
                .map(|(g, r)| (g.trim(), r.trim()))
                .filter(|(g, r)| !g.is_empty() && !r.is_empty())
                .with_context(|| format!("BERTH_JWT_ROLE_MAP entries are group=role, not {entry:?}"))?;
            let role = Role::parse(role).with_context(|| format!("BERTH_JWT_ROLE_MAP maps {group:?} to {role:?}, which is not a Berth role"))?;
            let roles = map.entry(group.to_string()).or_default();
            if !roles.contains(&role) {
                roles.push(role);
            }
        }
        Ok(Self(map))
    }

    /// The Berth role names the provider's `names` grant, each once, in order.
    pub fn apply<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        let mut roles: Vec<String> = Vec::new();
        for name in names {
            let granted = match self.0.get(name) {
                Some(mapped) => mapped.iter().map(|r| r.as_str().to_string()).collect(),
                // Unknown names are kept as they are; they grant nothing when the caller is built.
                None => vec![name.to_string()],
            };
            for role in granted {
                if !roles.contains(&role) {
                    roles.push(role);
                }
            }
        }
        roles
    }
}

/// Which claims carry the tenant and the roles, how provider groups map to
/// roles, and whether `client_id` is checked in place of `aud`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimSettings {
    /// `BERTH_JWT_TENANT_CLAIM`, `tenant_id` by default.
    pub tenant: ClaimPath,
    /// `BERTH_JWT_ROLES_CLAIM`, `roles` by default: a JSON array of strings,
    /// or one string of names separated by spaces or commas.
    pub roles: ClaimPath,
    /// `BERTH_JWT_ROLE_MAP`, empty by default.
    pub role_map: RoleMap,
    /// `BERTH_JWT_CLIENT_ID`: when set, a token's `client_id` must equal it
    /// and `aud` is not required; a token with no `client_id` (a Cognito ID
    /// token) must name it (or `BERTH_JWT_AUDIENCE`, when set) in `aud`.
    pub client_id: Option<String>,
}

impl Default for ClaimSettings {
    fn default() -> Self {
        Self { tenant: ClaimPath::parse("tenant_id"), roles: ClaimPath::parse("roles"), role_map: RoleMap::default(), client_id: None }
    }
}

impl ClaimSettings {
    /// `BERTH_JWT_TENANT_CLAIM`, `BERTH_JWT_ROLES_CLAIM`, `BERTH_JWT_ROLE_MAP`
    /// and `BERTH_JWT_CLIENT_ID` from `var` (blank counts as unset).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let get = |k: &str| var(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let defaults = Self::default();
        Ok(Self {
            tenant: get("BERTH_JWT_TENANT_CLAIM").map(|c| ClaimPath::parse(&c)).unwrap_or(defaults.tenant),
            roles: get("BERTH_JWT_ROLES_CLAIM").map(|c| ClaimPath::parse(&c)).unwrap_or(defaults.roles),
            role_map: get("BERTH_JWT_ROLE_MAP").map(|m| RoleMap::parse(&m)).transpose()?.unwrap_or_default(),
            client_id: get("BERTH_JWT_CLIENT_ID"),
        })
    }
}

/// Why a Lambda refuses to start with an HS256 secret.
pub const HS256_ONLY_LOCAL: &str = "BERTH_JWT_HS256_SECRET is only accepted by berth-local; set BERTH_JWKS_URL or BERTH_JWT_PUBLIC_KEY";

#[derive(Clone, Debug)]
pub struct AuthConfig {
    pub issuer: String,
    /// The `aud` a token must name; empty when only `claims.client_id` is checked.
    pub audience: String,
    pub keys: KeySource,
    pub claims: ClaimSettings,
}

impl AuthConfig {
    /// A Lambda's configuration, from its environment (see [`AuthConfig::for_lambda`]).
    pub fn for_lambda_from_env() -> anyhow::Result<Self> {
        Self::for_lambda(|k| std::env::var(k).ok())
    }

    /// A Lambda's configuration from the variables `var` returns:
    /// `BERTH_JWT_ISSUER`, `BERTH_JWT_AUDIENCE` (unless `BERTH_JWT_CLIENT_ID`
    /// is set), the claim settings ([`ClaimSettings::from_vars`]) and exactly
    /// one of `BERTH_JWKS_URL` (with `BERTH_JWKS_TTL_SECS`) or
    /// `BERTH_JWT_PUBLIC_KEY` (with `BERTH_JWT_ALGORITHM`). A shared HS256
    /// secret is refused outright, even beside a public key: anyone who learns
    /// it could sign any token, and the local runner's dev secret is public.
    pub fn for_lambda(var: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let get = |k: &str| var(k).filter(|v| !v.trim().is_empty());
        if get("BERTH_JWT_HS256_SECRET").is_some() {
            bail!(HS256_ONLY_LOCAL);
        }
        let issuer = get("BERTH_JWT_ISSUER").context("BERTH_JWT_ISSUER is not set")?;
        let claims = ClaimSettings::from_vars(&var)?;
        let audience = match get("BERTH_JWT_AUDIENCE") {
            Some(audience) => audience,
            None if claims.client_id.is_some() => String::new(),
            None => bail!("BERTH_JWT_AUDIENCE is not set (or set BERTH_JWT_CLIENT_ID to check client_id instead)"),
        };
        let keys = Self::public_keys(&var)?.context("set BERTH_JWKS_URL or BERTH_JWT_PUBLIC_KEY")?;
        Ok(Self { issuer, audience, keys, claims })
    }

    /// The public-key source `BERTH_JWKS_URL` or `BERTH_JWT_PUBLIC_KEY` names,
    /// if either is set (both is an error).
    pub fn public_keys(var: impl Fn(&str) -> Option<String>) -> anyhow::Result<Option<KeySource>> {
        let get = |k: &str| var(k).filter(|v| !v.trim().is_empty());
        Ok(Some(match (get("BERTH_JWKS_URL"), get("BERTH_JWT_PUBLIC_KEY")) {
            (Some(url), None) => {
                let mut cache = JwksCachePolicy::default();
                if let Some(raw) = get("BERTH_JWKS_TTL_SECS") {
                    let secs = raw.trim().parse::<u64>().ok().filter(|s| *s > 0);
                    cache.ttl = Duration::from_secs(secs.with_context(|| format!("BERTH_JWKS_TTL_SECS must be a positive number of seconds, not {raw:?}"))?);
                }
                KeySource::Jwks { url, cache }
            }
            (None, Some(pem)) => {
                let algorithm = match get("BERTH_JWT_ALGORITHM").as_deref() {
                    None | Some("RS256") => Algorithm::RS256,
                    Some("ES256") => Algorithm::ES256,
                    Some(other) => bail!("BERTH_JWT_ALGORITHM must be RS256 or ES256, not {other}"),
                };
                KeySource::PublicKeyPem { algorithm, pem: pem.replace("\\n", "\n") }
            }
            (None, None) => return Ok(None),
            (Some(_), Some(_)) => bail!("set only one of BERTH_JWKS_URL or BERTH_JWT_PUBLIC_KEY"),
        }))
    }
}

/// Why a token was refused. Only the category is ever shown to a caller.
#[derive(Debug, thiserror::Error)]
pub enum AuthFailure {
    #[error("missing bearer token")]
    Missing,
    #[error("invalid token: {0}")]
    Invalid(String),
    /// The token verified but does not carry what the configuration says it
    /// should. Safe to show the caller: only a validly signed token gets here,
    /// and the message names the claim and the setting to look at.
    #[error("{0}")]
    Claims(String),
}

enum Keys {
    Static { algorithm: Algorithm, key: DecodingKey },
    Jwks(Arc<JwksKeys>),
}

/// How long one JWKS fetch may take.
const JWKS_FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Verifies tokens; built once per cold start.
pub struct JwtVerifier {
    issuer: String,
    audience: String,
    claims: ClaimSettings,
    keys: Keys,
}

impl JwtVerifier {
    pub fn new(config: &AuthConfig) -> anyhow::Result<Self> {
        let keys = match &config.keys {
            KeySource::Hs256Secret(secret) => Keys::Static { algorithm: Algorithm::HS256, key: DecodingKey::from_secret(secret.as_bytes()) },
            KeySource::PublicKeyPem { algorithm, pem } => {
                let key = match algorithm {
                    Algorithm::ES256 => DecodingKey::from_ec_pem(pem.as_bytes()),
                    _ => DecodingKey::from_rsa_pem(pem.as_bytes()),
                }
                .context("BERTH_JWT_PUBLIC_KEY is not a valid PEM public key")?;
                Keys::Static { algorithm: *algorithm, key }
            }
            KeySource::Jwks { url, cache } => Keys::Jwks(Arc::new(JwksKeys::new(url, cache)?)),
        };
        anyhow::ensure!(
            !config.audience.is_empty() || config.claims.client_id.is_some(),
            "an audience (BERTH_JWT_AUDIENCE) or a client id (BERTH_JWT_CLIENT_ID) is required"
        );
        Ok(Self { issuer: config.issuer.clone(), audience: config.audience.clone(), claims: config.claims.clone(), keys })
    }

    /// Where the tenant is read from (for messages naming it).
    pub fn tenant_claim(&self) -> &ClaimPath {
        &self.claims.tenant
    }

    fn validation(&self, algorithm: Algorithm) -> Validation {
        let mut v = Validation::new(algorithm);
        v.algorithms = vec![algorithm];
        v.set_issuer(&[&self.issuer]);
        v.validate_exp = true;
        v.validate_nbf = true;
        v.leeway = 30;
        if self.claims.client_id.is_some() {
            // `client_id`, or `aud` when there is none, is checked in `berth_claims`.
            v.validate_aud = false;
            v.set_required_spec_claims(&["exp", "iss", "sub"]);
        } else {
            v.set_audience(&[&self.audience]);
            v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        }
        v
    }

    /// Verifies signature, algorithm, `iss`, `aud` (or `client_id`), `exp`
    /// and `nbf`, then reads the tenant and roles from the configured claims.
    pub async fn verify(&self, token: &str) -> Result<Claims, AuthFailure> {
        let raw = self.verified_claims(token).await?;
        self.berth_claims(raw)
    }

    /// The verified token's claims as the provider shaped them.
    async fn verified_claims(&self, token: &str) -> Result<Value, AuthFailure> {
        let invalid = |e: jsonwebtoken::errors::Error| AuthFailure::Invalid(e.to_string());
        match &self.keys {
            Keys::Static { algorithm, key } => {
                jsonwebtoken::decode::<Value>(token.as_bytes(), key, &self.validation(*algorithm)).map(|d| d.claims).map_err(invalid)
            }
            Keys::Jwks(jwks) => {
                let header = jsonwebtoken::decode_header(token).map_err(invalid)?;
                if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
                    return Err(AuthFailure::Invalid("only RS256 and ES256 tokens are accepted".into()));
                }
                let kid = header.kid.ok_or_else(|| AuthFailure::Invalid("token has no kid".into()))?;
                let set = jwks.key_set_for(&kid).await?;
                match set.keys.get(&kid) {
                    // The key decides the algorithm, not the token.
                    Some(Some(JwksKey { algorithm, key })) => {
                        jsonwebtoken::decode::<Value>(token.as_bytes(), key, &self.validation(*algorithm)).map(|d| d.claims).map_err(invalid)
                    }
                    Some(None) => Err(AuthFailure::Invalid("unsupported key type".into())),
                    None => Err(AuthFailure::Invalid("unknown kid".into())),
                }
            }
        }
    }

    /// Berth's claims from a verified token: the client check when
    /// configured, then the tenant and roles from where the settings say.
    fn berth_claims(&self, raw: Value) -> Result<Claims, AuthFailure> {
        let standard: StandardClaims = serde_json::from_value(raw.clone()).map_err(|e| AuthFailure::Invalid(format!("registered claims: {e}")))?;
        if let Some(client_id) = &self.claims.client_id {
            let ours = match &standard.client_id {
                Some(claimed) => claimed == client_id,
                // An ID token (Cognito's has no `client_id`) names its client in `aud`.
                None => standard.aud.contains(client_id) || (!self.audience.is_empty() && standard.aud.contains(&self.audience)),
            };
            if !ours {
                return Err(AuthFailure::Invalid("client_id (or aud) is not this API's client".into()));
            }
        }
        let settings = &self.claims;
        let tenant_id = match settings.tenant.find(&raw) {
            None => None,
            Some(Value::String(tenant)) => Some(tenant.clone()),
            Some(_) => {
                return Err(AuthFailure::Claims(format!("the tenant claim `{}` (BERTH_JWT_TENANT_CLAIM) is not a string", settings.tenant)));
            }
        };
        let wrong_type =
            || AuthFailure::Claims(format!("the roles claim `{}` (BERTH_JWT_ROLES_CLAIM) is not a list of role names or a string of them", settings.roles));
        let names: Vec<&str> = match settings.roles.find(&raw) {
            None => return Err(AuthFailure::Claims(format!("the token has no roles claim `{}` (BERTH_JWT_ROLES_CLAIM)", settings.roles))),
            Some(Value::String(list)) => list.split([' ', ',']).filter(|n| !n.is_empty()).collect(),
            Some(Value::Array(items)) => items.iter().map(Value::as_str).collect::<Option<Vec<_>>>().ok_or_else(wrong_type)?,
            Some(_) => return Err(wrong_type()),
        };
        Ok(Claims {
            sub: standard.sub,
            tenant_id,
            roles: settings.role_map.apply(names),
            iss: standard.iss,
            aud: standard.aud,
            exp: standard.exp,
            nbf: standard.nbf,
            iat: standard.iat,
        })
    }
}

/// The registered claims of a verified token (and Cognito's `client_id`).
#[derive(Deserialize)]
struct StandardClaims {
    sub: String,
    iss: String,
    #[serde(default)]
    aud: Audience,
    exp: u64,
    nbf: Option<u64>,
    iat: Option<u64>,
    client_id: Option<String>,
}

/// A published key Berth can verify with, pinned to its algorithm.
struct JwksKey {
    algorithm: Algorithm,
    key: DecodingKey,
}

/// One fetched key set. A `kid` mapped to `None` is published but is not an
/// RSA or EC key: tokens naming it are refused without a refetch.
struct KeySet {
    keys: HashMap<String, Option<JwksKey>>,
    /// When the fetch that produced it started; `None` before the first.
    fetched: Option<Instant>,
}

impl KeySet {
    fn parse(set: JwkSet, fetched: Instant) -> Self {
        let mut keys = HashMap::new();
        for jwk in set.keys {
            let Some(kid) = jwk.common.key_id.clone() else { continue };
            let algorithm = match jwk.algorithm {
                AlgorithmParameters::RSA(_) => Some(Algorithm::RS256),
                AlgorithmParameters::EllipticCurve(_) => Some(Algorithm::ES256),
                _ => None,
            };
            let usable = algorithm.and_then(|algorithm| match DecodingKey::from_jwk(&jwk) {
                Ok(key) => Some(JwksKey { algorithm, key }),
                Err(e) => {
                    tracing::warn!(kid = %kid, error = %e, "a JWKS key cannot be used");
                    None
                }
            });
            keys.insert(kid, usable);
        }
        Self { keys, fetched: Some(fetched) }
    }
}

/// The JWKS cache: a key set swapped whole, a single-flight refresh and a
/// rate limit, and no lock held across a fetch.
struct JwksKeys {
    url: String,
    http: reqwest::Client,
    ttl: Duration,
    /// Past this age a request starts a refresh in the background.
    refresh_after: Duration,
    min_interval: Duration,
    /// Locked only to clone or replace the `Arc`.
    current: RwLock<Arc<KeySet>>,
    /// Set while a fetch runs (single flight).
    refreshing: AtomicBool,
    /// Milliseconds from `epoch` to the last fetch attempt, plus one (0: never).
    last_attempt: AtomicU64,
    epoch: Instant,
    /// Wakes the requests waiting for the running fetch.
    fetch_done: tokio::sync::Notify,
}

impl JwksKeys {
    fn new(url: &str, policy: &JwksCachePolicy) -> anyhow::Result<Self> {
        anyhow::ensure!(!policy.ttl.is_zero(), "the JWKS TTL must be positive");
        Ok(Self {
            url: url.to_string(),
            http: reqwest::Client::builder().timeout(JWKS_FETCH_TIMEOUT).build()?,
            ttl: policy.ttl,
            refresh_after: policy.ttl / 2,
            min_interval: policy.min_refetch_interval.min(policy.ttl / 2),
            current: RwLock::new(Arc::new(KeySet { keys: HashMap::new(), fetched: None })),
            refreshing: AtomicBool::new(false),
            last_attempt: AtomicU64::new(0),
            epoch: Instant::now(),
            fetch_done: tokio::sync::Notify::new(),
        })
    }

    fn snapshot(&self) -> Arc<KeySet> {
        self.current.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn age(set: &KeySet) -> Option<Duration> {
        set.fetched.map(|t| t.elapsed())
    }

    /// A key set that may be trusted for `kid`: the cached one while fresh
    /// and knowing `kid`, else whatever a refresh (if one may run) brings.
    /// Fails closed when the set it ends with is past its TTL.
    async fn key_set_for(self: &Arc<Self>, kid: &str) -> Result<Arc<KeySet>, AuthFailure> {
        let mut set = self.snapshot();
        match Self::age(&set) {
            Some(age) if age < self.ttl => {
                if age >= self.refresh_after {
                    self.start_refresh();
                }
                if !set.keys.contains_key(kid) {
                    set = self.refresh_and_wait().await;
                }
            }
            _ => set = self.refresh_and_wait().await,
        }
        match Self::age(&set) {
            Some(age) if age < self.ttl => Ok(set),
            _ => Err(AuthFailure::Invalid("the JWKS keys have expired and could not be fetched again".into())),
        }
    }

    /// Starts a fetch unless one is running or the last one began less than
    /// `min_interval` ago. Returns whether a fetch is running now.
    fn start_refresh(self: &Arc<Self>) -> bool {
        if self.refreshing.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_err() {
            return true;
        }
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1;
        let last = self.last_attempt.load(Ordering::Acquire);
        let interval = u64::try_from(self.min_interval.as_millis()).unwrap_or(u64::MAX);
        if last != 0 && now.saturating_sub(last) < interval {
            self.refreshing.store(false, Ordering::Release);
            return false;
        }
        self.last_attempt.store(now, Ordering::Release);
        // A task of its own: the fetch finishes (and clears the flag) even if
        // the request that started it is dropped.
        let this = self.clone();
        tokio::spawn(async move {
            let _done = RefreshDone(this.clone());
            this.fetch().await;
        });
        true
    }

    /// Starts a refresh if allowed and waits for the running one to end
    /// (a wait on a notification, bounded by the fetch timeout; not a lock).
    async fn refresh_and_wait(self: &Arc<Self>) -> Arc<KeySet> {
        // Registered before the flag is read, so the end of the fetch cannot be missed.
        let done = self.fetch_done.notified();
        if self.start_refresh() {
            let _ = tokio::time::timeout(JWKS_FETCH_TIMEOUT + Duration::from_secs(1), done).await;
        }
        self.snapshot()
    }

    async fn fetch(&self) {
        let started = Instant::now();
        let response = match self.http.get(&self.url).send().await.and_then(|r| r.error_for_status()) {
            Ok(response) => response,
            Err(e) => {
                tracing::error!(error = %e, "could not fetch the JWKS");
                return;
            }
        };
        match response.json::<JwkSet>().await {
            Ok(set) => {
                let set = Arc::new(KeySet::parse(set, started));
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = set;
            }
            Err(e) => tracing::error!(error = %e, "the JWKS is not valid JSON"),
        }
    }
}

/// Ends a fetch, however it ends: clears the flag, then wakes the waiters.
struct RefreshDone(Arc<JwksKeys>);

impl Drop for RefreshDone {
    fn drop(&mut self) {
        self.0.refreshing.store(false, Ordering::Release);
        self.0.fetch_done.notify_waiters();
    }
}

/// Signs an HS256 token (local runs and tests only).
pub fn issue_hs256(secret: &str, claims: &Claims) -> anyhow::Result<String> {
    Ok(jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret.as_bytes()))?)
}

/// Signs an HS256 token carrying `claims` where `settings` say a provider
/// would put them (the local runner's dev tokens, so a `make run` configured
/// for a provider's claim names still hands out tokens it accepts).
pub fn issue_hs256_shaped(secret: &str, settings: &ClaimSettings, claims: &Claims) -> anyhow::Result<String> {
    let shaped = settings.shape(claims)?;
    Ok(jsonwebtoken::encode(&Header::new(Algorithm::HS256), &shaped, &EncodingKey::from_secret(secret.as_bytes()))?)
}

impl ClaimSettings {
    /// `claims` as a provider with these settings would shape them: the
    /// tenant and roles under the configured claims, `client_id` when checked.
    pub fn shape(&self, claims: &Claims) -> anyhow::Result<Value> {
        let mut shaped = serde_json::to_value(claims)?;
        let object = shaped.as_object_mut().context("claims serialise to an object")?;
        object.remove("tenant_id");
        object.remove("roles");
        if let Some(client_id) = &self.client_id {
            object.insert("client_id".into(), Value::String(client_id.clone()));
            if matches!(&claims.aud, Audience::One(a) if a.is_empty()) {
                object.remove("aud");
            }
        }
        if let Some(tenant) = &claims.tenant_id {
            self.tenant.set(&mut shaped, Value::String(tenant.clone()))?;
        }
        self.roles.set(&mut shaped, Value::from(claims.roles.clone()))?;
        Ok(shaped)
    }
}

impl ClaimPath {
    /// Puts `value` where this path reads from, making the objects on the way.
    fn set(&self, claims: &mut Value, value: Value) -> anyhow::Result<()> {
        let mut at = claims;
        let segments: Vec<String> = match self {
            ClaimPath::Name(name) => vec![name.clone()],
            // RFC 6901: `~1` is `/` and `~0` is `~` within a segment.
            ClaimPath::Pointer(pointer) => pointer.split('/').skip(1).map(|s| s.replace("~1", "/").replace("~0", "~")).collect(),
        };
        let Some((last, parents)) = segments.split_last() else { bail!("the claim path {self} is empty") };
        for segment in parents {
            let object = at.as_object_mut().with_context(|| format!("{self} goes through a claim that is not an object"))?;
            at = object.entry(segment.clone()).or_insert_with(|| Value::Object(Default::default()));
        }
        at.as_object_mut().with_context(|| format!("{self} goes through a claim that is not an object"))?.insert(last.clone(), value);
        Ok(())
    }
}

/// Claims for a token valid from now for `ttl`.
pub fn claims_for(issuer: &str, audience: &str, sub: &str, tenant: Option<String>, roles: &[&str], ttl: Duration) -> Claims {
    let now = jsonwebtoken::get_current_timestamp();
    Claims {
        sub: sub.to_string(),
        tenant_id: tenant,
        roles: roles.iter().map(|r| r.to_string()).collect(),
        iss: issuer.to_string(),
        aud: Audience::One(audience.to_string()),
        exp: now + ttl.as_secs(),
        nbf: Some(now.saturating_sub(1)),
        iat: Some(now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PEM: &str = "-----BEGIN PUBLIC KEY-----\\nMIIB...\\n-----END PUBLIC KEY-----";

    /// A Lambda's configuration from `vars` alone (the process environment is not read).
    fn lambda(vars: &[(&str, &str)]) -> anyhow::Result<AuthConfig> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        AuthConfig::for_lambda(|k| vars.get(k).cloned())
    }

    fn with_claims<'a>(more: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        [&[("BERTH_JWT_ISSUER", "https://idp.example"), ("BERTH_JWT_AUDIENCE", "berth-api")], more].concat()
    }

    fn refusal(result: anyhow::Result<AuthConfig>) -> String {
        match result {
            Ok(config) => panic!("expected the configuration to be refused, got {config:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_lambda_refuses_an_hs256_secret_and_says_which_variables_to_set_instead() {
        let dev_secret = "berth-local-dev-secret-not-for-production-use";
        for vars in [
            with_claims(&[("BERTH_JWT_HS256_SECRET", dev_secret)]),
            with_claims(&[("BERTH_JWT_HS256_SECRET", dev_secret), ("BERTH_JWKS_URL", "https://idp.example/jwks.json")]),
            with_claims(&[("BERTH_JWT_HS256_SECRET", dev_secret), ("BERTH_JWT_PUBLIC_KEY", PEM)]),
            vec![("BERTH_JWT_HS256_SECRET", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")],
        ] {
            assert_eq!(refusal(lambda(&vars)), HS256_ONLY_LOCAL, "{vars:?}");
        }
        assert!(HS256_ONLY_LOCAL.contains("berth-local") && HS256_ONLY_LOCAL.contains("BERTH_JWKS_URL") && HS256_ONLY_LOCAL.contains("BERTH_JWT_PUBLIC_KEY"));
    }

    #[test]
    fn a_lambda_accepts_a_jwks_url_cached_ten_minutes_unless_configured() {
        let config = lambda(&with_claims(&[("BERTH_JWKS_URL", "https://idp.example/jwks.json")])).expect("a JWKS configuration");
        assert_eq!((config.issuer.as_str(), config.audience.as_str()), ("https://idp.example", "berth-api"));
        let KeySource::Jwks { url, cache } = config.keys else { panic!("a JWKS key source, got {:?}", config.keys) };
        assert_eq!(url, "https://idp.example/jwks.json");
        assert_eq!(cache, JwksCachePolicy { ttl: Duration::from_secs(600), min_refetch_interval: Duration::from_secs(60) });

        let config =
            lambda(&with_claims(&[("BERTH_JWKS_URL", "https://idp.example/jwks.json"), ("BERTH_JWKS_TTL_SECS", "120")])).expect("a JWKS configuration");
        let KeySource::Jwks { cache, .. } = config.keys else { panic!("a JWKS key source") };
        assert_eq!(cache.ttl, Duration::from_secs(120));
    }

    #[test]
    fn a_lambda_refuses_a_jwks_ttl_that_is_not_a_positive_number_of_seconds() {
        for ttl in ["0", "-5", "ten minutes", "1.5"] {
            let message = refusal(lambda(&with_claims(&[("BERTH_JWKS_URL", "https://idp.example/jwks.json"), ("BERTH_JWKS_TTL_SECS", ttl)])));
            assert!(message.contains("BERTH_JWKS_TTL_SECS must be a positive number of seconds"), "{ttl}: {message}");
        }
    }

    #[test]
    fn a_lambda_accepts_a_public_key_pem_as_rs256_by_default_or_es256() {
        let config = lambda(&with_claims(&[("BERTH_JWT_PUBLIC_KEY", PEM)])).expect("a PEM configuration");
        let KeySource::PublicKeyPem { algorithm, pem } = config.keys else { panic!("a PEM key source") };
        assert_eq!(algorithm, Algorithm::RS256);
        assert!(pem.contains('\n') && !pem.contains("\\n"), "escaped newlines are restored: {pem:?}");

        let config = lambda(&with_claims(&[("BERTH_JWT_PUBLIC_KEY", PEM), ("BERTH_JWT_ALGORITHM", "ES256")])).expect("a PEM configuration");
        assert!(matches!(config.keys, KeySource::PublicKeyPem { algorithm: Algorithm::ES256, .. }));

        let message = refusal(lambda(&with_claims(&[("BERTH_JWT_PUBLIC_KEY", PEM), ("BERTH_JWT_ALGORITHM", "HS256")])));
        assert_eq!(message, "BERTH_JWT_ALGORITHM must be RS256 or ES256, not HS256");
    }

    #[test]
    fn a_lambda_needs_an_issuer_an_audience_and_exactly_one_key_source() {
        let jwks = ("BERTH_JWKS_URL", "https://idp.example/jwks.json");
        assert_eq!(refusal(lambda(&[("BERTH_JWT_AUDIENCE", "berth-api"), jwks])), "BERTH_JWT_ISSUER is not set");
        assert_eq!(
            refusal(lambda(&[("BERTH_JWT_ISSUER", "https://idp.example"), jwks])),
            "BERTH_JWT_AUDIENCE is not set (or set BERTH_JWT_CLIENT_ID to check client_id instead)"
        );
        assert_eq!(refusal(lambda(&with_claims(&[]))), "set BERTH_JWKS_URL or BERTH_JWT_PUBLIC_KEY");
        assert_eq!(refusal(lambda(&with_claims(&[("BERTH_JWKS_URL", " ")]))), "set BERTH_JWKS_URL or BERTH_JWT_PUBLIC_KEY", "blank counts as unset");
        assert_eq!(refusal(lambda(&with_claims(&[jwks, ("BERTH_JWT_PUBLIC_KEY", PEM)]))), "set only one of BERTH_JWKS_URL or BERTH_JWT_PUBLIC_KEY");
    }

    #[test]
    fn a_lambda_reads_tenant_and_roles_from_tenant_id_and_roles_unless_configured() {
        let config = lambda(&with_claims(&[("BERTH_JWKS_URL", "https://idp.example/jwks.json")])).expect("a configuration");
        assert_eq!(config.claims, ClaimSettings::default());
        assert_eq!((config.claims.tenant, config.claims.roles), (ClaimPath::Name("tenant_id".into()), ClaimPath::Name("roles".into())));

        let config = lambda(&with_claims(&[
            ("BERTH_JWKS_URL", "https://idp.example/jwks.json"),
            ("BERTH_JWT_TENANT_CLAIM", "https://berth.example/tenant_id"),
            ("BERTH_JWT_ROLES_CLAIM", "/realm_access/roles"),
            ("BERTH_JWT_ROLE_MAP", "berth-admins=admin, berth-deployers=deployer,berth-admins=approver"),
        ]))
        .expect("a configuration");
        assert_eq!(config.claims.tenant, ClaimPath::Name("https://berth.example/tenant_id".into()), "a name with dots and slashes is a name");
        assert_eq!(config.claims.roles, ClaimPath::Pointer("/realm_access/roles".into()), "a leading / makes a JSON pointer");
        assert_eq!(config.claims.role_map.apply(["berth-admins", "viewer", "berth-deployers"]), ["admin", "approver", "viewer", "deployer"]);
    }

    #[test]
    fn a_role_map_that_names_no_berth_role_or_is_not_group_equals_role_stops_the_start() {
        for (map, expected) in [
            ("berth-admins=superuser", "BERTH_JWT_ROLE_MAP maps \"berth-admins\" to \"superuser\", which is not a Berth role"),
            ("berth-admins", "BERTH_JWT_ROLE_MAP entries are group=role, not \"berth-admins\""),
            ("=admin", "BERTH_JWT_ROLE_MAP entries are group=role, not \"=admin\""),
        ] {
            let message = refusal(lambda(&with_claims(&[("BERTH_JWKS_URL", "https://idp.example/jwks.json"), ("BERTH_JWT_ROLE_MAP", map)])));
            assert_eq!(message, expected);
        }
    }

    #[test]
    fn with_a_client_id_a_lambda_needs_no_audience() {
        let config =
            lambda(&[("BERTH_JWT_ISSUER", "https://idp.example"), ("BERTH_JWKS_URL", "https://idp.example/jwks.json"), ("BERTH_JWT_CLIENT_ID", "app-client")])
                .expect("a configuration");
        assert_eq!((config.audience.as_str(), config.claims.client_id.as_deref()), ("", Some("app-client")));
        assert!(JwtVerifier::new(&config).is_ok());
        let no_check = AuthConfig { audience: String::new(), claims: ClaimSettings::default(), ..config };
        assert!(JwtVerifier::new(&no_check).is_err(), "neither an audience nor a client id is no check at all");
    }

    #[tokio::test]
    async fn dev_tokens_shaped_for_the_claim_settings_verify_under_them() {
        let settings = ClaimSettings::from_vars(|k| {
            [("BERTH_JWT_TENANT_CLAIM", "/app_metadata/tenant"), ("BERTH_JWT_ROLES_CLAIM", "cognito:groups"), ("BERTH_JWT_CLIENT_ID", "portal")]
                .iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| v.to_string())
        })
        .expect("settings");
        let config = AuthConfig { issuer: "iss".into(), audience: String::new(), keys: KeySource::Hs256Secret("s".into()), claims: settings.clone() };
        let tenant = "0b1c2d3e-4f50-4172-8394-a5b6c7d8e9f0";
        let claims = claims_for("iss", "", "dev@example.com", Some(tenant.into()), &["admin", "deployer"], Duration::from_secs(60));
        let token = issue_hs256_shaped("s", &settings, &claims).expect("a token");
        let shaped = settings.shape(&claims).expect("shaped claims");
        assert_eq!(
            (&shaped["app_metadata"]["tenant"], &shaped["cognito:groups"], &shaped["client_id"]),
            (&json!(tenant), &json!(["admin", "deployer"]), &json!("portal"))
        );
        assert!(shaped.get("aud").is_none() && shaped.get("tenant_id").is_none() && shaped.get("roles").is_none(), "{shaped}");
        let verified = JwtVerifier::new(&config).expect("a verifier").verify(&token).await.expect("the dev token verifies");
        assert_eq!((verified.tenant_id.as_deref(), verified.roles), (Some(tenant), vec!["admin".to_string(), "deployer".to_string()]));
    }
}
