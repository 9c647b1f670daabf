//! Presigned uploads of content too large for a request body: started by
//! `start_upload` (a presigned PUT, or a multipart upload above the part
//! size), the client sends the bytes to S3 itself, and `complete_upload`
//! checks them and creates the revision as `revise_component` would.

use super::{Berth, RevisionInput};
use crate::component::{Component, ContentRef, Revision};
use crate::context::{Permission, TenantCtx};
use crate::error::FieldError;
use crate::ids::{ComponentId, UploadId};
use crate::ports::PresignedUrl;
use crate::runtime::Digest;
use crate::upload::{MAX_UPLOAD_BYTES, UPLOAD_COMPLETE_GRACE_SECS, UPLOAD_TAKEOVER_SECS, UPLOAD_URL_SECS, Upload, UploadPlan, UploadState, parts_of};
use crate::values::Version;
use crate::{DomainError, Result};
use chrono::{Duration, Utc};

/// What the client declares before sending the bytes.
#[derive(Clone, Debug)]
pub struct NewUpload {
    pub size: u64,
    pub sha256: Digest,
}

/// Where the client sends the bytes.
#[derive(Clone, Debug)]
pub enum UploadTarget {
    Put(PresignedUrl),
    /// One URL per part, in part order (part 1 first); every part but the last is `part_size` bytes.
    Multipart {
        part_size: u64,
        parts: Vec<PresignedUrl>,
    },
}

#[derive(Clone, Debug)]
pub struct StartedUpload {
    pub upload: Upload,
    pub target: UploadTarget,
}

/// What the revision takes besides the content (absent: as the revision before), as in `RevisionInput`.
#[derive(Clone, Debug, Default)]
pub struct CompleteUpload {
    pub references: Option<Vec<ComponentId>>,
    pub extensions: Option<crate::extension::ExtensionPoints>,
}

#[derive(Clone, Debug)]
pub struct CompletedUpload {
    pub component: Component,
    pub revision: Revision,
    /// False when the upload had been completed before: this is the revision it became then.
    pub created: bool,
}

fn incomplete() -> DomainError {
    DomainError::conflict("upload_incomplete", "the content has not been uploaded (completely) yet")
}

fn mismatch(code: &'static str, field: &str, message: String) -> DomainError {
    DomainError::Validation { code, errors: vec![FieldError::new(field, message)] }
}

impl Berth {
    /// Records an upload of the component's next content and presigns where
    /// the client sends it (staged under the tenant).
    #[tracing::instrument(skip(self, ctx, input), fields(tenant_id = %ctx.tenant, request_id = %ctx.request_id, size = input.size))]
    pub async fn start_upload(&self, ctx: &TenantCtx, component: ComponentId, input: NewUpload) -> Result<StartedUpload> {
        self.get_component(ctx, component).await?;
        ctx.require(Permission::BuildComponents)?;
        if input.size == 0 {
            return Err(DomainError::invalid("size", "must be at least 1 byte (send empty content in the revision's body)"));
        }
        // A declared size, not a body: a field out of range (422), as the schema's maximum says.
        if input.size > MAX_UPLOAD_BYTES {
            return Err(DomainError::invalid("size", format!("at most {MAX_UPLOAD_BYTES} bytes (1 GiB)")));
        }
        let now = Utc::now();
        let ttl = std::time::Duration::from_secs(UPLOAD_URL_SECS.unsigned_abs());
        let id = UploadId::new();
        let staging = &self.ports.staging;
        let (plan, target) = match parts_of(input.size, self.settings.upload_part_bytes) {
            None => (UploadPlan::Single, UploadTarget::Put(staging.presign_staged_put(ctx.tenant, id, ttl).await?)),
            Some((part_size, parts)) => {
                let multipart_id = staging.start_staged_multipart(ctx.tenant, id).await?;
                let mut urls = Vec::with_capacity(parts as usize);
                for part in 1..=parts {
                    urls.push(staging.presign_staged_part(ctx.tenant, id, &multipart_id, part, ttl).await?);
                }
                (UploadPlan::Multipart { multipart_id, part_size, parts }, UploadTarget::Multipart { part_size, parts: urls })
            }
        };
        let urls_expire_at = now + Duration::seconds(UPLOAD_URL_SECS);
        let upload = Upload {
            id,
            component,
            size: input.size,
            sha256: input.sha256,
            plan,
            state: UploadState::Pending,
            created_by: ctx.actor.id.clone(),
            created_at: now,
            urls_expire_at,
            expires_at: urls_expire_at + Duration::seconds(UPLOAD_COMPLETE_GRACE_SECS),
        };
        self.ports.uploads.create_upload(ctx.tenant, &upload).await?;
        Ok(StartedUpload { upload, target })
    }

    /// Checks the uploaded bytes against the declared size and SHA-256, moves
    /// them to their content address and adds the component's next revision
    /// (as `revise_component`: same checks, audit and conditional write).
    /// Completing it again answers the revision it became.
    #[tracing::instrument(skip(self, ctx, input), fields(tenant_id = %ctx.tenant, request_id = %ctx.request_id))]
    pub async fn complete_upload(
        &self,
        ctx: &TenantCtx,
        component: ComponentId,
        id: UploadId,
        input: CompleteUpload,
        if_match: Option<Version>,
    ) -> Result<CompletedUpload> {
        let before = self.get_component(ctx, component).await?;
        ctx.require(Permission::BuildComponents)?;
        let now = Utc::now();
        let upload = match self.ports.uploads.get_upload(ctx.tenant, id).await? {
            Some(u) if u.component == component && !u.expired(now) => u,
            _ => return Err(DomainError::not_found("upload")),
        };
        match upload.state {
            UploadState::Completed { revision } => {
                let revision = self.ports.components.get_revision(ctx.tenant, component, revision).await?.ok_or(DomainError::not_found("revision"))?;
                return Ok(CompletedUpload { component: before, revision, created: false });
            }
            UploadState::Completing { since } if now - since < Duration::seconds(UPLOAD_TAKEOVER_SECS) => {
                return Err(DomainError::conflict("upload_in_progress", "this upload is being completed by another request"));
            }
            _ => {}
        }
        if if_match.is_some_and(|v| v.0 != u64::from(before.revision)) {
            return Err(DomainError::PreconditionFailed);
        }
        let claimed = Upload { state: UploadState::Completing { since: now }, ..upload.clone() };
        if !self.ports.uploads.update_upload(ctx.tenant, &claimed, &upload.state).await? {
            return Err(DomainError::conflict("upload_in_progress", "this upload is being completed by another request"));
        }
        let result = self.finish(ctx, &claimed, input, if_match).await;
        // Anything but a revision made: the upload may be completed again (the client fixes what was refused).
        let after = match &result {
            Ok(done) => Upload { state: UploadState::Completed { revision: done.revision.revision }, ..claimed.clone() },
            Err(_) => Upload { state: UploadState::Pending, ..claimed.clone() },
        };
        if !self.ports.uploads.update_upload(ctx.tenant, &after, &claimed.state).await? {
            tracing::warn!(upload = %id, "the upload's state moved on while it was being completed");
        }
        if result.is_ok() {
            self.discard(ctx, &claimed).await;
        }
        result
    }

    /// The checks, the copy and the revision, for an upload this request claimed.
    async fn finish(&self, ctx: &TenantCtx, upload: &Upload, input: CompleteUpload, if_match: Option<Version>) -> Result<CompletedUpload> {
        let staging = &self.ports.staging;
        if let UploadPlan::Multipart { multipart_id, parts, .. } = &upload.plan
            && !staging.finish_staged_multipart(ctx.tenant, upload.id, multipart_id, *parts).await?
        {
            return Err(incomplete());
        }
        let Some(staged) = staging.inspect_staged(ctx.tenant, upload.id, upload.size).await? else {
            return Err(incomplete());
        };
        if staged.size != upload.size {
            self.discard(ctx, upload).await;
            return Err(mismatch("upload_size_mismatch", "size", format!("{} bytes were uploaded, {} declared", staged.size, upload.size)));
        }
        if staged.sha256.as_ref() != Some(&upload.sha256) {
            self.discard(ctx, upload).await;
            let actual = staged.sha256.map(String::from).unwrap_or_default();
            return Err(mismatch("upload_digest_mismatch", "sha256", format!("the uploaded content is {actual}, {} was declared", upload.sha256.as_str())));
        }
        let content = ContentRef { sha256: upload.sha256.clone(), size: upload.size };
        staging.promote_staged(ctx.tenant, upload.id, &content).await?;
        let input = RevisionInput { content: None, references: input.references, extensions: input.extensions };
        let (component, revision) = self.revise_with(ctx, upload.component, input, Some(content), if_match).await?;
        Ok(CompletedUpload { component, revision, created: true })
    }

    /// Removes the staged object (a multipart one is assembled by then); a
    /// failure is only logged: the bucket's lifecycle rule removes staged objects after a day.
    async fn discard(&self, ctx: &TenantCtx, upload: &Upload) {
        if let Err(e) = self.ports.staging.discard_staged(ctx.tenant, upload.id).await {
            tracing::warn!(upload = %upload.id, error = ?e, "the staged upload could not be removed");
        }
    }
}
