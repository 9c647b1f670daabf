//! RFC 9457 problem details: the one place where an error becomes a status.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_domain::{DomainError, FieldError};
use serde::Serialize;

/// Seconds a client should wait before retrying a 503: storage throttling
/// clears within a second or two, and the SDK has already retried for us.
pub const RETRY_AFTER_SECS: u64 = 1;

/// Every error an endpoint can return.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The request itself is malformed (400).
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("method not allowed")]
    MethodNotAllowed,
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest { code, message: message.into() }
    }
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::Domain(DomainError::unauthenticated(message))
    }
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: String,
    code: &'a str,
    errors: &'a [FieldError],
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, title, detail, errors): (StatusCode, &str, &str, String, &[FieldError]) = match &self {
            ApiError::Domain(DomainError::Refused(refusal)) => return ApiError::Domain(refusal.clone().into_error()).into_response(),
            ApiError::Domain(e) => match e {
                DomainError::NotFound { entity } => (StatusCode::NOT_FOUND, e.code(), "Not found", format!("{entity} not found"), &[]),
                DomainError::Conflict { message, .. } => (StatusCode::CONFLICT, e.code(), "Conflict", message.clone(), &[]),
                DomainError::Validation { errors, .. } => {
                    (StatusCode::UNPROCESSABLE_ENTITY, e.code(), "Validation failed", "the request has invalid fields".into(), errors.as_slice())
                }
                DomainError::Unauthenticated { message, .. } => (StatusCode::UNAUTHORIZED, e.code(), "Unauthenticated", message.clone(), &[]),
                DomainError::Forbidden { message, .. } => (StatusCode::FORBIDDEN, e.code(), "Forbidden", message.clone(), &[]),
                DomainError::TooLarge { message } => (StatusCode::PAYLOAD_TOO_LARGE, e.code(), "Payload too large", message.clone(), &[]),
                DomainError::QuotaExceeded { message } => (StatusCode::TOO_MANY_REQUESTS, e.code(), "Quota exceeded", message.clone(), &[]),
                DomainError::RateLimited { message, .. } => (StatusCode::TOO_MANY_REQUESTS, e.code(), "Too many requests", message.clone(), &[]),
                DomainError::PreconditionFailed => {
                    (StatusCode::PRECONDITION_FAILED, e.code(), "Precondition failed", "the resource changed since you read it (If-Match)".into(), &[])
                }
                DomainError::PreconditionRequired => (
                    StatusCode::PRECONDITION_REQUIRED,
                    e.code(),
                    "Precondition required",
                    "send If-Match with the etag of your last read of this resource".into(),
                    &[],
                ),
                DomainError::Unavailable(source) => {
                    tracing::warn!(error = %source, chain = ?error_chain(source.as_ref()), "storage unavailable; the client may retry");
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        e.code(),
                        "Service unavailable",
                        "storage is busy or unreachable; retry after the Retry-After delay".into(),
                        &[],
                    )
                }
                // Worded above; kept for completeness.
                DomainError::Refused(_) => (StatusCode::CONFLICT, e.code(), "Conflict", e.to_string(), &[]),
                DomainError::Unexpected(source) => {
                    // The chain goes to the log; the client learns nothing internal.
                    tracing::error!(error = %source, chain = ?error_chain(source.as_ref()), "unexpected error");
                    (StatusCode::INTERNAL_SERVER_ERROR, e.code(), "Internal error", "something went wrong on our side".into(), &[])
                }
            },
            ApiError::BadRequest { code, message } => (StatusCode::BAD_REQUEST, *code, "Bad request", message.clone(), &[]),
            ApiError::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "Payload too large",
                "the request body is larger than this endpoint accepts".to_string(),
                &[],
            ),
            ApiError::MethodNotAllowed => {
                (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "Method not allowed", "this path does not serve that method".into(), &[])
            }
            ApiError::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "Unsupported media type", "send application/json".into(), &[])
            }
        };
        let body = Problem { kind: format!("https://berth.dev/problems/{code}"), title, status: status.as_u16(), detail, code, errors };
        let mut response = (status, axum::Json(body)).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/problem+json"));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(RETRY_AFTER_SECS));
        }
        if let ApiError::Domain(DomainError::RateLimited { retry_after_secs, .. }) = &self {
            response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(*retry_after_secs));
        }
        response
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut chain = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        chain.push(s.to_string());
        source = s.source();
    }
    chain
}

/// Answers any route nobody serves.
pub async fn not_found() -> ApiError {
    ApiError::Domain(DomainError::not_found("route"))
}

/// Answers a known path asked with a method it does not serve.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn problem_of(err: DomainError) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
        let response = ApiError::Domain(err).into_response();
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, 64 * 1024).await.expect("a body");
        (parts.status, parts.headers, serde_json::from_slice(&bytes).expect("a JSON problem"))
    }

    #[tokio::test]
    async fn an_unavailable_store_is_a_503_problem_that_says_when_to_retry() {
        let (status, headers, problem) = problem_of(DomainError::unavailable("ProvisionedThroughputExceededException: table busy")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
        assert_eq!(headers[header::RETRY_AFTER], RETRY_AFTER_SECS.to_string().as_str());
        assert_eq!(problem["code"], "service_unavailable");
        assert_eq!(problem["status"], 503);
        assert!(!problem["detail"].as_str().unwrap_or_default().contains("ProvisionedThroughput"), "nothing internal leaks: {problem}");
    }

    #[tokio::test]
    async fn an_unexpected_error_is_a_500_without_retry_after() {
        let (status, headers, problem) = problem_of(DomainError::unexpected("a bug")).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(headers.get(header::RETRY_AFTER).is_none());
        assert_eq!(problem["code"], "internal_error");
    }
}
