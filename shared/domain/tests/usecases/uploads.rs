//! Presigned uploads: who may start one, what `complete` refuses and what a
//! refusal leaves for the next try.

use crate::fixture::{World, refused};
use berth_domain::ids::UploadId;
use berth_domain::ports::UploadStore;
use berth_domain::runtime::Digest;
use berth_domain::upload::{MAX_UPLOAD_BYTES, UploadState};
use berth_domain::usecases::{CompleteUpload, NewUpload, StartedUpload};
use berth_domain::values::{Role, Version};
use sha2::Digest as _;

fn sha256(bytes: &[u8]) -> Digest {
    Digest::parse(&format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))).expect("a digest")
}

async fn start(w: &World, bytes: &[u8]) -> StartedUpload {
    let input = NewUpload { size: bytes.len() as u64, sha256: sha256(bytes) };
    w.berth.start_upload(&w.admin, w.orders.id, input).await.expect("the upload starts")
}

async fn complete(w: &World, id: UploadId, if_match: Option<Version>) -> berth_domain::Result<berth_domain::usecases::CompletedUpload> {
    w.berth.complete_upload(&w.admin, w.orders.id, id, CompleteUpload::default(), if_match).await
}

#[tokio::test]
async fn only_those_who_may_revise_a_component_start_an_upload_and_only_of_1_byte_to_1_gib() {
    let w = World::new().await;
    let input = |size: u64| NewUpload { size, sha256: sha256(b"x") };
    let deployer = w.user("dee@acme.example", &[Role::Deployer]);
    assert_eq!(refused(w.berth.start_upload(&deployer, w.orders.id, input(1)).await).code(), "forbidden");
    assert_eq!(refused(w.berth.start_upload(&w.admin, w.orders.id, input(MAX_UPLOAD_BYTES + 1)).await).code(), "validation_failed");
    assert_eq!(refused(w.berth.start_upload(&w.admin, w.orders.id, input(0)).await).code(), "validation_failed");
    let developer = w.user("dev@acme.example", &[Role::Developer]);
    w.berth.start_upload(&developer, w.orders.id, input(MAX_UPLOAD_BYTES)).await.expect("1 GiB is allowed");
}

#[tokio::test]
async fn a_revision_refused_at_complete_leaves_the_upload_staged_so_it_can_be_completed_again() {
    let w = World::new().await;
    let started = start(&w, b"orders v2").await;
    w.store.stage_upload(w.tenant, started.upload.id, b"orders v2".to_vec());

    assert_eq!(refused(complete(&w, started.upload.id, Some(Version(7))).await).code(), "precondition_failed");
    assert!(w.store.is_staged(w.tenant, started.upload.id), "the content stays staged");
    let done = complete(&w, started.upload.id, Some(Version(1))).await.expect("completed with the current version");
    assert_eq!((done.created, done.revision.revision, done.revision.content.sha256.clone()), (true, 2, sha256(b"orders v2")));
    assert!(!w.store.is_staged(w.tenant, started.upload.id), "the staged object is removed once it is a revision");
}

#[tokio::test]
async fn an_upload_being_completed_is_not_completed_by_a_second_request_meanwhile() {
    let w = World::new().await;
    let started = start(&w, b"orders v2").await;
    w.store.stage_upload(w.tenant, started.upload.id, b"orders v2".to_vec());
    let claimed = berth_domain::upload::Upload { state: UploadState::Completing { since: chrono::Utc::now() }, ..started.upload.clone() };
    assert!(w.store.update_upload(w.tenant, &claimed, &UploadState::Pending).await.expect("claimed"));

    assert_eq!(refused(complete(&w, started.upload.id, None).await).code(), "upload_in_progress");
    assert_eq!(w.berth.get_component(&w.admin, w.orders.id).await.expect("read").revision, 1);
}

#[tokio::test]
async fn an_upload_is_completed_only_under_its_own_component() {
    let w = World::new().await;
    let started = start(&w, b"orders v2").await;
    w.store.stage_upload(w.tenant, started.upload.id, b"orders v2".to_vec());
    let other = w.component("Other", berth_domain::component::ComponentType::Map, b"map", &[]).await;
    let wrong = w.berth.complete_upload(&w.admin, other.id, started.upload.id, CompleteUpload::default(), None).await;
    assert_eq!(refused(wrong).code(), "not_found");
}
