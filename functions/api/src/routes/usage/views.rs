//! The response of `GET /v1/usage`.

use berth_domain::usecases::{Allowance, Usage};
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"connection_licenses": {"test": {"used": 1, "limit": 10, "connections": [{"component_id": "8f3b2a10-6c4d-4e8f-b1a2-3c4d5e6f7a8b", "environments": ["0e7c2f4a-8b1d-4c6e-9f3a-2d5b7c9e1f40"]}]}, "production": {"used": 0, "limit": 10, "connections": []}}, "runtimes": {"used": 2, "limit": 10}, "environments": {"used": 2, "limit": 10}}))]
pub struct UsageView {
    /// By environment classification (`test`, `production`).
    pub connection_licenses: BTreeMap<String, LicenceUseView>,
    pub runtimes: AllowanceView,
    pub environments: AllowanceView,
}

#[derive(Serialize, ToSchema)]
pub struct AllowanceView {
    pub used: u64,
    pub limit: u32,
}

impl From<Allowance> for AllowanceView {
    fn from(a: Allowance) -> Self {
        Self { used: a.used, limit: a.limit }
    }
}

#[derive(Serialize, ToSchema)]
pub struct LicenceUseView {
    pub used: u64,
    pub limit: u32,
    /// Each connection component counted: active (or being deployed) in these environments.
    pub connections: Vec<LicensedConnectionView>,
}

#[derive(Serialize, ToSchema)]
pub struct LicensedConnectionView {
    pub component_id: Uuid,
    pub environments: Vec<Uuid>,
}

impl From<&Usage> for UsageView {
    fn from(u: &Usage) -> Self {
        let connection_licenses = u
            .connection_licenses
            .iter()
            .map(|l| {
                let classification = serde_json::to_value(l.classification).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
                let connections = l
                    .connections
                    .iter()
                    .map(|(c, envs)| LicensedConnectionView { component_id: c.as_uuid(), environments: envs.iter().map(|e| e.as_uuid()).collect() })
                    .collect();
                (classification, LicenceUseView { used: l.allowance.used, limit: l.allowance.limit, connections })
            })
            .collect();
        Self { connection_licenses, runtimes: u.runtimes.into(), environments: u.environments.into() }
    }
}
