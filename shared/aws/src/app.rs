//! Wires the AWS adapters into the domain's `Berth`: done once per cold start.

use crate::{AwsClients, DynamoStore, KmsSealer, ResourceNames, S3BlobStore, SqsRuntimeQueues, StsCredentialVendor};
use berth_domain::usecases::{Berth, Ports, Settings};
use std::sync::Arc;

pub fn build_berth(clients: &AwsClients, names: &ResourceNames, settings: Settings) -> Berth {
    let store = Arc::new(DynamoStore::new(clients.dynamo.clone(), names.table.clone()));
    let queues = Arc::new(
        SqsRuntimeQueues::new(clients.sqs.clone(), names.queue_prefix.clone(), names.deployments_queue.clone(), names.deployments_queue_url.clone())
            .with_package_builds(names.package_builds_queue.clone(), names.package_builds_queue_url.clone()),
    );
    let sealer = Arc::new(KmsSealer::new(clients.kms.clone(), names.kms_key_id.clone()));
    let blobs = Arc::new(S3BlobStore::new(clients.s3.clone(), names.bucket.clone()));
    let ports = Ports {
        tenants: store.clone(),
        environments: store.clone(),
        runtimes: store.clone(),
        audit: store.clone(),
        idempotency: store.clone(),
        components: store.clone(),
        packages: store.clone(),
        package_activity: store.clone(),
        policies: store.clone(),
        change_requests: store.clone(),
        webhooks: store.clone(),
        api_keys: store.clone(),
        inbox: store.clone(),
        extensions: store.clone(),
        uploads: store.clone(),
        deployments: store.clone(),
        blobs: blobs.clone(),
        staging: blobs,
        subjects: store.clone(),
        queues: queues.clone(),
        jobs: queues,
        credentials: Arc::new(StsCredentialVendor::new(clients.sts.clone(), names.queue_role_arn.clone())),
        sealer: sealer.clone(),
        extension_sealer: sealer,
    };
    Berth::new(ports, settings)
}

/// `BERTH_RUNTIME_OFFLINE_AFTER_SECS` (default 90), `BERTH_JOB_DEADLINE_SECS` (default 900),
/// `BERTH_AUDIT_VERIFY_MAX_EVENTS`, `BERTH_UPLOAD_PART_BYTES` (default 64 MiB, at least 5 MiB)
/// and `BERTH_SYNC_PACKAGE_MAX_BYTES` (default 32 MiB).
pub fn settings_from_env() -> Settings {
    let secs = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<i64>().ok()).filter(|s| *s > 0).map(chrono::Duration::seconds);
    let mut settings = Settings::default();
    if let Some(d) = secs("BERTH_RUNTIME_OFFLINE_AFTER_SECS") {
        settings.runtime_offline_after = d;
    }
    if let Some(d) = secs("BERTH_JOB_DEADLINE_SECS") {
        settings.job_deadline = d;
    }
    if let Some(n) = std::env::var("BERTH_AUDIT_VERIFY_MAX_EVENTS").ok().and_then(|v| v.parse::<u64>().ok()).filter(|n| *n > 0) {
        settings.audit_verify_max_events = n;
    }
    if let Some(n) = std::env::var("BERTH_UPLOAD_PART_BYTES").ok().and_then(|v| v.parse::<u64>().ok()).filter(|n| *n > 0) {
        settings.upload_part_bytes = n;
    }
    if let Some(n) = std::env::var("BERTH_SYNC_PACKAGE_MAX_BYTES").ok().and_then(|v| v.parse::<u64>().ok()) {
        settings.sync_package_max_bytes = n;
    }
    settings
}
