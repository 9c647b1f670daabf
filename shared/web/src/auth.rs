//! JWT verification. The algorithm is pinned by configuration (never taken
//! from the token), and `iss`, `aud`, `exp` and `nbf` are always checked.
//! Production uses RS256/ES256 public keys (a PEM, or a JWKS URL); a shared
//! HS256 secret is accepted only when explicitly configured for local runs.

use anyhow::{Context, bail};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use tokio::sync::RwLock;

/// The claims Berth reads. `tenant_id` is absent on platform-admin tokens.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    pub iss: String,
    /// One audience or several (RFC 7519 §4.1.3); the verifier requires ours among them.
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

impl From<&str> for Audience {
    fn from(a: &str) -> Self {
        Audience::One(a.to_string())
    }
}

/// Where verification keys come from.
#[derive(Clone)]
pub enum KeySource {
    /// Local runs and tests only (`BERTH_JWT_HS256_SECRET`).
    Hs256Secret(String),
    /// `BERTH_JWT_PUBLIC_KEY` (PEM) with `BERTH_JWT_ALGORITHM` (RS256, the default, or ES256).
    PublicKeyPem { algorithm: Algorithm, pem: String },
    /// `BERTH_JWKS_URL`: keys chosen by `kid`, each pinned to its own algorithm.
    Jwks { url: String },
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Hs256Secret(_) => f.write_str("Hs256Secret(<redacted>)"),
            KeySource::PublicKeyPem { algorithm, .. } => write!(f, "PublicKeyPem({algorithm:?})"),
            KeySource::Jwks { url } => write!(f, "Jwks({url})"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct AuthConfig {
    pub issuer: String,
    pub audience: String,
    pub keys: KeySource,
}

impl AuthConfig {
    /// Reads `BERTH_JWT_ISSUER`, `BERTH_JWT_AUDIENCE` and exactly one key source.
    pub fn from_env() -> anyhow::Result<Self> {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let issuer = get("BERTH_JWT_ISSUER").context("BERTH_JWT_ISSUER is not set")?;
        let audience = get("BERTH_JWT_AUDIENCE").context("BERTH_JWT_AUDIENCE is not set")?;
        let keys = match (get("BERTH_JWKS_URL"), get("BERTH_JWT_PUBLIC_KEY"), get("BERTH_JWT_HS256_SECRET")) {
            (Some(url), None, None) => KeySource::Jwks { url },
            (None, Some(pem), None) => {
                let algorithm = match get("BERTH_JWT_ALGORITHM").as_deref() {
                    None | Some("RS256") => Algorithm::RS256,
                    Some("ES256") => Algorithm::ES256,
                    Some(other) => bail!("BERTH_JWT_ALGORITHM must be RS256 or ES256, not {other}"),
                };
                KeySource::PublicKeyPem { algorithm, pem: pem.replace("\\n", "\n") }
            }
            (None, None, Some(secret)) => {
                if secret.len() < 32 {
                    bail!("BERTH_JWT_HS256_SECRET must be at least 32 characters");
                }
                KeySource::Hs256Secret(secret)
            }
            (None, None, None) => bail!("set one of BERTH_JWKS_URL, BERTH_JWT_PUBLIC_KEY or BERTH_JWT_HS256_SECRET"),
            _ => bail!("set only one of BERTH_JWKS_URL, BERTH_JWT_PUBLIC_KEY or BERTH_JWT_HS256_SECRET"),
        };
        Ok(Self { issuer, audience, keys })
    }
}

/// Why a token was refused. Only the category is ever shown to a caller.
#[derive(Debug, thiserror::Error)]
pub enum AuthFailure {
    #[error("missing bearer token")]
    Missing,
    #[error("invalid token: {0}")]
    Invalid(String),
}

enum Keys {
    Static { algorithm: Algorithm, key: DecodingKey },
    Jwks { url: String, http: reqwest::Client, cache: RwLock<JwksCache> },
}

struct JwksCache {
    set: JwkSet,
    fetched: Option<Instant>,
}

/// Refetch the JWKS at most this often (on an unknown `kid`).
const JWKS_MIN_REFRESH: Duration = Duration::from_secs(60);

/// Verifies tokens; built once per cold start.
pub struct JwtVerifier {
    issuer: String,
    audience: String,
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
            KeySource::Jwks { url } => Keys::Jwks {
                url: url.clone(),
                http: reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?,
                cache: RwLock::new(JwksCache { set: JwkSet { keys: vec![] }, fetched: None }),
            },
        };
        Ok(Self { issuer: config.issuer.clone(), audience: config.audience.clone(), keys })
    }

    fn validation(&self, algorithm: Algorithm) -> Validation {
        let mut v = Validation::new(algorithm);
        v.algorithms = vec![algorithm];
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&[&self.audience]);
        v.validate_exp = true;
        v.validate_nbf = true;
        v.leeway = 30;
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v
    }

    /// Verifies signature, algorithm, `iss`, `aud`, `exp` and `nbf`.
    pub async fn verify(&self, token: &str) -> Result<Claims, AuthFailure> {
        let invalid = |e: jsonwebtoken::errors::Error| AuthFailure::Invalid(e.to_string());
        match &self.keys {
            Keys::Static { algorithm, key } => {
                jsonwebtoken::decode::<Claims>(token.as_bytes(), key, &self.validation(*algorithm)).map(|d| d.claims).map_err(invalid)
            }
            Keys::Jwks { url, http, cache } => {
                let header = jsonwebtoken::decode_header(token).map_err(invalid)?;
                if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
                    return Err(AuthFailure::Invalid("only RS256 and ES256 tokens are accepted".into()));
                }
                let kid = header.kid.ok_or_else(|| AuthFailure::Invalid("token has no kid".into()))?;
                let jwk = self.find_jwk(url, http, cache, &kid).await?;
                let key = DecodingKey::from_jwk(&jwk).map_err(invalid)?;
                // The key decides the algorithm, not the token.
                let algorithm = match jwk.algorithm {
                    jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => Algorithm::RS256,
                    jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
                    _ => return Err(AuthFailure::Invalid("unsupported key type".into())),
                };
                jsonwebtoken::decode::<Claims>(token.as_bytes(), &key, &self.validation(algorithm)).map(|d| d.claims).map_err(invalid)
            }
        }
    }

    async fn find_jwk(&self, url: &str, http: &reqwest::Client, cache: &RwLock<JwksCache>, kid: &str) -> Result<jsonwebtoken::jwk::Jwk, AuthFailure> {
        if let Some(jwk) = cache.read().await.set.find(kid) {
            return Ok(jwk.clone());
        }
        let mut guard = cache.write().await;
        let stale = guard.fetched.map(|t| t.elapsed() >= JWKS_MIN_REFRESH).unwrap_or(true);
        if stale {
            match http.get(url).send().await.and_then(|r| r.error_for_status()) {
                Ok(response) => match response.json::<JwkSet>().await {
                    Ok(set) => {
                        guard.set = set;
                        guard.fetched = Some(Instant::now());
                    }
                    Err(e) => tracing::error!(error = %e, "the JWKS is not valid JSON"),
                },
                Err(e) => tracing::error!(error = %e, "could not fetch the JWKS"),
            }
        }
        guard.set.find(kid).cloned().ok_or_else(|| AuthFailure::Invalid("unknown kid".into()))
    }
}

/// Signs an HS256 token (local runs and tests only).
pub fn issue_hs256(secret: &str, claims: &Claims) -> anyhow::Result<String> {
    Ok(jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret.as_bytes()))?)
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
