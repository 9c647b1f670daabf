use super::{DynamoStore, key_of, map_tx, n, s, to_item};
use crate::keys;
use crate::{sdk_error, unexpected};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Select, TransactWriteItem, Update};
use berth_domain::Result;
use berth_domain::audit::AuditDraft;
use berth_domain::ids::{ComponentId, PackageId, TenantId};
use berth_domain::package::{Manifest, Package, PackageStatus, Requirement, VersionLabel};
use berth_domain::page::{Page, PageRequest};
use berth_domain::ports::{PackageActivity, PackageStore};
use berth_domain::refusal::{Entity, Refusal, Taken};
use berth_domain::runtime::Digest;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct PackageRecord {
    pk: String,
    sk: String,
    gsi1pk: String,
    gsi1sk: String,
    id: PackageId,
    component_id: ComponentId,
    version: VersionLabel,
    notes: String,
    shareable: bool,
    deleted: bool,
    /// Absent on packages stored before builds could be asynchronous: ready.
    #[serde(default)]
    status: PackageStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    failure: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    digest: Option<Digest>,
    size: u64,
    manifest: Manifest,
    requirements: Vec<Requirement>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    commit: Option<String>,
    created_by: String,
    created_at: DateTime<Utc>,
}

impl PackageRecord {
    fn into_package(self) -> Package {
        Package {
            id: self.id,
            component_id: self.component_id,
            version: self.version,
            notes: self.notes,
            shareable: self.shareable,
            deleted: self.deleted,
            status: self.status,
            failure: self.failure,
            digest: self.digest,
            size: self.size,
            manifest: self.manifest,
            requirements: self.requirements,
            commit: self.commit,
            created_by: self.created_by,
            created_at: self.created_at,
        }
    }
}

#[derive(Serialize)]
struct VersionRecord {
    pk: String,
    sk: String,
    package_id: PackageId,
}

/// A package item as read.
pub(super) fn package_of(item: super::Item) -> Result<Package> {
    Ok(super::from_item::<PackageRecord>(item)?.into_package())
}

#[async_trait]
impl PackageStore for DynamoStore {
    async fn create_package(&self, tenant: TenantId, p: &Package, audit: AuditDraft) -> Result<()> {
        let (pk, sk) = keys::package(tenant, p.id);
        let record = PackageRecord {
            pk,
            gsi1pk: keys::component_packages(tenant, p.component_id),
            gsi1sk: sk.clone(),
            sk,
            id: p.id,
            component_id: p.component_id,
            version: p.version.clone(),
            notes: p.notes.clone(),
            shareable: p.shareable,
            deleted: p.deleted,
            status: p.status,
            failure: p.failure.clone(),
            digest: p.digest.clone(),
            size: p.size,
            manifest: p.manifest.clone(),
            requirements: p.requirements.clone(),
            commit: p.commit.clone(),
            created_by: p.created_by.clone(),
            created_at: p.created_at,
        };
        let (vpk, vsk) = keys::package_version(tenant, p.component_id, p.version.as_str());
        let items = vec![
            self.put(to_item(&record)?, "attribute_not_exists(pk)")?,
            self.put(to_item(&VersionRecord { pk: vpk, sk: vsk, package_id: p.id })?, "attribute_not_exists(pk)")?,
        ];
        map_tx(self.write_with_audit(tenant, items, audit).await, |i| match i {
            1 => Refusal::Taken(Taken::PackageVersion(p.version.clone())).into(),
            _ => Refusal::Exists(Entity::Package).into(),
        })
    }

    async fn get_package(&self, tenant: TenantId, id: PackageId) -> Result<Option<Package>> {
        Ok(self.get::<PackageRecord>(keys::package(tenant, id)).await?.map(PackageRecord::into_package))
    }

    async fn list_packages(&self, tenant: TenantId, component: Option<ComponentId>, page: &PageRequest) -> Result<Page<Package>> {
        // Package ids are UUIDv7: sort keys are in creation order, so newest first is a reverse query.
        let (records, next_cursor) = match component {
            Some(c) => self.query_page_ordered::<PackageRecord>(&keys::component_packages(tenant, c), Some(keys::GSI1), None, page, false).await?,
            None => self.query_page_ordered::<PackageRecord>(&keys::packages(tenant), None, None, page, false).await?,
        };
        Ok(Page { items: records.into_iter().map(PackageRecord::into_package).collect(), next_cursor })
    }

    async fn version_exists(&self, tenant: TenantId, component: ComponentId, version: &VersionLabel) -> Result<bool> {
        Ok(self.get::<serde_json::Value>(keys::package_version(tenant, component, version.as_str())).await?.is_some())
    }

    async fn count_packages(&self, tenant: TenantId, component: ComponentId) -> Result<u64> {
        let mut total = 0u64;
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(keys::package_versions(tenant, component)))
                .select(Select::Count)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(sdk_error)?;
            total += u64::try_from(out.count).unwrap_or(0);
            match out.last_evaluated_key {
                Some(k) => start = Some(k),
                None => return Ok(total),
            }
        }
    }

    async fn finish_package_build(&self, tenant: TenantId, after: &Package, audit: Option<AuditDraft>) -> Result<()> {
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_of(keys::package(tenant, after.id))))
            .condition_expression("#st = :building")
            .expression_attribute_names("#st", "status")
            .expression_attribute_names("#sz", "size")
            .expression_attribute_values(":building", s(PackageStatus::Building.as_str()))
            .expression_attribute_values(":st", s(after.status.as_str()))
            .expression_attribute_values(":sz", n(after.size));
        let mut set = vec!["#st = :st", "#sz = :sz"];
        if let Some(digest) = &after.digest {
            set.push("digest = :d");
            update = update.expression_attribute_values(":d", s(digest.as_str()));
        }
        if let Some(failure) = &after.failure {
            set.push("failure = :f");
            update = update.expression_attribute_values(":f", s(failure.as_str()));
        }
        let update = update.update_expression(format!("SET {}", set.join(", "))).build().map_err(unexpected)?;
        let stale = || Refusal::Stale(Entity::Package).into();
        match audit {
            Some(audit) => map_tx(self.write_with_audit(tenant, vec![TransactWriteItem::builder().update(update).build()], audit).await, |_| stale()),
            None => {
                let result = self
                    .client
                    .update_item()
                    .table_name(update.table_name())
                    .set_key(Some(update.key().clone()))
                    .update_expression(update.update_expression())
                    .set_condition_expression(update.condition_expression().map(str::to_string))
                    .set_expression_attribute_names(update.expression_attribute_names().cloned())
                    .set_expression_attribute_values(update.expression_attribute_values().cloned())
                    .send()
                    .await;
                match result {
                    Ok(_) => Ok(()),
                    Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Err(stale()),
                    Err(e) => Err(sdk_error(e)),
                }
            }
        }
    }

    async fn mark_package_deleted(&self, tenant: TenantId, id: PackageId, audit: AuditDraft) -> Result<()> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_of(keys::package(tenant, id))))
            .update_expression("SET deleted = :t")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":t", AttributeValue::Bool(true))
            .build()
            .map_err(unexpected)?;
        map_tx(self.write_with_audit(tenant, vec![TransactWriteItem::builder().update(update).build()], audit).await, |_| {
            Refusal::Missing(Entity::Package).into()
        })
    }
}

#[async_trait]
impl PackageActivity for DynamoStore {
    /// Active where an environment holds an activity marker for it (written
    /// and removed by deployments, in the transaction that (de)activates it).
    async fn is_package_active(&self, tenant: TenantId, package: PackageId) -> Result<bool> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(keys::package_activity(tenant, package)))
            .limit(1)
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(out.count > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_package_stored_before_builds_could_be_asynchronous_reads_as_ready_with_its_digest() {
        let id = PackageId::new();
        let component = ComponentId::new();
        let digest = format!("sha256:{}", "a".repeat(64));
        let stored = serde_json::json!({
            "pk": "T#x", "sk": "P#y", "gsi1pk": "C#z", "gsi1sk": "P#y",
            "id": id, "component_id": component, "version": "1", "notes": "", "shareable": false, "deleted": false,
            "digest": digest, "size": 10, "manifest": {"root": component, "components": []}, "requirements": [],
            "created_by": "alice", "created_at": "2026-01-01T00:00:00Z",
        });
        let package = serde_json::from_value::<PackageRecord>(stored).expect("the old record reads").into_package();
        assert_eq!((package.status, package.failure, package.digest.map(String::from)), (PackageStatus::Ready, None, Some(digest)));
    }
}
