//! Deploying a component's latest revision in one step (Boomi's "deploy
//! latest"): the newest package is reused when it is up to date, else the
//! latest revision is packaged first, exactly as `POST /v1/packages` does.

use super::{Berth, NewDeployment, NewPackage};
use crate::Result;
use crate::context::{Permission, TenantCtx};
use crate::deployment::Deployment;
use crate::ids::{ComponentId, EnvironmentId};
use crate::package::Package;
use crate::page::PageRequest;
use crate::policy::Change;
use crate::rollout::RolloutRequest;
use chrono::{DateTime, Utc};

/// `POST /v1/deployments` with `latest_revision: true`.
#[derive(Clone, Debug)]
pub struct NewLatestDeployment {
    pub component_id: ComponentId,
    pub environment_id: EnvironmentId,
    pub notes: String,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub hold_if_frozen: bool,
    pub commit: Option<String>,
    pub override_quarantine: bool,
    /// How it goes out, if not as the policy says (only more carefully).
    pub rollout: Option<RolloutRequest>,
}

/// The deployment, the package it deploys, and whether that package was made for it.
#[derive(Clone, Debug)]
pub struct LatestDeployment {
    pub deployment: Deployment,
    pub package: Package,
    pub package_created: bool,
}

impl Berth {
    /// Deploys the component's latest revision: its newest (not deleted)
    /// package when that package is not outdated (neither the component nor a
    /// bundled child was revised since), else a new package of the latest
    /// revision (`create_package`: same rules, same audit). The deployment then
    /// passes the same validation and policy as any deploy.
    #[tracing::instrument(skip(self, ctx, input), fields(tenant_id = %ctx.tenant, request_id = %ctx.request_id, component_id = %input.component_id))]
    pub async fn deploy_latest_revision(&self, ctx: &TenantCtx, input: NewLatestDeployment) -> Result<LatestDeployment> {
        let env = self.get_environment(ctx, input.environment_id).await?;
        self.get_component(ctx, input.component_id).await?;
        ctx.require(Permission::Deploy)?;
        // Refuse what the policy forbids before packaging anything for it.
        let policy = self.policy_of(ctx.tenant, env.id).await?;
        policy.judge(Change::Deploy, &ctx.roles, Utc::now(), input.hold_if_frozen).enforce()?;
        if let Some(rollout) = &input.rollout {
            self.rollout_over(ctx, &policy, env.id, rollout).await?;
        }
        let (package, package_created) = match self.up_to_date_package(ctx, input.component_id).await? {
            Some(package) => (package, false),
            None => {
                let new =
                    NewPackage { component_id: input.component_id, version: None, notes: input.notes.clone(), shareable: false, commit: input.commit.clone() };
                (self.create_package(ctx, new).await?, true)
            }
        };
        // A package that went to the package builder is waited for, not refused.
        let deployment = self
            .create_deployment_as(
                ctx,
                NewDeployment {
                    package_id: package.id,
                    environment_id: env.id,
                    notes: input.notes,
                    scheduled_at: input.scheduled_at,
                    hold_if_frozen: input.hold_if_frozen,
                    commit: input.commit,
                    override_quarantine: input.override_quarantine,
                    rollout: input.rollout,
                },
                true,
            )
            .await?;
        Ok(LatestDeployment { deployment, package, package_created })
    }

    /// The component's newest live package, if it holds the latest revision of
    /// the component and of everything it bundles (what `/active` calls not
    /// outdated): the one reuse rule of a latest-revision deploy and of a
    /// `package_and_deploy` webhook.
    pub(crate) async fn up_to_date_package(&self, ctx: &TenantCtx, component: ComponentId) -> Result<Option<Package>> {
        let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
        loop {
            let batch = self.ports.packages.list_packages(ctx.tenant, Some(component), &page).await?;
            if let Some(newest) = batch.items.into_iter().find(|p| !p.deleted) {
                let details = self.get_package(ctx, newest.id).await?;
                return Ok(details.outdated_components.is_empty().then_some(details.package));
            }
            match batch.next_cursor {
                Some(c) => page.cursor = Some(c),
                None => return Ok(None),
            }
        }
    }
}
