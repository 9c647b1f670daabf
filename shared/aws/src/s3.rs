//! Immutable blobs in S3: component content (addressed by SHA-256) and
//! package archives. Every write is `If-None-Match: *`: nothing is ever
//! overwritten. A package archive is built as a stream: contents flow from S3
//! through tar and gzip into a bounded pipe, and from the pipe into S3 (one
//! PutObject for small archives, a multipart upload above `PART_SIZE`), so at
//! most one part is held in memory whatever the package's size.

use crate::keys;
use crate::{sdk_error, unexpected};
use async_compression::tokio::write::GzipEncoder;
use async_trait::async_trait;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use berth_domain::component::ContentRef;
use berth_domain::ids::{PackageId, TenantId};
use berth_domain::package::Manifest;
use berth_domain::ports::{ArchiveInfo, BlobStore, PresignedUrl};
use berth_domain::refusal::Refusal;
use berth_domain::runtime::Digest;
use berth_domain::{DomainError, Result};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Multipart part size, and the most of an archive held in memory at once.
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// Buffer between the archive builder and the uploader.
const PIPE_BYTES: usize = 256 * 1024;

#[derive(Clone, Debug)]
pub struct S3BlobStore {
    client: aws_sdk_s3::Client,
    bucket: String,
}

/// True when S3 refused a conditional write because the object exists.
fn already_exists<E, R>(err: &SdkError<E, R>) -> bool
where
    R: std::fmt::Debug,
    SdkError<E, R>: aws_sdk_s3::error::ProvideErrorMetadata,
{
    use aws_sdk_s3::error::ProvideErrorMetadata;
    matches!(err.code(), Some("PreconditionFailed") | Some("ConditionalRequestConflict"))
}

fn archive_exists() -> DomainError {
    DomainError::from(Refusal::ArchiveExists)
}

impl S3BlobStore {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self { client, bucket: bucket.into() }
    }

    /// Writes tar + gzip of the manifest and each content into `out`.
    async fn produce_archive<W: AsyncWrite + Unpin + Send>(&self, tenant: TenantId, manifest: &Manifest, out: W) -> Result<()> {
        let mut gz = GzipEncoder::new(out);
        let manifest_json = serde_json::to_vec_pretty(manifest).map_err(unexpected)?;
        write_entry(&mut gz, berth_domain::package::ARCHIVE_MANIFEST, manifest_json.len() as u64, &mut manifest_json.as_slice()).await?;
        for entry in &manifest.components {
            let hex = entry.sha256.as_str().trim_start_matches("sha256:");
            let object = match self.client.get_object().bucket(&self.bucket).key(keys::content_object(tenant, hex)).send().await {
                Ok(object) => object,
                // Gone for good: no retry brings it back.
                Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => return Err(Refusal::ContentMissing(entry.sha256.clone()).into()),
                Err(e) => return Err(sdk_error(e)),
            };
            let mut body = object.body.into_async_read();
            write_entry(&mut gz, &berth_domain::package::archive_content_path(entry.id), entry.size, &mut body).await?;
        }
        // Two zero blocks end a tar archive.
        gz.write_all(&[0u8; 1024]).await.map_err(unexpected)?;
        gz.shutdown().await.map_err(unexpected)?;
        Ok(())
    }

    /// Uploads everything `input` yields to `key`, once, hashing as it goes.
    /// Completes only if `produced` reports the producer finished cleanly.
    async fn upload_once<R: AsyncRead + Unpin>(&self, key: &str, mut input: R, produced: tokio::sync::oneshot::Receiver<bool>) -> Result<ArchiveInfo> {
        let mut hasher = Sha256::new();
        let first = read_part(&mut input).await?;
        let mut size = first.len() as u64;
        hasher = hash(hasher, first.clone()).await?;
        if first.len() < PART_SIZE {
            if !produced.await.unwrap_or(false) {
                return Err(DomainError::unexpected("the package archive could not be built"));
            }
            let put = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .if_none_match("*")
                .content_type("application/gzip")
                .body(ByteStream::from(first))
                .send()
                .await;
            return match put {
                Ok(_) => Ok(ArchiveInfo { digest: digest_of(hasher), size }),
                Err(e) if already_exists(&e) => Err(archive_exists()),
                Err(e) => Err(sdk_error(e)),
            };
        }
        let upload = self.client.create_multipart_upload().bucket(&self.bucket).key(key).content_type("application/gzip").send().await.map_err(sdk_error)?;
        let upload_id = upload.upload_id().unwrap_or_default().to_string();
        let result = async {
            let mut parts = vec![self.upload_part(key, &upload_id, 1, first).await?];
            loop {
                let chunk = read_part(&mut input).await?;
                if chunk.is_empty() {
                    break;
                }
                size += chunk.len() as u64;
                hasher = hash(hasher, chunk.clone()).await?;
                let number = i32::try_from(parts.len() + 1).map_err(unexpected)?;
                parts.push(self.upload_part(key, &upload_id, number, chunk).await?);
            }
            if !produced.await.unwrap_or(false) {
                return Err(DomainError::unexpected("the package archive could not be built"));
            }
            let done = self
                .client
                .complete_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(&upload_id)
                .if_none_match("*")
                .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
                .send()
                .await;
            match done {
                Ok(_) => Ok(ArchiveInfo { digest: digest_of(hasher), size }),
                Err(e) if already_exists(&e) => Err(archive_exists()),
                Err(e) => Err(sdk_error(e)),
            }
        }
        .await;
        if result.is_err() {
            let _ = self.client.abort_multipart_upload().bucket(&self.bucket).key(key).upload_id(&upload_id).send().await;
        }
        result
    }

    async fn upload_part(&self, key: &str, upload_id: &str, number: i32, bytes: Vec<u8>) -> Result<CompletedPart> {
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(number)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(CompletedPart::builder().part_number(number).set_e_tag(out.e_tag).build())
    }
}

/// One tar entry: a ustar header, exactly `size` bytes from `data`, padding.
async fn write_entry<W: AsyncWrite + Unpin, R: AsyncRead + Unpin>(out: &mut W, path: &str, size: u64, data: &mut R) -> Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_path(path).map_err(unexpected)?;
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    out.write_all(header.as_bytes()).await.map_err(unexpected)?;
    let copied = tokio::io::copy(&mut data.take(size), out).await.map_err(unexpected)?;
    if copied != size {
        return Err(DomainError::unexpected(format!("{path}: expected {size} bytes, read {copied}")));
    }
    let padding = (512 - (size % 512) as usize) % 512;
    out.write_all(&vec![0u8; padding]).await.map_err(unexpected)?;
    Ok(())
}

/// Reads up to `PART_SIZE` bytes (fewer only at the end).
async fn read_part<R: AsyncRead + Unpin>(input: &mut R) -> Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(PART_SIZE.min(1024 * 1024));
    (&mut *input).take(PART_SIZE as u64).read_to_end(&mut buf).await.map_err(unexpected)?;
    Ok(buf)
}

/// Hashes off the async threads (a part is up to 8 MiB).
async fn hash(mut hasher: Sha256, bytes: Vec<u8>) -> Result<Sha256> {
    tokio::task::spawn_blocking(move || {
        hasher.update(&bytes);
        hasher
    })
    .await
    .map_err(unexpected)
}

fn digest_of(hasher: Sha256) -> Digest {
    // Always 64 lowercase hex digits, so parsing cannot fail.
    Digest::parse(&format!("sha256:{}", hex::encode(hasher.finalize()))).unwrap_or_else(|_| unreachable!("sha256 hex is a valid digest"))
}

#[async_trait]
impl BlobStore for S3BlobStore {
    #[tracing::instrument(skip(self, bytes), fields(size = bytes.len()))]
    async fn put_content(&self, tenant: TenantId, bytes: Vec<u8>) -> Result<ContentRef> {
        let size = bytes.len() as u64;
        let (hasher, bytes) = tokio::task::spawn_blocking(move || (Sha256::digest(&bytes), bytes)).await.map_err(unexpected)?;
        let hex = hex::encode(hasher);
        let put =
            self.client.put_object().bucket(&self.bucket).key(keys::content_object(tenant, &hex)).if_none_match("*").body(ByteStream::from(bytes)).send().await;
        match put {
            // Content-addressed: an existing object already holds these bytes.
            Ok(_) => {}
            Err(e) if already_exists(&e) => {}
            Err(e) => return Err(sdk_error(e)),
        }
        Ok(ContentRef { sha256: Digest::parse(&format!("sha256:{hex}")).map_err(DomainError::unexpected)?, size })
    }

    #[tracing::instrument(skip(self, manifest), fields(components = manifest.components.len()))]
    async fn write_package_archive(&self, tenant: TenantId, package: PackageId, manifest: &Manifest) -> Result<ArchiveInfo> {
        let key = keys::package_object(tenant, package);
        let (writer, reader) = tokio::io::duplex(PIPE_BYTES);
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let produce = async {
            let result = self.produce_archive(tenant, manifest, writer).await;
            let _ = done_tx.send(result.is_ok());
            result
        };
        let (produced, uploaded) = tokio::join!(produce, self.upload_once(&key, reader, done_rx));
        produced?;
        uploaded
    }

    async fn delete_package_archive(&self, tenant: TenantId, package: PackageId) -> Result<()> {
        self.client.delete_object().bucket(&self.bucket).key(keys::package_object(tenant, package)).send().await.map_err(sdk_error)?;
        Ok(())
    }

    async fn presign_package_download(&self, tenant: TenantId, package: PackageId, ttl: std::time::Duration) -> Result<PresignedUrl> {
        let config = PresigningConfig::expires_in(ttl).map_err(unexpected)?;
        let request = self.client.get_object().bucket(&self.bucket).key(keys::package_object(tenant, package)).presigned(config).await.map_err(sdk_error)?;
        let expires_at = chrono::Utc::now() + chrono::Duration::from_std(ttl).map_err(unexpected)?;
        Ok(PresignedUrl { url: request.uri().to_string(), expires_at })
    }
}
