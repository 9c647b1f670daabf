//! API keys for CI: an admin makes one, a pipeline uses it as a bearer token
//! on the portal API, and everything it does is attributed to `api-key:<id>`.

use berth_tests::{Agent, CapturedLogs, TestApp, TestTenant, b64, eventually, expect_invalid_field, expect_problem, expect_status, id_of};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// An admin who also builds and deploys: the roles a CI key is usually given.
fn owner(app: &TestApp, t: &TestTenant) -> String {
    app.user_token(&t.id, "owner@acme.example", &["admin", "developer", "deployer"])
}

/// Makes a key; returns its record as answered (with `key`, shown once).
async fn make_key(app: &TestApp, token: &str, body: Value) -> Value {
    let made = expect_status(app.post("/v1/api-keys", token, body).await, StatusCode::CREATED).await;
    assert!(made["key"].as_str().is_some_and(|k| k.starts_with("bak_")), "the key is shown once: {made}");
    made
}

fn key_of(made: &Value) -> String {
    made["key"].as_str().expect("a key").to_string()
}

#[tokio::test]
async fn a_pipeline_with_a_key_and_no_login_revises_packages_and_deploys_and_the_audit_names_the_key() {
    use tracing_subscriber::util::SubscriberInitExt;
    // On this test's thread only: its runtime is single-threaded, the server runs on it too.
    let logs = CapturedLogs::default();
    let _capture = logs
        .subscriber("debug,aws_config=warn,aws_smithy_runtime=warn,aws_smithy_runtime_api=warn,aws_sdk_dynamodb=warn,aws_sdk_s3=warn,aws_sdk_sqs=warn,hyper=warn,hyper_util=warn,h2=warn,rustls=warn,reqwest=warn")
        .set_default();

    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let test = app.environment(&acme, "Test", "test").await;
    let runtime = app.runtime(&acme, "test-atom").await;
    app.attach(&acme, &test, &runtime).await;
    let agent = Agent::start(&app, &runtime, None);
    let orders = app.component(&acme, "Orders", "process", b"orders v1", &[]).await;

    let made = make_key(&app, &owner(&app, &acme), json!({"name": "ci-main", "roles": ["developer", "deployer"]})).await;
    let (key, id) = (key_of(&made), id_of(&made));
    let actor = format!("api-key:{id}");
    assert_eq!(
        (made["name"].clone(), made["roles"].clone(), made["created_by"].clone()),
        (json!("ci-main"), json!(["developer", "deployer"]), json!("owner@acme.example"))
    );
    assert!(made["last_used_at"].is_null() && made["revoked_at"].is_null(), "{made}");

    // The pipeline: no JWT, only the key.
    let revision = app.post(&format!("/v1/components/{}/revisions", id_of(&orders)), &key, json!({"content": b64(b"orders v2")})).await;
    let revision = expect_status(revision, StatusCode::CREATED).await;
    assert_eq!(revision["created_by"], actor.as_str());
    let package = expect_status(app.post("/v1/packages", &key, json!({"component_id": orders["id"], "version": "v2"})).await, StatusCode::CREATED).await;
    assert_eq!(package["created_by"], actor.as_str());
    let body = json!({"package_id": package["id"], "environment_id": test["id"], "notes": "from CI"});
    let deployment = expect_status(app.post("/v1/deployments", &key, body).await, StatusCode::CREATED).await;
    assert_eq!(deployment["requested_by"], actor.as_str());
    app.wait_for_status(&acme, &deployment, "succeeded").await;
    assert_eq!(agent.installed(&test, &orders).expect("v2 is installed")["digest"], package["digest"]);

    let by_key: Vec<Value> = app.audit(&acme).await.into_iter().filter(|e| e["actor"]["id"] == actor.as_str()).collect();
    let actions: Vec<&str> = by_key.iter().map(|e| e["action"].as_str().unwrap_or_default()).collect();
    assert_eq!(actions, ["component.revised", "package.created", "deployment.requested"]);
    assert!(by_key.iter().all(|e| e["actor"]["kind"] == "api_key"), "{by_key:?}");
    let created = app.audit(&acme).await.into_iter().find(|e| e["action"] == "api_key.created").expect("the key's creation is audited");
    assert_eq!((created["entity_type"].clone(), created["entity_id"].clone()), (json!("api_key"), json!(id)));

    let me = expect_status(app.get("/v1/me", &key).await, StatusCode::OK).await;
    assert_eq!((me["sub"].clone(), me["roles"].clone()), (json!(actor), json!(["developer", "deployer"])));

    // Its last use shows; the key itself shows nowhere after its creation.
    let secret = key.rsplit('_').next().expect("the secret part").to_string();
    let read = expect_status(app.get(&format!("/v1/api-keys/{id}"), &acme.admin).await, StatusCode::OK).await;
    assert!(read["last_used_at"].is_string(), "the use is recorded: {read}");
    let list = app.get("/v1/api-keys", &acme.admin).await.text().await.expect("a body");
    let replayed = {
        let create = || {
            app.request(Method::POST, "/v1/api-keys", Some(&owner(&app, &acme)))
                .header("idempotency-key", "ci-2")
                .json(&json!({"name": "ci-2", "roles": ["deployer"]}))
                .send()
        };
        let first = make_key(&app, &owner(&app, &acme), json!({"name": "probe", "roles": ["deployer"]})).await;
        assert_ne!(key_of(&first), key, "every key is new");
        expect_status(create().await.expect("sent"), StatusCode::CREATED).await;
        expect_status(create().await.expect("sent"), StatusCode::CREATED).await
    };
    assert!(replayed.get("key").is_none() && replayed["name"] == "ci-2", "an idempotent replay does not show the key again: {replayed}");
    for later in [read.to_string(), list.clone(), replayed.to_string()] {
        assert!(!later.contains(&secret) && !later.contains("bak_") && !later.contains("hash"), "{later}");
    }
    assert!(list.contains(&id), "the key is listed: {list}");

    let server_log = logs.text();
    assert!(server_log.contains("API key created"), "the server's log was captured:\n{server_log}");
    for line in server_log.lines() {
        assert!(!line.contains(&secret) && !line.contains("bak_"), "a log line holds the key: {line}");
    }
}

/// The 401 problem a read with `token` gets.
async fn refusal(app: &TestApp, token: &str) -> Value {
    expect_problem(app.get("/v1/environments", token).await, StatusCode::UNAUTHORIZED, "unauthenticated").await
}

#[tokio::test]
async fn an_unknown_revoked_or_expired_key_gets_one_and_the_same_401() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let owner = owner(&app, &acme);
    let revoked = make_key(&app, &owner, json!({"name": "old", "roles": ["deployer"]})).await;
    expect_status(app.get("/v1/environments", &key_of(&revoked)).await, StatusCode::OK).await;
    expect_status(app.delete(&format!("/v1/api-keys/{}", id_of(&revoked)), &acme.admin).await, StatusCode::NO_CONTENT).await;
    expect_status(app.delete(&format!("/v1/api-keys/{}", id_of(&revoked)), &acme.admin).await, StatusCode::NO_CONTENT).await;
    let kept = expect_status(app.get(&format!("/v1/api-keys/{}", id_of(&revoked)), &acme.admin).await, StatusCode::OK).await;
    assert!(kept["revoked_at"].is_string(), "the record stays, marked revoked: {kept}");
    let revoking = app.audit(&acme).await.into_iter().filter(|e| e["action"] == "api_key.revoked").count();
    assert_eq!(revoking, 1, "revoking twice is one revocation");

    let expires_at = chrono::Utc::now() + chrono::Duration::seconds(3);
    let expiring = make_key(&app, &owner, json!({"name": "short", "roles": ["deployer"], "expires_at": expires_at})).await;
    expect_status(app.get("/v1/environments", &key_of(&expiring)).await, StatusCode::OK).await;

    let live = key_of(&make_key(&app, &owner, json!({"name": "live", "roles": ["deployer"]})).await);
    let wrong_secret = format!("{}{}", &live[..live.len() - 1], if live.ends_with('0') { "1" } else { "0" });
    let unknown = format!("bak_{}_{}_{}", acme.id.replace('-', ""), uuid::Uuid::new_v4().simple(), "ab".repeat(32));
    let unknown = refusal(&app, &unknown).await;
    assert_eq!(refusal(&app, &key_of(&revoked)).await, unknown, "revoked reads as unknown");
    assert_eq!(refusal(&app, &wrong_secret).await, unknown, "a wrong secret reads as unknown");
    assert_eq!(refusal(&app, "bak_not-a-key").await, unknown, "garbage reads as unknown");
    let expired = key_of(&expiring);
    let after_expiry = eventually("the short-lived key is refused", || {
        let expired = expired.clone();
        let app = &app;
        async move {
            let r = app.get("/v1/environments", &expired).await;
            if r.status() == StatusCode::UNAUTHORIZED { Ok(r) } else { Err(format!("{} at {}", r.status(), chrono::Utc::now())) }
        }
    })
    .await;
    assert!(chrono::Utc::now() >= expires_at, "refused only once it expired");
    assert_eq!(expect_problem(after_expiry, StatusCode::UNAUTHORIZED, "unauthenticated").await, unknown, "expired reads as unknown");
    expect_status(app.get("/v1/environments", &live).await, StatusCode::OK).await;
}

#[tokio::test]
async fn only_an_admin_makes_keys_with_roles_they_hold_for_at_most_a_year() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let body = json!({"name": "ci", "roles": ["deployer"]});
    for roles in [&["developer"][..], &["viewer"], &["developer", "deployer"]] {
        let token = app.token(&acme.id, roles);
        expect_problem(app.post("/v1/api-keys", &token, body.clone()).await, StatusCode::FORBIDDEN, "forbidden").await;
    }
    let problem = expect_problem(app.post("/v1/api-keys", &acme.admin, body.clone()).await, StatusCode::FORBIDDEN, "roles_exceed_creator").await;
    assert!(problem["detail"].as_str().is_some_and(|d| d.contains("deployer")), "{problem}");

    let owner = owner(&app, &acme);
    expect_invalid_field(app.post("/v1/api-keys", &owner, json!({"name": "ci", "roles": []})).await, "roles").await;
    expect_invalid_field(app.post("/v1/api-keys", &owner, json!({"name": " ", "roles": ["deployer"]})).await, "name").await;
    expect_invalid_field(app.post("/v1/api-keys", &owner, json!({"name": "ci", "roles": ["root"]})).await, "roles[0]").await;
    let now = chrono::Utc::now();
    for expires_at in [now - chrono::Duration::minutes(1), now + chrono::Duration::days(366)] {
        let body = json!({"name": "ci", "roles": ["deployer"], "expires_at": expires_at});
        expect_invalid_field(app.post("/v1/api-keys", &owner, body).await, "expires_at").await;
    }
    let year = make_key(&app, &owner, json!({"name": "ci", "roles": ["deployer"], "expires_at": now + chrono::Duration::days(365)})).await;
    let default = make_key(&app, &owner, json!({"name": "ci", "roles": ["admin"]})).await;
    let expires = |k: &Value| chrono::DateTime::parse_from_rfc3339(k["expires_at"].as_str().expect("an expiry")).expect("a time").to_utc();
    assert_eq!((expires(&default) - now).num_days(), 90, "90 days unless asked: {default}");
    assert_eq!((expires(&year) - now).num_days(), 365, "a year is allowed");

    let admin_key = key_of(&default);
    expect_problem(app.post("/v1/api-keys", &admin_key, json!({"name": "minted", "roles": ["admin"]})).await, StatusCode::FORBIDDEN, "forbidden").await;
    let listed = expect_status(app.get("/v1/api-keys?limit=1", &acme.admin).await, StatusCode::OK).await;
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1));
    let next = listed["next_cursor"].as_str().expect("a second page");
    let rest = expect_status(app.get(&format!("/v1/api-keys?limit=100&cursor={next}"), &acme.admin).await, StatusCode::OK).await;
    assert_eq!(rest["items"].as_array().map(Vec::len), Some(1), "two keys in all: {rest}");
}

#[tokio::test]
async fn another_tenants_key_is_not_found_and_a_key_reaches_neither_the_platform_api_nor_past_a_suspension() {
    let app = TestApp::spawn().await;
    let (acme, globex) = (app.tenant("Acme").await, app.tenant("Globex").await);
    let made = make_key(&app, &owner(&app, &acme), json!({"name": "ci", "roles": ["admin", "deployer"]})).await;
    let (key, id) = (key_of(&made), id_of(&made));

    expect_problem(app.get(&format!("/v1/api-keys/{id}"), &globex.admin).await, StatusCode::NOT_FOUND, "not_found").await;
    expect_problem(app.delete(&format!("/v1/api-keys/{id}"), &globex.admin).await, StatusCode::NOT_FOUND, "not_found").await;
    let theirs = expect_status(app.get("/v1/api-keys", &globex.admin).await, StatusCode::OK).await;
    assert_eq!(theirs["items"], json!([]), "{theirs}");
    let environments = expect_status(app.get("/v1/environments", &key).await, StatusCode::OK).await;
    assert_eq!(environments["items"], json!([]), "the key reads its own tenant, not Globex's");

    expect_problem(app.get("/platform/v1/tenants", &key).await, StatusCode::FORBIDDEN, "forbidden").await;
    expect_problem(app.post("/platform/v1/tenants", &key, json!({"name": "Evil"})).await, StatusCode::FORBIDDEN, "forbidden").await;

    let suspend = app.patch(&format!("/platform/v1/tenants/{}", acme.id), &app.platform_token(), json!({"suspended": true})).await;
    expect_status(suspend, StatusCode::OK).await;
    let create = || app.post("/v1/environments", &key, json!({"name": "Test", "classification": "test"}));
    eventually("the suspension reaches the key", || async {
        let r = create().await;
        if r.status() == StatusCode::FORBIDDEN { Ok(()) } else { Err(r.status().to_string()) }
    })
    .await;
    expect_problem(create().await, StatusCode::FORBIDDEN, "tenant_suspended").await;
    expect_status(app.get("/v1/environments", &key).await, StatusCode::OK).await;
    expect_status(app.get(&format!("/v1/api-keys/{id}"), &key).await, StatusCode::OK).await;
}
