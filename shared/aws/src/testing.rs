//! For tests only: refuse to run against anything but a reachable local
//! endpoint, and say so loudly.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Panics unless `AWS_ENDPOINT_URL` is set and answers. Tests that need
/// LocalStack call this first, so a missing LocalStack fails the test.
pub fn require_localstack() -> String {
    let endpoint = std::env::var("AWS_ENDPOINT_URL")
        .unwrap_or_else(|_| panic!("AWS_ENDPOINT_URL is not set: run the tests with `make test`, which starts LocalStack and sets it"));
    let host_port = endpoint.trim_start_matches("http://").trim_start_matches("https://").trim_end_matches('/').to_string();
    let reachable = host_port
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .map(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok())
        .unwrap_or(false);
    assert!(reachable, "LocalStack is not reachable at {endpoint}: start it with `make localstack-up` (or run `make test`)");
    endpoint
}

/// A DynamoDB item.
pub type Item = std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>;

/// The items of audit `events` and of the `head` after them, as the store
/// writes them: for benches that seed a long chain straight into the table.
pub fn audit_chain_items(
    tenant: berth_domain::ids::TenantId,
    events: &[berth_domain::audit::AuditEvent],
    head: &berth_domain::audit::AuditHead,
) -> berth_domain::Result<(Vec<Item>, Item)> {
    let items = events.iter().map(|e| crate::dynamo::audit::event_item(tenant, e)).collect::<berth_domain::Result<Vec<_>>>()?;
    Ok((items, crate::dynamo::audit::head_item(tenant, head)?))
}
