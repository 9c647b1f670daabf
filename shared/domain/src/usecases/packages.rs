use super::Berth;
use crate::audit::AuditDraft;
use crate::audit::summary::{PackageCreated, PackageDeleted};
use crate::context::{Permission, TenantCtx};
use crate::ids::{ComponentId, PackageId};
use crate::package::{MAX_NOTES_CHARS, OutdatedComponent, Package, VersionLabel, outdated, snapshot};
use crate::page::{Page, PageRequest};
use crate::ports::PresignedUrl;
use crate::refusal::{Refusal, Taken};
use crate::{DomainError, Result};
use chrono::Utc;

#[derive(Clone, Debug)]
pub struct NewPackage {
    pub component_id: ComponentId,
    /// Absent: the next whole number for the component.
    pub version: Option<VersionLabel>,
    pub notes: String,
    pub shareable: bool,
    /// The source commit, as CI reports it.
    pub commit: Option<String>,
}

/// A package and what changed since it was made.
#[derive(Clone, Debug)]
pub struct PackageDetails {
    pub package: Package,
    pub outdated_components: Vec<OutdatedComponent>,
}

/// How long a download URL lives.
pub const DOWNLOAD_TTL: std::time::Duration = std::time::Duration::from_secs(300);
/// Auto-numbered versions retry this often when a concurrent package takes the number.
const NUMBERING_ATTEMPTS: u64 = 50;

fn version_exists(version: &VersionLabel) -> DomainError {
    DomainError::conflict("version_exists", format!("the component already has a package version \"{version}\""))
}

impl Berth {
    /// Snapshots the component's current revision and its closure into an
    /// immutable package: the archive is written once, then the package item
    /// (with its unique version) in one transaction; if that fails, the
    /// archive is removed again, so nothing is left half-written.
    #[tracing::instrument(skip(self, ctx, input), fields(tenant_id = %ctx.tenant, request_id = %ctx.request_id, component_id = %input.component_id))]
    pub async fn create_package(&self, ctx: &TenantCtx, input: NewPackage) -> Result<Package> {
        let root = self.get_component(ctx, input.component_id).await?;
        ctx.require(Permission::ManagePackages)?;
        if input.notes.chars().count() > MAX_NOTES_CHARS {
            return Err(DomainError::invalid("notes", format!("must be at most {MAX_NOTES_CHARS} characters")));
        }
        if let Some(commit) = &input.commit {
            crate::webhook::check_commit(commit)?;
        }
        if let Some(v) = &input.version {
            if self.ports.packages.version_exists(ctx.tenant, root.id, v).await? {
                return Err(version_exists(v));
            }
        }
        let mut reachable = self.reference_graph(ctx, &root.references).await?;
        reachable.insert(root.id, root.clone());
        let (manifest, requirements) = snapshot(&root, &reachable)?;

        let id = PackageId::new();
        let archive = self.ports.blobs.write_package_archive(ctx.tenant, id, &manifest).await?;
        let mut package = Package {
            id,
            component_id: root.id,
            version: input.version.clone().unwrap_or_else(|| VersionLabel::number(1)),
            notes: input.notes,
            shareable: input.shareable,
            deleted: false,
            digest: archive.digest,
            size: archive.size,
            manifest,
            requirements,
            commit: input.commit,
            created_by: ctx.actor.id.clone(),
            created_at: Utc::now(),
        };
        let result = self.store_package(ctx, &mut package, input.version.is_none()).await;
        if result.is_err() {
            if let Err(cleanup) = self.ports.blobs.delete_package_archive(ctx.tenant, id).await {
                tracing::error!(error = %cleanup, package_id = %id, "could not remove the archive of a package that was not created");
            }
        }
        result.map(|()| package)
    }

    async fn store_package(&self, ctx: &TenantCtx, package: &mut Package, auto_number: bool) -> Result<()> {
        let mut next = if auto_number { self.ports.packages.count_packages(ctx.tenant, package.component_id).await? + 1 } else { 0 };
        for _ in 0..NUMBERING_ATTEMPTS {
            if auto_number {
                package.version = VersionLabel::number(next);
                next += 1;
            }
            let audit = AuditDraft::by(ctx, package.id, PackageCreated::of(package));
            match self.ports.packages.create_package(ctx.tenant, package, audit).await {
                Err(DomainError::Refused(Refusal::Taken(Taken::PackageVersion(_)))) if auto_number => {
                    // Others took numbers meanwhile: jump past all of them.
                    next = next.max(self.ports.packages.count_packages(ctx.tenant, package.component_id).await? + 1);
                    continue;
                }
                Err(DomainError::Refused(Refusal::Taken(Taken::PackageVersion(_)))) => return Err(version_exists(&package.version)),
                other => return other,
            }
        }
        Err(DomainError::conflict("version_exists", "could not find a free version number; give one explicitly"))
    }

    pub async fn get_package(&self, ctx: &TenantCtx, id: PackageId) -> Result<PackageDetails> {
        ctx.require(Permission::Read)?;
        let package = self.ports.packages.get_package(ctx.tenant, id).await?.ok_or(DomainError::not_found("package"))?;
        let ids: Vec<ComponentId> = package.manifest.components.iter().map(|e| e.id).collect();
        let current = self.ports.components.get_components(ctx.tenant, &ids).await?.into_iter().map(|c| (c.id, c)).collect();
        let outdated_components = outdated(&package.manifest, &current);
        Ok(PackageDetails { package, outdated_components })
    }

    pub async fn list_packages(&self, ctx: &TenantCtx, component: Option<ComponentId>, page: &PageRequest) -> Result<Page<Package>> {
        ctx.require(Permission::Read)?;
        self.ports.packages.list_packages(ctx.tenant, component, page).await
    }

    /// A short-lived URL for the archive; only ever for this tenant's package,
    /// and never for a deleted one (404, as if it were gone).
    pub async fn package_download(&self, ctx: &TenantCtx, id: PackageId) -> Result<PresignedUrl> {
        let details = self.get_package(ctx, id).await?;
        if details.package.deleted {
            return Err(DomainError::not_found("package"));
        }
        self.ports.blobs.presign_package_download(ctx.tenant, details.package.id, DOWNLOAD_TTL).await
    }

    /// Marks the package deleted (its archive stays, for audit); refused while it is active anywhere.
    #[tracing::instrument(skip(self, ctx), fields(tenant_id = %ctx.tenant, request_id = %ctx.request_id))]
    pub async fn delete_package(&self, ctx: &TenantCtx, id: PackageId) -> Result<()> {
        let details = self.get_package(ctx, id).await?;
        ctx.require(Permission::ManagePackages)?;
        if self.ports.package_activity.is_package_active(ctx.tenant, id).await? {
            return Err(DomainError::conflict(
                "package_active",
                "the package is the active version in an environment; deploy another version or undeploy it first",
            ));
        }
        if details.package.deleted {
            return Ok(());
        }
        let audit = AuditDraft::by(ctx, id, PackageDeleted { version: details.package.version.clone() });
        self.ports.packages.mark_package_deleted(ctx.tenant, id, audit).await
    }
}
