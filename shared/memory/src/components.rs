use crate::MemoryStore;
use crate::page::{Order, page_of};
use async_trait::async_trait;
use berth_domain::Result;
use berth_domain::audit::AuditDraft;
use berth_domain::component::{Component, Revision};
use berth_domain::ids::{ComponentId, TenantId};
use berth_domain::page::{Page, PageRequest};
use berth_domain::ports::ComponentStore;
use berth_domain::refusal::{Entity, Refusal, Taken};
use std::collections::BTreeSet;

#[async_trait]
impl ComponentStore for MemoryStore {
    async fn create_component(&self, tenant: TenantId, component: &Component, first: &Revision, audit: AuditDraft) -> Result<()> {
        let mut s = self.lock();
        let t = s.t(tenant);
        let name = (component.kind.as_str(), component.name.unique_key());
        if t.components.contains_key(&component.id) {
            return Err(Refusal::Exists(Entity::Component).into());
        }
        if t.component_names.contains_key(&name) {
            return Err(Refusal::Taken(Taken::ComponentName { kind: component.kind, name: component.name.clone() }).into());
        }
        if t.revisions.contains_key(&(first.component_id, first.revision)) {
            return Err(Refusal::Exists(Entity::Component).into());
        }
        t.components.insert(component.id, component.clone());
        t.component_names.insert(name, component.id);
        t.revisions.insert((first.component_id, first.revision), first.clone());
        s.record(tenant, audit);
        Ok(())
    }

    async fn get_component(&self, tenant: TenantId, id: ComponentId) -> Result<Option<Component>> {
        Ok(self.lock().t(tenant).components.get(&id).cloned())
    }

    async fn get_components(&self, tenant: TenantId, ids: &[ComponentId]) -> Result<Vec<Component>> {
        let mut s = self.lock();
        let t = s.t(tenant);
        let unique: BTreeSet<&ComponentId> = ids.iter().collect();
        Ok(unique.into_iter().filter_map(|id| t.components.get(id).cloned()).collect())
    }

    async fn list_components(&self, tenant: TenantId, page: &PageRequest) -> Result<Page<Component>> {
        let mut s = self.lock();
        let items = s.t(tenant).components.iter().map(|(id, c)| (id.to_string(), c.clone())).collect();
        page_of(&format!("{tenant}/components"), items, page, Order::OldestFirst)
    }

    async fn add_revision(&self, tenant: TenantId, after: &Component, revision: &Revision, audit: AuditDraft) -> Result<()> {
        let mut s = self.lock();
        let t = s.t(tenant);
        let read = after.revision.checked_sub(1);
        let as_read = t.components.get(&after.id).is_some_and(|stored| Some(stored.revision) == read);
        if !as_read || t.revisions.contains_key(&(revision.component_id, revision.revision)) {
            return Err(Refusal::Stale(Entity::Component).into());
        }
        if let Some(stored) = t.components.get_mut(&after.id) {
            // The adapter sets these fields; the name and type never change.
            stored.revision = after.revision;
            stored.references = after.references.clone();
            stored.content = after.content.clone();
            stored.extensions = after.extensions.clone();
            stored.updated_at = after.updated_at;
        }
        t.revisions.insert((revision.component_id, revision.revision), revision.clone());
        s.record(tenant, audit);
        Ok(())
    }

    async fn get_revision(&self, tenant: TenantId, id: ComponentId, revision: u32) -> Result<Option<Revision>> {
        Ok(self.lock().t(tenant).revisions.get(&(id, revision)).cloned())
    }

    async fn list_revisions(&self, tenant: TenantId, id: ComponentId, page: &PageRequest) -> Result<Page<Revision>> {
        let mut s = self.lock();
        let items = s.t(tenant).revisions.iter().filter(|((c, _), _)| *c == id).map(|((_, n), r)| (format!("{n:010}"), r.clone())).collect();
        page_of(&format!("{tenant}/components/{id}/revisions"), items, page, Order::OldestFirst)
    }
}
