use super::{DynamoStore, key_of, to_item};
use crate::keys;
use crate::{sdk_error, service_error, unexpected};
use async_trait::async_trait;
use base64::Engine;
use berth_domain::Result;
use berth_domain::ports::{IdempotencyScope, IdempotencyStore, Reservation, StoredResponse};
use serde::{Deserialize, Serialize};

use berth_domain::ports::{IDEMPOTENCY_KEEP_SECS as KEEP_FOR_SECS, IDEMPOTENCY_TAKEOVER_SECS as STALE_PENDING_SECS};

#[derive(Serialize, Deserialize)]
struct IdempotencyRecord {
    pk: String,
    sk: String,
    fingerprint: String,
    /// `pending` or `done`
    state: String,
    created_at: i64,
    expires_at: i64,
    #[serde(default)]
    status: u16,
    #[serde(default)]
    headers: Vec<(String, String)>,
    /// base64 of the response body
    #[serde(default)]
    body: String,
}

#[async_trait]
impl IdempotencyStore for DynamoStore {
    async fn reserve(&self, scope: IdempotencyScope, key: &str, fingerprint: &str) -> Result<Reservation> {
        let (pk, sk) = keys::idempotency(scope, key);
        let now = chrono::Utc::now().timestamp();
        let record = IdempotencyRecord {
            pk: pk.clone(),
            sk: sk.clone(),
            fingerprint: fingerprint.to_string(),
            state: "pending".into(),
            created_at: now,
            expires_at: now + KEEP_FOR_SECS,
            status: 0,
            headers: vec![],
            body: String::new(),
        };
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&record)?))
            // New, expired, or a pending reservation abandoned by a crashed request.
            .condition_expression("attribute_not_exists(pk) OR expires_at < :now OR (#state = :pending AND created_at < :stale)")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":now", super::n(now))
            .expression_attribute_values(":pending", super::s("pending"))
            .expression_attribute_values(":stale", super::n(now - STALE_PENDING_SECS))
            .send()
            .await;
        match put {
            Ok(_) => return Ok(Reservation::Reserved),
            Err(e) => {
                let e = e.into_service_error();
                if !e.is_conditional_check_failed_exception() {
                    return Err(service_error(e));
                }
            }
        }
        let existing: Option<IdempotencyRecord> = self.get((pk, sk)).await?;
        let Some(existing) = existing else {
            // Expired between the two calls: let the caller try again as new.
            return Ok(Reservation::InProgress { fingerprint: fingerprint.to_string() });
        };
        if existing.state == "done" {
            let body = base64::engine::general_purpose::STANDARD.decode(&existing.body).map_err(unexpected)?;
            Ok(Reservation::Completed {
                fingerprint: existing.fingerprint,
                response: StoredResponse { status: existing.status, headers: existing.headers, body },
            })
        } else {
            Ok(Reservation::InProgress { fingerprint: existing.fingerprint })
        }
    }

    async fn complete(&self, scope: IdempotencyScope, key: &str, fingerprint: &str, response: &StoredResponse) -> Result<()> {
        let (pk, sk) = keys::idempotency(scope, key);
        let now = chrono::Utc::now().timestamp();
        let record = IdempotencyRecord {
            pk,
            sk,
            fingerprint: fingerprint.to_string(),
            state: "done".into(),
            created_at: now,
            expires_at: now + KEEP_FOR_SECS,
            status: response.status,
            headers: response.headers.clone(),
            body: base64::engine::general_purpose::STANDARD.encode(&response.body),
        };
        self.client.put_item().table_name(&self.table).set_item(Some(to_item(&record)?)).send().await.map_err(sdk_error)?;
        Ok(())
    }

    async fn release(&self, scope: IdempotencyScope, key: &str) -> Result<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_of(keys::idempotency(scope, key))))
            .condition_expression("#state = :pending")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":pending", super::s("pending"))
            .send()
            .await
            .map(|_| ())
            .or_else(|e| {
                let e = e.into_service_error();
                if e.is_conditional_check_failed_exception() { Ok(()) } else { Err(service_error(e)) }
            })
    }
}
