use super::tenants::Counter;
use super::{DynamoStore, key_of, map_tx, n, s, to_item};
use crate::keys;
use crate::{service_error, unexpected};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, TransactWriteItem, Update};
use berth_domain::audit::AuditDraft;
use berth_domain::ids::{EnvironmentId, RuntimeId, TenantId};
use berth_domain::page::{Page, PageRequest};
use berth_domain::ports::RuntimeStore;
use berth_domain::refusal::{Entity, Quota, Refusal};
use berth_domain::runtime::{AgentHealth, Credentials, Heartbeat, RunningPackage, Runtime, RuntimeKind};
use berth_domain::secret::SecretHash;
use berth_domain::values::Name;
use berth_domain::{DomainError, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Serialize, Deserialize)]
struct RuntimeRecord {
    pk: String,
    sk: String,
    id: RuntimeId,
    name: Name,
    kind: RuntimeKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    registration_hash: Option<SecretHash>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    credential_hash: Option<SecretHash>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    registration_expires_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pending_credential_hash: Option<SecretHash>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    revoked_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_seen_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    agent_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    health: Option<AgentHealth>,
    #[serde(default)]
    running: Vec<RunningPackage>,
    /// Environment id -> attached-at; a map so that attach/detach are single-path updates.
    #[serde(default)]
    envs: BTreeMap<EnvironmentId, DateTime<Utc>>,
    queue_url: String,
    created_at: DateTime<Utc>,
}

impl RuntimeRecord {
    fn into_runtime(self) -> Runtime {
        let mut environments: Vec<(EnvironmentId, DateTime<Utc>)> = self.envs.into_iter().collect();
        environments.sort_by_key(|(id, at)| (*at, *id));
        Runtime {
            id: self.id,
            name: self.name,
            kind: self.kind,
            registration_hash: self.registration_hash,
            credential_hash: self.credential_hash,
            registration_expires_at: self.registration_expires_at,
            pending_credential_hash: self.pending_credential_hash,
            revoked_at: self.revoked_at,
            last_seen_at: self.last_seen_at,
            agent_version: self.agent_version,
            health: self.health,
            running: self.running,
            environments: environments.into_iter().map(|(id, _)| id).collect(),
            queue_url: self.queue_url,
            created_at: self.created_at,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct AttachmentRecord {
    pk: String,
    sk: String,
    runtime_id: RuntimeId,
    attached_at: DateTime<Utc>,
}

fn not_attached() -> DomainError {
    Refusal::Missing(Entity::Attachment).into()
}

impl DynamoStore {
    fn update(
        &self,
        key: (String, String),
        expression: &str,
        condition: &str,
        names: &[(&str, &str)],
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<TransactWriteItem> {
        let mut u = Update::builder().table_name(&self.table).set_key(Some(key_of(key))).update_expression(expression).condition_expression(condition);
        for (k, v) in names {
            u = u.expression_attribute_names(*k, *v);
        }
        for (k, v) in values {
            u = u.expression_attribute_values(k, v);
        }
        Ok(TransactWriteItem::builder().update(u.build().map_err(unexpected)?).build())
    }

    fn delete_item(&self, key: (String, String), condition: Option<&str>) -> Result<TransactWriteItem> {
        let d = Delete::builder().table_name(&self.table).set_key(Some(key_of(key))).set_condition_expression(condition.map(str::to_string));
        Ok(TransactWriteItem::builder().delete(d.build().map_err(unexpected)?).build())
    }

    /// The items that detach `runtime` from `env`: attachment, runtime's map entry, environment's count.
    fn detach_items(&self, tenant: TenantId, env: EnvironmentId, runtime: RuntimeId, runtime_map_too: bool) -> Result<Vec<TransactWriteItem>> {
        let mut items = vec![self.delete_item(keys::attachment(tenant, env, runtime), Some("attribute_exists(pk)"))?];
        if runtime_map_too {
            items.push(self.update(
                keys::runtime(tenant, runtime),
                "REMOVE envs.#env",
                "attribute_exists(envs.#env)",
                &[("#env", &env.to_string())],
                vec![],
            )?);
        }
        items.push(self.update(
            keys::environment(tenant, env),
            "SET runtime_count = runtime_count - :one",
            "attribute_exists(pk) AND runtime_count > :zero",
            &[],
            vec![(":one", n(1)), (":zero", n(0))],
        )?);
        Ok(items)
    }

    async fn get_runtimes(&self, tenant: TenantId, ids: &[RuntimeId]) -> Result<Vec<Runtime>> {
        let keys = ids.iter().map(|id| key_of(keys::runtime(tenant, *id))).collect();
        let mut found: Vec<Runtime> = self.batch_get::<RuntimeRecord>(keys).await?.into_iter().map(RuntimeRecord::into_runtime).collect();
        // Keep the order of `ids` (the order of the page).
        found.sort_by_key(|r| ids.iter().position(|id| *id == r.id));
        Ok(found)
    }
}

#[async_trait]
impl RuntimeStore for DynamoStore {
    async fn create_runtime(&self, tenant: TenantId, runtime: &Runtime, audit: AuditDraft) -> Result<()> {
        let (pk, sk) = keys::runtime(tenant, runtime.id);
        let record = RuntimeRecord {
            pk,
            sk,
            id: runtime.id,
            name: runtime.name.clone(),
            kind: runtime.kind,
            registration_hash: runtime.registration_hash.clone(),
            credential_hash: runtime.credential_hash.clone(),
            registration_expires_at: runtime.registration_expires_at,
            pending_credential_hash: runtime.pending_credential_hash.clone(),
            revoked_at: runtime.revoked_at,
            last_seen_at: None,
            agent_version: None,
            health: None,
            running: vec![],
            envs: BTreeMap::new(),
            queue_url: runtime.queue_url.clone(),
            created_at: runtime.created_at,
        };
        let items = vec![self.put(to_item(&record)?, "attribute_not_exists(pk)")?, self.quota_increment(tenant, Counter::Runtimes)?];
        map_tx(self.write_with_audit(tenant, items, audit).await, |i| match i {
            1 => Refusal::QuotaExceeded(Quota::Runtimes).into(),
            _ => Refusal::Exists(Entity::Runtime).into(),
        })
    }

    async fn get_runtime(&self, tenant: TenantId, id: RuntimeId) -> Result<Option<Runtime>> {
        Ok(self.get::<RuntimeRecord>(keys::runtime(tenant, id)).await?.map(RuntimeRecord::into_runtime))
    }

    async fn list_runtimes(&self, tenant: TenantId, page: &PageRequest) -> Result<Page<Runtime>> {
        let (records, next_cursor) = self.query_page::<RuntimeRecord>(&keys::runtimes(tenant), None, None, page).await?;
        Ok(Page { items: records.into_iter().map(RuntimeRecord::into_runtime).collect(), next_cursor })
    }

    async fn delete_runtime(&self, tenant: TenantId, runtime: &Runtime, audit: AuditDraft) -> Result<()> {
        // Exactly the environments read: an attach made since then refuses the
        // delete, so no attachment is left behind to a deleted runtime.
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key_of(keys::runtime(tenant, runtime.id))))
            .condition_expression("attribute_exists(pk) AND (attribute_not_exists(envs) OR size(envs) = :attached)")
            .expression_attribute_values(":attached", n(runtime.environments.len() as u64))
            .build()
            .map_err(unexpected)?;
        let mut items = vec![TransactWriteItem::builder().delete(delete).build(), self.quota_decrement(tenant, Counter::Runtimes)?];
        for env in &runtime.environments {
            items.extend(self.detach_items(tenant, *env, runtime.id, false)?);
        }
        map_tx(self.write_with_audit(tenant, items, audit).await, |_| Refusal::Stale(Entity::Runtime).into())
    }

    async fn attach_runtime(&self, tenant: TenantId, env: EnvironmentId, runtime: RuntimeId, audit: AuditDraft) -> Result<bool> {
        let (pk, sk) = keys::attachment(tenant, env, runtime);
        let now = Utc::now();
        let items = vec![
            self.put(to_item(&AttachmentRecord { pk, sk, runtime_id: runtime, attached_at: now })?, "attribute_not_exists(pk)")?,
            self.update(
                keys::runtime(tenant, runtime),
                "SET envs.#env = :at",
                "attribute_exists(pk)",
                &[("#env", &env.to_string())],
                vec![(":at", s(now.to_rfc3339()))],
            )?,
            self.update(
                keys::environment(tenant, env),
                "SET runtime_count = if_not_exists(runtime_count, :zero) + :one",
                "attribute_exists(pk)",
                &[],
                vec![(":one", n(1)), (":zero", n(0))],
            )?,
        ];
        match self.write_with_audit(tenant, items, audit).await {
            Ok(()) => Ok(true),
            Err(super::TxError::Condition(0)) => Ok(false),
            Err(super::TxError::Condition(1)) => Err(Refusal::Missing(Entity::Runtime).into()),
            Err(super::TxError::Condition(_)) => Err(Refusal::Missing(Entity::Environment).into()),
            Err(super::TxError::Other(e)) => Err(e),
        }
    }

    async fn detach_runtime(&self, tenant: TenantId, env: EnvironmentId, runtime: RuntimeId, audit: AuditDraft) -> Result<()> {
        let items = self.detach_items(tenant, env, runtime, true)?;
        map_tx(self.write_with_audit(tenant, items, audit).await, |_| not_attached())
    }

    async fn list_environment_runtimes(&self, tenant: TenantId, env: EnvironmentId, page: &PageRequest) -> Result<Page<Runtime>> {
        let (attachments, next_cursor) = self.query_page::<AttachmentRecord>(&keys::attachments(tenant, env), None, None, page).await?;
        let ids: Vec<RuntimeId> = attachments.iter().map(|a| a.runtime_id).collect();
        Ok(Page { items: self.get_runtimes(tenant, &ids).await?, next_cursor })
    }

    async fn complete_registration(
        &self,
        tenant: TenantId,
        runtime: RuntimeId,
        registration: &SecretHash,
        credential: &SecretHash,
        name: Option<&Name>,
        agent_version: &str,
        audit: AuditDraft,
    ) -> Result<()> {
        // What `Credentials::registered` leaves: one credential, nothing else.
        const REMOVE: &str = "REMOVE registration_hash, registration_expires_at, pending_credential_hash, revoked_at";
        let mut expression = format!("SET credential_hash = :c, agent_version = :av {REMOVE}");
        let mut values = vec![(":c", s(credential.0.clone())), (":av", s(agent_version)), (":r", s(registration.0.clone()))];
        if let Some(name) = name {
            expression = format!("SET #name = :name, credential_hash = :c, agent_version = :av {REMOVE}");
            values.push((":name", s(name.as_str())));
        }
        let names: &[(&str, &str)] = if name.is_some() { &[("#name", "name")] } else { &[] };
        let items = vec![self.update(keys::runtime(tenant, runtime), &expression, "registration_hash = :r", names, values)?];
        map_tx(self.write_with_audit(tenant, items, audit).await, |_| Refusal::RegistrationUsed.into())
    }

    async fn record_heartbeat(&self, tenant: TenantId, runtime: RuntimeId, heartbeat: &Heartbeat) -> Result<()> {
        let running = serde_dynamo::to_attribute_value(&heartbeat.running).map_err(unexpected)?;
        let health = serde_dynamo::to_attribute_value(heartbeat.health).map_err(unexpected)?;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_of(keys::runtime(tenant, runtime))))
            .update_expression("SET last_seen_at = :at, agent_version = :av, health = :h, running = :r")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":at", s(heartbeat.at.to_rfc3339()))
            .expression_attribute_values(":av", s(heartbeat.agent_version.clone()))
            .expression_attribute_values(":h", health)
            .expression_attribute_values(":r", running)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = e.into_service_error();
                if e.is_conditional_check_failed_exception() { Err(Refusal::Missing(Entity::Runtime).into()) } else { Err(service_error(e)) }
            }
        }
    }

    async fn swap_credentials(&self, tenant: TenantId, runtime: RuntimeId, expected: &Credentials, new: &Credentials, audit: Option<AuditDraft>) -> Result<()> {
        let expected = credential_attributes(expected)?;
        let new = credential_attributes(new)?;
        let mut condition = vec!["attribute_exists(pk)".to_string()];
        let (mut set, mut remove, mut values) = (vec![], vec![], vec![]);
        for ((field, was), (_, now)) in expected.into_iter().zip(new) {
            match was {
                Some(v) => {
                    condition.push(format!("{field} = :was_{field}"));
                    values.push((format!(":was_{field}"), v));
                }
                None => condition.push(format!("attribute_not_exists({field})")),
            }
            match now {
                Some(v) => {
                    set.push(format!("{field} = :now_{field}"));
                    values.push((format!(":now_{field}"), v));
                }
                None => remove.push(field),
            }
        }
        let mut expression = String::new();
        if !set.is_empty() {
            expression.push_str(&format!("SET {} ", set.join(", ")));
        }
        if !remove.is_empty() {
            expression.push_str(&format!("REMOVE {}", remove.join(", ")));
        }
        let (expression, condition) = (expression.trim(), condition.join(" AND "));
        let Some(audit) = audit else {
            // Nothing to record (a rotated credential's first use): one conditional update.
            let mut update = self.client.update_item().table_name(&self.table).set_key(Some(key_of(keys::runtime(tenant, runtime))));
            update = update.update_expression(expression).condition_expression(condition);
            for (k, v) in values {
                update = update.expression_attribute_values(k, v);
            }
            return match update.send().await {
                Ok(_) => Ok(()),
                Err(e) => {
                    let e = e.into_service_error();
                    if e.is_conditional_check_failed_exception() { Err(Refusal::Stale(Entity::Runtime).into()) } else { Err(service_error(e)) }
                }
            };
        };
        let values: Vec<(&str, AttributeValue)> = values.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let item = self.update(keys::runtime(tenant, runtime), expression, &condition, &[], values)?;
        map_tx(self.write_with_audit(tenant, vec![item], audit).await, |_| Refusal::Stale(Entity::Runtime).into())
    }
}

/// Each credential field by its attribute name, as the record stores it
/// (`None`: the attribute is absent).
fn credential_attributes(c: &Credentials) -> Result<[(&'static str, Option<AttributeValue>); 5]> {
    let hash = |h: &Option<SecretHash>| h.as_ref().map(|h| s(h.0.clone()));
    let time = |t: &Option<DateTime<Utc>>| t.as_ref().map(serde_dynamo::to_attribute_value::<_, AttributeValue>).transpose().map_err(unexpected);
    Ok([
        ("registration_hash", hash(&c.registration_hash)),
        ("registration_expires_at", time(&c.registration_expires_at)?),
        ("credential_hash", hash(&c.credential_hash)),
        ("pending_credential_hash", hash(&c.pending_credential_hash)),
        ("revoked_at", time(&c.revoked_at)?),
    ])
}
