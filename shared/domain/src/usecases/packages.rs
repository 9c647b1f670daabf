use super::Berth;
use crate::audit::AuditDraft;
use crate::audit::summary::{PackageBuildFailed, PackageCreated, PackageDeleted};
use crate::context::{Actor, Permission, TenantCtx};
use crate::deployment::DeploymentStatus;
use crate::ids::{ComponentId, PackageId, TenantId};
use crate::package::{MAX_NOTES_CHARS, OutdatedComponent, Package, PackageStatus, VersionLabel, outdated, snapshot};
use crate::page::{Page, PageRequest};
use crate::ports::DeploymentFilter;
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
    /// immutable package. Up to `Settings::sync_package_max_bytes` of bundled
    /// content, the archive is written at once, then the package item (with its
    /// unique version) in one transaction; if that fails, the archive is
    /// removed again, so nothing is left half-written. Above it, the package is
    /// reserved `building` (version taken, manifest fixed, `package.created`
    /// audited) and queued for the package builder (`build_package`).
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
        let mut package = Package {
            id,
            component_id: root.id,
            version: input.version.clone().unwrap_or_else(|| VersionLabel::number(1)),
            notes: input.notes,
            shareable: input.shareable,
            deleted: false,
            status: PackageStatus::Building,
            failure: None,
            digest: None,
            size: 0,
            manifest,
            requirements,
            commit: input.commit,
            created_by: ctx.actor.id.clone(),
            created_at: Utc::now(),
        };
        if package.content_bytes() > self.settings.sync_package_max_bytes {
            self.store_package(ctx, &mut package, input.version.is_none()).await?;
            if let Err(e) = self.ports.jobs.enqueue_package_build(ctx.tenant, id).await {
                // Nothing would ever build it: fail it now, so nobody waits for it.
                tracing::error!(error = %e, package_id = %id, "could not queue the package's build");
                self.fail_package_build(ctx.tenant, id, "its build could not be queued; create the package again").await?;
                return Err(e);
            }
            return Ok(package);
        }
        let archive = self.ports.blobs.write_package_archive(ctx.tenant, id, &package.manifest).await?;
        package = package.built(archive.digest, archive.size);
        let result = self.store_package(ctx, &mut package, input.version.is_none()).await;
        if result.is_err() {
            if let Err(cleanup) = self.ports.blobs.delete_package_archive(ctx.tenant, id).await {
                tracing::error!(error = %cleanup, package_id = %id, "could not remove the archive of a package that was not created");
            }
        }
        result.map(|()| package)
    }

    /// The package builder (the package-builds queue consumer): writes the
    /// archive of a package reserved `building` and makes it ready with its
    /// digest and size. Every message may arrive twice, or after a crash: a
    /// package no longer building is left alone, and an archive a crashed
    /// delivery left behind is written again (the archive of a manifest is
    /// the same bytes every time, so the digest converges). Content that is
    /// gone fails the package (`package.build_failed`); any other error is
    /// returned, for the message to be retried.
    #[tracing::instrument(skip(self), fields(tenant_id = %tenant, package_id = %id))]
    pub async fn build_package(&self, tenant: TenantId, id: PackageId) -> Result<()> {
        let Some(package) = self.ports.packages.get_package(tenant, id).await? else {
            tracing::warn!("no such package: nothing to build");
            return Ok(());
        };
        if package.status != PackageStatus::Building {
            return Ok(());
        }
        let archive = match self.ports.blobs.write_package_archive(tenant, id, &package.manifest).await {
            Ok(archive) => archive,
            Err(DomainError::Refused(Refusal::ArchiveExists)) => {
                // An earlier delivery wrote it. If it also ended the build, this one is a duplicate.
                match self.ports.packages.get_package(tenant, id).await? {
                    Some(p) if p.status == PackageStatus::Building => {}
                    _ => return Ok(()),
                }
                self.ports.blobs.delete_package_archive(tenant, id).await?;
                self.ports.blobs.write_package_archive(tenant, id, &package.manifest).await?
            }
            Err(DomainError::Refused(Refusal::ContentMissing(digest))) => {
                return self.fail_package_build(tenant, id, &format!("bundled content {} is missing", digest.as_str())).await;
            }
            Err(e) => return Err(e),
        };
        match self.ports.packages.finish_package_build(tenant, &package.built(archive.digest, archive.size), None).await {
            Ok(()) => {
                tracing::info!(size = archive.size, "package built");
                self.wake_waiting_deployments(tenant, &package).await;
                Ok(())
            }
            // Another delivery ended the build first.
            Err(DomainError::Refused(Refusal::Stale(_) | Refusal::Missing(_))) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Queues again the deployments recorded waiting for `package`, now that
    /// its build ended: the dispatcher sends them out, or fails them
    /// `package_failed`. One missed here (a failure to list or send) is queued
    /// again by the sweeper, as any queued deployment not picked up.
    async fn wake_waiting_deployments(&self, tenant: TenantId, package: &Package) {
        let filter = DeploymentFilter { component: Some(package.component_id), status: Some(DeploymentStatus::Queued), ..DeploymentFilter::default() };
        let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
        loop {
            let batch = match self.ports.deployments.list_deployments(tenant, &filter, &page).await {
                Ok(batch) => batch,
                Err(e) => {
                    tracing::warn!(error = %e, "could not list the deployments waiting for the package; the sweeper will queue them");
                    return;
                }
            };
            for d in batch.items.iter().filter(|d| d.waiting_for_package && d.package_id == package.id) {
                if let Err(e) = self.ports.jobs.enqueue_deployment(tenant, d.id).await {
                    tracing::warn!(error = %e, deployment_id = %d.id, "could not queue a deployment waiting for the package; the sweeper will");
                }
            }
            match batch.next_cursor {
                Some(c) => page.cursor = Some(c),
                None => return,
            }
        }
    }

    /// Fails a package still `building` for `reason` (audited
    /// `package.build_failed`); nothing happens to one that ended already.
    pub async fn fail_package_build(&self, tenant: TenantId, id: PackageId, reason: &str) -> Result<()> {
        let Some(package) = self.ports.packages.get_package(tenant, id).await? else { return Ok(()) };
        if package.status != PackageStatus::Building {
            return Ok(());
        }
        let audit = AuditDraft::by(&Actor::system("packager"), id, PackageBuildFailed { version: package.version.clone(), reason: reason.to_string() });
        match self.ports.packages.finish_package_build(tenant, &package.build_failed(reason), Some(audit)).await {
            Ok(()) => {
                tracing::warn!(package_id = %id, reason, "package build failed");
                self.wake_waiting_deployments(tenant, &package).await;
                Ok(())
            }
            Err(DomainError::Refused(Refusal::Stale(_) | Refusal::Missing(_))) => Ok(()),
            Err(e) => Err(e),
        }
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
        details.package.ready_digest()?;
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
