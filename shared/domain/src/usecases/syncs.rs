//! Late attach: a runtime attached to an environment that already runs
//! components is sent a `sync` for each active version, so it converges on
//! what the environment runs without anyone deploying again.

use super::Berth;
use crate::context::TenantCtx;
use crate::deployment::{Deployment, DeploymentKind, DeploymentStatus};
use crate::ids::{ComponentId, EnvironmentId, PackageId, RuntimeId};
use crate::page::PageRequest;
use crate::policy::Clearance;
use crate::ports::DeploymentFilter;
use crate::runtime::Runtime;
use crate::{DomainError, Result};
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
