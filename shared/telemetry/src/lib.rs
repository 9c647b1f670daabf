//! Tracing set-up and metrics (`emf`) shared by every main. It lives apart from `berth-web` (which
//! keeps the per-request span) so the dispatcher and sweeper Lambdas, which
//! serve no HTTP, do not link axum, jsonwebtoken and reqwest just to log.

mod emf;

pub use emf::{EmfMetrics, EmfSink, FUNCTION_DIMENSION, NAMESPACE, emf_document};
use tracing_subscriber::EnvFilter;

/// JSON logs in Lambda (or with `BERTH_LOG_FORMAT=json`), compact text otherwise.
pub fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,aws_config=warn,aws_smithy_runtime=warn"));
    let json = std::env::var("AWS_LAMBDA_FUNCTION_NAME").is_ok() || std::env::var("BERTH_LOG_FORMAT").map(|f| f == "json").unwrap_or(false);
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    let _ = if json { builder.json().flatten_event(true).with_current_span(true).try_init() } else { builder.compact().try_init() };
}
