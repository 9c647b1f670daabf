//! Extractors: they parse at the edge and answer in problem+json.

use crate::api_key::ApiKeys;
use crate::auth::{AuthFailure, JwtVerifier};
use crate::problem::ApiError;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts};
use berth_domain::context::Actor;
use berth_domain::ids::{ApiKeyId, TenantId};
use berth_domain::page::PageRequest;
use berth_domain::values::{Role, Version};
use berth_domain::{DomainError, FieldError};
use serde::de::DeserializeOwned;
use std::sync::Arc;

pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Where the client's own `X-Request-Id` is kept (see `telemetry::layer_router`).
pub const CLIENT_REQUEST_ID_HEADER: &str = "x-client-request-id";

/// The request id (set by the request-id layer, or by API Gateway's caller).
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(RequestId(request_id_of(parts)))
    }
}

pub fn request_id_of(parts: &Parts) -> String {
    parts.headers.get(REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("unknown").to_string()
}

/// The request id the client sent, if any.
pub fn client_request_id_of(parts: &Parts) -> Option<String> {
    parts.headers.get(CLIENT_REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// A caller whose bearer JWT verified, or whose API key opened (where the
/// router accepts keys). What it may do is decided later.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The JWT's `sub`; for an API key, its actor id `api-key:<id>`.
    pub sub: String,
    /// From the verified token (or the key's record) only; absent on platform-admin tokens.
    pub tenant: Option<TenantId>,
    pub roles: Vec<Role>,
    pub request_id: String,
    pub client_request_id: Option<String>,
    /// Set when the caller is an API key rather than a person.
    pub api_key: Option<ApiKeyId>,
}

impl Caller {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

impl<S> FromRequestParts<S> for Caller
where
    Arc<JwtVerifier>: FromRef<S>,
    ApiKeys: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    /// Verifies once per request; later extractions reuse the result.
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let token = bearer(parts).ok_or(AuthFailure::Missing).map_err(refuse)?;
        let caller = if berth_domain::secret::ApiKeyToken::looks_like(token) {
            api_key_caller(token, &ApiKeys::from_ref(state), parts).await?
        } else {
            jwt_caller(token, &Arc::<JwtVerifier>::from_ref(state), parts).await?
        };
        if let Some(t) = caller.tenant {
            tracing::Span::current().record("tenant_id", tracing::field::display(t));
        }
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

async fn jwt_caller(token: &str, verifier: &JwtVerifier, parts: &Parts) -> Result<Caller, ApiError> {
    let claims = verifier.verify(token).await.map_err(refuse)?;
    let tenant = match claims.tenant_id.as_deref() {
        None => None,
        Some(raw) => Some(raw.parse::<TenantId>().map_err(|_| {
            refuse(AuthFailure::Claims(format!("the tenant claim `{}` (BERTH_JWT_TENANT_CLAIM) is not a tenant id (a UUID)", verifier.tenant_claim())))
        })?),
    };
    Ok(Caller {
        sub: claims.sub,
        tenant,
        // Unknown role names are ignored: they grant nothing.
        roles: claims.roles.iter().filter_map(|r| Role::parse(r)).collect(),
        request_id: request_id_of(parts),
        client_request_id: client_request_id_of(parts),
        api_key: None,
    })
}

/// The caller an API key stands for. Every key that does not open is
/// refused with the one body a bad JWT gets; a store that cannot be asked is
/// a 5xx, not a 401.
async fn api_key_caller(token: &str, keys: &ApiKeys, parts: &Parts) -> Result<Caller, ApiError> {
    let Some(authenticator) = keys.authenticator() else {
        return Err(refuse(AuthFailure::Invalid("API keys are not accepted on this API".into())));
    };
    match authenticator.authenticate(token).await {
        Ok(key) => Ok(Caller {
            sub: Actor::api_key(key.id).id,
            tenant: Some(key.tenant),
            roles: key.roles,
            request_id: request_id_of(parts),
            client_request_id: client_request_id_of(parts),
            api_key: Some(key.id),
        }),
        Err(DomainError::Unauthenticated { .. }) => Err(refuse(AuthFailure::Invalid("API key refused".into()))),
        Err(other) => Err(other.into()),
    }
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim()).filter(|t| !t.is_empty())
}

fn refuse(failure: AuthFailure) -> ApiError {
    // Why a token did not verify is logged, not returned: it would help an
    // attacker more than a caller. A verified token's missing claims are
    // told: only its holder sees them, and they name what to configure.
    tracing::info!(reason = %failure, "token refused");
    ApiError::unauthenticated(match failure {
        AuthFailure::Missing => "a bearer token is required".to_string(),
        AuthFailure::Invalid(_) => "the bearer token is invalid or expired".to_string(),
        AuthFailure::Claims(detail) => detail,
    })
}

/// The bearer token as given (for the agent API's runtime credentials).
pub fn bearer_token(parts: &Parts) -> Option<&str> {
    bearer(parts)
}

/// A JSON body: 415 unless JSON, 413 when too large, 400 when not JSON at
/// all, 422 with the offending field's path when it does not fit `T`.
/// `LIMIT` is the largest body accepted (default `MAX_BODY_BYTES`).
pub struct JsonBody<T, const LIMIT: usize = { crate::MAX_BODY_BYTES }>(pub T);

impl<S: Send + Sync, T: DeserializeOwned, const LIMIT: usize> FromRequest<S> for JsonBody<T, LIMIT> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|ct| {
                let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
                mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = axum::body::to_bytes(req.into_body(), LIMIT).await.map_err(|_| ApiError::PayloadTooLarge)?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// A JSON body that may be left out: an empty body is `T::default()`;
/// anything else is read as `JsonBody` reads it.
pub struct OptionalJsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, crate::MAX_BODY_BYTES).await.map_err(|_| ApiError::PayloadTooLarge)?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJsonBody(T::default()));
        }
        let req = Request::from_parts(parts, axum::body::Body::from(bytes));
        JsonBody::<T>::from_request(req, state).await.map(|JsonBody(v)| OptionalJsonBody(v))
    }
}

/// Parses JSON into `T`, reporting the path of the first field that does not fit.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // First JSON itself (400 when it is not), then its shape (422 naming the field).
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request("malformed_json", format!("the body is not valid JSON: {e}")))?;
    // Every body is an object; serde would read a struct from an array of its
    // fields in order too (`[null, null]`), which no client means.
    if !value.is_object() {
        return Err(ApiError::Domain(DomainError::Validation { code: "validation_failed", errors: vec![FieldError::new("body", "must be a JSON object")] }));
    }
    serde_path_to_error::deserialize::<_, T>(value).map_err(|err| {
        let path = err.path().to_string();
        let field = if path == "." { "body".to_string() } else { path };
        ApiError::Domain(DomainError::Validation {
            code: "validation_failed",
            errors: vec![FieldError::new(field, strip_position(&err.into_inner().to_string()))],
        })
    })
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// `?limit=&cursor=` of every list.
pub struct PageQuery(pub PageRequest);

#[derive(serde::Deserialize)]
struct RawPage {
    limit: Option<String>,
    cursor: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for PageQuery {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let raw: RawPage = serde_urlencoded_query(parts.uri.query().unwrap_or(""))?;
        let limit = match raw.limit {
            None => None,
            Some(l) => Some(l.parse::<u32>().map_err(|_| ApiError::Domain(DomainError::invalid("limit", "must be a whole number")))?),
        };
        Ok(PageQuery(PageRequest::new(limit, raw.cursor)?))
    }
}

/// Reads a query string into `T`, in problem+json terms.
pub fn serde_urlencoded_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    axum::extract::Query::<T>::try_from_uri(&format!("/?{query}").parse().map_err(|_| ApiError::bad_request("invalid_query", "the query string is malformed"))?)
        .map(|q| q.0)
        .map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))
}

/// `If-Match`, when given: the version the caller last read.
pub struct IfMatch(pub Option<Version>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        match parts.headers.get(header::IF_MATCH) {
            None => Ok(IfMatch(None)),
            Some(v) => {
                let raw = v.to_str().map_err(|_| ApiError::bad_request("invalid_if_match", "If-Match is not valid text"))?;
                if raw.trim() == "*" {
                    return Ok(IfMatch(None));
                }
                Version::from_etag(raw)
                    .map(|v| IfMatch(Some(v)))
                    .ok_or_else(|| ApiError::bad_request("invalid_if_match", "If-Match must be an etag this API issued"))
            }
        }
    }
}

/// `?hold_if_frozen=true|false` (absent: false).
pub fn hold_if_frozen_of(parts: &Parts) -> Result<bool, ApiError> {
    #[derive(serde::Deserialize)]
    struct Query {
        hold_if_frozen: Option<String>,
    }
    let query: Query = serde_urlencoded_query(parts.uri.query().unwrap_or(""))?;
    match query.hold_if_frozen.as_deref() {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(ApiError::Domain(DomainError::invalid("hold_if_frozen", "must be true or false"))),
    }
}

/// Parses a path id into its typed id: 400 `invalid_id` when it is not a UUID.
pub fn path_id<T: std::str::FromStr>(raw: &str, entity: &'static str) -> Result<T, ApiError> {
    raw.parse::<T>().map_err(|_| ApiError::bad_request("invalid_id", format!("{entity} id must be a UUID")))
}

/// Whole numbers of request bodies, for `#[serde(deserialize_with = ...)]`:
/// JSON does not tell `3` from `3.0`, and JSON Schema's `integer` (what the
/// OpenAPI document says) admits both, so a whole `3.0` reads as 3. A
/// fraction, or a number out of the type's range, is refused as before.
pub mod whole {
    use serde::de::{Deserialize, Deserializer, Error};

    fn read<E: Error, T: TryFrom<i64>>(n: serde_json::Number) -> Result<T, E> {
        let whole = match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Some(i),
            (None, Some(f)) if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 => Some(f as i64),
            _ => None,
        };
        whole.and_then(|i| T::try_from(i).ok()).ok_or_else(|| E::custom(format!("invalid value: {n}, expected a whole number in range")))
    }

    /// A whole number.
    pub fn number<'de, D: Deserializer<'de>, T: TryFrom<i64>>(d: D) -> Result<T, D::Error> {
        read(serde_json::Number::deserialize(d)?)
    }

    /// A whole number or null; with `#[serde(default)]`, it may be left out.
    pub fn optional<'de, D: Deserializer<'de>, T: TryFrom<i64>>(d: D) -> Result<Option<T>, D::Error> {
        Option::<serde_json::Number>::deserialize(d)?.map(read).transpose()
    }

    #[cfg(test)]
    mod tests {
        #[derive(serde::Deserialize, Debug)]
        struct Body {
            #[serde(default, deserialize_with = "super::optional")]
            n: Option<u32>,
        }

        fn read(json: &str) -> Result<Option<u32>, String> {
            serde_json::from_str::<Body>(json).map(|b| b.n).map_err(|e| e.to_string())
        }

        #[test]
        fn a_whole_number_reads_whether_or_not_it_is_written_with_a_fraction() {
            assert_eq!(read(r#"{"n": 3}"#), Ok(Some(3)));
            assert_eq!(read(r#"{"n": 3.0}"#), Ok(Some(3)));
            assert_eq!(read(r#"{"n": null}"#), Ok(None));
            assert_eq!(read("{}"), Ok(None));
        }

        #[test]
        fn a_fraction_a_negative_or_an_overflow_is_refused() {
            for json in [r#"{"n": 3.5}"#, r#"{"n": -1}"#, r#"{"n": 4294967296}"#, r#"{"n": 1e300}"#, r#"{"n": "3"}"#] {
                assert!(read(json).is_err(), "{json}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code, reason = "only parsed")]
    struct Body {
        content: Option<String>,
        references: Option<Vec<String>>,
    }

    #[test]
    fn a_body_that_is_not_a_json_object_is_refused_even_when_serde_would_read_it() {
        assert!(parse_json::<Body>(br#"{"content": null}"#).is_ok());
        for raw in [&br#"[null, null]"#[..], br#"[]"#, br#""x""#, b"3", b"null"] {
            let err = parse_json::<Body>(raw).expect_err("not an object");
            assert!(matches!(err, ApiError::Domain(DomainError::Validation { .. })), "{}: {err:?}", String::from_utf8_lossy(raw));
        }
    }
}
