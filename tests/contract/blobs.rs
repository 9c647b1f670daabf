use crate::fixtures::*;
use crate::stores::Stores;
use berth_domain::DomainError;
use berth_domain::component::ComponentType;
use berth_domain::ids::{ComponentId, PackageId, TenantId};
use berth_domain::package::{Manifest, ManifestEntry};
use berth_domain::refusal::Refusal;
use berth_domain::runtime::Digest;
use berth_domain::values::Plan;
use sha2::Digest as _;
use std::time::Duration;

fn sha256(bytes: &[u8]) -> Digest {
    Digest::parse(&format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))).expect("a digest")
}

fn manifest(entries: &[(&Digest, u64)]) -> Manifest {
    let components: Vec<ManifestEntry> = entries
        .iter()
        .map(|(sha256, size)| ManifestEntry {
            id: ComponentId::new(),
            name: "c".into(),
            kind: ComponentType::Map,
            revision: 1,
            sha256: (*sha256).clone(),
            size: *size,
            extensions: Default::default(),
        })
        .collect();
    Manifest { root: components[0].id, components }
}

impl Stores {
    async fn archive(&self, tenant: TenantId, package: PackageId, manifest: &Manifest) -> berth_domain::Result<berth_domain::ports::ArchiveInfo> {
        self.blobs.write_package_archive(tenant, package, manifest).await
    }
}

pub async fn content_is_stored_under_its_sha256_and_a_second_put_is_a_no_op(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let stored = s.blobs.put_content(acme, b"<process/>".to_vec()).await.expect("stored");
    assert_eq!((stored.sha256.clone(), stored.size), (sha256(b"<process/>"), 10));
    assert_eq!(s.blobs.put_content(acme, b"<process/>".to_vec()).await.expect("stored again"), stored);
    assert_eq!(s.blobs.put_content(acme, vec![]).await.expect("stored").sha256, sha256(b""), "even empty content");
}

pub async fn a_package_archive_is_written_once_from_the_tenants_content(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let (a, b) = (s.blobs.put_content(acme, b"alpha".to_vec()).await.expect("stored"), s.blobs.put_content(acme, b"beta!".to_vec()).await.expect("stored"));
    let manifest = manifest(&[(&a.sha256, a.size), (&b.sha256, b.size)]);
    let package = PackageId::new();

    let written = s.archive(acme, package, &manifest).await.expect("written");
    assert!(written.size > (a.size + b.size), "the archive holds the manifest and both contents: {} bytes", written.size);
    assert!(written.digest.as_str().starts_with("sha256:"));
    assert_eq!(refused(s.archive(acme, package, &manifest).await), Refusal::ArchiveExists, "never overwritten");
    let other = s.archive(acme, PackageId::new(), &manifest).await.expect("another package's archive");
    assert_eq!(other.digest, written.digest, "the same manifest and contents make the same archive");

    s.blobs.delete_package_archive(acme, package).await.expect("deleted");
    s.blobs.delete_package_archive(acme, package).await.expect("deleting what is gone is fine");
    s.archive(acme, package, &manifest).await.expect("written again once deleted");
}

pub async fn an_archive_of_content_the_tenant_does_not_hold_fails_and_leaves_nothing(s: Stores) {
    let (acme, globex) = (s.tenant(Plan::default()).await, s.tenant(Plan::default()).await);
    let theirs = s.blobs.put_content(globex, b"globex only".to_vec()).await.expect("stored");
    let package = PackageId::new();
    for (what, manifest) in [("another tenant's", manifest(&[(&theirs.sha256, theirs.size)])), ("never stored", manifest(&[(&sha256(b"nothing"), 7)]))] {
        let result = s.archive(acme, package, &manifest).await;
        let missing = manifest.components[0].sha256.clone();
        assert!(matches!(result, Err(DomainError::Refused(Refusal::ContentMissing(ref d))) if *d == missing), "{what} content: {result:?}");
    }
    let ours = s.blobs.put_content(acme, b"short".to_vec()).await.expect("stored");
    let result = s.archive(acme, package, &manifest(&[(&ours.sha256, ours.size + 1)])).await;
    assert!(matches!(result, Err(DomainError::Unexpected(_))), "content shorter than recorded: {result:?}");
    s.archive(acme, package, &manifest(&[(&ours.sha256, ours.size)])).await.expect("no failed write left an archive behind");
}

pub async fn a_download_url_lives_for_the_ttl_asked(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let before = chrono::Utc::now();
    let url = s.blobs.presign_package_download(acme, PackageId::new(), Duration::from_secs(300)).await.expect("presigned");
    assert!(!url.url.is_empty());
    let lives = url.expires_at - before;
    assert!(lives >= chrono::Duration::seconds(299) && lives <= chrono::Duration::seconds(302), "{lives}");
    let result = s.blobs.presign_package_download(acme, PackageId::new(), Duration::from_secs(8 * 24 * 3600)).await;
    assert!(matches!(result, Err(DomainError::Unexpected(_))), "longer than a week: {result:?}");
}
