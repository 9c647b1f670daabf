//! The stores a check runs against: the in-memory one, or the AWS adapters
//! on LocalStack (each check on its own table, bucket and queues; the KMS key
//! is one for all, found by its alias).

use berth_aws::bootstrap::ensure_resources;
use berth_aws::{AwsClients, DynamoStore, KmsSealer, ResourceNames, S3BlobStore, SqsRuntimeQueues, StsCredentialVendor};
use berth_domain::ids::{DeploymentId, PackageId, TenantId};
use berth_domain::ports::{
    ApiKeyStore, AuditStore, BlobStore, ChangeRequestStore, ComponentStore, CredentialVendor, DecisionInbox, DeploymentStore, EnvironmentStore,
    ExtensionSealer, ExtensionStore, IdempotencyStore, JobQueues, PackageActivity, PackageStore, PolicyStore, RuntimeQueues, RuntimeStore, SecretSealer,
    TenantStore, WebhookStore,
};
use berth_domain::ports::{PresignedUrl, StagingStore, SubjectReads, UploadStore};
use berth_memory::MemoryStore;
use std::sync::Arc;

/// Every port, as one store implements it.
pub struct Stores {
    pub tenants: Arc<dyn TenantStore>,
    pub environments: Arc<dyn EnvironmentStore>,
    pub runtimes: Arc<dyn RuntimeStore>,
    pub runtime_queues: Arc<dyn RuntimeQueues>,
    pub audit: Arc<dyn AuditStore>,
    pub idempotency: Arc<dyn IdempotencyStore>,
    pub components: Arc<dyn ComponentStore>,
    pub blobs: Arc<dyn BlobStore>,
    pub packages: Arc<dyn PackageStore>,
    pub activity: Arc<dyn PackageActivity>,
    pub deployments: Arc<dyn DeploymentStore>,
    pub jobs: Arc<dyn JobQueues>,
    pub policies: Arc<dyn PolicyStore>,
    pub change_requests: Arc<dyn ChangeRequestStore>,
    pub credentials: Arc<dyn CredentialVendor>,
    pub webhooks: Arc<dyn WebhookStore>,
    pub sealer: Arc<dyn SecretSealer>,
    pub api_keys: Arc<dyn ApiKeyStore>,
    pub inbox: Arc<dyn DecisionInbox>,
    pub extensions: Arc<dyn ExtensionStore>,
    pub extension_sealer: Arc<dyn ExtensionSealer>,
    pub uploads: Arc<dyn UploadStore>,
    pub staging: Arc<dyn StagingStore>,
    pub subjects: Arc<dyn SubjectReads>,
    backend: Backend,
}

/// What a check looks at outside the ports.
enum Backend {
    Memory(Arc<MemoryStore>),
    Aws { sqs: aws_sdk_sqs::Client, deployments_queue_url: String, package_builds_queue_url: String },
}

impl Stores {
    pub fn memory() -> Self {
        let store = Arc::new(MemoryStore::new());
        Self {
            tenants: store.clone(),
            environments: store.clone(),
            runtimes: store.clone(),
            runtime_queues: store.clone(),
            audit: store.clone(),
            idempotency: store.clone(),
            components: store.clone(),
            blobs: store.clone(),
            packages: store.clone(),
            activity: store.clone(),
            deployments: store.clone(),
            jobs: store.clone(),
            policies: store.clone(),
            change_requests: store.clone(),
            credentials: store.clone(),
            webhooks: store.clone(),
            sealer: store.clone(),
            api_keys: store.clone(),
            inbox: store.clone(),
            extensions: store.clone(),
            extension_sealer: store.clone(),
            uploads: store.clone(),
            staging: store.clone(),
            subjects: store.clone(),
            backend: Backend::Memory(store),
        }
    }

    /// DynamoDB, S3 and SQS on LocalStack; fails loudly without it.
    pub async fn dynamo() -> Self {
        berth_aws::testing::require_localstack();
        let clients = AwsClients::from_env().await;
        let names = ResourceNames::unique("ct");
        let resources = ensure_resources(&clients, &names).await.expect("the table, bucket and deployments queue are created in LocalStack");
        let store = Arc::new(DynamoStore::new(clients.dynamo.clone(), names.table.clone()));
        let blobs = Arc::new(S3BlobStore::new(clients.s3.clone(), names.bucket.clone()));
        let queues = Arc::new(
            SqsRuntimeQueues::new(
                clients.sqs.clone(),
                names.queue_prefix.clone(),
                names.deployments_queue.clone(),
                Some(resources.deployments_queue_url.clone()),
            )
            .with_package_builds(names.package_builds_queue.clone(), Some(resources.package_builds_queue_url.clone())),
        );
        Self {
            tenants: store.clone(),
            environments: store.clone(),
            runtimes: store.clone(),
            runtime_queues: queues.clone(),
            audit: store.clone(),
            idempotency: store.clone(),
            components: store.clone(),
            blobs: blobs.clone(),
            staging: blobs,
            uploads: store.clone(),
            packages: store.clone(),
            activity: store.clone(),
            deployments: store.clone(),
            jobs: queues,
            policies: store.clone(),
            change_requests: store.clone(),
            webhooks: store.clone(),
            inbox: store.clone(),
            extensions: store.clone(),
            subjects: store.clone(),
            api_keys: store,
            credentials: Arc::new(StsCredentialVendor::new(clients.sts.clone(), names.queue_role_arn.clone())),
            sealer: Arc::new(KmsSealer::new(clients.kms.clone(), names.kms_key_id.clone())),
            extension_sealer: Arc::new(KmsSealer::new(clients.kms.clone(), names.kms_key_id.clone())),
            backend: Backend::Aws {
                sqs: clients.sqs.clone(),
                deployments_queue_url: resources.deployments_queue_url,
                package_builds_queue_url: resources.package_builds_queue_url,
            },
        }
    }

    /// Takes every message of the deployments queue (as the dispatcher would), in no particular order.
    pub async fn take_enqueued_deployments(&self) -> Vec<(TenantId, DeploymentId)> {
        match &self.backend {
            Backend::Memory(store) => store.take_enqueued_deployments(),
            Backend::Aws { sqs, deployments_queue_url, .. } => {
                let mut taken = vec![];
                loop {
                    let out = sqs
                        .receive_message()
                        .queue_url(deployments_queue_url)
                        .max_number_of_messages(10)
                        .wait_time_seconds(1)
                        .send()
                        .await
                        .expect("the deployments queue is read");
                    let messages = out.messages.unwrap_or_default();
                    if messages.is_empty() {
                        return taken;
                    }
                    for m in messages {
                        let body: berth_aws::sqs::DeploymentMessage = serde_json::from_str(m.body().unwrap_or_default()).expect("a deployment message");
                        taken.push((body.tenant_id, body.deployment_id));
                        sqs.delete_message()
                            .queue_url(deployments_queue_url)
                            .receipt_handle(m.receipt_handle().unwrap_or_default())
                            .send()
                            .await
                            .expect("the message is deleted");
                    }
                }
            }
        }
    }

    /// What a client's PUT of `bytes` to a presigned upload URL does: in
    /// memory, `part` of `multipart` or the whole object of `upload`.
    pub async fn put_staged(&self, url: &PresignedUrl, tenant: TenantId, upload: berth_domain::ids::UploadId, part: Option<(&str, u32)>, bytes: Vec<u8>) {
        match (&self.backend, part) {
            (Backend::Memory(store), None) => store.stage_upload(tenant, upload, bytes),
            (Backend::Memory(store), Some((multipart, n))) => store.stage_upload_part(multipart, n, bytes),
            (Backend::Aws { .. }, _) => {
                let response = reqwest::Client::new().put(&url.url).body(bytes).send().await.expect("the PUT is sent");
                assert!(response.status().is_success(), "S3 takes the PUT: {}", response.status());
            }
        }
    }

    /// Takes every message of the package-builds queue (as the package builder would), in no particular order.
    pub async fn take_enqueued_package_builds(&self) -> Vec<(TenantId, PackageId)> {
        match &self.backend {
            Backend::Memory(store) => store.take_enqueued_package_builds(),
            Backend::Aws { sqs, package_builds_queue_url, .. } => {
                let mut taken = vec![];
                loop {
                    let out = sqs
                        .receive_message()
                        .queue_url(package_builds_queue_url)
                        .max_number_of_messages(10)
                        .wait_time_seconds(1)
                        .send()
                        .await
                        .expect("the package-builds queue is read");
                    let messages = out.messages.unwrap_or_default();
                    if messages.is_empty() {
                        return taken;
                    }
                    for m in messages {
                        let body: berth_aws::sqs::PackageBuildMessage = serde_json::from_str(m.body().unwrap_or_default()).expect("a package-build message");
                        taken.push((body.tenant_id, body.package_id));
                        sqs.delete_message()
                            .queue_url(package_builds_queue_url)
                            .receipt_handle(m.receipt_handle().unwrap_or_default())
                            .send()
                            .await
                            .expect("the message is deleted");
                    }
                }
            }
        }
    }

    /// Sends `body` to a runtime's queue, as something other than Berth might.
    pub async fn send_raw(&self, queue_url: &str, body: &str) {
        match &self.backend {
            Backend::Memory(store) => store.send_raw(queue_url, body).expect("the message is sent"),
            Backend::Aws { sqs, .. } => {
                sqs.send_message().queue_url(queue_url).message_body(body).send().await.expect("the message is sent");
            }
        }
    }
}
