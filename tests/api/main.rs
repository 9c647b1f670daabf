//! End-to-end tests over HTTP against the local runner and LocalStack.

mod audit;
mod change_requests;
mod deployments;
mod governance;
mod lifecycle;
mod packaging;
mod robustness;
mod sqs_jobs;
