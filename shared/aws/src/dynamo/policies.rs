use super::{DynamoStore, map_tx, to_item};
use crate::keys;
use async_trait::async_trait;
use berth_domain::Result;
use berth_domain::audit::AuditDraft;
use berth_domain::ids::{EnvironmentId, TenantId};
use berth_domain::policy::Policy;
use berth_domain::ports::PolicyStore;
use berth_domain::refusal::{Entity, Refusal};
use berth_domain::values::Version;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct PolicyRecord {
    pk: String,
    sk: String,
    #[serde(flatten)]
    policy: Policy,
}

/// A policy item as read.
pub(super) fn policy_of(item: super::Item) -> Result<Policy> {
    Ok(super::from_item::<PolicyRecord>(item)?.policy)
}

#[async_trait]
impl PolicyStore for DynamoStore {
    async fn get_policy(&self, tenant: TenantId, env: EnvironmentId) -> Result<Option<Policy>> {
        Ok(self.get::<PolicyRecord>(keys::policy(tenant, env)).await?.map(|r| r.policy))
    }

    async fn put_policy(&self, tenant: TenantId, env: EnvironmentId, policy: &Policy, expected: Version, audit: AuditDraft) -> Result<()> {
        let (pk, sk) = keys::policy(tenant, env);
        let item = to_item(&PolicyRecord { pk, sk, policy: policy.clone() })?;
        let put = if expected.0 == 0 {
            self.put(item, "attribute_not_exists(pk)")?
        } else {
            let put = aws_sdk_dynamodb::types::Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("#version = :expected")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":expected", super::n(expected.0))
                .build()
                .map_err(crate::unexpected)?;
            aws_sdk_dynamodb::types::TransactWriteItem::builder().put(put).build()
        };
        map_tx(self.write_with_audit(tenant, vec![put], audit).await, |_| Refusal::Stale(Entity::Policy).into())
    }
}
