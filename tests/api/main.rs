//! End-to-end tests over HTTP against the local runner and LocalStack.

mod agent_ship;
mod agent_sqs;
mod api_keys;
mod async_packages;
mod audit;
mod change_requests;
mod delivery;
mod deployments;
mod extensions;
mod extensions_delivery;
mod governance;
mod in_flight;
mod late_attach;
mod lifecycle;
mod metrics;
mod packaging;
mod quarantine;
mod robustness;
mod rollout;
mod sqs_jobs;
mod uploads;
mod webhooks;
