//! Berth's domain: what a tenant, an environment, a runtime and an audit
//! event are, the rules they obey, the use cases that change them, and the
//! ports (traits) through which those use cases reach storage and queues.
//!
//! This crate knows nothing about AWS or HTTP: adapters live in `berth-aws`,
//! the HTTP edge in `berth-web` and the functions.

pub mod api_key;
pub mod audit;
pub mod change_request;
pub mod component;
pub mod context;
pub mod deployment;
pub mod environment;
pub mod error;
pub mod extension;
pub mod ids;
pub mod metrics;
pub mod package;
pub mod page;
pub mod policy;
pub mod ports;
pub mod quarantine;
pub mod queue_access;
pub mod redact;
pub mod refusal;
pub mod rollout;
pub mod runtime;
pub mod secret;
pub mod tenant;
pub mod upload;
pub mod usecases;
pub mod validation;
pub mod values;
pub mod webhook;

pub use error::{DomainError, FieldError};
pub type Result<T, E = DomainError> = std::result::Result<T, E>;
