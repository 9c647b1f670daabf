use crate::stores::Stores;
use berth_domain::component::ComponentType;
use berth_domain::component::ContentRef;
use berth_domain::ids::{ComponentId, PackageId, UploadId};
use berth_domain::package::{Manifest, ManifestEntry};
use berth_domain::ports::StagedObject;
use berth_domain::runtime::Digest;
use berth_domain::upload::{Upload, UploadPlan, UploadState};
use berth_domain::values::Plan;
use chrono::{Duration, Utc};
use sha2::Digest as _;
use std::time::Duration as StdDuration;

const TTL: StdDuration = StdDuration::from_secs(600);

fn sha256(bytes: &[u8]) -> Digest {
    Digest::parse(&format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))).expect("a digest")
}

fn upload(expires_in: Duration) -> Upload {
    let now = Utc::now();
    Upload {
        id: UploadId::new(),
        component: ComponentId::new(),
        size: 3,
        sha256: sha256(b"abc"),
        plan: UploadPlan::Single,
        state: UploadState::Pending,
        created_by: "dev@acme.example".into(),
        created_at: now,
        urls_expire_at: now + Duration::minutes(15),
        expires_at: now + expires_in,
    }
}

pub async fn an_upload_reads_back_for_its_tenant_only_and_moves_on_only_from_the_state_it_is_in(s: Stores) {
    let (acme, globex) = (s.tenant(Plan::default()).await, s.tenant(Plan::default()).await);
    let pending = upload(Duration::hours(1));
    s.uploads.create_upload(acme, &pending).await.expect("recorded");
    assert_eq!(s.uploads.get_upload(acme, pending.id).await.expect("read"), Some(pending.clone()));
    assert_eq!(s.uploads.get_upload(globex, pending.id).await.expect("read"), None, "another tenant's upload is not found");

    let since = Utc::now();
    let claimed = Upload { state: UploadState::Completing { since }, ..pending.clone() };
    assert!(s.uploads.update_upload(acme, &claimed, &UploadState::Pending).await.expect("written"));
    assert!(!s.uploads.update_upload(acme, &claimed, &UploadState::Pending).await.expect("refused"), "a second claim from pending loses");
    assert!(!s.uploads.update_upload(globex, &claimed, &claimed.state).await.expect("refused"), "nor through another tenant");
    let done = Upload { state: UploadState::Completed { revision: 2 }, ..pending.clone() };
    assert!(s.uploads.update_upload(acme, &done, &UploadState::Completing { since }).await.expect("written"));
    assert_eq!(s.uploads.get_upload(acme, pending.id).await.expect("read").map(|u| u.state), Some(UploadState::Completed { revision: 2 }));
}

pub async fn an_expired_upload_is_not_found_and_cannot_be_moved_on(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let expired = upload(Duration::seconds(-1));
    s.uploads.create_upload(acme, &expired).await.expect("recorded");
    assert_eq!(s.uploads.get_upload(acme, expired.id).await.expect("read"), None);
    let claimed = Upload { state: UploadState::Completing { since: Utc::now() }, ..expired.clone() };
    assert!(!s.uploads.update_upload(acme, &claimed, &UploadState::Pending).await.expect("refused"));
}

pub async fn a_staged_object_is_measured_hashed_only_at_the_declared_size_promoted_to_its_content_address_and_discarded(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let id = UploadId::new();
    let url = s.staging.presign_staged_put(acme, id, TTL).await.expect("presigned");
    assert!(url.expires_at > Utc::now() + Duration::minutes(9), "the URL lives the TTL asked");
    assert_eq!(s.staging.inspect_staged(acme, id, 5).await.expect("inspected"), None, "nothing staged yet");

    s.put_staged(&url, acme, id, None, b"hello".to_vec()).await;
    assert_eq!(s.staging.inspect_staged(acme, id, 6).await.expect("inspected"), Some(StagedObject { size: 5, sha256: None }));
    assert_eq!(s.staging.inspect_staged(acme, id, 5).await.expect("inspected"), Some(StagedObject { size: 5, sha256: Some(sha256(b"hello")) }));

    let content = ContentRef { sha256: sha256(b"hello"), size: 5 };
    s.staging.promote_staged(acme, id, &content).await.expect("promoted");
    s.staging.promote_staged(acme, id, &content).await.expect("promoting again is a no-op");
    let entry = ManifestEntry {
        id: ComponentId::new(),
        name: "c".into(),
        kind: ComponentType::CustomLibrary,
        revision: 2,
        sha256: content.sha256.clone(),
        size: 5,
        extensions: Default::default(),
    };
    let manifest = Manifest { root: entry.id, components: vec![entry] };
    s.blobs.write_package_archive(acme, PackageId::new(), &manifest).await.expect("the promoted content is archived from its content address");

    s.staging.discard_staged(acme, id).await.expect("discarded");
    assert_eq!(s.staging.inspect_staged(acme, id, 5).await.expect("inspected"), None);
}

pub async fn a_multipart_upload_is_assembled_only_once_every_part_is_there(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let id = UploadId::new();
    let multipart = s.staging.start_staged_multipart(acme, id).await.expect("started");
    let first = vec![7u8; 5 * 1024 * 1024];
    let url = s.staging.presign_staged_part(acme, id, &multipart, 1, TTL).await.expect("presigned");
    s.put_staged(&url, acme, id, Some((&multipart, 1)), first.clone()).await;
    assert!(!s.staging.finish_staged_multipart(acme, id, &multipart, 2).await.expect("checked"), "part 2 is missing");
    assert_eq!(s.staging.inspect_staged(acme, id, 5).await.expect("inspected"), None);

    let url = s.staging.presign_staged_part(acme, id, &multipart, 2, TTL).await.expect("presigned");
    s.put_staged(&url, acme, id, Some((&multipart, 2)), b"tail".to_vec()).await;
    assert!(s.staging.finish_staged_multipart(acme, id, &multipart, 2).await.expect("assembled"));
    assert!(s.staging.finish_staged_multipart(acme, id, &multipart, 2).await.expect("checked"), "assembled already");
    let whole: Vec<u8> = first.into_iter().chain(b"tail".iter().copied()).collect();
    let staged = s.staging.inspect_staged(acme, id, whole.len() as u64).await.expect("inspected");
    assert_eq!(staged, Some(StagedObject { size: whole.len() as u64, sha256: Some(sha256(&whole)) }));
}
