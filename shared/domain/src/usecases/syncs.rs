//! Late attach: a runtime attached to an environment that already runs
//! components is sent a `sync` for each active version, so it converges on
//! what the environment runs without anyone deploying again.

use super::Berth;
use crate::context::{Actor, TenantCtx};
use crate::deployment::{ActiveVersion, Deployment, DeploymentKind, DeploymentStatus};
use crate::ids::{ComponentId, EnvironmentId, PackageId, RuntimeId, TenantId};
use crate::page::PageRequest;
use crate::policy::Clearance;
use crate::ports::DeploymentFilter;
use crate::runtime::Runtime;
use crate::{DomainError, Result};
use chrono::Utc;
use std::collections::{HashMap, HashSet};

/// How many pages of deployments (newest first) a runtime's detail reads at
/// most to find its syncs; syncs older than that are not shown.
const SYNC_SCAN_PAGES: usize = 10;

impl Berth {
    /// After an attach: the runtime is sent a `sync` of every version the
    /// environment runs. Each takes no lock and waits for no approval (the
    /// version was approved for the environment); `clearance` holds it to a
    /// freeze window's end when the attach was made inside one.
    pub(crate) async fn after_attach(&self, ctx: &TenantCtx, env: EnvironmentId, runtime: RuntimeId, clearance: Clearance) -> Result<Vec<Deployment>> {
        let clearance = Clearance { required_approvals: 0, ..clearance };
        let mut syncs = vec![];
        for active in self.ports.deployments.active_versions(ctx.tenant, env).await? {
            let package = self.ports.packages.get_package(ctx.tenant, active.package_id).await?.ok_or(DomainError::not_found("package"))?;
            let sync = Deployment::new_sync(&active, &package, &ctx.actor.id, runtime).cleared(clearance, None);
            self.record_and_queue(ctx, &sync).await?;
            syncs.push(sync);
        }
        Ok(syncs)
    }

    /// Whether a sync about to be handed out to `runtime` would bring back a
    /// version the environment no longer runs (a deployment that was already
    /// under way when the runtime was attached succeeded since), or one a
    /// deployment under way on that runtime is replacing: why, if so. In the
    /// first case the runtime is sent a sync of the version now active, unless
    /// the deployment that made it active ran there.
    pub(crate) async fn stale_sync(&self, tenant: TenantId, sync: &Deployment, runtime: RuntimeId) -> Result<Option<&'static str>> {
        let active = self.ports.deployments.active_version(tenant, sync.environment_id, sync.component_id).await?;
        match active {
            None => return Ok(Some("the environment no longer runs the component")),
            Some(active) if active.package_id != sync.package_id => {
                if self.ports.deployments.get_target(tenant, active.deployment_id, runtime).await?.is_none() {
                    self.resync(tenant, &active, runtime).await?;
                }
                return Ok(Some("the environment runs another version now"));
            }
            Some(_) => {}
        }
        if let Some(under_way) = self.ports.deployments.in_flight(tenant, sync.environment_id, sync.component_id).await?
            && self.ports.deployments.get_target(tenant, under_way, runtime).await?.is_some()
        {
            return Ok(Some("a deployment under way on this runtime replaces the version"));
        }
        Ok(None)
    }

    /// Sends `runtime` a sync of `active` on the system's behalf, held to the
    /// end of a freeze window it falls in, like the attach's own syncs.
    async fn resync(&self, tenant: TenantId, active: &ActiveVersion, runtime: RuntimeId) -> Result<()> {
        let ctx =
            TenantCtx { tenant, actor: Actor::system("sync"), roles: vec![], request_id: String::new(), client_request_id: None, tenant_suspended: false };
        let package = self.ports.packages.get_package(tenant, active.package_id).await?.ok_or(DomainError::not_found("package"))?;
        let hold_until = self.policy_of(tenant, active.environment_id).await?.frozen_until(Utc::now());
        let sync = Deployment::new_sync(active, &package, "system:sync", runtime)
            .cleared(Clearance { rollout: Default::default(), required_approvals: 0, hold_until }, None);
        self.record_and_queue(&ctx, &sync).await
    }

    /// The syncs sent to `runtime` that have not succeeded yet: for each
    /// version an environment it is attached to runs and its heartbeats do
    /// not report, the newest sync of that version to it, unless it succeeded.
    pub async fn runtime_syncing(&self, ctx: &TenantCtx, runtime: &Runtime) -> Result<Vec<Deployment>> {
        let mut missing: HashSet<(EnvironmentId, ComponentId, PackageId)> = HashSet::new();
        for env in &runtime.environments {
            for active in self.ports.deployments.active_versions(ctx.tenant, *env).await? {
                let runs_it = runtime.running.iter().any(|p| p.component_id == active.component_id.as_uuid() && p.digest == active.digest);
                if !runs_it {
                    missing.insert((active.environment_id, active.component_id, active.package_id));
                }
            }
        }
        if missing.is_empty() {
            return Ok(vec![]);
        }
        // Newest first: the first sync met for a version is its latest. A sync is
        // never older than its runtime, so the scan stops at the runtime's creation.
        let mut newest: HashMap<(EnvironmentId, ComponentId, PackageId), Deployment> = HashMap::new();
        let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
        for _ in 0..SYNC_SCAN_PAGES {
            let batch = self.ports.deployments.list_deployments(ctx.tenant, &DeploymentFilter::default(), &page).await?;
            let reached_creation = batch.items.iter().any(|d| d.created_at < runtime.created_at);
            for d in batch.items {
                let key = (d.environment_id, d.component_id, d.package_id);
                if d.kind == DeploymentKind::Sync && d.only_runtime == Some(runtime.id) && missing.contains(&key) {
                    newest.entry(key).or_insert(d);
                }
            }
            match batch.next_cursor {
                Some(cursor) if !reached_creation && newest.len() < missing.len() => page.cursor = Some(cursor),
                _ => break,
            }
        }
        let mut syncing: Vec<Deployment> = newest.into_values().filter(|d| d.status != DeploymentStatus::Succeeded).collect();
        syncing.sort_by_key(|d| d.id);
        Ok(syncing)
    }
}
