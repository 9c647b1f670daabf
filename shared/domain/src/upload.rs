//! Content uploaded by the client straight to S3 through presigned URLs, for
//! content too large for a request body. The upload is staged under the
//! tenant, checked (size and SHA-256) when the client completes it, moved to
//! its content address and only then becomes a component revision.

use crate::ids::{ComponentId, UploadId};
use crate::runtime::Digest;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The largest content one upload may carry (1 GiB).
pub const MAX_UPLOAD_BYTES: u64 = 1024 * 1024 * 1024;
/// Above this size an upload is multipart unless `Settings::upload_part_bytes` says otherwise (64 MiB).
pub const DEFAULT_UPLOAD_PART_BYTES: u64 = 64 * 1024 * 1024;
/// S3's smallest part (all but the last).
pub const MIN_UPLOAD_PART_BYTES: u64 = 5 * 1024 * 1024;
/// How long the presigned URLs of an upload work.
pub const UPLOAD_URL_SECS: i64 = 15 * 60;
/// How long an upload can be completed after its URLs expire (a PUT that
/// started just in time may end later); after that it is unknown (404).
pub const UPLOAD_COMPLETE_GRACE_SECS: i64 = 60 * 60;
/// A `complete` that died (a crashed function) is taken over after this long:
/// the longest a Lambda runs.
pub const UPLOAD_TAKEOVER_SECS: i64 = 15 * 60;

/// How the client sends the bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum UploadPlan {
    /// One presigned PUT of the whole content.
    Single,
    /// S3 multipart: `parts` parts of `part_size` bytes (the last one shorter),
    /// each with its presigned URL, in the multipart upload `multipart_id`.
    Multipart { multipart_id: String, part_size: u64, parts: u32 },
}

/// Where an upload is in its life. Only `Pending` may be completed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum UploadState {
    Pending,
    /// A `complete` is checking it (since then): a second one waits.
    Completing {
        since: DateTime<Utc>,
    },
    /// It became this revision of its component.
    Completed {
        revision: u32,
    },
}

impl UploadState {
    /// A stable text of the state, which a store compares its stored state with.
    pub fn token(&self) -> String {
        match self {
            Self::Pending => "pending".into(),
            Self::Completing { since } => format!("completing:{}", since.timestamp_micros()),
            Self::Completed { revision } => format!("completed:{revision}"),
        }
    }
}

/// A pending (or finished) upload, as recorded when it was started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upload {
    pub id: UploadId,
    pub component: ComponentId,
    /// What the client declared; the staged object must match both.
    pub size: u64,
    pub sha256: Digest,
    pub plan: UploadPlan,
    pub state: UploadState,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    /// When its presigned URLs stop working.
    pub urls_expire_at: DateTime<Utc>,
    /// After this, the upload is forgotten (the store's TTL removes it).
    pub expires_at: DateTime<Utc>,
}

impl Upload {
    pub fn expired(&self, now: DateTime<Utc>) -> bool {
        now >= self.expires_at
    }
}

/// The plan for `size` bytes: multipart above `part_bytes` (at least S3's
/// minimum part), so that no single PUT carries more than that.
pub fn parts_of(size: u64, part_bytes: u64) -> Option<(u64, u32)> {
    let part = part_bytes.max(MIN_UPLOAD_PART_BYTES);
    if size <= part {
        return None;
    }
    Some((part, u32::try_from(size.div_ceil(part)).unwrap_or(u32::MAX)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_up_to_the_part_size_is_one_put_and_larger_content_is_split_into_parts_of_at_least_5_mib() {
        let mib = 1024 * 1024;
        assert_eq!(parts_of(10 * mib, 64 * mib), None);
        assert_eq!(parts_of(64 * mib, 64 * mib), None);
        assert_eq!(parts_of(64 * mib + 1, 64 * mib), Some((64 * mib, 2)));
        assert_eq!(parts_of(12 * mib, 5 * mib), Some((5 * mib, 3)));
        assert_eq!(parts_of(12 * mib, 1), Some((5 * mib, 3)), "S3 refuses parts under 5 MiB but the last");
        assert_eq!(parts_of(MAX_UPLOAD_BYTES, MIN_UPLOAD_PART_BYTES), Some((5 * mib, 205)), "well under S3's 10,000 parts");
    }

    #[test]
    fn each_state_has_its_own_token() {
        let since = Utc::now();
        let tokens = [UploadState::Pending.token(), UploadState::Completing { since }.token(), UploadState::Completed { revision: 2 }.token()];
        assert_eq!(tokens.iter().collect::<std::collections::HashSet<_>>().len(), 3);
    }
}
