use super::{DynamoStore, n, s, to_item};
use crate::keys;
use async_trait::async_trait;
use berth_domain::Result;
use berth_domain::ids::{TenantId, UploadId};
use berth_domain::ports::UploadStore;
use berth_domain::upload::{Upload, UploadState};
use serde::{Deserialize, Serialize};

/// The upload, its state's token (what a conditional update compares) and the TTL.
#[derive(Serialize, Deserialize)]
struct UploadRecord {
    pk: String,
    sk: String,
    upload: Upload,
    state: String,
    /// `keys::TTL_ATTRIBUTE`: epoch seconds.
    expires_at: i64,
}

fn record(tenant: TenantId, upload: &Upload) -> UploadRecord {
    let (pk, sk) = keys::upload(tenant, upload.id);
    UploadRecord { pk, sk, upload: upload.clone(), state: upload.state.token(), expires_at: upload.expires_at.timestamp() }
}

#[async_trait]
impl UploadStore for DynamoStore {
    async fn create_upload(&self, tenant: TenantId, upload: &Upload) -> Result<()> {
        let item = to_item(&record(tenant, upload))?;
        self.client.put_item().table_name(&self.table).set_item(Some(item)).send().await.map_err(crate::sdk_error)?;
        Ok(())
    }

    async fn get_upload(&self, tenant: TenantId, id: UploadId) -> Result<Option<Upload>> {
        // TTL deletes lazily: an expired upload may still be there.
        let now = chrono::Utc::now();
        Ok(self.get::<UploadRecord>(keys::upload(tenant, id)).await?.map(|r| r.upload).filter(|u| !u.expired(now)))
    }

    async fn update_upload(&self, tenant: TenantId, upload: &Upload, from: &UploadState) -> Result<bool> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&record(tenant, upload))?))
            .condition_expression("#state = :from AND #ttl > :now")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#ttl", keys::TTL_ATTRIBUTE)
            .expression_attribute_values(":from", s(from.token()))
            .expression_attribute_values(":now", n(chrono::Utc::now().timestamp()))
            .send()
            .await;
        super::applied(put)
    }
}
