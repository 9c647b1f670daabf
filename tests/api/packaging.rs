use berth_aws::S3BlobStore;
use berth_domain::ids::{PackageId, TenantId};
use berth_domain::package::Manifest;
use berth_domain::ports::BlobStore;
use berth_tests::{TestApp, b64, expect_problem, expect_status, sha256, unpack};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn ids(manifest: &Value) -> Vec<String> {
    manifest["components"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn a_package_bundles_the_parent_child_map_and_connection_and_only_requires_the_certificate() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let connection = app.component(&acme, "Orders DB", "connection", b"jdbc:postgres://orders", &[]).await;
    let map = app.component(&acme, "Order map", "map", b"map v1", &[&connection]).await;
    let child = app.component(&acme, "Child", "process", b"child process", &[&map]).await;
    let cert = app.component(&acme, "TLS", "certificate", b"-----BEGIN CERTIFICATE-----", &[]).await;
    let parent = app.component(&acme, "Parent", "process", b"parent process", &[&child, &cert]).await;
    assert_eq!(cert["independent"], true);
    assert_eq!(parent["independent"], false);

    let package = app.package(&acme, &parent, None).await;
    assert_eq!(package["version"], "1");
    assert_eq!(package["manifest"]["root"], parent["id"]);
    assert_eq!(ids(&package["manifest"]), [&parent, &child, &map, &connection].map(|c| c["id"].as_str().unwrap().to_string()));
    assert_eq!(package["requirements"], json!([{"id": cert["id"], "name": "TLS", "type": "certificate"}]));
    let entry = &package["manifest"]["components"][2];
    assert_eq!(entry["name"], "Order map");
    assert_eq!(entry["type"], "map");
    assert_eq!(entry["revision"], 1);
    assert_eq!(entry["sha256"], sha256(b"map v1"));
    assert_eq!(entry["size"], 6);

    let archive = app.download(&acme, &package).await;
    assert_eq!(sha256(&archive), package["digest"].as_str().unwrap(), "the digest is the archive's SHA-256");
    assert_eq!(archive.len() as u64, package["size"].as_u64().unwrap());
    let files = unpack(&archive);
    let manifest: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    assert_eq!(manifest, package["manifest"]);
    assert_eq!(files[&format!("components/{}/content", map["id"].as_str().unwrap())], b"map v1");
    assert!(!files.keys().any(|k| k.contains(cert["id"].as_str().unwrap())), "the certificate is not bundled");
}

#[tokio::test]
async fn a_package_never_changes_when_its_components_are_edited_later() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let connection = app.component(&acme, "DB", "connection", b"db", &[]).await;
    let map = app.component(&acme, "Map", "map", b"map v1", &[&connection]).await;
    let process = app.component(&acme, "Orders", "process", b"process", &[&map]).await;
    let v1 = app.package(&acme, &process, Some("v1")).await;
    let v1_bytes = app.download(&acme, &v1).await;

    app.revise(&acme, &map, b"map v2").await;
    let v2 = app.package(&acme, &process, Some("v2")).await;

    let v1_again = expect_status(app.get(&format!("/v1/packages/{}", v1["id"].as_str().unwrap()), &acme.admin).await, StatusCode::OK).await;
    assert_eq!(v1_again["manifest"], v1["manifest"]);
    assert_eq!(v1_again["digest"], v1["digest"]);
    let v1_bytes_again = app.download(&acme, &v1).await;
    assert_eq!(v1_bytes_again, v1_bytes, "the downloaded bytes are unchanged");
    assert_eq!(sha256(&v1_bytes_again), v1["digest"].as_str().unwrap());
    assert_eq!(v1_again["outdated_components"], json!([{"id": map["id"], "name": "Map", "packaged_revision": 1, "current_revision": 2}]));

    assert_ne!(v2["digest"], v1["digest"]);
    let (e1, e2) = (v1["manifest"]["components"].as_array().unwrap(), v2["manifest"]["components"].as_array().unwrap());
    assert_eq!(e1.len(), e2.len());
    for (a, b) in e1.iter().zip(e2) {
        if a["id"] == map["id"] {
            assert_eq!((a["revision"].as_u64(), b["revision"].as_u64()), (Some(1), Some(2)));
            assert_eq!(b["sha256"], sha256(b"map v2"));
        } else {
            assert_eq!(a, b, "only the map differs between v1 and v2");
        }
    }
    assert_eq!(unpack(&app.download(&acme, &v2).await)[&format!("components/{}/content", map["id"].as_str().unwrap())], b"map v2");
    let v2_now = expect_status(app.get(&format!("/v1/packages/{}", v2["id"].as_str().unwrap()), &acme.admin).await, StatusCode::OK).await;
    assert_eq!(v2_now["outdated_components"], json!([]));
}

#[tokio::test]
async fn changing_a_child_process_marks_the_parent_package_outdated() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let child = app.component(&acme, "Child", "process", b"child v1", &[]).await;
    let parent = app.component(&acme, "Parent", "process", b"parent", &[&child]).await;
    let package = app.package(&acme, &parent, None).await;
    app.revise(&acme, &child, b"child v2").await;
    let now = expect_status(app.get(&format!("/v1/packages/{}", package["id"].as_str().unwrap()), &acme.admin).await, StatusCode::OK).await;
    assert_eq!(now["outdated_components"][0]["id"], child["id"]);
}

#[tokio::test]
async fn versions_are_numbered_per_component_and_unique() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let a = app.component(&acme, "A", "process", b"a", &[]).await;
    let b = app.component(&acme, "B", "process", b"b", &[]).await;
    assert_eq!(app.package(&acme, &a, None).await["version"], "1");
    assert_eq!(app.package(&acme, &a, Some("2")).await["version"], "2");
    assert_eq!(app.package(&acme, &a, None).await["version"], "3", "an auto number skips labels taken explicitly");
    assert_eq!(app.package(&acme, &b, None).await["version"], "1", "numbering is per component");
    let again = app.post("/v1/packages", &acme.admin, json!({"component_id": a["id"], "version": "2"})).await;
    expect_problem(again, StatusCode::CONFLICT, "version_exists").await;

    let listed = expect_status(app.get(&format!("/v1/packages?component_id={}", a["id"].as_str().unwrap()), &acme.admin).await, StatusCode::OK).await;
    let versions: Vec<&str> = listed["items"].as_array().unwrap().iter().map(|p| p["version"].as_str().unwrap()).collect();
    assert_eq!(versions, ["3", "2", "1"], "newest first");
}

#[tokio::test]
async fn two_concurrent_requests_for_the_same_version_create_one_package_and_leave_no_orphan_blob() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let process = app.component(&acme, "Orders", "process", b"orders", &[]).await;
    let body = json!({"component_id": process["id"], "version": "1.0.0"});
    let (a, b) = tokio::join!(app.post("/v1/packages", &acme.admin, body.clone()), app.post("/v1/packages", &acme.admin, body.clone()));
    let mut statuses = [a.status(), b.status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::CREATED, StatusCode::CONFLICT]);

    let listed = expect_status(app.get("/v1/packages", &acme.admin).await, StatusCode::OK).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    let objects = app.clients.s3.list_objects_v2().bucket(&app.names.bucket).prefix(format!("tenants/{}/packages/", acme.id)).send().await.unwrap();
    assert_eq!(objects.key_count(), Some(1), "exactly one archive: the losing request removed its own");
}

#[tokio::test]
async fn an_existing_package_archive_cannot_be_overwritten_through_the_store() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let process = app.component(&acme, "Orders", "process", b"orders", &[]).await;
    let other = app.component(&acme, "Other", "process", b"something else", &[]).await;
    let package = app.package(&acme, &process, None).await;
    let before = app.download(&acme, &package).await;

    let store = S3BlobStore::new(app.clients.s3.clone(), app.names.bucket.clone());
    let tenant: TenantId = acme.id.parse().unwrap();
    let id: PackageId = package["id"].as_str().unwrap().parse().unwrap();
    let other_package = app.package(&acme, &other, None).await;
    let forged: Manifest = serde_json::from_value(other_package["manifest"].clone()).unwrap();
    let err = store.write_package_archive(tenant, id, &forged).await.unwrap_err();
    assert_eq!(err.code(), "package_archive_exists");
    assert_eq!(app.download(&acme, &package).await, before, "the archive is unchanged");
}

#[tokio::test]
async fn a_package_larger_than_one_upload_part_streams_through_a_multipart_upload() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    // Incompressible content: three 3.5 MiB blobs make an archive over the 8 MiB part size.
    let blob = |seed: u8| -> Vec<u8> {
        let mut x: u32 = 0x9e37_79b9 ^ u32::from(seed);
        (0..3_500_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x & 0xff) as u8
            })
            .collect()
    };
    let (c1, c2, c3) = (blob(1), blob(2), blob(3));
    let a = app.component(&acme, "A", "script", &c1, &[]).await;
    let b = app.component(&acme, "B", "script", &c2, &[]).await;
    let root = app.component(&acme, "Root", "process", &c3, &[&a, &b]).await;
    let package = app.package(&acme, &root, None).await;
    assert!(package["size"].as_u64().unwrap() > 8 * 1024 * 1024, "the archive spans more than one part");

    let archive = app.download(&acme, &package).await;
    assert_eq!(sha256(&archive), package["digest"].as_str().unwrap());
    let files = unpack(&archive);
    assert_eq!(files[&format!("components/{}/content", a["id"].as_str().unwrap())], c1);
    assert_eq!(files[&format!("components/{}/content", root["id"].as_str().unwrap())], c3);
}

#[tokio::test]
async fn revisions_keep_the_history_of_a_component() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let map = app.component(&acme, "Map", "map", b"v1", &[]).await;
    let id = map["id"].as_str().unwrap();
    let second = app.revise(&acme, &map, b"v2").await;
    assert_eq!(second["revision"], 2);
    let current = expect_status(app.get(&format!("/v1/components/{id}"), &acme.admin).await, StatusCode::OK).await;
    assert_eq!(current["revision"], 2);
    assert_eq!(current["content_sha256"], sha256(b"v2"));

    let history = expect_status(app.get(&format!("/v1/components/{id}/revisions"), &acme.admin).await, StatusCode::OK).await;
    let shas: Vec<&str> = history["items"].as_array().unwrap().iter().map(|r| r["content_sha256"].as_str().unwrap()).collect();
    assert_eq!(shas, [sha256(b"v1"), sha256(b"v2")]);
    let first = expect_status(app.get(&format!("/v1/components/{id}/revisions/1"), &acme.admin).await, StatusCode::OK).await;
    assert_eq!(first["content_sha256"], sha256(b"v1"));
    expect_status(app.get(&format!("/v1/components/{id}/revisions/3"), &acme.admin).await, StatusCode::NOT_FOUND).await;

    let stale = app
        .request(reqwest::Method::POST, &format!("/v1/components/{id}/revisions"), Some(&acme.admin))
        .header("if-match", "\"1\"")
        .json(&json!({"content": b64(b"v3")}))
        .send()
        .await
        .unwrap();
    expect_problem(stale, StatusCode::PRECONDITION_FAILED, "precondition_failed").await;
}

#[tokio::test]
async fn a_deleted_package_is_kept_but_marked_deleted() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let process = app.component(&acme, "Orders", "process", b"orders", &[]).await;
    let package = app.package(&acme, &process, None).await;
    let path = format!("/v1/packages/{}", package["id"].as_str().unwrap());
    expect_status(app.delete(&path, &acme.admin).await, StatusCode::NO_CONTENT).await;
    let after = expect_status(app.get(&path, &acme.admin).await, StatusCode::OK).await;
    assert_eq!(after["deleted"], true);
    assert_eq!(after["digest"], package["digest"]);
}

#[tokio::test]
async fn tenant_b_cannot_read_package_download_or_reference_tenant_a_components_and_packages() {
    let app = TestApp::spawn().await;
    let a = app.tenant("A").await;
    let b = app.tenant("B").await;
    let component = app.component(&a, "Secret process", "process", b"a's work", &[]).await;
    let package = app.package(&a, &component, None).await;
    let (cid, pid) = (component["id"].as_str().unwrap(), package["id"].as_str().unwrap());

    for path in [
        format!("/v1/components/{cid}"),
        format!("/v1/components/{cid}/revisions"),
        format!("/v1/components/{cid}/revisions/1"),
        format!("/v1/packages/{pid}"),
        format!("/v1/packages/{pid}/download"),
    ] {
        expect_problem(app.get(&path, &b.admin).await, StatusCode::NOT_FOUND, "not_found").await;
    }
    expect_problem(
        app.post(&format!("/v1/components/{cid}/revisions"), &b.admin, json!({"content": b64(b"b's edit")})).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    expect_problem(app.post("/v1/packages", &b.admin, json!({"component_id": cid})).await, StatusCode::NOT_FOUND, "not_found").await;
    expect_problem(app.delete(&format!("/v1/packages/{pid}"), &b.admin).await, StatusCode::NOT_FOUND, "not_found").await;
    let referencing = app.post("/v1/components", &b.admin, json!({"name": "Thief", "type": "process", "content": b64(b"x"), "references": [cid]})).await;
    let problem = expect_problem(referencing, StatusCode::UNPROCESSABLE_ENTITY, "reference_not_found").await;
    assert_eq!(problem["errors"][0]["field"], "references[0]");

    for path in ["/v1/components", "/v1/packages"] {
        let listed = expect_status(app.get(path, &b.admin).await, StatusCode::OK).await;
        assert_eq!(listed["items"], json!([]), "{path} of B shows nothing of A");
    }
    let still = expect_status(app.get(&format!("/v1/packages/{pid}"), &a.admin).await, StatusCode::OK).await;
    assert_eq!(still["deleted"], false);
    assert_eq!(expect_status(app.get(&format!("/v1/components/{cid}"), &a.admin).await, StatusCode::OK).await["revision"], 1);
}

#[tokio::test]
async fn bad_component_input_is_refused_and_nothing_is_written() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let map = app.component(&acme, "Map", "map", b"map", &[]).await;
    let process = app.component(&acme, "Process", "process", b"p", &[&map]).await;
    let audit_before = app.audit(&acme).await.len();

    let cases = [
        (json!({"name": "X", "type": "spreadsheet", "content": b64(b"x")}), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        (json!({"name": "X", "type": "map", "content": "not base64!!"}), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        (json!({"name": "", "type": "map", "content": b64(b"x")}), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        (
            json!({"name": "X", "type": "map", "content": b64(b"x"), "references": [uuid::Uuid::now_v7()]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "reference_not_found",
        ),
        (json!({"name": "X", "type": "map", "content": b64(&vec![7u8; 4 * 1024 * 1024 + 1])}), StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
        (json!({"name": "Map", "type": "map", "content": b64(b"dup")}), StatusCode::CONFLICT, "name_exists"),
    ];
    for (body, status, code) in cases {
        expect_problem(app.post("/v1/components", &acme.admin, body).await, status, code).await;
    }
    let too_big_body = json!({"name": "X", "type": "map", "content": "A".repeat(6_000_000)});
    expect_problem(app.post("/v1/components", &acme.admin, too_big_body).await, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;

    let cycle = app.post(&format!("/v1/components/{}/revisions", map["id"].as_str().unwrap()), &acme.admin, json!({"references": [process["id"]]})).await;
    expect_problem(cycle, StatusCode::UNPROCESSABLE_ENTITY, "reference_cycle").await;
    let self_ref = app.post(&format!("/v1/components/{}/revisions", map["id"].as_str().unwrap()), &acme.admin, json!({"references": [map["id"]]})).await;
    expect_problem(self_ref, StatusCode::UNPROCESSABLE_ENTITY, "reference_cycle").await;
    expect_problem(
        app.post("/v1/packages", &acme.admin, json!({"component_id": process["id"], "version": "has space"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    expect_problem(app.post("/v1/packages", &acme.admin, json!({"component_id": "nope"})).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;

    let listed = expect_status(app.get("/v1/components", &acme.admin).await, StatusCode::OK).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 2, "no component was created");
    let map_now = expect_status(app.get(&format!("/v1/components/{}", map["id"].as_str().unwrap()), &acme.admin).await, StatusCode::OK).await;
    assert_eq!(map_now["revision"], 1, "no revision was added");
    assert_eq!(app.audit(&acme).await.len(), audit_before, "nothing was audited, because nothing changed");
    let packages = expect_status(app.get("/v1/packages", &acme.admin).await, StatusCode::OK).await;
    assert_eq!(packages["items"], json!([]));
}

#[tokio::test]
async fn a_package_active_in_an_environment_cannot_be_deleted() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let env = app.environment(&acme, "Production", "production").await;
    let process = app.component(&acme, "Orders", "process", b"orders", &[]).await;
    let package = app.package(&acme, &process, None).await;
    // What a successful deployment records (deployments write it when a package becomes active).
    let pk = berth_aws::keys::package_activity(acme.id.parse().unwrap(), package["id"].as_str().unwrap().parse().unwrap());
    app.clients
        .dynamo
        .put_item()
        .table_name(&app.names.table)
        .item("pk", AttributeValue::S(pk))
        .item("sk", AttributeValue::S(env["id"].as_str().unwrap().to_string()))
        .send()
        .await
        .unwrap();

    let path = format!("/v1/packages/{}", package["id"].as_str().unwrap());
    expect_problem(app.delete(&path, &acme.admin).await, StatusCode::CONFLICT, "package_active").await;
    assert_eq!(expect_status(app.get(&path, &acme.admin).await, StatusCode::OK).await["deleted"], false);
}

#[tokio::test]
async fn twelve_concurrent_packages_of_one_component_get_twelve_distinct_numbers() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let process = app.component(&acme, "Orders", "process", b"orders", &[]).await;
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let request = app.request(reqwest::Method::POST, "/v1/packages", Some(&acme.admin)).json(&json!({"component_id": process["id"]}));
        set.spawn(async move { request.send().await.unwrap() });
    }
    let mut versions = vec![];
    while let Some(response) = set.join_next().await {
        versions.push(expect_status(response.unwrap(), StatusCode::CREATED).await["version"].as_str().unwrap().parse::<u32>().unwrap());
    }
    versions.sort();
    assert_eq!(versions, (1..=12).collect::<Vec<u32>>());
}
