use crate::MemoryStore;
use async_trait::async_trait;
use berth_domain::deployment::JobMessage;
use berth_domain::ids::{DeploymentId, PackageId, RuntimeId, TenantId};
use berth_domain::ports::{JobQueues, ReceivedJob, RuntimeQueues};
use berth_domain::{DomainError, Result};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// After this many receives a message moves to its queue's dead-letter queue
/// (the redrive policy `berth_aws::bootstrap` gives every queue).
const MAX_RECEIVES: u32 = 5;
/// SQS's longest visibility timeout; the adapter clamps to it.
const MAX_VISIBILITY_SECS: u64 = 43_200;

/// The deployments queue and the runtimes' job queues (by URL).
#[derive(Default)]
pub(crate) struct Queues {
    deployments: Vec<(TenantId, DeploymentId)>,
    package_builds: Vec<(TenantId, PackageId)>,
    runtime_queues: BTreeMap<String, Queue>,
}

#[derive(Default)]
struct Queue {
    messages: Vec<Message>,
    dead_letters: Vec<String>,
}

struct Message {
    body: String,
    /// Hidden until then (after a receive or a hide).
    visible_at: Instant,
    receives: u32,
    /// Every receipt it was handed out with: any of them deletes it.
    receipts: Vec<String>,
}

/// What the adapter asks SQS for: whole seconds, at most 12 hours.
fn visibility(duration: Duration) -> Duration {
    Duration::from_secs(duration.as_secs().min(MAX_VISIBILITY_SECS))
}

fn no_queue(url: &str) -> DomainError {
    DomainError::unexpected(format!("no queue at {url}"))
}

impl Queues {
    fn queue(&mut self, url: &str) -> Result<&mut Queue> {
        self.runtime_queues.get_mut(url).ok_or_else(|| no_queue(url))
    }
}

/// What tests look at and drive by hand.
impl MemoryStore {
    /// Every deployment enqueued for the dispatcher and not yet taken, oldest first.
    pub fn enqueued_deployments(&self) -> Vec<(TenantId, DeploymentId)> {
        self.lock().queues.deployments.clone()
    }

    /// Takes what `enqueued_deployments` lists (as a dispatcher receiving it would).
    pub fn take_enqueued_deployments(&self) -> Vec<(TenantId, DeploymentId)> {
        std::mem::take(&mut self.lock().queues.deployments)
    }

    /// Takes every package build queued so far (as the package builder receiving them would).
    pub fn take_enqueued_package_builds(&self) -> Vec<(TenantId, PackageId)> {
        std::mem::take(&mut self.lock().queues.package_builds)
    }

    /// The jobs in a runtime's queue, hidden ones included, oldest first (bodies that are not jobs are left out).
    pub fn queued_jobs(&self, queue_url: &str) -> Vec<JobMessage> {
        let s = self.lock();
        let messages = s.queues.runtime_queues.get(queue_url).map(|q| q.messages.as_slice()).unwrap_or_default();
        messages.iter().filter_map(|m| serde_json::from_str(&m.body).ok()).collect()
    }

    /// Bodies moved to a runtime queue's dead-letter queue.
    pub fn dead_letters(&self, queue_url: &str) -> Vec<String> {
        self.lock().queues.runtime_queues.get(queue_url).map(|q| q.dead_letters.clone()).unwrap_or_default()
    }

    /// Sends any body, as something other than Berth might.
    pub fn send_raw(&self, queue_url: &str, body: &str) -> Result<()> {
        let mut s = self.lock();
        let queue = s.queues.queue(queue_url)?;
        queue.messages.push(Message { body: body.to_string(), visible_at: Instant::now(), receives: 0, receipts: vec![] });
        Ok(())
    }

    /// Ends every message's hiding in a runtime's queue, as if its visibility timeout had passed.
    pub fn reveal_hidden_jobs(&self, queue_url: &str) {
        if let Some(queue) = self.lock().queues.runtime_queues.get_mut(queue_url) {
            let now = Instant::now();
            for m in &mut queue.messages {
                m.visible_at = m.visible_at.min(now);
            }
        }
    }
}

#[async_trait]
impl RuntimeQueues for MemoryStore {
    /// Idempotent, as SQS's `CreateQueue` with the same attributes.
    async fn create_runtime_queue(&self, tenant: TenantId, runtime: RuntimeId) -> Result<String> {
        // Shaped as an SQS queue URL, so that its ARN is derived as a real one's is.
        let url = format!("https://sqs.{}.amazonaws.com/000000000000/berth-{tenant}-{}", crate::credentials::REGION, runtime.simple());
        self.lock().queues.runtime_queues.entry(url.clone()).or_default();
        Ok(url)
    }

    async fn delete_runtime_queue(&self, _tenant: TenantId, _runtime: RuntimeId, queue_url: &str) -> Result<()> {
        self.lock().queues.runtime_queues.remove(queue_url);
        Ok(())
    }
}

#[async_trait]
impl JobQueues for MemoryStore {
    async fn enqueue_deployment(&self, tenant: TenantId, deployment: DeploymentId) -> Result<()> {
        self.lock().queues.deployments.push((tenant, deployment));
        Ok(())
    }

    async fn enqueue_package_build(&self, tenant: TenantId, package: PackageId) -> Result<()> {
        self.lock().queues.package_builds.push((tenant, package));
        Ok(())
    }

    async fn send_job(&self, queue_url: &str, job: &JobMessage) -> Result<()> {
        let body = serde_json::to_string(job).map_err(DomainError::unexpected)?;
        self.send_raw(queue_url, &body)
    }

    /// Never waits: an empty queue answers at once (tests must not sleep).
    async fn receive_job(&self, queue_url: &str, _wait: Duration, hide_for: Duration) -> Result<Option<ReceivedJob>> {
        let mut s = self.lock();
        let queue = s.queues.queue(queue_url)?;
        let now = Instant::now();
        while let Some(i) = queue.messages.iter().position(|m| m.visible_at <= now) {
            if queue.messages[i].receives >= MAX_RECEIVES {
                let dead = queue.messages.remove(i);
                queue.dead_letters.push(dead.body);
                continue;
            }
            let m = &mut queue.messages[i];
            let receipt = uuid::Uuid::new_v4().to_string();
            m.receives += 1;
            m.visible_at = now + visibility(hide_for);
            m.receipts.push(receipt.clone());
            return Ok(Some(ReceivedJob { job: serde_json::from_str(&m.body).ok(), receipt }));
        }
        Ok(None)
    }

    async fn hide_job(&self, queue_url: &str, receipt: &str, hide_for: Duration) -> Result<()> {
        let mut s = self.lock();
        let queue = s.queues.queue(queue_url)?;
        let m = queue
            .messages
            .iter_mut()
            .find(|m| m.receipts.iter().any(|r| r == receipt))
            .ok_or_else(|| DomainError::invalid("receipt_handle", berth_domain::ports::NOT_A_RECEIPT))?;
        m.visible_at = Instant::now() + visibility(hide_for);
        Ok(())
    }

    /// Deleting a message that is gone already succeeds, as in SQS.
    async fn delete_job(&self, queue_url: &str, receipt: &str) -> Result<()> {
        let mut s = self.lock();
        let queue = s.queues.queue(queue_url)?;
        queue.messages.retain(|m| !m.receipts.iter().any(|r| r == receipt));
        Ok(())
    }
}
