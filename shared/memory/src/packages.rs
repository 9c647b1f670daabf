use crate::MemoryStore;
use crate::page::{Order, page_of};
use async_trait::async_trait;
use berth_domain::Result;
use berth_domain::audit::AuditDraft;
use berth_domain::ids::{ComponentId, PackageId, TenantId};
use berth_domain::package::{Package, PackageStatus, VersionLabel};
use berth_domain::page::{Page, PageRequest};
use berth_domain::ports::{PackageActivity, PackageStore};
use berth_domain::refusal::{Entity, Refusal, Taken};

#[async_trait]
impl PackageStore for MemoryStore {
    async fn create_package(&self, tenant: TenantId, package: &Package, audit: AuditDraft) -> Result<()> {
        let mut s = self.lock();
        let t = s.t(tenant);
        let version = (package.component_id, package.version.as_str().to_string());
        if t.packages.contains_key(&package.id) {
            return Err(Refusal::Exists(Entity::Package).into());
        }
        if t.package_versions.contains_key(&version) {
            return Err(Refusal::Taken(Taken::PackageVersion(package.version.clone())).into());
        }
        t.packages.insert(package.id, package.clone());
        t.package_versions.insert(version, package.id);
        s.record(tenant, audit);
        Ok(())
    }

    async fn get_package(&self, tenant: TenantId, id: PackageId) -> Result<Option<Package>> {
        Ok(self.lock().t(tenant).packages.get(&id).cloned())
    }

    /// Newest first: package ids are UUIDv7.
    async fn list_packages(&self, tenant: TenantId, component: Option<ComponentId>, page: &PageRequest) -> Result<Page<Package>> {
        let mut s = self.lock();
        let items =
            s.t(tenant).packages.iter().filter(|(_, p)| component.is_none_or(|c| p.component_id == c)).map(|(id, p)| (id.to_string(), p.clone())).collect();
        let list = match component {
            Some(c) => format!("{tenant}/components/{c}/packages"),
            None => format!("{tenant}/packages"),
        };
        page_of(&list, items, page, Order::NewestFirst)
    }

    async fn version_exists(&self, tenant: TenantId, component: ComponentId, version: &VersionLabel) -> Result<bool> {
        Ok(self.lock().t(tenant).package_versions.contains_key(&(component, version.as_str().to_string())))
    }

    async fn count_packages(&self, tenant: TenantId, component: ComponentId) -> Result<u64> {
        Ok(self.lock().t(tenant).package_versions.keys().filter(|(c, _)| *c == component).count() as u64)
    }

    async fn finish_package_build(&self, tenant: TenantId, after: &Package, audit: Option<AuditDraft>) -> Result<()> {
        let mut s = self.lock();
        let Some(stored) = s.t(tenant).packages.get_mut(&after.id).filter(|p| p.status == PackageStatus::Building) else {
            return Err(Refusal::Stale(Entity::Package).into());
        };
        // Only what the build decides changes (a delete meanwhile stays).
        stored.status = after.status;
        stored.failure = after.failure.clone();
        stored.digest = after.digest.clone();
        stored.size = after.size;
        if let Some(audit) = audit {
            s.record(tenant, audit);
        }
        Ok(())
    }

    async fn mark_package_deleted(&self, tenant: TenantId, id: PackageId, audit: AuditDraft) -> Result<()> {
        let mut s = self.lock();
        let Some(package) = s.t(tenant).packages.get_mut(&id) else {
            return Err(Refusal::Missing(Entity::Package).into());
        };
        package.deleted = true;
        s.record(tenant, audit);
        Ok(())
    }
}

#[async_trait]
impl PackageActivity for MemoryStore {
    /// Active where an environment holds an activity marker for it (written
    /// and removed by deployments as they (de)activate it).
    async fn is_package_active(&self, tenant: TenantId, package: PackageId) -> Result<bool> {
        Ok(self.lock().t(tenant).deployments.activity.keys().any(|(p, _)| *p == package))
    }
}
