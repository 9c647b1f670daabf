//! Content too large for a request body, uploaded straight to S3 through
//! presigned URLs and then completed into a revision.

use berth_domain::usecases::Settings;
use berth_tests::{Agent, TestApp, TestTenant, expect_problem, expect_status, sha256, unpack};
use reqwest::StatusCode;
use serde_json::{Value, json};

const MIB: usize = 1024 * 1024;

/// `len` incompressible bytes, different for each `seed`.
fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        bytes.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

fn uploads_of(component: &Value) -> String {
    format!("/v1/components/{}/uploads", component["id"].as_str().expect("a component id"))
}

fn complete_path(component: &Value, upload: &Value) -> String {
    format!("{}/{}/complete", uploads_of(component), upload["upload_id"].as_str().expect("an upload id"))
}

async fn start(app: &TestApp, t: &TestTenant, component: &Value, size: usize, sha256: &str) -> Value {
    let body = json!({"size": size, "sha256": sha256});
    expect_status(app.post(&uploads_of(component), &t.admin, body).await, StatusCode::CREATED).await
}

/// PUTs `bytes` to a presigned URL, as a client would (no Berth credential).
async fn put(app: &TestApp, url: &str, bytes: Vec<u8>) -> reqwest::Response {
    let response = app.http.put(url).body(bytes).send().await.expect("the PUT is sent");
    assert!(response.status().is_success(), "S3 takes the PUT: {}", response.status());
    response
}

async fn revisions(app: &TestApp, t: &TestTenant, component: &Value) -> Vec<Value> {
    let path = format!("/v1/components/{}/revisions", component["id"].as_str().expect("a component id"));
    expect_status(app.get(&path, &t.admin).await, StatusCode::OK).await["items"].as_array().cloned().expect("items")
}

#[tokio::test]
async fn a_10_mib_library_uploaded_by_presigned_put_becomes_a_revision_that_a_package_bundles_and_an_agent_installs_byte_for_byte() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let library = app.component(&acme, "Big library", "custom_library", b"v1", &[]).await;
    let bytes = content(10 * MIB, 1);
    let too_big = json!({"name": "Too big", "type": "custom_library", "content": berth_tests::b64(&bytes)});
    expect_status(app.post("/v1/components", &acme.admin, too_big).await, StatusCode::PAYLOAD_TOO_LARGE).await;

    let upload = start(&app, &acme, &library, bytes.len(), &sha256(&bytes)).await;
    assert_eq!(upload["method"], "PUT");
    assert_eq!(upload["headers"], json!({}));
    assert!(upload["parts"].is_null(), "10 MiB is one PUT: {upload}");
    put(&app, upload["url"].as_str().expect("a url"), bytes.clone()).await;
    let response = app.post(&complete_path(&library, &upload), &acme.admin, json!({})).await;
    let etag = response.headers().get("etag").and_then(|v| v.to_str().ok()).map(str::to_string);
    let revision = expect_status(response, StatusCode::CREATED).await;
    assert_eq!((revision["revision"].as_u64(), revision["size"].as_u64()), (Some(2), Some(bytes.len() as u64)));
    assert_eq!(revision["content_sha256"], sha256(&bytes));
    assert_eq!(etag.as_deref(), Some("\"2\""), "the component's new version, for the next If-Match");
    let revised = app.audit(&acme).await.into_iter().filter(|e| e["action"] == "component.revised").count();
    assert_eq!(revised, 1, "audited as a revision");
    let staged = app.clients.s3.list_objects_v2().bucket(&app.names.bucket).prefix("staging/").send().await.expect("listed");
    assert_eq!(staged.key_count(), Some(0), "the staged object is removed once it is a revision");

    let package = app.package(&acme, &library, None).await;
    let archive = app.download(&acme, &package).await;
    assert_eq!(sha256(&archive), package["digest"].as_str().expect("a digest"));
    let bundled = &unpack(&archive)[&format!("components/{}/content", library["id"].as_str().expect("an id"))];
    assert_eq!(sha256(bundled), sha256(&bytes), "the package carries the uploaded bytes");

    let test = app.environment(&acme, "Test", "test").await;
    let runtime = app.runtime(&acme, "atom").await;
    app.attach(&acme, &test, &runtime).await;
    let agent = Agent::start(&app, &runtime, None);
    let deployment = app.deploy(&acme, &package, &test, "the uploaded library").await;
    app.wait_for_status(&acme, &deployment, "succeeded").await;
    let installed = agent.file(&test, &library, &library).expect("the agent unpacked the library");
    assert_eq!(sha256(&installed), sha256(&bytes), "the agent runs the uploaded bytes");
}

#[tokio::test]
async fn content_above_the_part_size_is_uploaded_in_parts_and_completed_without_the_client_sending_etags() {
    let app = TestApp::spawn_with(Settings { upload_part_bytes: 5 * MIB as u64, ..Settings::default() }).await;
    let acme = app.tenant("Acme").await;
    let library = app.component(&acme, "Big library", "custom_library", b"v1", &[]).await;
    let bytes = content(12 * MIB, 2);

    let upload = start(&app, &acme, &library, bytes.len(), &sha256(&bytes)).await;
    assert_eq!(upload["part_size"], 5 * MIB);
    let parts = upload["parts"].as_array().cloned().expect("parts");
    assert_eq!(parts.iter().map(|p| p["part_number"].as_u64().expect("a number")).collect::<Vec<_>>(), [1, 2, 3]);
    for (part, chunk) in parts.iter().zip(bytes.chunks(5 * MIB)) {
        put(&app, part["url"].as_str().expect("a url"), chunk.to_vec()).await;
    }
    let revision = expect_status(app.post(&complete_path(&library, &upload), &acme.admin, json!({})).await, StatusCode::CREATED).await;
    assert_eq!(revision["content_sha256"], sha256(&bytes));

    let package = app.package(&acme, &library, None).await;
    let bundled = &unpack(&app.download(&acme, &package).await)[&format!("components/{}/content", library["id"].as_str().expect("an id"))];
    assert_eq!(bundled.len(), bytes.len());
    assert_eq!(sha256(bundled), sha256(&bytes));
}

#[tokio::test]
async fn a_wrong_sha256_is_refused_422_and_creates_no_revision_and_a_wrong_size_likewise() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let library = app.component(&acme, "Library", "custom_library", b"v1", &[]).await;
    let bytes = content(MIB, 3);

    let upload = start(&app, &acme, &library, bytes.len(), &sha256(b"something else")).await;
    put(&app, upload["url"].as_str().expect("a url"), bytes.clone()).await;
    expect_problem(app.post(&complete_path(&library, &upload), &acme.admin, json!({})).await, StatusCode::UNPROCESSABLE_ENTITY, "upload_digest_mismatch").await;
    // The staged object was removed: completing again finds nothing uploaded.
    expect_problem(app.post(&complete_path(&library, &upload), &acme.admin, json!({})).await, StatusCode::CONFLICT, "upload_incomplete").await;

    let upload = start(&app, &acme, &library, bytes.len() + 1, &sha256(&bytes)).await;
    put(&app, upload["url"].as_str().expect("a url"), bytes.clone()).await;
    expect_problem(app.post(&complete_path(&library, &upload), &acme.admin, json!({})).await, StatusCode::UNPROCESSABLE_ENTITY, "upload_size_mismatch").await;

    assert_eq!(revisions(&app, &acme, &library).await.len(), 1, "no revision was added");
    let component = expect_status(app.get(&format!("/v1/components/{}", library["id"].as_str().expect("an id")), &acme.admin).await, StatusCode::OK).await;
    assert_eq!(component["content_sha256"], sha256(b"v1"));
}

#[tokio::test]
async fn completing_before_the_content_is_put_is_409_and_completing_after_it_works() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let library = app.component(&acme, "Library", "custom_library", b"v1", &[]).await;
    let bytes = content(MIB, 4);
    let upload = start(&app, &acme, &library, bytes.len(), &sha256(&bytes)).await;

    expect_problem(app.post(&complete_path(&library, &upload), &acme.admin, json!({})).await, StatusCode::CONFLICT, "upload_incomplete").await;
    put(&app, upload["url"].as_str().expect("a url"), bytes).await;
    expect_status(app.post(&complete_path(&library, &upload), &acme.admin, json!({})).await, StatusCode::CREATED).await;
}

#[tokio::test]
async fn another_tenants_upload_or_an_unknown_one_is_404() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let globex = app.tenant("Globex").await;
    let library = app.component(&acme, "Library", "custom_library", b"v1", &[]).await;
    let theirs = app.component(&globex, "Library", "custom_library", b"v1", &[]).await;
    let bytes = content(MIB, 5);
    let upload = start(&app, &acme, &library, bytes.len(), &sha256(&bytes)).await;
    put(&app, upload["url"].as_str().expect("a url"), bytes).await;

    // Globex names Acme's upload under its own component, and under Acme's.
    let under_theirs = format!("{}/{}/complete", uploads_of(&theirs), upload["upload_id"].as_str().expect("an id"));
    expect_status(app.post(&under_theirs, &globex.admin, json!({})).await, StatusCode::NOT_FOUND).await;
    expect_status(app.post(&complete_path(&library, &upload), &globex.admin, json!({})).await, StatusCode::NOT_FOUND).await;
    let unknown = format!("{}/{}/complete", uploads_of(&library), uuid::Uuid::now_v7());
    expect_status(app.post(&unknown, &acme.admin, json!({})).await, StatusCode::NOT_FOUND).await;
    assert_eq!(revisions(&app, &globex, &theirs).await.len(), 1);

    expect_status(app.post(&complete_path(&library, &upload), &acme.admin, json!({})).await, StatusCode::CREATED).await;
}

#[tokio::test]
async fn completing_an_upload_twice_makes_one_revision_and_answers_it_again() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let library = app.component(&acme, "Library", "custom_library", b"v1", &[]).await;
    let bytes = content(MIB, 6);
    let upload = start(&app, &acme, &library, bytes.len(), &sha256(&bytes)).await;
    put(&app, upload["url"].as_str().expect("a url"), bytes).await;

    let first = expect_status(app.post(&complete_path(&library, &upload), &acme.admin, json!({})).await, StatusCode::CREATED).await;
    let again = expect_status(app.post(&complete_path(&library, &upload), &acme.admin, json!({})).await, StatusCode::OK).await;
    assert_eq!(again, first);
    assert_eq!(revisions(&app, &acme, &library).await.len(), 2, "the first revision and the upload's");
}

#[tokio::test]
async fn complete_checks_if_match_and_takes_the_revisions_references() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let map = app.component(&acme, "Map", "map", b"map", &[]).await;
    let process = app.component(&acme, "Process", "process", b"v1", &[]).await;
    let bytes = content(MIB, 7);
    let upload = start(&app, &acme, &process, bytes.len(), &sha256(&bytes)).await;
    put(&app, upload["url"].as_str().expect("a url"), bytes).await;

    let stale = app.request(reqwest::Method::POST, &complete_path(&process, &upload), Some(&acme.admin)).header("if-match", "\"7\"").json(&json!({}));
    expect_status(stale.send().await.expect("sent"), StatusCode::PRECONDITION_FAILED).await;
    let current = app.request(reqwest::Method::POST, &complete_path(&process, &upload), Some(&acme.admin)).header("if-match", "\"1\"");
    let revision = expect_status(current.json(&json!({"references": [map["id"]]})).send().await.expect("sent"), StatusCode::CREATED).await;
    assert_eq!(revision["references"], json!([map["id"]]));
}
