//! What the tenant uses of its plan: connection licences per classification,
//! runtimes and environments. The licence count here is the one the deploy
//! check uses (`connections_in_use`), so the figure shown and the refusal
//! cannot disagree.

use super::Berth;
use crate::Result;
use crate::context::{Permission, TenantCtx};
use crate::ids::{ComponentId, EnvironmentId, TenantId};
use crate::page::PageRequest;
use crate::values::Classification;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The connection components holding licences in one classification: each
/// with the environments (of that classification) where it is active or
/// requested (a deployment in flight speaks for its connections already).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnectionsInUse {
    pub connections: BTreeMap<ComponentId, BTreeSet<EnvironmentId>>,
    /// The names of the environments named in `connections`.
    pub environment_names: HashMap<EnvironmentId, String>,
}

/// One limit of the plan and how much of it is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allowance {
    pub used: u64,
    pub limit: u32,
}

/// Connection licences of one classification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LicenceUse {
    pub classification: Classification,
    pub allowance: Allowance,
    /// Each connection counted, with the environments where it holds its licence.
    pub connections: BTreeMap<ComponentId, BTreeSet<EnvironmentId>>,
}

/// `GET /v1/usage`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Usage {
    /// Test first, then production.
    pub connection_licenses: Vec<LicenceUse>,
    pub runtimes: Allowance,
    pub environments: Allowance,
}

impl Berth {
    /// The one licence count: the distinct connections bundled by what is
    /// active, or in flight, in the tenant's environments of `classification`,
    /// leaving out the (environment, component) slot `replacing` (the slot a
    /// deployment being checked would take over).
    pub(crate) async fn connections_in_use(
        &self,
        tenant: TenantId,
        classification: Classification,
        replacing: Option<(EnvironmentId, ComponentId)>,
    ) -> Result<ConnectionsInUse> {
        // Two reads, whatever the number of environments: the environments (for their
        // classification and names) and the tenant's connection-holding slots.
        let (envs, slots) = futures::future::try_join(self.all_environments(tenant), self.ports.deployments.connection_slots(tenant)).await?;
        let names: HashMap<EnvironmentId, String> =
            envs.into_iter().filter(|e| e.classification == classification).map(|e| (e.id, e.name.to_string())).collect();
        let mut used = ConnectionsInUse::default();
        for slot in slots {
            let Some(name) = names.get(&slot.environment) else { continue };
            if replacing == Some((slot.environment, slot.component)) || slot.connections.is_empty() {
                continue;
            }
            used.environment_names.insert(slot.environment, name.clone());
            for c in slot.connections {
                used.connections.entry(c).or_default().insert(slot.environment);
            }
        }
        Ok(used)
    }

    /// Every environment of the tenant, page after page.
    async fn all_environments(&self, tenant: TenantId) -> Result<Vec<crate::environment::Environment>> {
        let mut all = vec![];
        let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
        loop {
            let envs = self.ports.environments.list_environments(tenant, &page).await?;
            all.extend(envs.items);
            match envs.next_cursor {
                Some(c) => page.cursor = Some(c),
                None => return Ok(all),
            }
        }
    }

    /// How much of its plan the tenant uses.
    pub async fn usage(&self, ctx: &TenantCtx) -> Result<Usage> {
        ctx.require(Permission::Read)?;
        let plan = self.tenant_of_token(ctx.tenant).await?.plan;
        let mut connection_licenses = vec![];
        for classification in [Classification::Test, Classification::Production] {
            let used = self.connections_in_use(ctx.tenant, classification, None).await?;
            connection_licenses.push(LicenceUse {
                classification,
                allowance: Allowance { used: used.connections.len() as u64, limit: plan.connection_licenses },
                connections: used.connections,
            });
        }
        let mut runtimes = 0u64;
        let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
        loop {
            let batch = self.ports.runtimes.list_runtimes(ctx.tenant, &page).await?;
            runtimes += batch.items.len() as u64;
            match batch.next_cursor {
                Some(c) => page.cursor = Some(c),
                None => break,
            }
        }
        let mut environments = 0u64;
        let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
        loop {
            let batch = self.ports.environments.list_environments(ctx.tenant, &page).await?;
            environments += batch.items.len() as u64;
            match batch.next_cursor {
                Some(c) => page.cursor = Some(c),
                None => break,
            }
        }
        Ok(Usage {
            connection_licenses,
            runtimes: Allowance { used: runtimes, limit: plan.max_runtimes },
            environments: Allowance { used: environments, limit: plan.max_environments },
        })
    }
}
