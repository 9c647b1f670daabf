use crate::MemoryStore;
use async_trait::async_trait;
use berth_domain::component::ContentRef;
use berth_domain::ids::{PackageId, TenantId};
use berth_domain::package::Manifest;
use berth_domain::ports::{ArchiveInfo, BlobStore, PresignedUrl};
use berth_domain::refusal::Refusal;
use berth_domain::runtime::Digest;
use berth_domain::{DomainError, Result};
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;

/// Component content by (tenant, SHA-256 hex) and package archives.
#[derive(Default)]
pub(crate) struct Blobs {
    content: HashMap<(TenantId, String), Vec<u8>>,
    archives: HashMap<(TenantId, PackageId), Vec<u8>>,
}

/// The longest a presigned URL may live (S3's limit, which the adapter's presigning enforces).
const MAX_PRESIGN_TTL: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

fn digest_of(bytes: &[u8]) -> Digest {
    // Always 64 lowercase hex digits, so parsing cannot fail.
    Digest::parse(&format!("sha256:{}", hex::encode(Sha256::digest(bytes)))).unwrap_or_else(|_| unreachable!("sha256 hex is a valid digest"))
}

/// One tar entry: a ustar header, the bytes, padding to 512.
fn tar_entry(out: &mut Vec<u8>, path: &str, data: &[u8]) {
    let mut header = [0u8; 512];
    let field = |header: &mut [u8; 512], at: usize, value: &[u8]| header[at..at + value.len()].copy_from_slice(value);
    field(&mut header, 0, path.as_bytes());
    field(&mut header, 100, b"0000644\0");
    field(&mut header, 108, b"0000000\0");
    field(&mut header, 116, b"0000000\0");
    field(&mut header, 124, format!("{:011o}\0", data.len()).as_bytes());
    field(&mut header, 136, b"00000000000\0");
    field(&mut header, 148, b"        ");
    header[156] = b'0';
    field(&mut header, 257, b"ustar\0");
    field(&mut header, 263, b"00");
    let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
    field(&mut header, 148, format!("{sum:06o}\0 ").as_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(data);
    out.resize(out.len() + (512 - data.len() % 512) % 512, 0);
}

impl Blobs {
    /// Stores staged bytes under their content address (kept if there already, as `put_content`).
    pub(crate) fn put_staged(&mut self, tenant: TenantId, sha256_hex: String, bytes: Vec<u8>) {
        self.content.entry((tenant, sha256_hex)).or_insert(bytes);
    }
}

impl MemoryStore {
    /// The archive written for a package: a tar (not gzipped, unlike S3's) of
    /// `manifest.json` and `components/<id>/content` for each bundled component.
    pub fn package_archive(&self, tenant: TenantId, package: PackageId) -> Option<Vec<u8>> {
        self.lock().blobs.archives.get(&(tenant, package)).cloned()
    }

    /// Forgets stored content, as if its object had been removed from the bucket.
    pub fn remove_content(&self, tenant: TenantId, sha256: &Digest) {
        let hex = sha256.as_str().trim_start_matches("sha256:").to_string();
        self.lock().blobs.content.remove(&(tenant, hex));
    }
}

#[async_trait]
impl BlobStore for MemoryStore {
    async fn put_content(&self, tenant: TenantId, bytes: Vec<u8>) -> Result<ContentRef> {
        let sha256 = digest_of(&bytes);
        let size = bytes.len() as u64;
        let hex = sha256.as_str().trim_start_matches("sha256:").to_string();
        // Content-addressed: an existing blob already holds these bytes.
        self.lock().blobs.content.entry((tenant, hex)).or_insert(bytes);
        Ok(ContentRef { sha256, size })
    }

    async fn write_package_archive(&self, tenant: TenantId, package: PackageId, manifest: &Manifest) -> Result<ArchiveInfo> {
        let mut s = self.lock();
        let mut archive = vec![];
        tar_entry(&mut archive, "manifest.json", &serde_json::to_vec_pretty(manifest).map_err(DomainError::unexpected)?);
        for entry in &manifest.components {
            let hex = entry.sha256.as_str().trim_start_matches("sha256:");
            // As the S3 adapter: the entry is the content's first `size` bytes; content that
            // is not there (or shorter) fails the write.
            let content = s.blobs.content.get(&(tenant, hex.to_string())).ok_or_else(|| DomainError::from(Refusal::ContentMissing(entry.sha256.clone())))?;
            let size = usize::try_from(entry.size).unwrap_or(usize::MAX);
            let Some(bytes) = content.get(..size) else {
                return Err(DomainError::unexpected(format!("content {hex}: expected {size} bytes, found {}", content.len())));
            };
            tar_entry(&mut archive, &format!("components/{}/content", entry.id), bytes);
        }
        // Two zero blocks end a tar archive.
        archive.resize(archive.len() + 1024, 0);
        if s.blobs.archives.contains_key(&(tenant, package)) {
            return Err(Refusal::ArchiveExists.into());
        }
        let info = ArchiveInfo { digest: digest_of(&archive), size: archive.len() as u64 };
        s.blobs.archives.insert((tenant, package), archive);
        Ok(info)
    }

    async fn delete_package_archive(&self, tenant: TenantId, package: PackageId) -> Result<()> {
        self.lock().blobs.archives.remove(&(tenant, package));
        Ok(())
    }

    /// A `memory://` URL; like a presigned S3 URL, it is minted whether or not the archive exists.
    async fn presign_package_download(&self, tenant: TenantId, package: PackageId, ttl: std::time::Duration) -> Result<PresignedUrl> {
        if ttl > MAX_PRESIGN_TTL {
            return Err(DomainError::unexpected("a presigned URL lives at most a week"));
        }
        let expires_at = chrono::Utc::now() + chrono::Duration::from_std(ttl).map_err(DomainError::unexpected)?;
        Ok(PresignedUrl { url: format!("memory://tenants/{tenant}/packages/{package}.tar?expires={}", expires_at.timestamp()), expires_at })
    }
}
