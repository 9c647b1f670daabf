use super::{DynamoStore, key_of, map_tx, n, s, to_item};
use crate::keys;
use crate::unexpected;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use berth_domain::Result;
use berth_domain::audit::AuditDraft;
use berth_domain::component::{Component, ComponentType, ContentRef, Revision};
use berth_domain::extension::ExtensionPoints;
use berth_domain::ids::{ComponentId, TenantId};
use berth_domain::page::{Page, PageRequest};
use berth_domain::ports::ComponentStore;
use berth_domain::refusal::{Entity, Refusal, Taken};
use berth_domain::values::Name;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct ComponentRecord {
    pk: String,
    sk: String,
    id: ComponentId,
    name: Name,
    #[serde(rename = "type")]
    kind: ComponentType,
    revision: u32,
    references: Vec<ComponentId>,
    content: ContentRef,
    #[serde(default, skip_serializing_if = "ExtensionPoints::is_empty")]
    extensions: ExtensionPoints,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl ComponentRecord {
    fn new(tenant: TenantId, c: &Component) -> Self {
        let (pk, sk) = keys::component(tenant, c.id);
        Self {
            pk,
            sk,
            id: c.id,
            name: c.name.clone(),
            kind: c.kind,
            revision: c.revision,
            references: c.references.clone(),
            content: c.content.clone(),
            extensions: c.extensions.clone(),
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }

    fn into_component(self) -> Component {
        Component {
            id: self.id,
            name: self.name,
            kind: self.kind,
            revision: self.revision,
            references: self.references,
            content: self.content,
            extensions: self.extensions,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct RevisionRecord {
    pk: String,
    sk: String,
    #[serde(flatten)]
    revision: Revision,
}

#[derive(Serialize)]
struct NameRecord {
    pk: String,
    sk: String,
    component_id: ComponentId,
}

impl DynamoStore {
    fn revision_put(&self, tenant: TenantId, revision: &Revision) -> Result<TransactWriteItem> {
        let (pk, sk) = keys::revision(tenant, revision.component_id, revision.revision);
        self.put(to_item(&RevisionRecord { pk, sk, revision: revision.clone() })?, "attribute_not_exists(pk)")
    }
}

#[async_trait]
impl ComponentStore for DynamoStore {
    async fn create_component(&self, tenant: TenantId, component: &Component, first: &Revision, audit: AuditDraft) -> Result<()> {
        let (pk, sk) = keys::component_name(tenant, component.kind.as_str(), &component.name.unique_key());
        let items = vec![
            self.put(to_item(&ComponentRecord::new(tenant, component))?, "attribute_not_exists(pk)")?,
            self.put(to_item(&NameRecord { pk, sk, component_id: component.id })?, "attribute_not_exists(pk)")?,
            self.revision_put(tenant, first)?,
        ];
        map_tx(self.write_with_audit(tenant, items, audit).await, |i| match i {
            1 => Refusal::Taken(Taken::ComponentName { kind: component.kind, name: component.name.clone() }).into(),
            _ => Refusal::Exists(Entity::Component).into(),
        })
    }

    async fn get_component(&self, tenant: TenantId, id: ComponentId) -> Result<Option<Component>> {
        Ok(self.get::<ComponentRecord>(keys::component(tenant, id)).await?.map(ComponentRecord::into_component))
    }

    async fn get_components(&self, tenant: TenantId, ids: &[ComponentId]) -> Result<Vec<Component>> {
        let mut unique: Vec<ComponentId> = ids.to_vec();
        unique.sort();
        unique.dedup();
        let keys = unique.iter().map(|id| key_of(keys::component(tenant, *id))).collect();
        Ok(self.batch_get::<ComponentRecord>(keys).await?.into_iter().map(ComponentRecord::into_component).collect())
    }

    async fn list_components(&self, tenant: TenantId, page: &PageRequest) -> Result<Page<Component>> {
        let (records, next_cursor) = self.query_page::<ComponentRecord>(&keys::components(tenant), None, None, page).await?;
        Ok(Page { items: records.into_iter().map(ComponentRecord::into_component).collect(), next_cursor })
    }

    async fn add_revision(&self, tenant: TenantId, after: &Component, revision: &Revision, audit: AuditDraft) -> Result<()> {
        let content = serde_dynamo::to_attribute_value(&after.content).map_err(unexpected)?;
        let references = serde_dynamo::to_attribute_value(&after.references).map_err(unexpected)?;
        let extensions = serde_dynamo::to_attribute_value(&after.extensions).map_err(unexpected)?;
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_of(keys::component(tenant, after.id))))
            .update_expression("SET revision = :next, #references = :refs, content = :content, extensions = :extensions, updated_at = :at")
            .condition_expression("attribute_exists(pk) AND revision = :prev")
            .expression_attribute_names("#references", "references")
            .expression_attribute_values(":next", n(after.revision))
            .expression_attribute_values(":prev", n(after.revision - 1))
            .expression_attribute_values(":refs", references)
            .expression_attribute_values(":content", content)
            .expression_attribute_values(":extensions", extensions)
            .expression_attribute_values(":at", s(after.updated_at.to_rfc3339()))
            .build()
            .map_err(unexpected)?;
        let items = vec![TransactWriteItem::builder().update(update).build(), self.revision_put(tenant, revision)?];
        map_tx(self.write_with_audit(tenant, items, audit).await, |_| Refusal::Stale(Entity::Component).into())
    }

    async fn get_revision(&self, tenant: TenantId, id: ComponentId, revision: u32) -> Result<Option<Revision>> {
        Ok(self.get::<RevisionRecord>(keys::revision(tenant, id, revision)).await?.map(|r| r.revision))
    }

    async fn list_revisions(&self, tenant: TenantId, id: ComponentId, page: &PageRequest) -> Result<Page<Revision>> {
        let (records, next_cursor) = self.query_page::<RevisionRecord>(&keys::revisions(tenant, id), None, None, page).await?;
        Ok(Page { items: records.into_iter().map(|r| r.revision).collect(), next_cursor })
    }
}
