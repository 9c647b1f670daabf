use super::{DynamoStore, Item, TxError, from_item, key_of, map_tx, s, to_item, transaction_error};
use crate::keys;
use crate::{sdk_error, unexpected};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem, Update};
use berth_domain::audit::{AuditDraft, AuditHead};
use berth_domain::component::ComponentType;
use berth_domain::deployment::{ActiveVersion, Deployment, DeploymentEvent, DeploymentStatus, SweeperWatch, Target, TargetState};
use berth_domain::ids::{ComponentId, DeploymentId, EnvironmentId, JobId, PackageId, RuntimeId, TenantId};
use berth_domain::page::{Page, PageRequest};
use berth_domain::policy::Approval;
use berth_domain::ports::{Activation, ActivationReads, ConnectionSlot, DeploymentFilter, DeploymentStore, SweepItem};
use berth_domain::quarantine::Quarantine;
use berth_domain::refusal::{Decided, Entity, Refusal};
use berth_domain::{DomainError, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Serialize, Deserialize)]
struct DeploymentRecord {
    pk: String,
    sk: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi1pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi1sk: Option<String>,
    tenant_id: TenantId,
    #[serde(flatten)]
    deployment: Deployment,
}

impl DeploymentRecord {
    fn new(tenant: TenantId, d: &Deployment) -> Self {
        let (pk, sk) = keys::deployment(tenant, d.id);
        // Sparse sweeper index: only while the sweeper has something to do with it.
        let (gsi1pk, gsi1sk) = match d.sweeper_watch(Utc::now()) {
            Some(SweeperWatch::DueAt(at)) => some_pair(keys::sweep_deployment(keys::SWEEP_SCHEDULED, at, tenant, d.id)),
            Some(SweeperWatch::QueuedSince(at)) => some_pair(keys::sweep_deployment(keys::SWEEP_QUEUED, at, tenant, d.id)),
            // Sparse approvers' inbox (never watched by the sweeper meanwhile).
            None if d.status == DeploymentStatus::PendingApproval => some_pair(keys::awaiting_deployment(tenant, d.id, d.created_at)),
            None => (None, None),
        };
        Self { pk, sk, gsi1pk, gsi1sk, tenant_id: tenant, deployment: d.clone() }
    }

    fn into_deployment(self) -> Deployment {
        self.deployment
    }
}

#[derive(Serialize, Deserialize)]
struct TargetRecord {
    pk: String,
    sk: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi1pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi1sk: Option<String>,
    tenant_id: TenantId,
    deployment_id: DeploymentId,
    runtime_id: RuntimeId,
    job_id: JobId,
    state: TargetState,
    message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deadline: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    receipt: Option<String>,
    /// Items written before rollouts existed are batch 1, attempt 1.
    #[serde(default = "one")]
    batch: u32,
    #[serde(default = "one")]
    attempt: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry_at: Option<DateTime<Utc>>,
}

fn one() -> u32 {
    1
}

impl TargetRecord {
    fn new(tenant: TenantId, t: &Target, receipt: Option<String>) -> Self {
        let (pk, sk) = keys::target(tenant, t.deployment_id, t.runtime_id);
        let (gsi1pk, gsi1sk) = match t.watched_deadline() {
            Some(deadline) => some_pair(keys::sweep_target(deadline, tenant, t.deployment_id, t.runtime_id)),
            None => (None, None),
        };
        Self {
            pk,
            sk,
            gsi1pk,
            gsi1sk,
            tenant_id: tenant,
            deployment_id: t.deployment_id,
            runtime_id: t.runtime_id,
            job_id: t.job_id,
            state: t.state,
            message: t.message.clone(),
            deadline: t.deadline,
            updated_at: t.updated_at,
            receipt,
            batch: t.batch,
            attempt: t.attempt,
            retry_at: t.retry_at,
        }
    }

    fn into_target(self) -> Target {
        Target {
            deployment_id: self.deployment_id,
            runtime_id: self.runtime_id,
            job_id: self.job_id,
            state: self.state,
            message: self.message,
            deadline: self.deadline,
            updated_at: self.updated_at,
            batch: self.batch,
            attempt: self.attempt,
            retry_at: self.retry_at,
        }
    }
}

/// A target's new state as an UpdateItem: every attribute of its record set,
/// the optional ones it no longer has removed, the receipt kept unless given.
struct TargetChange {
    key: Item,
    item: Item,
    from: TargetState,
    job: JobId,
}

impl TargetChange {
    const CONDITION: &'static str = "#state = :from AND job_id = :job";
    /// The record's attributes that may be absent (and are then removed).
    const OPTIONAL: [&'static str; 4] = ["gsi1pk", "gsi1sk", "deadline", "retry_at"];

    fn of(tenant: TenantId, t: &Target, from: TargetState, receipt: Option<&str>) -> Result<Self> {
        let mut item = to_item(&TargetRecord::new(tenant, t, receipt.map(str::to_string)))?;
        let mut key = Item::new();
        for k in [keys::PK, keys::SK] {
            if let Some(v) = item.remove(k) {
                key.insert(k.to_string(), v);
            }
        }
        Ok(Self { key, item, from, job: t.job_id })
    }

    /// Key, update expression, attribute names and values.
    fn parts(self) -> Result<(Item, String, HashMap<String, String>, Item)> {
        let absent: Vec<&str> = Self::OPTIONAL.into_iter().filter(|o| !self.item.contains_key(*o)).collect();
        let mut names = HashMap::from([("#state".to_string(), "state".to_string())]);
        let mut values = Item::from([
            (":from".to_string(), serde_dynamo::to_attribute_value(self.from).map_err(unexpected)?),
            (":job".to_string(), s(self.job.to_string())),
        ]);
        let mut sets = vec![];
        for (i, (name, value)) in self.item.into_iter().enumerate() {
            sets.push(format!("#a{i} = :v{i}"));
            names.insert(format!("#a{i}"), name);
            values.insert(format!(":v{i}"), value);
        }
        let mut expression = format!("SET {}", sets.join(", "));
        if !absent.is_empty() {
            let removes: Vec<String> = absent.iter().map(|o| format!("#r_{o}")).collect();
            expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
            names.extend(absent.iter().map(|o| (format!("#r_{o}"), o.to_string())));
        }
        Ok((self.key, expression, names, values))
    }
}

/// Targets per transaction: each is two items (target, job), of DynamoDB's 100.
const TARGETS_PER_TRANSACTION: usize = 50;
/// Target transactions in flight at once while a deployment is dispatched.
const TARGET_TRANSACTIONS_AT_ONCE: usize = 4;

#[derive(Serialize, Deserialize)]
struct LockRecord {
    pk: String,
    sk: String,
    /// The tenant's connection slots (only when it bundles connections).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi1pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi1sk: Option<String>,
    deployment_id: DeploymentId,
    component_id: ComponentId,
    /// The connections the deployment bundles (licences are counted from the request on).
    #[serde(default)]
    connections: Vec<ComponentId>,
}

#[derive(Serialize, Deserialize)]
struct JobRecord {
    pk: String,
    sk: String,
    deployment_id: DeploymentId,
}

#[derive(Serialize, Deserialize)]
struct ActiveRecord {
    pk: String,
    sk: String,
    /// The tenant's connection slots (only when it bundles connections).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi1pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi1sk: Option<String>,
    #[serde(flatten)]
    active: ActiveVersion,
}

#[derive(Serialize, Deserialize)]
struct QuarantineRecord {
    pk: String,
    sk: String,
    #[serde(flatten)]
    quarantine: Quarantine,
}

#[derive(Serialize, Deserialize)]
struct MarkerRecord {
    pk: String,
    sk: String,
    deployment_id: DeploymentId,
}

#[derive(Serialize, Deserialize)]
struct ApprovalRecord {
    pk: String,
    sk: String,
    #[serde(flatten)]
    approval: Approval,
}

#[derive(Serialize, Deserialize)]
struct EventRecord {
    pk: String,
    sk: String,
    #[serde(flatten)]
    event: DeploymentEvent,
}

/// The GSI1 key of a connection slot, for a record that holds connections.
fn connection_slot_keys(tenant: TenantId, env: EnvironmentId, component: ComponentId, in_flight: bool, holds: bool) -> (Option<String>, Option<String>) {
    match holds {
        true => (Some(keys::connection_slots(tenant)), Some(keys::connection_slot(env, component, in_flight))),
        false => (None, None),
    }
}

/// A lock or an active version as read from the connection-slot index.
#[derive(Deserialize)]
struct SlotRecord {
    gsi1sk: String,
    /// A lock's.
    #[serde(default)]
    connections: Vec<ComponentId>,
    /// An active version's.
    #[serde(default)]
    components: Vec<berth_domain::package::ManifestEntry>,
}

/// A quarantine item as read.
pub(super) fn quarantine_of(item: Item) -> Result<Quarantine> {
    Ok(from_item::<QuarantineRecord>(item)?.quarantine)
}

impl DynamoStore {
    fn conditional_put(&self, item: Item, condition: &str, values: Vec<(&str, aws_sdk_dynamodb::types::AttributeValue)>) -> Result<TransactWriteItem> {
        let mut put = Put::builder().table_name(&self.table).set_item(Some(item)).condition_expression(condition);
        if condition.contains("#status") {
            put = put.expression_attribute_names("#status", "status");
        }
        for (k, v) in values {
            put = put.expression_attribute_values(k, v);
        }
        Ok(TransactWriteItem::builder().put(put.build().map_err(unexpected)?).build())
    }

    fn deployment_put(&self, tenant: TenantId, d: &Deployment, from: Option<DeploymentStatus>) -> Result<TransactWriteItem> {
        let item = to_item(&DeploymentRecord::new(tenant, d))?;
        match from {
            None => self.conditional_put(item, "attribute_not_exists(pk)", vec![]),
            // Leaving approval: only if no decision arrived since `d.decisions` were counted.
            Some(from @ DeploymentStatus::PendingApproval) => self.conditional_put(
                item,
                "#status = :from AND (attribute_not_exists(decisions) OR decisions = :decisions)",
                vec![(":from", s(from.as_str())), (":decisions", super::n(d.decisions))],
            ),
            Some(from) => self.conditional_put(item, "#status = :from", vec![(":from", s(from.as_str()))]),
        }
    }

    fn lock_put(&self, tenant: TenantId, d: &Deployment) -> Result<TransactWriteItem> {
        let (pk, sk) = keys::in_flight(tenant, d.environment_id, d.component_id);
        let (gsi1pk, gsi1sk) = connection_slot_keys(tenant, d.environment_id, d.component_id, true, !d.connections.is_empty());
        let lock = LockRecord { pk, sk, gsi1pk, gsi1sk, deployment_id: d.id, component_id: d.component_id, connections: d.connections.clone() };
        self.put(to_item(&lock)?, "attribute_not_exists(pk)")
    }

    fn lock_delete(&self, tenant: TenantId, d: &Deployment) -> Result<TransactWriteItem> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key_of(keys::in_flight(tenant, d.environment_id, d.component_id))))
            .condition_expression("deployment_id = :d")
            .expression_attribute_values(":d", s(d.id.to_string()))
            .build()
            .map_err(unexpected)?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    fn plain_delete(&self, key: (String, String)) -> Result<TransactWriteItem> {
        let delete = Delete::builder().table_name(&self.table).set_key(Some(key_of(key))).build().map_err(unexpected)?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    fn supersede(&self, tenant: TenantId, deployment: DeploymentId) -> Result<TransactWriteItem> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_of(keys::deployment(tenant, deployment))))
            .update_expression("SET #status = :superseded")
            .condition_expression("#status = :succeeded")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":superseded", s(DeploymentStatus::Superseded.as_str()))
            .expression_attribute_values(":succeeded", s(DeploymentStatus::Succeeded.as_str()))
            .build()
            .map_err(unexpected)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    fn marker_put(&self, tenant: TenantId, active: &ActiveVersion) -> Result<TransactWriteItem> {
        let (pk, sk) = keys::package_active_marker(tenant, active.package_id, active.environment_id);
        let item = to_item(&MarkerRecord { pk, sk, deployment_id: active.deployment_id })?;
        Ok(TransactWriteItem::builder().put(Put::builder().table_name(&self.table).set_item(Some(item)).build().map_err(unexpected)?).build())
    }

    /// One transaction of up to `TARGETS_PER_TRANSACTION` targets; refused
    /// because one exists, each written by itself.
    async fn put_target_chunk(&self, tenant: TenantId, chunk: Vec<Target>) -> Result<Vec<bool>> {
        let mut items = Vec::with_capacity(chunk.len() * 2);
        for t in &chunk {
            let (pk, sk) = keys::job(tenant, t.runtime_id, t.job_id);
            items.push(self.put(to_item(&TargetRecord::new(tenant, t, None))?, "attribute_not_exists(pk)")?);
            items.push(self.put(to_item(&JobRecord { pk, sk, deployment_id: t.deployment_id })?, "attribute_not_exists(pk)")?);
        }
        match self.commit(tenant, items, None).await {
            Ok(()) => Ok(vec![true; chunk.len()]),
            Err(TxError::Condition(_)) => {
                let mut written = Vec::with_capacity(chunk.len());
                for t in &chunk {
                    written.push(self.put_target_if_absent(tenant, t).await?);
                }
                Ok(written)
            }
            Err(TxError::Other(e)) => Err(e),
        }
    }

    /// Timeline lines of deployment `id`, as transaction items.
    fn event_puts(&self, tenant: TenantId, id: DeploymentId, events: &[DeploymentEvent]) -> Result<Vec<TransactWriteItem>> {
        events
            .iter()
            .map(|event| {
                let (pk, sk) = keys::event(tenant, id, event.at);
                let item = to_item(&EventRecord { pk, sk, event: event.clone() })?;
                Ok(TransactWriteItem::builder().put(Put::builder().table_name(&self.table).set_item(Some(item)).build().map_err(unexpected)?).build())
            })
            .collect()
    }

    /// Runs a transaction with, or without, an audit event.
    async fn commit(&self, tenant: TenantId, items: Vec<TransactWriteItem>, audit: Option<AuditDraft>) -> std::result::Result<(), TxError> {
        match audit {
            Some(draft) => self.write_with_audit(tenant, items, draft).await,
            None => {
                let result = self.client.transact_write_items().set_transact_items(Some(items)).send().await;
                match result {
                    Ok(_) => Ok(()),
                    Err(err) => {
                        let err = err.into_service_error();
                        if let aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c) = &err {
                            if let Some(i) = c.cancellation_reasons().iter().position(|r| r.code() == Some("ConditionalCheckFailed")) {
                                return Err(TxError::Condition(i));
                            }
                        }
                        Err(TxError::Other(transaction_error(err)))
                    }
                }
            }
        }
    }

    /// The refusal for a lock that another deployment holds, naming it.
    async fn lock_holder(&self, tenant: TenantId, d: &Deployment) -> DomainError {
        match self.get::<LockRecord>(keys::in_flight(tenant, d.environment_id, d.component_id)).await {
            Ok(lock) => Refusal::InFlight { deployment: lock.map(|l| l.deployment_id) }.into(),
            Err(e) => e,
        }
    }

    async fn sweep_query(&self, partition: &str, before: DateTime<Utc>, limit: u32) -> Result<Vec<Item>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(keys::GSI1)
            .key_condition_expression("gsi1pk = :p AND gsi1sk < :t")
            .expression_attribute_values(":p", s(partition))
            .expression_attribute_values(":t", s(keys::time(before)))
            .limit(i32::try_from(limit).unwrap_or(100))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(out.items.unwrap_or_default())
    }

    async fn sweep_deployments(&self, partition: &str, before: DateTime<Utc>, limit: u32) -> Result<Vec<SweepItem>> {
        self.sweep_query(partition, before, limit)
            .await?
            .into_iter()
            .map(|i| from_item::<DeploymentRecord>(i).map(|r| SweepItem { tenant: r.tenant_id, deployment: r.deployment.id, runtime: None }))
            .collect()
    }
}

/// A sparse index key: both parts, or neither.
fn some_pair((pk, sk): (String, String)) -> (Option<String>, Option<String>) {
    (Some(pk), Some(sk))
}

fn status_changed() -> DomainError {
    Refusal::Stale(Entity::Deployment).into()
}

#[async_trait]
impl DeploymentStore for DynamoStore {
    async fn create_deployment(&self, tenant: TenantId, d: &Deployment, audit: AuditDraft, events: &[DeploymentEvent]) -> Result<()> {
        let mut items = vec![self.deployment_put(tenant, d, None)?];
        if d.holds_lock() {
            items.push(self.lock_put(tenant, d)?);
        }
        items.extend(self.event_puts(tenant, d.id, events)?);
        match self.write_with_audit(tenant, items, audit).await {
            Err(TxError::Condition(1)) => Err(self.lock_holder(tenant, d).await),
            other => map_tx(other, |_| Refusal::Exists(Entity::Deployment).into()),
        }
    }

    async fn get_deployment(&self, tenant: TenantId, id: DeploymentId) -> Result<Option<Deployment>> {
        Ok(self.get::<DeploymentRecord>(keys::deployment(tenant, id)).await?.map(DeploymentRecord::into_deployment))
    }

    async fn list_deployments(&self, tenant: TenantId, filter: &DeploymentFilter, page: &PageRequest) -> Result<Page<Deployment>> {
        // Newest first (ids are UUIDv7). Filters narrow a page after it is read,
        // so a page may hold fewer than `limit` items while `next_cursor` goes on.
        let (records, next_cursor) = self.query_page_ordered::<DeploymentRecord>(&keys::deployments(tenant), None, None, page, false).await?;
        let items = records
            .into_iter()
            .map(DeploymentRecord::into_deployment)
            .filter(|d| filter.environment.is_none_or(|e| d.environment_id == e))
            .filter(|d| filter.component.is_none_or(|c| d.component_id == c))
            .filter(|d| filter.status.is_none_or(|s| d.status == s))
            .collect();
        Ok(Page { items, next_cursor })
    }

    async fn in_flight(&self, tenant: TenantId, env: EnvironmentId, component: ComponentId) -> Result<Option<DeploymentId>> {
        Ok(self.get::<LockRecord>(keys::in_flight(tenant, env, component)).await?.map(|l| l.deployment_id))
    }

    async fn in_flight_deployments(&self, tenant: TenantId, env: EnvironmentId) -> Result<Vec<DeploymentId>> {
        Ok(self.query_all::<LockRecord>(&keys::in_flights(tenant, env)).await?.into_iter().map(|l| l.deployment_id).collect())
    }

    /// One paged Query of the sparse GSI1 partition `T#<t>#CONNSLOTS`.
    async fn connection_slots(&self, tenant: TenantId) -> Result<Vec<ConnectionSlot>> {
        let records = self.query_index_all::<SlotRecord>(&keys::connection_slots(tenant)).await?;
        records
            .into_iter()
            .map(|r| {
                let mut parts = r.gsi1sk.splitn(3, '#');
                let (Some(env), Some(kind), Some(component)) = (parts.next(), parts.next(), parts.next()) else {
                    return Err(DomainError::unexpected(format!("a connection slot key out of shape: {}", r.gsi1sk)));
                };
                let environment = env.parse::<EnvironmentId>().map_err(|e| DomainError::unexpected(e.to_string()))?;
                let component = component.parse::<ComponentId>().map_err(|e| DomainError::unexpected(e.to_string()))?;
                let in_flight = kind == "F";
                let connections = match in_flight {
                    true => r.connections,
                    false => r.components.into_iter().filter(|c| c.kind == ComponentType::Connection).map(|c| c.id).collect(),
                };
                Ok(ConnectionSlot { environment, component, in_flight, connections })
            })
            .collect()
    }

    async fn transition_noting(
        &self,
        tenant: TenantId,
        after: &Deployment,
        from: DeploymentStatus,
        audit: Option<AuditDraft>,
        events: &[DeploymentEvent],
    ) -> Result<()> {
        let mut items = vec![self.deployment_put(tenant, after, Some(from))?];
        if after.releases_lock_from(from) {
            items.push(self.lock_delete(tenant, after)?);
        }
        items.extend(self.event_puts(tenant, after.id, events)?);
        map_tx(self.commit(tenant, items, audit).await, |_| status_changed())
    }

    async fn finish_deployment_noting(
        &self,
        tenant: TenantId,
        after: &Deployment,
        from: DeploymentStatus,
        activation: &Activation,
        quarantine: Option<&Quarantine>,
        audit: AuditDraft,
        events: &[DeploymentEvent],
    ) -> Result<()> {
        let mut items = vec![self.deployment_put(tenant, after, Some(from))?];
        if after.releases_lock_from(from) {
            items.push(self.lock_delete(tenant, after)?);
        }
        items.extend(self.event_puts(tenant, after.id, events)?);
        match activation {
            Activation::Activate { new, previous } => {
                let (pk, sk) = keys::active(tenant, new.environment_id, new.component_id);
                let holds_connections = new.components.iter().any(|c| c.kind == ComponentType::Connection);
                let (gsi1pk, gsi1sk) = connection_slot_keys(tenant, new.environment_id, new.component_id, false, holds_connections);
                let item = to_item(&ActiveRecord { pk, sk, gsi1pk, gsi1sk, active: new.clone() })?;
                items.push(match previous {
                    Some(p) => self.conditional_put(item, "deployment_id = :prev", vec![(":prev", s(p.deployment_id.to_string()))])?,
                    None => self.conditional_put(item, "attribute_not_exists(pk)", vec![])?,
                });
                items.push(self.marker_put(tenant, new)?);
                let success =
                    MarkerRecord { pk: keys::package_successes(tenant, new.package_id), sk: new.environment_id.to_string(), deployment_id: new.deployment_id };
                items.push(
                    TransactWriteItem::builder()
                        .put(Put::builder().table_name(&self.table).set_item(Some(to_item(&success)?)).build().map_err(unexpected)?)
                        .build(),
                );
                if let Some(p) = previous {
                    if p.package_id != new.package_id {
                        items.push(self.plain_delete(keys::package_active_marker(tenant, p.package_id, p.environment_id))?);
                    }
                    if p.deployment_id != after.id {
                        items.push(self.supersede(tenant, p.deployment_id)?);
                    }
                }
            }
            Activation::Deactivate { previous } => {
                let delete = Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(key_of(keys::active(tenant, previous.environment_id, previous.component_id))))
                    .condition_expression("deployment_id = :prev")
                    .expression_attribute_values(":prev", s(previous.deployment_id.to_string()))
                    .build()
                    .map_err(unexpected)?;
                items.push(TransactWriteItem::builder().delete(delete).build());
                items.push(self.plain_delete(keys::package_active_marker(tenant, previous.package_id, previous.environment_id))?);
                items.push(self.supersede(tenant, previous.deployment_id)?);
            }
            Activation::Unchanged => {}
        }
        if let Some(q) = quarantine {
            // Unconditional: quarantined again, the one record names the latest cause.
            let (pk, sk) = keys::quarantine(tenant, q.environment_id, q.package_id);
            let item = to_item(&QuarantineRecord { pk, sk, quarantine: q.clone() })?;
            items.push(TransactWriteItem::builder().put(Put::builder().table_name(&self.table).set_item(Some(item)).build().map_err(unexpected)?).build());
        }
        map_tx(self.write_with_audit(tenant, items, audit).await, |_| status_changed())
    }

    async fn reopen_deployment(&self, tenant: TenantId, after: &Deployment, from: DeploymentStatus, targets: &[Target], audit: AuditDraft) -> Result<()> {
        let mut items = vec![self.deployment_put(tenant, after, Some(from))?];
        if after.takes_lock_from(from) {
            items.push(self.lock_put(tenant, after)?);
        }
        match self.write_with_audit(tenant, items, audit).await {
            Err(TxError::Condition(1)) => return Err(self.lock_holder(tenant, after).await),
            other => map_tx(other, |_| status_changed())?,
        }
        // Targets one by one: a deployment may have more runtimes than a transaction holds items.
        // Each reset is keyed by its new job id, so repeating it is harmless.
        for t in targets {
            let (pk, sk) = keys::job(tenant, t.runtime_id, t.job_id);
            let items = vec![
                TransactWriteItem::builder()
                    .put(Put::builder().table_name(&self.table).set_item(Some(to_item(&TargetRecord::new(tenant, t, None))?)).build().map_err(unexpected)?)
                    .build(),
                self.put(to_item(&JobRecord { pk, sk, deployment_id: t.deployment_id })?, "attribute_not_exists(pk)")?,
            ];
            match self.commit(tenant, items, None).await {
                Ok(()) | Err(TxError::Condition(_)) => {}
                Err(TxError::Other(e)) => return Err(e),
            }
        }
        Ok(())
    }

    async fn step_rollout(&self, tenant: TenantId, after: &Deployment, from: DeploymentStatus, audit: Option<AuditDraft>) -> Result<()> {
        let Some(previous) = after.progress.and_then(|p| p.step.checked_sub(1)) else { return Err(status_changed()) };
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(&DeploymentRecord::new(tenant, after))?))
            .condition_expression("#status = :from AND #progress.#step = :previous")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#progress", "progress")
            .expression_attribute_names("#step", "step")
            .expression_attribute_values(":from", s(from.as_str()))
            .expression_attribute_values(":previous", super::n(previous))
            .build()
            .map_err(unexpected)?;
        let mut items = vec![TransactWriteItem::builder().put(put).build()];
        let take = after.takes_lock_from(from);
        if take {
            items.push(self.lock_put(tenant, after)?);
        } else if after.releases_lock_from(from) {
            items.push(self.lock_delete(tenant, after)?);
        }
        match self.commit(tenant, items, audit).await {
            Err(TxError::Condition(1)) if take => Err(self.lock_holder(tenant, after).await),
            other => map_tx(other, |_| status_changed()),
        }
    }

    async fn put_target_if_absent(&self, tenant: TenantId, t: &Target) -> Result<bool> {
        let (pk, sk) = keys::job(tenant, t.runtime_id, t.job_id);
        let items = vec![
            self.put(to_item(&TargetRecord::new(tenant, t, None))?, "attribute_not_exists(pk)")?,
            self.put(to_item(&JobRecord { pk, sk, deployment_id: t.deployment_id })?, "attribute_not_exists(pk)")?,
        ];
        match self.commit(tenant, items, None).await {
            Ok(()) => Ok(true),
            Err(TxError::Condition(_)) => Ok(false),
            Err(TxError::Other(e)) => Err(e),
        }
    }

    /// Transactions of up to 50 targets (each two items, the target and its
    /// job, of DynamoDB's 100 per transaction), a few at once. A transaction
    /// refused because one of its targets exists (a redelivered message) is
    /// written again target by target, so every new one is still written.
    async fn put_targets_if_absent(&self, tenant: TenantId, targets: &[Target]) -> Result<Vec<bool>> {
        use futures::StreamExt;
        let chunks: Vec<Vec<Target>> = targets.chunks(TARGETS_PER_TRANSACTION).map(<[Target]>::to_vec).collect();
        let mut written = Vec::with_capacity(targets.len());
        let mut chunks = futures::stream::iter(chunks.into_iter().map(|chunk| self.put_target_chunk(tenant, chunk))).buffered(TARGET_TRANSACTIONS_AT_ONCE);
        while let Some(chunk) = chunks.next().await {
            written.extend(chunk?);
        }
        Ok(written)
    }

    async fn get_target(&self, tenant: TenantId, deployment: DeploymentId, runtime: RuntimeId) -> Result<Option<Target>> {
        Ok(self.get::<TargetRecord>(keys::target(tenant, deployment, runtime)).await?.map(TargetRecord::into_target))
    }

    /// One BatchGetItem.
    async fn activation_reads(&self, tenant: TenantId, package: PackageId, env: EnvironmentId, component: ComponentId) -> Result<ActivationReads> {
        let (package_key, active_key, head_key) = (keys::package(tenant, package), keys::active(tenant, env, component), keys::audit_head(tenant));
        let items = self.batch_get_items(vec![key_of(package_key.clone()), key_of(active_key.clone()), key_of(head_key)]).await?;
        let mut reads = ActivationReads { audit_head: Some(AuditHead::genesis()), ..ActivationReads::default() };
        for item in items {
            let pk = item.get(keys::PK).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            if pk == package_key.0 {
                reads.package = Some(super::packages::package_of(item)?);
            } else if pk == active_key.0 {
                reads.active = Some(from_item::<ActiveRecord>(item)?.active);
            } else {
                reads.audit_head = Some(DynamoStore::audit_head_of(item)?);
            }
        }
        Ok(reads)
    }

    /// One BatchGetItem.
    async fn get_deployment_and_head(&self, tenant: TenantId, id: DeploymentId) -> Result<(Option<Deployment>, Option<AuditHead>)> {
        let deployment_key = keys::deployment(tenant, id);
        let items = self.batch_get_items(vec![key_of(deployment_key.clone()), key_of(keys::audit_head(tenant))]).await?;
        let (mut d, mut head) = (None, AuditHead::genesis());
        for item in items {
            if item.get(keys::PK).and_then(|v| v.as_s().ok()) == Some(&deployment_key.0) {
                d = Some(from_item::<DeploymentRecord>(item)?.into_deployment());
            } else {
                head = DynamoStore::audit_head_of(item)?;
            }
        }
        Ok((d, Some(head)))
    }

    /// One BatchGetItem.
    async fn get_deployment_and_target(&self, tenant: TenantId, deployment: DeploymentId, runtime: RuntimeId) -> Result<(Option<Deployment>, Option<Target>)> {
        let deployment_key = keys::deployment(tenant, deployment);
        let items = self.batch_get_items(vec![key_of(deployment_key.clone()), key_of(keys::target(tenant, deployment, runtime))]).await?;
        let (mut d, mut t) = (None, None);
        for item in items {
            if item.get(keys::PK).and_then(|v| v.as_s().ok()) == Some(&deployment_key.0) {
                d = Some(from_item::<DeploymentRecord>(item)?.into_deployment());
            } else {
                t = Some(from_item::<TargetRecord>(item)?.into_target());
            }
        }
        Ok((d, t))
    }

    async fn list_targets(&self, tenant: TenantId, deployment: DeploymentId) -> Result<Vec<Target>> {
        Ok(self.query_all::<TargetRecord>(&keys::targets(tenant, deployment)).await?.into_iter().map(TargetRecord::into_target).collect())
    }

    /// One transaction: the target updated in place (keeping the stored
    /// receipt unless a new one is given: no read first) and the timeline line.
    async fn update_target_noting(
        &self,
        tenant: TenantId,
        t: &Target,
        from: TargetState,
        receipt: Option<&str>,
        event: Option<&DeploymentEvent>,
    ) -> Result<()> {
        let (key, expression, names, values) = TargetChange::of(tenant, t, from, receipt)?.parts()?;
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression(expression)
            .condition_expression(TargetChange::CONDITION)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(unexpected)?;
        let mut items = vec![TransactWriteItem::builder().update(update).build()];
        items.extend(self.event_puts(tenant, t.deployment_id, event.map(std::slice::from_ref).unwrap_or_default())?);
        map_tx(self.commit(tenant, items, None).await, |_| Refusal::Stale(Entity::Target).into())
    }

    async fn reset_target(&self, tenant: TenantId, t: &Target, from: &Target) -> Result<()> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(&TargetRecord::new(tenant, t, None))?))
            .condition_expression("#state = :from AND job_id = :job")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":from", serde_dynamo::to_attribute_value(from.state).map_err(unexpected)?)
            .expression_attribute_values(":job", s(from.job_id.to_string()))
            .build()
            .map_err(unexpected)?;
        let (pk, sk) = keys::job(tenant, t.runtime_id, t.job_id);
        let items = vec![
            TransactWriteItem::builder().put(put).build(),
            self.put(to_item(&JobRecord { pk, sk, deployment_id: t.deployment_id })?, "attribute_not_exists(pk)")?,
        ];
        map_tx(self.commit(tenant, items, None).await, |_| Refusal::Stale(Entity::Target).into())
    }

    async fn target_receipt(&self, tenant: TenantId, deployment: DeploymentId, runtime: RuntimeId) -> Result<Option<String>> {
        Ok(self.get::<TargetRecord>(keys::target(tenant, deployment, runtime)).await?.and_then(|r| r.receipt))
    }

    async fn find_job(&self, tenant: TenantId, runtime: RuntimeId, job: JobId) -> Result<Option<DeploymentId>> {
        Ok(self.get::<JobRecord>(keys::job(tenant, runtime, job)).await?.map(|j| j.deployment_id))
    }

    async fn add_event(&self, tenant: TenantId, deployment: DeploymentId, event: &DeploymentEvent) -> Result<()> {
        let (pk, sk) = keys::event(tenant, deployment, event.at);
        let record = EventRecord { pk, sk, event: event.clone() };
        self.client.put_item().table_name(&self.table).set_item(Some(to_item(&record)?)).send().await.map_err(sdk_error)?;
        Ok(())
    }

    async fn list_events(&self, tenant: TenantId, deployment: DeploymentId, page: &PageRequest) -> Result<Page<DeploymentEvent>> {
        let (records, next_cursor) = self.query_page::<EventRecord>(&keys::events(tenant, deployment), None, None, page).await?;
        Ok(Page { items: records.into_iter().map(|r| r.event).collect(), next_cursor })
    }

    async fn add_approval(&self, tenant: TenantId, deployment: DeploymentId, approval: &Approval, audit: AuditDraft) -> Result<()> {
        // Counting decisions on the deployment item orders them against its status change.
        let count = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_of(keys::deployment(tenant, deployment))))
            .update_expression("SET decisions = if_not_exists(decisions, :zero) + :one")
            .condition_expression("#status = :pending")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pending", s(DeploymentStatus::PendingApproval.as_str()))
            .expression_attribute_values(":zero", super::n(0))
            .expression_attribute_values(":one", super::n(1))
            .build()
            .map_err(unexpected)?;
        let record = ApprovalRecord { pk: keys::approvals(tenant, deployment), sk: approval.approver.clone(), approval: approval.clone() };
        let items = vec![TransactWriteItem::builder().update(count).build(), self.put(to_item(&record)?, "attribute_not_exists(pk)")?];
        map_tx(self.write_with_audit(tenant, items, audit).await, |i| match i {
            0 => Refusal::NotAwaitingApproval(Decided::Deployment).into(),
            _ => Refusal::AlreadyDecided(Decided::Deployment).into(),
        })
    }

    async fn approvals(&self, tenant: TenantId, deployment: DeploymentId) -> Result<Vec<Approval>> {
        let mut approvals: Vec<Approval> =
            self.query_all::<ApprovalRecord>(&keys::approvals(tenant, deployment)).await?.into_iter().map(|r| r.approval).collect();
        approvals.sort_by_key(|a| a.created_at);
        Ok(approvals)
    }

    async fn succeeded_in(&self, tenant: TenantId, package: PackageId) -> Result<Vec<EnvironmentId>> {
        self.query_all::<MarkerRecord>(&keys::package_successes(tenant, package))
            .await?
            .into_iter()
            .map(|m| m.sk.parse::<EnvironmentId>().map_err(|e| DomainError::unexpected(e.to_string())))
            .collect()
    }

    async fn package_successes(&self, tenant: TenantId, package: PackageId) -> Result<Vec<(EnvironmentId, DeploymentId)>> {
        self.query_all::<MarkerRecord>(&keys::package_successes(tenant, package))
            .await?
            .into_iter()
            .map(|m| m.sk.parse::<EnvironmentId>().map(|e| (e, m.deployment_id)).map_err(|e| DomainError::unexpected(e.to_string())))
            .collect()
    }

    async fn active_versions(&self, tenant: TenantId, env: EnvironmentId) -> Result<Vec<ActiveVersion>> {
        Ok(self.query_all::<ActiveRecord>(&keys::actives(tenant, env)).await?.into_iter().map(|r| r.active).collect())
    }

    async fn active_version(&self, tenant: TenantId, env: EnvironmentId, component: ComponentId) -> Result<Option<ActiveVersion>> {
        Ok(self.get::<ActiveRecord>(keys::active(tenant, env, component)).await?.map(|r| r.active))
    }

    async fn quarantined(&self, tenant: TenantId, env: EnvironmentId) -> Result<Vec<Quarantine>> {
        Ok(self.query_all::<QuarantineRecord>(&keys::quarantines(tenant, env)).await?.into_iter().map(|r| r.quarantine).collect())
    }

    async fn get_quarantine(&self, tenant: TenantId, env: EnvironmentId, package: PackageId) -> Result<Option<Quarantine>> {
        Ok(self.get::<QuarantineRecord>(keys::quarantine(tenant, env, package)).await?.map(|r| r.quarantine))
    }

    async fn lift_quarantine(&self, tenant: TenantId, env: EnvironmentId, package: PackageId, audit: AuditDraft) -> Result<()> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key_of(keys::quarantine(tenant, env, package))))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(unexpected)?;
        let items = vec![TransactWriteItem::builder().delete(delete).build()];
        map_tx(self.write_with_audit(tenant, items, audit).await, |_| Refusal::Missing(Entity::Quarantine).into())
    }

    async fn overdue_targets(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<SweepItem>> {
        self.sweep_query(keys::SWEEP_TARGETS, now, limit)
            .await?
            .into_iter()
            .map(|i| from_item::<TargetRecord>(i).map(|r| SweepItem { tenant: r.tenant_id, deployment: r.deployment_id, runtime: Some(r.runtime_id) }))
            .collect()
    }

    async fn due_scheduled(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<SweepItem>> {
        self.sweep_deployments(keys::SWEEP_SCHEDULED, now, limit).await
    }

    async fn stale_queued(&self, queued_before: DateTime<Utc>, limit: u32) -> Result<Vec<SweepItem>> {
        self.sweep_deployments(keys::SWEEP_QUEUED, queued_before, limit).await
    }
}
