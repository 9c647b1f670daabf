use serde::Serialize;

/// A problem with one field of the caller's input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// The one error type of the domain. The web crate maps each variant to an
/// HTTP status and a problem+json body in one place; adapters map SDK errors
/// into it. `code` values are stable: clients branch on them.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// Missing, or belonging to another tenant: callers cannot tell which.
    #[error("{entity} not found")]
    NotFound { entity: &'static str },

    /// The request conflicts with the current state (409).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },

    /// The input is well-formed but invalid (422).
    #[error("validation failed")]
    Validation { code: &'static str, errors: Vec<FieldError> },

    /// No valid credential (401); `code` is `unauthenticated` unless the
    /// client can act on a narrower one (`registration_token_expired`).
    #[error("{message}")]
    Unauthenticated { code: &'static str, message: String },

    /// The caller may not do this (403).
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },

    /// The input is larger than allowed (413).
    #[error("{message}")]
    TooLarge { message: String },

    /// A plan limit is reached (429).
    #[error("{message}")]
    QuotaExceeded { message: String },

    /// Too many requests in a window (429 with `Retry-After`).
    #[error("{message}")]
    RateLimited { message: String, retry_after_secs: u64 },

    /// The resource changed since the caller read it (`If-Match` mismatch, 412).
    #[error("the resource was modified since it was read")]
    PreconditionFailed,

    /// An update that must name the version it replaces came without `If-Match` (428).
    #[error("If-Match is required")]
    PreconditionRequired,

    /// Storage throttled or briefly unreachable, after the SDK's own retries:
    /// the same request may succeed later (503 with `Retry-After`).
    #[error("temporarily unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),

    /// A store refused a write because of what it holds (see `refusal`): its
    /// code and words are those of `Refusal::into_error`.
    #[error("{}", .0.clone().into_error())]
    Refused(crate::refusal::Refusal),

    /// Anything the caller cannot fix: storage down, a bug. Never shown to clients.
    #[error("unexpected error")]
    Unexpected(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl DomainError {
    /// The error as a client reads it: a store's refusal in its words.
    pub fn worded(self) -> Self {
        match self {
            Self::Refused(refusal) => refusal.into_error(),
            other => other,
        }
    }
    pub fn not_found(entity: &'static str) -> Self {
        Self::NotFound { entity }
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict { code, message: message.into() }
    }
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::Forbidden { code, message: message.into() }
    }
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation { code: "validation_failed", errors: vec![FieldError::new(field, message)] }
    }
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::Unauthenticated { code: "unauthenticated", message: message.into() }
    }
    pub fn unexpected(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Unexpected(err.into())
    }
    pub fn unavailable(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Unavailable(err.into())
    }
    /// The stable code clients see.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "not_found",
            Self::Conflict { code, .. } => code,
            Self::Validation { code, .. } => code,
            Self::Unauthenticated { code, .. } => code,
            Self::Forbidden { code, .. } => code,
            Self::TooLarge { .. } => "payload_too_large",
            Self::QuotaExceeded { .. } => "quota_exceeded",
            Self::RateLimited { .. } => "rate_limited",
            Self::PreconditionFailed => "precondition_failed",
            Self::PreconditionRequired => "precondition_required",
            Self::Unavailable(_) => "service_unavailable",
            Self::Unexpected(_) => "internal_error",
            Self::Refused(refusal) => refusal.clone().into_error().code(),
        }
    }
}

/// Collects field errors while parsing an input, so a caller learns of every
/// bad field at once.
#[derive(Default)]
pub struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    /// Keeps the value, or records the error against `field`.
    pub fn check<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(message) => {
                self.errors.push(FieldError::new(field, message));
                None
            }
        }
    }
    pub fn push(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }
    pub fn finish(self) -> Result<(), DomainError> {
        if self.errors.is_empty() { Ok(()) } else { Err(DomainError::Validation { code: "validation_failed", errors: self.errors }) }
    }
}
