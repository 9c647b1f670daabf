//! CORS for a browser portal: the origins allowed to call Berth come from
//! configuration (`BERTH_CORS_ORIGINS`), and only requests from those origins
//! see a CORS header. tower-http's layer answers every `OPTIONS` as a
//! preflight and adds its headers whatever the `Origin`; the gate here hands
//! it only the allowed origins' requests, so any other request is served as
//! if CORS did not exist (an `OPTIONS` from elsewhere gets the router's 405).

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode, header};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tower::{Layer, Service, ServiceExt};
use tower_http::cors::{AllowOrigin, Cors, CorsLayer};

use crate::extract::REQUEST_ID_HEADER;
use crate::idempotency::{HEADER as IDEMPOTENCY_KEY_HEADER, REPLAYED_HEADER};

/// The variable naming the allowed origins, comma-separated.
pub const ENV_VAR: &str = "BERTH_CORS_ORIGINS";

/// How long a browser may cache a preflight answer.
pub const MAX_AGE: Duration = Duration::from_secs(600);

/// Methods the portal may use.
pub const ALLOWED_METHODS: [Method; 5] = [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE];

/// Request headers the portal may send: its token, JSON bodies, optimistic
/// concurrency, idempotency, and its own request id (kept as `X-Client-Request-Id`).
pub const ALLOWED_HEADERS: [HeaderName; 5] = [
    header::AUTHORIZATION,
    header::CONTENT_TYPE,
    header::IF_MATCH,
    HeaderName::from_static(IDEMPOTENCY_KEY_HEADER),
    HeaderName::from_static(REQUEST_ID_HEADER),
];

/// Response headers a script may read beyond the CORS-safelisted ones: what
/// Berth returns for concurrency, creation, idempotent replays, support
/// requests and back-off (`Retry-After` on 429 and 503).
pub const EXPOSED_HEADERS: [HeaderName; 5] =
    [header::ETAG, header::LOCATION, HeaderName::from_static(REPLAYED_HEADER), HeaderName::from_static(REQUEST_ID_HEADER), header::RETRY_AFTER];

/// The exact origins (`scheme://host[:port]`) allowed to call Berth from a
/// browser. None: no CORS header at all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CorsOrigins(Vec<HeaderValue>);

/// A `BERTH_CORS_ORIGINS` entry that is not an origin.
#[derive(Debug, thiserror::Error)]
#[error("{ENV_VAR}: `{entry}` is not an origin ({reason}); list exact origins such as https://portal.example.com, separated by commas")]
pub struct InvalidOrigin {
    pub entry: String,
    pub reason: &'static str,
}

impl CorsOrigins {
    /// No origin allowed: no CORS.
    pub fn none() -> Self {
        Self::default()
    }

    /// Parses a comma-separated list; blanks are skipped, so an empty value
    /// allows nothing. Hosts are lowercased, as browsers send them.
    pub fn parse(list: &str) -> Result<Self, InvalidOrigin> {
        let mut origins = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let origin = parse_origin(entry)?;
            if !origins.contains(&origin) {
                origins.push(origin);
            }
        }
        Ok(Self(origins))
    }

    /// `BERTH_CORS_ORIGINS`, read once at start-up; unset is empty.
    pub fn from_env() -> Result<Self, InvalidOrigin> {
        Self::parse(&std::env::var(ENV_VAR).unwrap_or_default())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|o| o.to_str().ok())
    }

    /// The gate and tower-http's CORS layer behind it; `None` when no origin is allowed.
    pub fn layer(&self) -> Option<CorsGateLayer> {
        if self.is_empty() {
            return None;
        }
        let cors = CorsLayer::new()
            .allow_origin(AllowOrigin::list(self.0.clone()))
            .allow_methods(ALLOWED_METHODS)
            .allow_headers(ALLOWED_HEADERS)
            .expose_headers(EXPOSED_HEADERS)
            .max_age(MAX_AGE);
        Some(CorsGateLayer { origins: self.0.clone().into(), cors })
    }
}

fn parse_origin(entry: &str) -> Result<HeaderValue, InvalidOrigin> {
    let invalid = |reason| InvalidOrigin { entry: entry.to_string(), reason };
    if entry == "*" {
        return Err(invalid("a wildcard is not accepted"));
    }
    let lower = entry.to_ascii_lowercase();
    let Some((scheme, authority)) = lower.split_once("://") else { return Err(invalid("no scheme")) };
    if scheme != "http" && scheme != "https" {
        return Err(invalid("the scheme is not http or https"));
    }
    if authority.ends_with('/') {
        return Err(invalid("a browser's Origin has no trailing slash"));
    }
    if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
        return Err(invalid("an origin is a scheme, a host and an optional port, with no path"));
    }
    if authority.parse::<http::uri::Authority>().is_err() {
        return Err(invalid("the host or port is malformed"));
    }
    HeaderValue::from_str(&lower).map_err(|_| invalid("not a valid header value"))
}

/// Lets only the allowed origins' requests through tower-http's CORS layer.
#[derive(Clone)]
pub struct CorsGateLayer {
    origins: Arc<[HeaderValue]>,
    cors: CorsLayer,
}

impl<S: Clone> Layer<S> for CorsGateLayer {
    type Service = CorsGate<S>;

    fn layer(&self, inner: S) -> CorsGate<S> {
        CorsGate { origins: self.origins.clone(), cors: self.cors.layer(inner.clone()), plain: inner }
    }
}

/// See [`CorsGateLayer`].
#[derive(Clone)]
pub struct CorsGate<S> {
    origins: Arc<[HeaderValue]>,
    cors: Cors<S>,
    plain: S,
}

impl<S> Service<Request<Body>> for CorsGate<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    /// Always ready: each call drives a clone of the inner service to
    /// readiness (`oneshot`), as axum's own routes do.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let allowed = req.headers().get(header::ORIGIN).is_some_and(|origin| self.origins.contains(origin));
        if allowed {
            let preflight = req.method() == Method::OPTIONS;
            let response = self.cors.clone().oneshot(req);
            Box::pin(async move {
                let mut response = response.await?;
                // tower-http answers a preflight with 200; it has no body, so 204 says so.
                if preflight {
                    *response.status_mut() = StatusCode::NO_CONTENT;
                }
                Ok(response)
            })
        } else {
            let response = self.plain.clone().oneshot(req);
            Box::pin(async move {
                let mut response = response.await?;
                // The answer depends on the Origin: a cache must not hand this
                // CORS-less response to an allowed origin.
                response.headers_mut().append(header::VARY, HeaderValue::from_static("origin"));
                Ok(response)
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_read_from_a_comma_separated_list_with_blanks_and_duplicates_dropped() {
        let origins = CorsOrigins::parse(" https://portal.example.com, http://localhost:5173,,HTTPS://Portal.Example.com ").expect("valid origins");
        assert_eq!(origins.iter().collect::<Vec<_>>(), ["https://portal.example.com", "http://localhost:5173"]);
        assert!(CorsOrigins::parse("").expect("empty is valid").is_empty());
        assert!(CorsOrigins::parse(" , ").expect("blanks are valid").layer().is_none());
    }

    /// API Gateway answers preflights itself on AWS: its lists must be these.
    #[test]
    fn the_templates_cors_configuration_allows_and_exposes_what_the_functions_do() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../infra/template.yaml");
        let template = std::fs::read_to_string(path).expect("the SAM template");
        let listed = |key: &str| -> Vec<String> {
            let line = template.lines().map(str::trim).find_map(|l| l.strip_prefix(&format!("{key}: ["))).unwrap_or_else(|| panic!("{key} in the template"));
            line.trim_end_matches(']').split(',').map(|v| v.trim().to_ascii_lowercase()).collect()
        };
        let names = |headers: &[HeaderName]| headers.iter().map(|h| h.as_str().to_string()).collect::<Vec<_>>();
        assert_eq!(listed("AllowMethods"), ALLOWED_METHODS.iter().map(|m| m.as_str().to_ascii_lowercase()).collect::<Vec<_>>());
        assert_eq!(listed("AllowHeaders"), names(&ALLOWED_HEADERS));
        assert_eq!(listed("ExposeHeaders"), names(&EXPOSED_HEADERS));
        assert!(template.contains(&format!("MaxAge: {}", MAX_AGE.as_secs())), "the template's MaxAge is {MAX_AGE:?}");
    }

    #[test]
    fn anything_but_an_exact_origin_is_refused_with_the_entry_named() {
        for bad in
            ["*", "portal.example.com", "ftp://portal.example.com", "https://portal.example.com/", "https://portal.example.com/app", "https://", "https://u@h"]
        {
            let err = CorsOrigins::parse(&format!("http://localhost:5173,{bad}")).expect_err(bad);
            assert!(err.to_string().contains(&format!("`{bad}`")), "{err}");
        }
    }
}
