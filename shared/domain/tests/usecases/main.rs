//! Use-case unit tests: every rule of `Berth`'s use cases, on the in-memory
//! store (`berth-memory`), driving the dispatcher's, the agents' and the
//! sweeper's steps through the same `Berth` methods the functions call.

mod fixture;

mod api_keys;
mod approvals;
mod async_packages;
mod change_requests;
mod credentials;
mod delivery;
mod extensions;
mod freeze;
mod locks;
mod policy;
mod promotion;
mod quarantine;
mod quotas;
mod rollback;
mod rollout;
mod sqs_jobs;
mod sync;
mod uploads;
mod webhooks;
