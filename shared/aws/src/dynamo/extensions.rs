use super::{DynamoStore, key_of, map_tx, s, sdk_error, to_item};
use crate::keys;
use async_trait::async_trait;
use berth_domain::Result;
use berth_domain::audit::AuditDraft;
use berth_domain::extension::{ConnectionTest, ConnectionTestStatus, EnvironmentExtensions};
use berth_domain::ids::{ComponentId, EnvironmentId, RuntimeId, TenantId};
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

/// The latest connection test of a component in an environment.
#[derive(Serialize, Deserialize)]
struct ConnectionTestRecord {
    pk: String,
    sk: String,
    #[serde(flatten)]
    test: ConnectionTest,
}

impl ConnectionTestRecord {
    fn new(tenant: TenantId, test: &ConnectionTest) -> Self {
        let (pk, sk) = keys::connection_test(tenant, test.environment_id, test.component_id);
        Self { pk, sk, test: test.clone() }
    }
}

/// An environment's extension values item as read.
pub(super) fn extensions_of(item: super::Item) -> Result<EnvironmentExtensions> {
    Ok(super::from_item::<ExtensionsRecord>(item)?.values)
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

    async fn put_connection_test(&self, tenant: TenantId, test: &ConnectionTest) -> Result<()> {
        let item = to_item(&ConnectionTestRecord::new(tenant, test))?;
        self.client.put_item().table_name(&self.table).set_item(Some(item)).send().await.map_err(sdk_error)?;
        Ok(())
    }

    async fn finish_connection_test(&self, tenant: TenantId, test: &ConnectionTest) -> Result<()> {
        let item = to_item(&ConnectionTestRecord::new(tenant, test))?;
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("id = :id AND #status = :pending")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":id", s(test.id.to_string()))
            .expression_attribute_values(":pending", s("pending"))
            .send()
            .await;
        match put {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Err(Refusal::Stale(Entity::Extensions).into()),
            Err(e) => Err(sdk_error(e)),
        }
    }

    async fn get_connection_test(&self, tenant: TenantId, env: EnvironmentId, component: ComponentId) -> Result<Option<ConnectionTest>> {
        Ok(self.get::<ConnectionTestRecord>(keys::connection_test(tenant, env, component)).await?.map(|r| r.test))
    }

    /// One small partition per tenant (a test per environment and component at most), read whole.
    async fn pending_connection_tests(&self, tenant: TenantId, runtime: RuntimeId) -> Result<Vec<ConnectionTest>> {
        let all = self.query_all::<ConnectionTestRecord>(&keys::connection_tests(tenant)).await?;
        Ok(all.into_iter().map(|r| r.test).filter(|t| t.runtime_id == runtime && t.status == ConnectionTestStatus::Pending).collect())
    }
}

impl DynamoStore {
    /// Removes a deleted environment's connection tests, after the delete:
    /// one item per component tested, too many to bound its transaction. One
    /// left behind by a failure here is inert (an environment id is never
    /// reused, and every route reads the environment first), so it is logged,
    /// not retried.
    pub(super) async fn forget_connection_tests(&self, tenant: TenantId, env: EnvironmentId) {
        let result: Result<()> = async {
            let all = self.query_all::<ConnectionTestRecord>(&keys::connection_tests(tenant)).await?;
            for record in all.into_iter().filter(|r| r.test.environment_id == env) {
                let key = keys::connection_test(tenant, env, record.test.component_id);
                self.client.delete_item().table_name(&self.table).set_key(Some(key_of(key))).send().await.map_err(sdk_error)?;
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, tenant_id = %tenant, environment_id = %env, "could not remove a deleted environment's connection tests");
        }
    }
}
