use super::{DynamoStore, map_tx, to_item};
use crate::keys;
use async_trait::async_trait;
use berth_domain::Result;
use berth_domain::audit::AuditDraft;
use berth_domain::extension::EnvironmentExtensions;
use berth_domain::ids::{EnvironmentId, TenantId};
use berth_domain::ports::ExtensionStore;
use berth_domain::refusal::{Entity, Refusal};
use serde::{Deserialize, Serialize};

/// One item per environment: every component's values, secrets only sealed,
/// and the one `version` every write bumps.
#[derive(Serialize, Deserialize)]
struct ExtensionsRecord {
    pk: String,
    sk: String,
    #[serde(flatten)]
    values: EnvironmentExtensions,
}

#[async_trait]
impl ExtensionStore for DynamoStore {
    async fn get_extensions(&self, tenant: TenantId, env: EnvironmentId) -> Result<EnvironmentExtensions> {
        Ok(self.get::<ExtensionsRecord>(keys::extensions(tenant, env)).await?.map(|r| r.values).unwrap_or_default())
    }

    async fn put_extensions(&self, tenant: TenantId, env: EnvironmentId, after: &EnvironmentExtensions, expected: u64, audit: AuditDraft) -> Result<()> {
        let (pk, sk) = keys::extensions(tenant, env);
        let item = to_item(&ExtensionsRecord { pk, sk, values: after.clone() })?;
        let put = if expected == 0 {
            self.put(item, "attribute_not_exists(pk)")?
        } else {
            let put = aws_sdk_dynamodb::types::Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("#version = :expected")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":expected", super::n(expected))
                .build()
                .map_err(crate::unexpected)?;
            aws_sdk_dynamodb::types::TransactWriteItem::builder().put(put).build()
        };
        map_tx(self.write_with_audit(tenant, vec![put], audit).await, |_| Refusal::Stale(Entity::Extensions).into())
    }
}
