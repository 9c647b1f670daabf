//! Tokens: genuine RS256 ones from tests/fixtures/rs256-private.pem, and
//! the forgeries an attacker would try against an app that verifies RS256.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use berth_tests::{AUDIENCE, ISSUER};
use berth_web::auth::{Claims, claims_for};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use std::time::Duration;

pub fn fixture(name: &str) -> String {
    let path = format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// Signs with the key whose public half the app trusts.
pub struct Signer {
    private: EncodingKey,
    public_pem: String,
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

impl Signer {
    pub fn new() -> Signer {
        let private = EncodingKey::from_rsa_pem(fixture("rs256-private.pem").as_bytes()).expect("an RSA private key");
        Signer { private, public_pem: fixture("rs256-public.pem") }
    }

    pub fn sign(&self, claims: &Claims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), claims, &self.private).expect("a signed token")
    }

    /// A genuine one-hour token of a tenant user.
    pub fn user(&self, tenant: &str, sub: &str, roles: &[&str]) -> String {
        self.sign(&user_claims(tenant, sub, roles))
    }

    /// A genuine one-hour platform operator's token (no tenant).
    pub fn platform(&self) -> String {
        self.sign(&platform_claims())
    }

    /// `claims`, expired two hours ago, correctly signed.
    pub fn expired(&self, claims: &Claims) -> String {
        let mut c = claims.clone();
        (c.iat, c.nbf, c.exp) = (Some(now() - 3 * 3600), Some(now() - 3 * 3600), now() - 2 * 3600);
        self.sign(&c)
    }

    /// `claims`, not valid for another two hours, correctly signed.
    pub fn not_yet_valid(&self, claims: &Claims) -> String {
        let mut c = claims.clone();
        (c.nbf, c.exp) = (Some(now() + 2 * 3600), now() + 3 * 3600);
        self.sign(&c)
    }

    pub fn wrong_issuer(&self, claims: &Claims) -> String {
        let mut c = claims.clone();
        c.iss = "https://evil.example".into();
        self.sign(&c)
    }

    pub fn wrong_audience(&self, claims: &Claims) -> String {
        let mut c = claims.clone();
        c.aud = "some-other-api".into();
        self.sign(&c)
    }

    /// `claims` with no signature at all.
    pub fn alg_none(&self, claims: &Claims) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialise"));
        format!("{header}.{payload}.")
    }

    /// The classic key confusion: the public key, which anyone may have, as an HMAC secret.
    pub fn hs256_with_public_key(&self, claims: &Claims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(self.public_pem.as_bytes())).expect("a signed token")
    }
}

pub fn user_claims(tenant: &str, sub: &str, roles: &[&str]) -> Claims {
    claims_for(ISSUER, AUDIENCE, sub, Some(tenant.to_string()), roles, Duration::from_secs(3600))
}

pub fn platform_claims() -> Claims {
    claims_for(ISSUER, AUDIENCE, "operator@berth.example", None, &["platform_admin"], Duration::from_secs(3600))
}

/// `token` with its last character changed: well formed, wrong secret.
pub fn altered(token: &str) -> String {
    let mut t = token.to_string();
    let last = t.pop().expect("a non-empty token");
    t.push(if last == '0' { '1' } else { '0' });
    t
}
