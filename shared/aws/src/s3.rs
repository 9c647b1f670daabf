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
use aws_sdk_s3::error::ProvideErrorMetadata as _;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use berth_domain::component::ContentRef;
use berth_domain::ids::{PackageId, TenantId, UploadId};
use berth_domain::package::Manifest;
use berth_domain::ports::{ArchiveInfo, BlobStore, PresignedUrl, StagedObject, StagingStore};
use berth_domain::refusal::Refusal;
use berth_domain::runtime::Digest;
use berth_domain::{DomainError, Result};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Multipart part size, and the most of an archive held in memory at once.
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// Content larger than this is read in ranges of this size.
const RANGE_BYTES: u64 = 8 * 1024 * 1024;
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
            let key = keys::content_object(tenant, hex);
            let path = berth_domain::package::archive_content_path(entry.id);
            let get = |range: Option<String>| async {
                match self.client.get_object().bucket(&self.bucket).key(&key).set_range(range).send().await {
                    Ok(object) => Ok(object),
                    // Gone for good: no retry brings it back.
                    Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => Err(Refusal::ContentMissing(entry.sha256.clone()).into()),
                    Err(e) => Err(sdk_error(e)),
                }
            };
            if entry.size <= RANGE_BYTES {
                let object: aws_sdk_s3::operation::get_object::GetObjectOutput = get(None).await?;
                write_entry(&mut gz, &path, entry.size, &mut object.body.into_async_read()).await?;
                continue;
            }
            // Large content in ranges: one long GET read at the pace of gzip and the
            // upload is reset by the server before it ends (seen at 256 MiB on LocalStack).
            write_header(&mut gz, &path, entry.size).await?;
            let mut copied = 0u64;
            while copied < entry.size {
                let last = (copied + RANGE_BYTES).min(entry.size) - 1;
                let object: aws_sdk_s3::operation::get_object::GetObjectOutput = get(Some(format!("bytes={copied}-{last}"))).await?;
                let read = tokio::io::copy(&mut object.body.into_async_read().take(last + 1 - copied), &mut gz).await.map_err(unexpected)?;
                if read != last + 1 - copied {
                    return Err(DomainError::unexpected(format!("{path}: expected bytes {copied}-{last}, read {read}")));
                }
                copied += read;
            }
            write_padding(&mut gz, entry.size).await?;
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
        let (first_hasher, first) = hash(hasher, read_part(&mut input).await?).await?;
        hasher = first_hasher;
        let mut size = first.len() as u64;
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
                let (next, chunk) = hash(hasher, chunk).await?;
                hasher = next;
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
    write_header(out, path, size).await?;
    let copied = tokio::io::copy(&mut data.take(size), out).await.map_err(unexpected)?;
    if copied != size {
        return Err(DomainError::unexpected(format!("{path}: expected {size} bytes, read {copied}")));
    }
    write_padding(out, size).await
}

/// The ustar header of an entry of `size` bytes.
async fn write_header<W: AsyncWrite + Unpin>(out: &mut W, path: &str, size: u64) -> Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_path(path).map_err(unexpected)?;
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    out.write_all(header.as_bytes()).await.map_err(unexpected)
}

/// The zeros that end an entry of `size` bytes on a 512-byte boundary.
async fn write_padding<W: AsyncWrite + Unpin>(out: &mut W, size: u64) -> Result<()> {
    let padding = (512 - (size % 512) as usize) % 512;
    out.write_all(&vec![0u8; padding]).await.map_err(unexpected)?;
    Ok(())
}

/// Reads up to `PART_SIZE` bytes (fewer only at the end), into a buffer
/// allocated once: growing it by doubling would hold two copies at a time
/// (only the pages written become resident, so a small archive costs little).
async fn read_part<R: AsyncRead + Unpin>(input: &mut R) -> Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(PART_SIZE);
    (&mut *input).take(PART_SIZE as u64).read_to_end(&mut buf).await.map_err(unexpected)?;
    Ok(buf)
}

/// Hashes off the async threads (a part is up to 8 MiB), handing the part
/// back rather than hashing a copy: one part in memory at a time.
async fn hash(mut hasher: Sha256, bytes: Vec<u8>) -> Result<(Sha256, Vec<u8>)> {
    tokio::task::spawn_blocking(move || {
        hasher.update(&bytes);
        (hasher, bytes)
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
        let presign = self.client.get_object().bucket(&self.bucket).key(keys::package_object(tenant, package)).presigned(config);
        let request = crate::calls::presigning(presign).await.map_err(sdk_error)?;
        let expires_at = chrono::Utc::now() + chrono::Duration::from_std(ttl).map_err(unexpected)?;
        Ok(PresignedUrl { url: request.uri().to_string(), expires_at })
    }
}

/// What the staged bytes are hashed in: enough to keep the hashing off the
/// async threads in few hops, small enough to keep memory flat.
const HASH_CHUNK: usize = 1024 * 1024;

impl S3BlobStore {
    fn staged(&self, tenant: TenantId, upload: UploadId) -> String {
        keys::staged_object(tenant, upload)
    }

    /// The object's size, `None` when there is none.
    async fn size_of(&self, key: &str) -> Result<Option<u64>> {
        match self.client.head_object().bucket(&self.bucket).key(key).send().await {
            Ok(head) => Ok(Some(head.content_length().and_then(|n| u64::try_from(n).ok()).unwrap_or(0))),
            Err(e) => {
                let e = e.into_service_error();
                if e.is_not_found() { Ok(None) } else { Err(crate::service_error(e)) }
            }
        }
    }
}

#[async_trait]
impl StagingStore for S3BlobStore {
    async fn presign_staged_put(&self, tenant: TenantId, upload: UploadId, ttl: std::time::Duration) -> Result<PresignedUrl> {
        let config = PresigningConfig::expires_in(ttl).map_err(unexpected)?;
        let presign = self.client.put_object().bucket(&self.bucket).key(self.staged(tenant, upload)).presigned(config);
        let request = crate::calls::presigning(presign).await.map_err(sdk_error)?;
        let expires_at = chrono::Utc::now() + chrono::Duration::from_std(ttl).map_err(unexpected)?;
        Ok(PresignedUrl { url: request.uri().to_string(), expires_at })
    }

    async fn start_staged_multipart(&self, tenant: TenantId, upload: UploadId) -> Result<String> {
        let out = self.client.create_multipart_upload().bucket(&self.bucket).key(self.staged(tenant, upload)).send().await.map_err(sdk_error)?;
        out.upload_id.ok_or_else(|| DomainError::unexpected("S3 started a multipart upload without an id"))
    }

    async fn presign_staged_part(&self, tenant: TenantId, upload: UploadId, multipart: &str, part: u32, ttl: std::time::Duration) -> Result<PresignedUrl> {
        let config = PresigningConfig::expires_in(ttl).map_err(unexpected)?;
        let number = i32::try_from(part).map_err(unexpected)?;
        let presign =
            self.client.upload_part().bucket(&self.bucket).key(self.staged(tenant, upload)).upload_id(multipart).part_number(number).presigned(config);
        let request = crate::calls::presigning(presign).await.map_err(sdk_error)?;
        let expires_at = chrono::Utc::now() + chrono::Duration::from_std(ttl).map_err(unexpected)?;
        Ok(PresignedUrl { url: request.uri().to_string(), expires_at })
    }

    /// Lists the parts S3 holds (the client need not report their ETags).
    /// Parts S3 refuses to assemble (one but the last under 5 MiB) are a size mismatch.
    async fn finish_staged_multipart(&self, tenant: TenantId, upload: UploadId, multipart: &str, parts: u32) -> Result<bool> {
        let key = self.staged(tenant, upload);
        let mut stored: Vec<CompletedPart> = vec![];
        let mut marker: Option<String> = None;
        loop {
            let listed = self.client.list_parts().bucket(&self.bucket).key(&key).upload_id(multipart).set_part_number_marker(marker.take()).send().await;
            let page = match listed {
                Ok(page) => page,
                Err(e) => {
                    let e = e.into_service_error();
                    // Assembled already (a complete that failed after it), or aborted.
                    if e.code() == Some("NoSuchUpload") {
                        return Ok(self.size_of(&key).await?.is_some());
                    }
                    return Err(crate::service_error(e));
                }
            };
            for part in page.parts() {
                stored.push(CompletedPart::builder().set_part_number(part.part_number()).set_e_tag(part.e_tag().map(str::to_string)).build());
            }
            match page.next_part_number_marker() {
                Some(next) if page.is_truncated() == Some(true) => marker = Some(next.to_string()),
                _ => break,
            }
        }
        stored.sort_by_key(|p| p.part_number());
        let numbers: Vec<i32> = stored.iter().filter_map(|p| p.part_number()).collect();
        if !numbers.iter().copied().eq(1..=i32::try_from(parts).map_err(unexpected)?) {
            return Ok(false);
        }
        let done = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&key)
            .upload_id(multipart)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(stored)).build())
            .send()
            .await;
        match done {
            Ok(_) => Ok(true),
            Err(e) => {
                let e = e.into_service_error();
                match e.code() {
                    Some("EntityTooSmall") | Some("InvalidPart") => Err(DomainError::Validation {
                        code: "upload_size_mismatch",
                        errors: vec![berth_domain::error::FieldError::new("size", "every part but the last must be part_size bytes")],
                    }),
                    _ => Err(crate::service_error(e)),
                }
            }
        }
    }

    async fn inspect_staged(&self, tenant: TenantId, upload: UploadId, expected_size: u64) -> Result<Option<StagedObject>> {
        let key = self.staged(tenant, upload);
        let Some(size) = self.size_of(&key).await? else { return Ok(None) };
        if size != expected_size {
            return Ok(Some(StagedObject { size, sha256: None }));
        }
        let object = self.client.get_object().bucket(&self.bucket).key(&key).send().await.map_err(sdk_error)?;
        let mut body = object.body;
        let mut hasher = Sha256::new();
        let mut buffer = Vec::with_capacity(HASH_CHUNK);
        let mut read = 0u64;
        while let Some(chunk) = body.try_next().await.map_err(unexpected)? {
            read += chunk.len() as u64;
            buffer.extend_from_slice(&chunk);
            if buffer.len() >= HASH_CHUNK {
                // The chunk comes back hashed: one buffer, reused.
                let (next, mut used) = hash(hasher, std::mem::take(&mut buffer)).await?;
                used.clear();
                (hasher, buffer) = (next, used);
            }
        }
        let (hasher, _) = hash(hasher, buffer).await?;
        Ok(Some(StagedObject { size: read, sha256: (read == expected_size).then(|| digest_of(hasher)) }))
    }

    async fn promote_staged(&self, tenant: TenantId, upload: UploadId, content: &ContentRef) -> Result<()> {
        let target = keys::content_object(tenant, content.sha256.as_str().trim_start_matches("sha256:"));
        // Content-addressed: an object already there holds these bytes.
        if self.size_of(&target).await?.is_some() {
            return Ok(());
        }
        // One CopyObject: uploads are at most 1 GiB, under its 5 GiB limit.
        let source = format!("{}/{}", self.bucket, self.staged(tenant, upload));
        self.client.copy_object().bucket(&self.bucket).key(target).copy_source(source).send().await.map_err(sdk_error)?;
        Ok(())
    }

    async fn discard_staged(&self, tenant: TenantId, upload: UploadId) -> Result<()> {
        self.client.delete_object().bucket(&self.bucket).key(self.staged(tenant, upload)).send().await.map_err(sdk_error)?;
        Ok(())
    }
}
