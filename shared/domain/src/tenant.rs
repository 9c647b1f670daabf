use crate::ids::TenantId;
use crate::values::{Name, Plan, Version};
use chrono::{DateTime, Utc};

/// An account and what its plan allows.
#[derive(Clone, Debug, PartialEq)]
pub struct Tenant {
    pub id: TenantId,
    pub name: Name,
    pub plan: Plan,
    /// A suspended tenant can read but not change anything; its agents get no jobs.
    pub suspended: bool,
    pub version: Version,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A partial change to a tenant's plan: absent fields keep their value.
#[derive(Clone, Debug, Default)]
pub struct PlanPatch {
    pub connection_licenses: Option<u32>,
    pub max_runtimes: Option<u32>,
    pub max_environments: Option<u32>,
}

#[derive(Clone, Debug, Default)]
pub struct TenantPatch {
    pub name: Option<Name>,
    pub plan: Option<PlanPatch>,
    pub suspended: Option<bool>,
}

impl Tenant {
    pub fn new(name: Name, plan: Plan, now: DateTime<Utc>) -> Self {
        Self { id: TenantId::new(), name, plan, suspended: false, version: Version::FIRST, created_at: now, updated_at: now }
    }

    /// The tenant after `patch`, with its version bumped.
    pub fn patched(&self, patch: TenantPatch, now: DateTime<Utc>) -> crate::Result<Tenant> {
        let mut next = self.clone();
        if let Some(name) = patch.name {
            next.name = name;
        }
        if let Some(p) = patch.plan {
            next.plan = Plan::new(
                p.connection_licenses.unwrap_or(self.plan.connection_licenses),
                p.max_runtimes.unwrap_or(self.plan.max_runtimes),
                p.max_environments.unwrap_or(self.plan.max_environments),
            )?;
        }
        if let Some(s) = patch.suspended {
            next.suspended = s;
        }
        next.version = self.version.next();
        next.updated_at = now;
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patching_a_plan_keeps_the_limits_not_named() {
        let t = Tenant::new(Name::parse("Acme").unwrap(), Plan::new(3, 4, 5).unwrap(), Utc::now());
        let patch = TenantPatch { plan: Some(PlanPatch { max_runtimes: Some(9), ..Default::default() }), ..Default::default() };
        let next = t.patched(patch, Utc::now()).unwrap();
        assert_eq!(next.plan, Plan::new(3, 9, 5).unwrap());
        assert_eq!(next.version, Version(2));
    }

    #[test]
    fn suspending_a_tenant_sets_the_flag() {
        let t = Tenant::new(Name::parse("Acme").unwrap(), Plan::default(), Utc::now());
        let next = t.patched(TenantPatch { suspended: Some(true), ..Default::default() }, Utc::now()).unwrap();
        assert!(next.suspended);
    }
}
