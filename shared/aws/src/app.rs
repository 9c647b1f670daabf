//! Wires the AWS adapters into the domain's `Berth`: done once per cold start.

use crate::{AwsClients, DynamoStore, ResourceNames, S3BlobStore, SqsRuntimeQueues};
use berth_domain::usecases::{Berth, Settings};
use std::sync::Arc;

pub fn build_berth(clients: &AwsClients, names: &ResourceNames, settings: Settings) -> Berth {
    let store = Arc::new(DynamoStore::new(clients.dynamo.clone(), names.table.clone()));
    Berth {
        tenants: store.clone(),
        environments: store.clone(),
        runtimes: store.clone(),
        audit: store.clone(),
        idempotency: store.clone(),
        components: store.clone(),
        packages: store.clone(),
        package_activity: store,
        blobs: Arc::new(S3BlobStore::new(clients.s3.clone(), names.bucket.clone())),
        queues: Arc::new(SqsRuntimeQueues::new(clients.sqs.clone(), names.queue_prefix.clone())),
        settings,
    }
}

/// `BERTH_RUNTIME_OFFLINE_AFTER_SECS` (default 90).
pub fn settings_from_env() -> Settings {
    let mut settings = Settings::default();
    if let Some(secs) = std::env::var("BERTH_RUNTIME_OFFLINE_AFTER_SECS").ok().and_then(|v| v.parse::<i64>().ok()).filter(|s| *s > 0) {
        settings.runtime_offline_after = chrono::Duration::seconds(secs);
    }
    settings
}
