use super::DynamoStore;
use crate::keys;
use async_trait::async_trait;
use berth_domain::ids::{ChangeRequestId, DeploymentId, TenantId};
use berth_domain::page::{Page, PageRequest};
use berth_domain::ports::{AwaitingDecision, DecisionInbox};
use berth_domain::{DomainError, Result};
use serde::Deserialize;

/// A deployment or change request as the inbox index lists it: its key there
/// says which (`<created_at>#D#<id>` or `<created_at>#C#<id>`).
#[derive(Deserialize)]
struct Listed {
    gsi1sk: String,
}

impl Listed {
    fn entry(&self) -> Result<AwaitingDecision> {
        let bad = || DomainError::unexpected(format!("not an inbox key: {}", self.gsi1sk));
        let (kind, id) = self.gsi1sk.rsplit_once('#').ok_or_else(bad)?;
        if kind.ends_with("#D") {
            Ok(AwaitingDecision::Deployment(id.parse::<DeploymentId>().map_err(|_| bad())?))
        } else if kind.ends_with("#C") {
            Ok(AwaitingDecision::ChangeRequest(id.parse::<ChangeRequestId>().map_err(|_| bad())?))
        } else {
            Err(bad())
        }
    }
}

#[async_trait]
impl DecisionInbox for DynamoStore {
    async fn awaiting_decision(&self, tenant: TenantId, page: &PageRequest) -> Result<Page<AwaitingDecision>> {
        let (listed, next_cursor) = self.query_page_ordered::<Listed>(&keys::awaiting_decision(tenant), Some(keys::GSI1), None, page, true).await?;
        Ok(Page { items: listed.iter().map(Listed::entry).collect::<Result<_>>()?, next_cursor })
    }
}
