//! Request and response bodies of the upload routes.

use crate::routes::extensions::views::ExtensionPointsBody;
use berth_domain::usecases::{StartedUpload, UploadTarget};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;
use uuid::Uuid;

/// The content about to be uploaded.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"size": 10485760, "sha256": "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}))]
pub struct StartUpload {
    /// Bytes; at most 1 GiB.
    #[schema(minimum = 1, maximum = 1073741824)]
    #[serde(deserialize_with = "berth_web::extract::whole::number")]
    pub size: u64,
    /// `sha256:` and 64 lowercase hex digits: what the uploaded bytes must hash to.
    #[schema(pattern = "^sha256:[0-9a-f]{64}$")]
    pub sha256: String,
}

/// One part of a multipart upload.
#[derive(Serialize, ToSchema)]
pub struct UploadPartView {
    pub part_number: u32,
    pub url: String,
}

/// Where to send the content: `PUT` it whole to `url`, or each part (all
/// `part_size` bytes but the last) to its `url`; with `headers`, in either case.
#[derive(Serialize, ToSchema)]
pub struct UploadView {
    pub upload_id: Uuid,
    pub component_id: Uuid,
    pub size: u64,
    pub sha256: String,
    /// When the URLs stop working.
    pub expires_at: DateTime<Utc>,
    #[schema(example = "PUT")]
    pub method: String,
    /// The whole content's URL (a single PUT).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Headers each PUT must carry (none today).
    pub headers: BTreeMap<String, String>,
    /// A multipart upload's parts, in order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parts: Option<Vec<UploadPartView>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub part_size: Option<u64>,
}

impl From<&StartedUpload> for UploadView {
    fn from(started: &StartedUpload) -> Self {
        let u = &started.upload;
        let (url, parts, part_size) = match &started.target {
            UploadTarget::Put(put) => (Some(put.url.clone()), None, None),
            UploadTarget::Multipart { part_size, parts } => {
                let parts = parts.iter().zip(1..).map(|(p, n)| UploadPartView { part_number: n, url: p.url.clone() }).collect();
                (None, Some(parts), Some(*part_size))
            }
        };
        Self {
            upload_id: u.id.as_uuid(),
            component_id: u.component.as_uuid(),
            size: u.size,
            sha256: u.sha256.as_str().to_string(),
            expires_at: u.urls_expire_at,
            method: "PUT".into(),
            url,
            headers: BTreeMap::new(),
            parts,
            part_size,
        }
    }
}

/// What the new revision takes besides the uploaded content; absent fields keep the current revision's value.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"references": []}))]
pub struct CompleteUploadBody {
    #[schema(max_items = 200)]
    pub references: Option<Vec<Uuid>>,
    /// The extension points it declares (absent: those of the revision before).
    pub extensions: Option<ExtensionPointsBody>,
}

#[cfg(test)]
mod tests {
    use super::StartUpload;
    use serde_json::json;

    #[test]
    fn a_size_written_with_a_zero_fraction_is_the_whole_number_and_a_fraction_is_refused() {
        let sha256 = format!("sha256:{}", "a".repeat(64));
        let read = serde_json::from_value::<StartUpload>(json!({"size": 33554431.0, "sha256": sha256})).expect("a whole number");
        assert_eq!(read.size, 33_554_431);
        assert!(serde_json::from_value::<StartUpload>(json!({"size": 1.5, "sha256": sha256})).is_err());
    }
}
