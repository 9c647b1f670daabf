use crate::MemoryStore;
use async_trait::async_trait;
use berth_domain::Result;
use berth_domain::component::ContentRef;
use berth_domain::ids::{TenantId, UploadId};
use berth_domain::ports::{PresignedUrl, StagedObject, StagingStore, UploadStore};
use berth_domain::runtime::Digest;
use berth_domain::upload::{Upload, UploadState};
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, HashMap};

/// Pending uploads and what clients staged for them.
#[derive(Default)]
pub(crate) struct Uploads {
    records: HashMap<(TenantId, UploadId), Upload>,
    /// Whole staged objects (a PUT, or an assembled multipart upload).
    staged: HashMap<(TenantId, UploadId), Vec<u8>>,
    /// Multipart upload id -> its parts so far.
    multipart: HashMap<String, (TenantId, UploadId, BTreeMap<u32, Vec<u8>>)>,
}

fn url(tenant: TenantId, upload: UploadId, ttl: std::time::Duration, part: Option<u32>) -> Result<PresignedUrl> {
    let expires_at = chrono::Utc::now() + chrono::Duration::from_std(ttl).map_err(berth_domain::DomainError::unexpected)?;
    let part = part.map(|n| format!("&part={n}")).unwrap_or_default();
    Ok(PresignedUrl { url: format!("memory://staging/tenants/{tenant}/{upload}?expires={}{part}", expires_at.timestamp()), expires_at })
}

impl MemoryStore {
    /// What a client's PUT to the presigned URL of an upload does.
    pub fn stage_upload(&self, tenant: TenantId, upload: UploadId, bytes: Vec<u8>) {
        self.lock().uploads.staged.insert((tenant, upload), bytes);
    }

    /// What a client's PUT to the presigned URL of part `part` of a multipart upload does.
    pub fn stage_upload_part(&self, multipart: &str, part: u32, bytes: Vec<u8>) {
        if let Some((_, _, parts)) = self.lock().uploads.multipart.get_mut(multipart) {
            parts.insert(part, bytes);
        }
    }

    /// Whether anything is staged (an object or a multipart upload) for the upload.
    pub fn is_staged(&self, tenant: TenantId, upload: UploadId) -> bool {
        let s = self.lock();
        s.uploads.staged.contains_key(&(tenant, upload)) || s.uploads.multipart.values().any(|(t, u, _)| (*t, *u) == (tenant, upload))
    }
}

#[async_trait]
impl UploadStore for MemoryStore {
    async fn create_upload(&self, tenant: TenantId, upload: &Upload) -> Result<()> {
        self.lock().uploads.records.insert((tenant, upload.id), upload.clone());
        Ok(())
    }

    async fn get_upload(&self, tenant: TenantId, id: UploadId) -> Result<Option<Upload>> {
        let now = chrono::Utc::now();
        Ok(self.lock().uploads.records.get(&(tenant, id)).filter(|u| !u.expired(now)).cloned())
    }

    async fn update_upload(&self, tenant: TenantId, upload: &Upload, from: &UploadState) -> Result<bool> {
        let now = chrono::Utc::now();
        let mut s = self.lock();
        match s.uploads.records.get_mut(&(tenant, upload.id)) {
            Some(stored) if &stored.state == from && !stored.expired(now) => {
                *stored = upload.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

#[async_trait]
impl StagingStore for MemoryStore {
    async fn presign_staged_put(&self, tenant: TenantId, upload: UploadId, ttl: std::time::Duration) -> Result<PresignedUrl> {
        url(tenant, upload, ttl, None)
    }

    async fn start_staged_multipart(&self, tenant: TenantId, upload: UploadId) -> Result<String> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        self.lock().uploads.multipart.insert(id.clone(), (tenant, upload, BTreeMap::new()));
        Ok(id)
    }

    async fn presign_staged_part(&self, tenant: TenantId, upload: UploadId, _multipart: &str, part: u32, ttl: std::time::Duration) -> Result<PresignedUrl> {
        url(tenant, upload, ttl, Some(part))
    }

    async fn finish_staged_multipart(&self, tenant: TenantId, upload: UploadId, multipart: &str, parts: u32) -> Result<bool> {
        let mut s = self.lock();
        let all = match s.uploads.multipart.get(multipart) {
            Some((t, u, stored)) if (*t, *u) == (tenant, upload) => stored.keys().copied().eq(1..=parts),
            // As S3: once assembled, the multipart upload is gone and the object is there.
            _ => return Ok(s.uploads.staged.contains_key(&(tenant, upload))),
        };
        if !all {
            return Ok(false);
        }
        if let Some((_, _, stored)) = s.uploads.multipart.remove(multipart) {
            s.uploads.staged.insert((tenant, upload), stored.into_values().flatten().collect());
        }
        Ok(true)
    }

    async fn inspect_staged(&self, tenant: TenantId, upload: UploadId, expected_size: u64) -> Result<Option<StagedObject>> {
        let s = self.lock();
        let Some(bytes) = s.uploads.staged.get(&(tenant, upload)) else { return Ok(None) };
        let size = bytes.len() as u64;
        let sha256 = (size == expected_size)
            .then(|| Digest::parse(&format!("sha256:{}", hex::encode(Sha256::digest(bytes)))))
            .transpose()
            .map_err(berth_domain::DomainError::unexpected)?;
        Ok(Some(StagedObject { size, sha256 }))
    }

    async fn promote_staged(&self, tenant: TenantId, upload: UploadId, content: &ContentRef) -> Result<()> {
        let mut s = self.lock();
        let bytes =
            s.uploads.staged.get(&(tenant, upload)).cloned().ok_or_else(|| berth_domain::DomainError::unexpected(format!("nothing staged for {upload}")))?;
        let hex = content.sha256.as_str().trim_start_matches("sha256:").to_string();
        s.blobs.put_staged(tenant, hex, bytes);
        Ok(())
    }

    async fn discard_staged(&self, tenant: TenantId, upload: UploadId) -> Result<()> {
        self.lock().uploads.staged.remove(&(tenant, upload));
        Ok(())
    }
}
