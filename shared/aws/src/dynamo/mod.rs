//! The DynamoDB adapter: one table, single-table design (key formats in
//! `crate::keys`). Every mutation is one transaction that also appends the
//! audit event and advances the tenant's audit head, so a change and its
//! audit record are written together or not at all.

mod api_keys;
pub(crate) mod audit;
mod change_requests;
mod components;
mod deployments;
mod environments;
mod extensions;
mod idempotency;
mod inbox;
mod packages;
mod policies;
mod runtimes;
mod subjects;
mod tenants;
mod uploads;
mod webhooks;

use crate::keys;
use crate::{sdk_error, service_error, unexpected};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::error::TransactionCanceledException;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, TransactWriteItem};
use base64::Engine;
use berth_domain::audit::{AuditDraft, AuditEvent, AuditHead};
use berth_domain::ids::TenantId;
use berth_domain::page::PageRequest;
use berth_domain::refusal::Refusal;
use berth_domain::{DomainError, Result};
use serde::de::DeserializeOwned;
use std::collections::HashMap;

pub(crate) type Item = HashMap<String, AttributeValue>;

/// Implements every storage port on one DynamoDB table.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

/// Why a transaction with an audit event did not commit.
#[derive(Debug)]
pub(crate) enum TxError {
    /// The condition of the caller's item at this index failed.
    Condition(usize),
    Other(DomainError),
}

impl From<DomainError> for TxError {
    fn from(e: DomainError) -> Self {
        TxError::Other(e)
    }
}

/// How often a write retries when another request advanced the audit head first.
const AUDIT_RETRIES: u32 = 40;

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
pub(crate) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn key_of((pk, sk): (String, String)) -> Item {
    HashMap::from([(keys::PK.to_string(), s(pk)), (keys::SK.to_string(), s(sk))])
}

/// An item from a record that holds its own keys.
pub(crate) fn to_item<T: serde::Serialize>(record: &T) -> Result<Item> {
    serde_dynamo::to_item(record).map_err(unexpected)
}

pub(crate) fn from_item<T: DeserializeOwned>(item: Item) -> Result<T> {
    serde_dynamo::from_item(item).map_err(unexpected)
}

impl DynamoStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub(crate) async fn get<T: DeserializeOwned>(&self, key: (String, String)) -> Result<Option<T>> {
        let out = self.client.get_item().table_name(&self.table).set_key(Some(key_of(key))).consistent_read(true).send().await.map_err(sdk_error)?;
        out.item.map(from_item).transpose()
    }

    /// Reads many items by key (any number; 100 per request), in no particular order.
    pub(crate) async fn batch_get<T: DeserializeOwned>(&self, keys: Vec<Item>) -> Result<Vec<T>> {
        self.batch_get_items(keys).await?.into_iter().map(from_item).collect()
    }

    /// `batch_get` of items of different kinds, as stored: the caller tells them apart by key.
    pub(crate) async fn batch_get_items(&self, keys: Vec<Item>) -> Result<Vec<Item>> {
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(100) {
            let mut request = Some(KeysAndAttributes::builder().set_keys(Some(chunk.to_vec())).consistent_read(true).build().map_err(unexpected)?);
            while let Some(keys_and_attributes) = request.take() {
                let out = self.client.batch_get_item().request_items(&self.table, keys_and_attributes).send().await.map_err(sdk_error)?;
                found.extend(out.responses.and_then(|mut r| r.remove(&self.table)).unwrap_or_default());
                request = out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)).filter(|k| !k.keys().is_empty());
            }
        }
        Ok(found)
    }

    pub(crate) fn put(&self, item: Item, condition: &str) -> Result<TransactWriteItem> {
        let put = Put::builder().table_name(&self.table).set_item(Some(item)).condition_expression(condition).build().map_err(unexpected)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Commits `items` together with the audit event for them, chained to the
    /// tenant's audit head. Concurrent writers race on the head's sequence
    /// number; the loser re-reads the head and tries again, so the chain never
    /// forks and never skips.
    pub(crate) async fn write_with_audit(&self, tenant: TenantId, items: Vec<TransactWriteItem>, draft: AuditDraft) -> std::result::Result<(), TxError> {
        let caller_items = items.len();
        let mut hint = draft.head_hint.clone();
        for attempt in 0..AUDIT_RETRIES {
            let head = match hint.take() {
                Some(head) => head,
                None => self.read_audit_head(tenant).await?,
            };
            let event = AuditEvent::chain(draft.clone(), &head, chrono::Utc::now());
            let mut all = items.clone();
            all.push(self.put(audit::event_item(tenant, &event)?, "attribute_not_exists(pk)")?);
            all.push(self.audit_head_put(tenant, &head, &event)?);
            let result = self.client.transact_write_items().set_transact_items(Some(all)).send().await;
            let err = match result {
                Ok(_) => return Ok(()),
                Err(err) => err.into_service_error(),
            };
            let aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(cancelled) = &err else {
                return Err(TxError::Other(service_error(err)));
            };
            let reasons = cancelled.cancellation_reasons();
            if let Some(i) = reasons.iter().position(|r| r.code() == Some("ConditionalCheckFailed")) {
                if i < caller_items {
                    return Err(TxError::Condition(i));
                }
            } else if !retryable_cancellation(cancelled) {
                return Err(TxError::Other(service_error(err)));
            }
            // Lost the race for the audit head (or a conflicting or throttled transaction): back off and retry.
            let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) % 20;
            tokio::time::sleep(std::time::Duration::from_millis(5 + u64::from(attempt.min(10)) * 5 + jitter)).await;
        }
        // Still contended after every attempt: the caller may try again later.
        Err(TxError::Other(DomainError::unavailable("the audit chain stayed contended: too many concurrent writes")))
    }

    /// Every item of a (small) partition, page by page, in key order.
    pub(crate) async fn query_all<T: serde::de::DeserializeOwned>(&self, partition: &str) -> Result<Vec<T>> {
        self.query_all_in::<T>(partition, None).await
    }

    /// `query_all` of a GSI1 partition.
    pub(crate) async fn query_index_all<T: serde::de::DeserializeOwned>(&self, partition: &str) -> Result<Vec<T>> {
        self.query_all_in::<T>(partition, Some(keys::GSI1)).await
    }

    async fn query_all_in<T: serde::de::DeserializeOwned>(&self, partition: &str, index: Option<&str>) -> Result<Vec<T>> {
        let mut all = vec![];
        let mut page = PageRequest::first(100);
        loop {
            let (items, next) = self.query_page::<T>(partition, index, None, &page).await?;
            all.extend(items);
            match next {
                Some(c) => page.cursor = Some(c),
                None => return Ok(all),
            }
        }
    }

    /// Reads one page of a partition (or of an index partition), decoding the
    /// caller's cursor and refusing one that points anywhere else.
    pub(crate) async fn query_page<T: DeserializeOwned>(
        &self,
        partition: &str,
        index: Option<&str>,
        sk_prefix: Option<&str>,
        page: &PageRequest,
    ) -> Result<(Vec<T>, Option<String>)> {
        self.query_page_ordered(partition, index, sk_prefix, page, true).await
    }

    /// `query_page`, oldest first (`forward`) or newest first.
    pub(crate) async fn query_page_ordered<T: DeserializeOwned>(
        &self,
        partition: &str,
        index: Option<&str>,
        sk_prefix: Option<&str>,
        page: &PageRequest,
        forward: bool,
    ) -> Result<(Vec<T>, Option<String>)> {
        let (pk_name, sk_name) = match index {
            Some(_) => (keys::GSI1_PK, keys::GSI1_SK),
            None => (keys::PK, keys::SK),
        };
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .set_index_name(index.map(str::to_string))
            .scan_index_forward(forward)
            .limit(i32::try_from(page.limit).unwrap_or(100))
            .expression_attribute_names("#pk", pk_name)
            .expression_attribute_values(":pk", s(partition));
        query = match sk_prefix {
            Some(prefix) => query
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .expression_attribute_names("#sk", sk_name)
                .expression_attribute_values(":prefix", s(prefix)),
            None => query.key_condition_expression("#pk = :pk"),
        };
        if index.is_none() {
            query = query.consistent_read(true);
        }
        if let Some(cursor) = &page.cursor {
            let fields: &[&str] = match index {
                Some(_) => &[keys::PK, keys::SK, keys::GSI1_PK, keys::GSI1_SK],
                None => &[keys::PK, keys::SK],
            };
            query = query.set_exclusive_start_key(Some(decode_cursor(cursor, pk_name, partition, fields)?));
        }
        let out = query.send().await.map_err(sdk_error)?;
        let items = out.items.unwrap_or_default().into_iter().map(from_item).collect::<Result<Vec<T>>>()?;
        let next = out.last_evaluated_key.map(|k| encode_cursor(&k)).transpose()?;
        Ok((items, next))
    }
}

fn invalid_cursor() -> DomainError {
    Refusal::InvalidCursor.into()
}

fn encode_cursor(key: &Item) -> Result<String> {
    let plain: HashMap<&str, &str> = key.iter().filter_map(|(k, v)| v.as_s().ok().map(|v| (k.as_str(), v.as_str()))).collect();
    let json = serde_json::to_vec(&plain).map_err(unexpected)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json))
}

/// A cursor is only accepted for the partition it came from (it cannot be
/// crafted to read another tenant's items) and with exactly the key `fields`
/// of the query that issued it.
fn decode_cursor(cursor: &str, pk_name: &str, partition: &str, fields: &[&str]) -> Result<Item> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid_cursor())?;
    let plain: HashMap<String, String> = serde_json::from_slice(&bytes).map_err(|_| invalid_cursor())?;
    if plain.get(pk_name).map(String::as_str) != Some(partition) || plain.len() != fields.len() || !fields.iter().all(|f| plain.contains_key(*f)) {
        return Err(invalid_cursor());
    }
    Ok(plain.into_iter().map(|(k, v)| (k, s(v))).collect())
}

/// Cancellation reasons that say nothing about the items: another transaction
/// got there first, or the table was throttled. Trying again may commit.
const RETRYABLE_REASONS: &[&str] = &["TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"];

fn retryable_cancellation(cancelled: &TransactionCanceledException) -> bool {
    let reasons = cancelled.cancellation_reasons();
    reasons.iter().any(|r| r.code().is_some_and(|c| RETRYABLE_REASONS.contains(&c)))
        && reasons.iter().all(|r| r.code().is_none_or(|c| c == "None" || RETRYABLE_REASONS.contains(&c)))
}

/// A failed transaction that was not cancelled by a condition: conflicts and
/// throttling are `Unavailable`, like any transient SDK failure.
/// Whether a conditional write (PutItem, UpdateItem) applied: `false` when
/// its condition failed, an error for anything else.
pub(crate) fn applied<O, E>(result: std::result::Result<O, aws_sdk_dynamodb::error::SdkError<E>>) -> Result<bool>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().and_then(|s| s.code()) == Some("ConditionalCheckFailedException") => Ok(false),
        Err(e) => Err(sdk_error(e)),
    }
}

pub(crate) fn transaction_error(err: TransactWriteItemsError) -> DomainError {
    match &err {
        TransactWriteItemsError::TransactionCanceledException(cancelled) if retryable_cancellation(cancelled) => DomainError::unavailable(err),
        _ => service_error(err),
    }
}

/// Maps a failed write: an unexpected failure passes through; a failed
/// condition of the caller's item `i` becomes `on_condition(i)`.
pub(crate) fn map_tx(result: std::result::Result<(), TxError>, on_condition: impl FnOnce(usize) -> DomainError) -> Result<()> {
    match result {
        Ok(()) => Ok(()),
        Err(TxError::Condition(i)) => Err(on_condition(i)),
        Err(TxError::Other(e)) => Err(e),
    }
}

#[allow(dead_code)]
pub(crate) fn head_of(item: Option<Item>) -> Result<AuditHead> {
    match item {
        Some(item) => from_item(item),
        None => Ok(AuditHead::genesis()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_for_its_own_partition() {
        let key: Item = HashMap::from([("pk".to_string(), s("T#a#ENV")), ("sk".to_string(), s("E#1"))]);
        let cursor = encode_cursor(&key).unwrap();
        assert_eq!(decode_cursor(&cursor, "pk", "T#a#ENV", &["pk", "sk"]).unwrap(), key);
    }

    #[test]
    fn a_cursor_for_another_partition_is_refused() {
        let key: Item = HashMap::from([("pk".to_string(), s("T#a#ENV")), ("sk".to_string(), s("E#1"))]);
        let cursor = encode_cursor(&key).unwrap();
        assert!(decode_cursor(&cursor, "pk", "T#b#ENV", &["pk", "sk"]).is_err());
        assert!(decode_cursor("not base64!", "pk", "T#a#ENV", &["pk", "sk"]).is_err());
    }

    #[test]
    fn a_cursor_missing_or_adding_key_fields_is_refused() {
        let partial: Item = HashMap::from([("pk".to_string(), s("T#a#ENV"))]);
        assert!(decode_cursor(&encode_cursor(&partial).unwrap(), "pk", "T#a#ENV", &["pk", "sk"]).is_err());
        let extra: Item = HashMap::from([("pk".to_string(), s("T#a#ENV")), ("sk".to_string(), s("E#1")), ("x".to_string(), s("y"))]);
        assert!(decode_cursor(&encode_cursor(&extra).unwrap(), "pk", "T#a#ENV", &["pk", "sk"]).is_err());
    }
}
