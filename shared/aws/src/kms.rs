//! Seals webhook signing secrets with KMS: `Encrypt` under one key with the
//! encryption context `{"tenant_id": <tenant>}`, so a sealed secret opens
//! only for its own tenant (KMS refuses `Decrypt` under any other context).
//! Opened secrets are cached in the process for a few minutes, so a burst of
//! deliveries to one webhook costs one `Decrypt`, not one each.
//!
//! Environments' secret extension values are sealed the same way, one
//! `Encrypt` per value (KMS takes up to 4096 bytes; the domain refuses
//! longer values), under the context `{tenant_id, environment_id,
//! component_id, field}`: a sealed value copied to another field, component,
//! environment or tenant does not open. They are not cached when opened.

use crate::sdk_error;
use async_trait::async_trait;
use aws_sdk_kms::primitives::Blob;
use base64::Engine;
use berth_domain::extension::SecretScope;
use berth_domain::ids::TenantId;
use berth_domain::ports::{ExtensionSealer, SecretSealer};
use berth_domain::secret::Sensitive;
use berth_domain::webhook::SealedSecret;
use berth_domain::{DomainError, Result};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The encryption context's key: the tenant the secret belongs to.
pub const TENANT_CONTEXT_KEY: &str = "tenant_id";
/// The keys an extension value's context adds: where in the tenant it belongs.
pub const EXTENSION_CONTEXT_KEYS: [&str; 3] = ["environment_id", "component_id", "field"];
/// How long an opened secret is reused without asking KMS again.
pub const CACHE_TTL: Duration = Duration::from_secs(5 * 60);
/// How many opened secrets the cache holds at most.
pub const CACHE_CAPACITY: usize = 1024;

pub struct KmsSealer {
    client: aws_sdk_kms::Client,
    /// Key id, key ARN or alias (`alias/...`); `BERTH_KMS_KEY_ID`.
    key_id: String,
    cache: OpenedCache,
}

impl KmsSealer {
    pub fn new(client: aws_sdk_kms::Client, key_id: impl Into<String>) -> Self {
        Self { client, key_id: key_id.into(), cache: OpenedCache::new(CACHE_TTL, CACHE_CAPACITY) }
    }

    fn context(tenant: TenantId) -> HashMap<String, String> {
        HashMap::from([(TENANT_CONTEXT_KEY.to_string(), tenant.to_string())])
    }

    fn extension_context(scope: &SecretScope) -> HashMap<String, String> {
        let mut context = Self::context(scope.tenant);
        let [environment, component, field] = EXTENSION_CONTEXT_KEYS;
        context.insert(environment.to_string(), scope.environment.to_string());
        context.insert(component.to_string(), scope.component.to_string());
        context.insert(field.to_string(), scope.field.clone());
        context
    }
}

impl std::fmt::Debug for KmsSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KmsSealer").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

#[async_trait]
impl SecretSealer for KmsSealer {
    #[tracing::instrument(skip(self, plaintext), fields(key_id = %self.key_id))]
    async fn seal(&self, tenant: TenantId, plaintext: &[u8]) -> Result<SealedSecret> {
        let out = self
            .client
            .encrypt()
            .key_id(&self.key_id)
            .plaintext(Blob::new(plaintext))
            .set_encryption_context(Some(Self::context(tenant)))
            .send()
            .await
            .map_err(sdk_error)?;
        let blob = out.ciphertext_blob.ok_or_else(|| DomainError::unexpected("KMS Encrypt answered no ciphertext"))?;
        Ok(SealedSecret(base64::engine::general_purpose::STANDARD.encode(blob.as_ref())))
    }

    #[tracing::instrument(skip(self, sealed), fields(key_id = %self.key_id))]
    async fn open(&self, tenant: TenantId, sealed: &SealedSecret) -> Result<Vec<u8>> {
        if let Some(opened) = self.cache.get(tenant, &sealed.0) {
            return Ok(opened);
        }
        let ciphertext = base64::engine::general_purpose::STANDARD.decode(&sealed.0).map_err(|_| DomainError::unexpected("a sealed secret is not base64"))?;
        let out = self
            .client
            .decrypt()
            .key_id(&self.key_id)
            .ciphertext_blob(Blob::new(ciphertext))
            .set_encryption_context(Some(Self::context(tenant)))
            .send()
            .await
            .map_err(sdk_error)?;
        let opened = out.plaintext.ok_or_else(|| DomainError::unexpected("KMS Decrypt answered no plaintext"))?.into_inner();
        self.cache.put(tenant, &sealed.0, opened.clone());
        Ok(opened)
    }
}

#[async_trait]
impl ExtensionSealer for KmsSealer {
    #[tracing::instrument(skip(self, value), fields(key_id = %self.key_id))]
    async fn seal_extension(&self, scope: &SecretScope, value: &Sensitive) -> Result<SealedSecret> {
        let out = self
            .client
            .encrypt()
            .key_id(&self.key_id)
            .plaintext(Blob::new(value.reveal().as_bytes()))
            .set_encryption_context(Some(Self::extension_context(scope)))
            .send()
            .await
            .map_err(sdk_error)?;
        let blob = out.ciphertext_blob.ok_or_else(|| DomainError::unexpected("KMS Encrypt answered no ciphertext"))?;
        Ok(SealedSecret(base64::engine::general_purpose::STANDARD.encode(blob.as_ref())))
    }

    #[tracing::instrument(skip(self, sealed), fields(key_id = %self.key_id))]
    async fn open_extension(&self, scope: &SecretScope, sealed: &SealedSecret) -> Result<Sensitive> {
        let ciphertext = base64::engine::general_purpose::STANDARD.decode(&sealed.0).map_err(|_| DomainError::unexpected("a sealed value is not base64"))?;
        let out = self
            .client
            .decrypt()
            .key_id(&self.key_id)
            .ciphertext_blob(Blob::new(ciphertext))
            .set_encryption_context(Some(Self::extension_context(scope)))
            .send()
            .await
            .map_err(sdk_error)?;
        let opened = out.plaintext.ok_or_else(|| DomainError::unexpected("KMS Decrypt answered no plaintext"))?.into_inner();
        String::from_utf8(opened).map(Sensitive::new).map_err(|_| DomainError::unexpected("an opened extension value is not UTF-8"))
    }
}

/// Opened secrets by (tenant, sealed text): the tenant is part of the key, so
/// a hit never opens a secret for a tenant KMS would have refused.
struct OpenedCache {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<(TenantId, String), (Instant, Vec<u8>)>>,
}

impl OpenedCache {
    fn new(ttl: Duration, capacity: usize) -> Self {
        Self { ttl, capacity, entries: Mutex::new(HashMap::new()) }
    }

    fn get(&self, tenant: TenantId, sealed: &str) -> Option<Vec<u8>> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let (at, opened) = entries.get(&(tenant, sealed.to_string()))?;
        (at.elapsed() < self.ttl).then(|| opened.clone())
    }

    fn put(&self, tenant: TenantId, sealed: &str, opened: Vec<u8>) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= self.capacity {
            entries.retain(|_, (at, _)| at.elapsed() < self.ttl);
        }
        if entries.len() >= self.capacity {
            // Still full of live entries: make room by dropping the oldest.
            if let Some(oldest) = entries.iter().min_by_key(|(_, (at, _))| *at).map(|(k, _)| k.clone()) {
                entries.remove(&oldest);
            }
        }
        entries.insert((tenant, sealed.to_string()), (Instant::now(), opened));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_secret_is_found_only_for_its_tenant_and_only_until_the_ttl() {
        let (acme, globex) = (TenantId::new(), TenantId::new());
        let cache = OpenedCache::new(Duration::from_millis(50), 8);
        cache.put(acme, "sealed", b"clear".to_vec());
        assert_eq!(cache.get(acme, "sealed"), Some(b"clear".to_vec()));
        assert_eq!(cache.get(globex, "sealed"), None, "another tenant's lookup misses and goes to KMS");
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(cache.get(acme, "sealed"), None, "expired");
    }

    #[test]
    fn a_full_cache_drops_its_oldest_entry_to_take_a_new_one() {
        let tenant = TenantId::new();
        let cache = OpenedCache::new(Duration::from_secs(60), 2);
        cache.put(tenant, "one", vec![1]);
        std::thread::sleep(Duration::from_millis(2));
        cache.put(tenant, "two", vec![2]);
        cache.put(tenant, "three", vec![3]);
        assert_eq!(cache.get(tenant, "one"), None);
        assert_eq!(cache.get(tenant, "two"), Some(vec![2]));
        assert_eq!(cache.get(tenant, "three"), Some(vec![3]));
    }
}
