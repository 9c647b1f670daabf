//! End-to-end tests over HTTP against the local runner and LocalStack.

mod lifecycle;
mod packaging;
mod deployments;
mod robustness;
