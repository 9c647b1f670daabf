//! Retries are safe: `Idempotency-Key` replays a create, `If-Match` guards
//! updates, and concurrent writers cannot both win.

use crate::{environment_names, id_of, list_items, post_with_key, snapshot};
use berth_tests::{TestApp, expect_problem, expect_status};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

/// Status, the headers a client relies on, and the body as text.
async fn answer(response: Response) -> (StatusCode, Option<String>, Option<String>, String) {
    let status = response.status();
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (replayed, location) = (header("idempotent-replayed"), header("location"));
    (status, replayed, location, response.text().await.expect("a body"))
}

#[tokio::test]
async fn the_same_create_retried_with_the_same_key_returns_the_first_response_and_creates_one_environment() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let body = json!({"name": "Production", "classification": "production"});

    let response = post_with_key(&app, "/v1/environments", &acme.admin, "create-prod-1", body.clone()).await;
    let etag = response.headers().get("etag").cloned();
    let (status, replayed, location, first) = answer(response).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert!(location.is_some() && etag.is_some(), "a create answers with Location and ETag");
    assert_eq!(replayed, None, "the first answer is not a replay");
    let created: Value = serde_json::from_str(&first).unwrap();

    for _ in 0..2 {
        let response = post_with_key(&app, "/v1/environments", &acme.admin, "create-prod-1", body.clone()).await;
        assert_eq!(response.headers().get("etag").cloned(), etag);
        let (status, replayed, again_location, again) = answer(response).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(replayed.as_deref(), Some("true"));
        assert_eq!(again_location, location);
        assert_eq!(again, first, "the very same body, with the same id");
    }
    let listed = list_items(&app, "/v1/environments", &acme.admin).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], created["id"]);
    let created_events = app.audit(&acme).await.iter().filter(|e| e["action"] == "environment.created").count();
    assert_eq!(created_events, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_retries_with_the_same_key_create_one_environment() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let body = json!({"name": "Production", "classification": "production"});
    let requests: Vec<_> = (0..4)
        .map(|_| tokio::spawn(app.request(Method::POST, "/v1/environments", Some(&acme.admin)).header("idempotency-key", "retry-storm").json(&body).send()))
        .collect();
    let mut ids = vec![];
    for request in requests {
        let response = request.await.unwrap().unwrap();
        match response.status() {
            StatusCode::CREATED => ids.push(id_of(&response.json::<Value>().await.unwrap())),
            _ => {
                expect_problem(response, StatusCode::CONFLICT, "idempotency_in_progress").await;
            }
        }
    }
    assert!(!ids.is_empty(), "at least one retry got the created environment");
    assert!(ids.iter().all(|id| *id == ids[0]), "every 201 names the same environment: {ids:?}");
    let listed = list_items(&app, "/v1/environments", &acme.admin).await;
    assert_eq!(listed.iter().map(id_of).collect::<Vec<_>>(), [ids[0].clone()]);
    // Once the first has finished, a retry is a replay.
    let (status, replayed, _, again) = answer(post_with_key(&app, "/v1/environments", &acme.admin, "retry-storm", body).await).await;
    assert_eq!((status, replayed.as_deref()), (StatusCode::CREATED, Some("true")));
    assert_eq!(id_of(&serde_json::from_str(&again).unwrap()), ids[0]);
}

#[tokio::test]
async fn a_caller_who_may_not_create_does_not_get_the_created_response_by_replaying_its_key() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let body = json!({"name": "atom-1"});
    let created = expect_status(post_with_key(&app, "/v1/runtimes", &acme.admin, "atom-1", body.clone()).await, StatusCode::CREATED).await;
    assert!(created["registration_token"].is_string());

    // A viewer may not create runtimes, so may not see the one-time
    // registration token of one either, whatever key it sends.
    let viewer = app.token(&acme.id, &["viewer"]);
    let response = post_with_key(&app, "/v1/runtimes", &viewer, "atom-1", body).await;
    let (status, replayed, _, text) = answer(response).await;
    assert!(!text.contains(created["registration_token"].as_str().unwrap()), "the registration token leaked to a viewer: {replayed:?} {text}");
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
}

#[tokio::test]
async fn a_request_refused_for_its_token_does_not_use_up_its_key() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let body = json!({"name": "Production", "classification": "production"});
    let mut expired =
        berth_web::auth::claims_for(berth_tests::ISSUER, berth_tests::AUDIENCE, "alice", Some(acme.id.clone()), &["admin"], std::time::Duration::from_secs(60));
    expired.exp -= 7200;
    expired.nbf = Some(expired.exp - 3600);
    expect_problem(post_with_key(&app, "/v1/environments", &app.sign(&expired), "k-1", body.clone()).await, StatusCode::UNAUTHORIZED, "unauthenticated").await;

    // The client refreshes its token and retries with the same key.
    let (status, replayed, _, _) = answer(post_with_key(&app, "/v1/environments", &acme.admin, "k-1", body).await).await;
    assert_eq!((status, replayed), (StatusCode::CREATED, None));
    assert_eq!(list_items(&app, "/v1/environments", &acme.admin).await.len(), 1);
}

#[tokio::test]
async fn a_key_reused_with_another_body_or_path_is_refused_with_422_and_nothing_new_is_written() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    expect_status(
        post_with_key(&app, "/v1/environments", &acme.admin, "k-1", json!({"name": "Production", "classification": "production"})).await,
        StatusCode::CREATED,
    )
    .await;
    let before = snapshot(&app, &acme).await;

    let other_body = json!({"name": "Test", "classification": "test"});
    expect_problem(post_with_key(&app, "/v1/environments", &acme.admin, "k-1", other_body).await, StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused")
        .await;
    expect_problem(
        post_with_key(&app, "/v1/runtimes", &acme.admin, "k-1", json!({"name": "Production"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    )
    .await;
    assert_eq!(snapshot(&app, &acme).await, before);
}

#[tokio::test]
async fn the_same_key_in_two_tenants_creates_one_environment_in_each() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let globex = app.tenant("Globex").await;
    let body = json!({"name": "Production", "classification": "production"});

    let (acme_status, acme_replayed, _, acme_body) = answer(post_with_key(&app, "/v1/environments", &acme.admin, "shared-key", body.clone()).await).await;
    let (globex_status, globex_replayed, _, globex_body) = answer(post_with_key(&app, "/v1/environments", &globex.admin, "shared-key", body).await).await;
    assert_eq!((acme_status, globex_status), (StatusCode::CREATED, StatusCode::CREATED));
    assert_eq!((acme_replayed, globex_replayed), (None, None), "keys are per tenant: no replay across tenants");
    let (a, g): (Value, Value) = (serde_json::from_str(&acme_body).unwrap(), serde_json::from_str(&globex_body).unwrap());
    assert_ne!(a["id"], g["id"]);

    let acme_envs = list_items(&app, "/v1/environments", &acme.admin).await;
    let globex_envs = list_items(&app, "/v1/environments", &globex.admin).await;
    assert_eq!(acme_envs.iter().map(id_of).collect::<Vec<_>>(), [id_of(&a)]);
    assert_eq!(globex_envs.iter().map(id_of).collect::<Vec<_>>(), [id_of(&g)]);
}

#[tokio::test]
async fn the_same_key_on_tenant_onboarding_replays_the_first_tenant() {
    let app = TestApp::spawn().await;
    let platform = app.platform_token();
    let body = json!({"name": "Acme", "plan": {"max_environments": 3}});
    let (status, replayed, _, first) = answer(post_with_key(&app, "/platform/v1/tenants", &platform, "onboard-acme", body.clone()).await).await;
    assert_eq!((status, replayed), (StatusCode::CREATED, None), "{first}");

    // Another operator token, the same retry.
    let (status, replayed, _, again) = answer(post_with_key(&app, "/platform/v1/tenants", &app.platform_token(), "onboard-acme", body).await).await;
    assert_eq!((status, replayed.as_deref()), (StatusCode::CREATED, Some("true")));
    assert_eq!(again, first);

    let tenants = list_items(&app, "/platform/v1/tenants", &platform).await;
    assert_eq!(tenants.len(), 1, "one tenant: {tenants:?}");
    assert_eq!(tenants[0]["id"], serde_json::from_str::<Value>(&first).unwrap()["id"]);
}

#[tokio::test]
async fn an_idempotency_key_over_200_characters_or_not_visible_ascii_is_refused_with_400() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let before = snapshot(&app, &acme).await;
    let body = json!({"name": "Production", "classification": "production"});
    for key in ["k".repeat(201), String::new(), "two words".to_string()] {
        expect_problem(post_with_key(&app, "/v1/environments", &acme.admin, &key, body.clone()).await, StatusCode::BAD_REQUEST, "invalid_idempotency_key")
            .await;
    }
    assert_eq!(snapshot(&app, &acme).await, before);
    // 200 characters is the limit, not past it.
    expect_status(post_with_key(&app, "/v1/environments", &acme.admin, &"k".repeat(200), body).await, StatusCode::CREATED).await;
}

#[tokio::test]
async fn a_refused_create_keeps_its_answer_for_its_key() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let bad = json!({"name": "", "classification": "production"});
    let (status, replayed, _, first) = answer(post_with_key(&app, "/v1/environments", &acme.admin, "bad-1", bad.clone()).await).await;
    assert_eq!((status, replayed), (StatusCode::UNPROCESSABLE_ENTITY, None), "{first}");

    let response = post_with_key(&app, "/v1/environments", &acme.admin, "bad-1", bad).await;
    assert_eq!(response.headers().get("content-type").unwrap(), "application/problem+json", "the replay is still a problem");
    let (status, replayed, _, again) = answer(response).await;
    assert_eq!((status, replayed.as_deref()), (StatusCode::UNPROCESSABLE_ENTITY, Some("true")));
    assert_eq!(again, first);
    assert!(list_items(&app, "/v1/environments", &acme.admin).await.is_empty());
}

async fn patch_if_match(app: &TestApp, path: &str, token: &str, etag: &str, body: Value) -> Response {
    app.request(Method::PATCH, path, Some(token)).header("if-match", etag).json(&body).send().await.expect("the request is sent")
}

fn etag_header(response: &Response) -> String {
    response.headers().get("etag").expect("an ETag header").to_str().unwrap().to_string()
}

#[tokio::test]
async fn a_patch_with_the_current_etag_succeeds_and_returns_a_new_etag() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let env = app.environment(&acme, "Test", "test").await;
    let path = format!("/v1/environments/{}", id_of(&env));

    let read = app.get(&path, &acme.admin).await;
    let etag = etag_header(&read);
    let read = expect_status(read, StatusCode::OK).await;
    assert_eq!(read["etag"], etag.as_str(), "the ETag header and the body agree");

    let patched = patch_if_match(&app, &path, &acme.admin, &etag, json!({"enabled": false, "description": "frozen"})).await;
    let new_etag = etag_header(&patched);
    let patched = expect_status(patched, StatusCode::OK).await;
    assert_ne!(new_etag, etag);
    assert_eq!(patched["etag"], new_etag.as_str());
    assert_eq!(patched["enabled"], false);

    let reread = app.get(&path, &acme.admin).await;
    assert_eq!(etag_header(&reread), new_etag);
    let reread = expect_status(reread, StatusCode::OK).await;
    assert_eq!((reread["enabled"].clone(), reread["description"].clone()), (json!(false), json!("frozen")));
}

#[tokio::test]
async fn a_patch_with_a_stale_etag_is_refused_with_412_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let env = app.environment(&acme, "Test", "test").await;
    let path = format!("/v1/environments/{}", id_of(&env));
    let stale = env["etag"].as_str().unwrap().to_string();
    let current = expect_status(patch_if_match(&app, &path, &acme.admin, &stale, json!({"description": "first"})).await, StatusCode::OK).await;

    let before = snapshot(&app, &acme).await;
    expect_problem(
        patch_if_match(&app, &path, &acme.admin, &stale, json!({"description": "second", "enabled": false})).await,
        StatusCode::PRECONDITION_FAILED,
        "precondition_failed",
    )
    .await;
    expect_problem(
        patch_if_match(&app, &path, &acme.admin, "\"999\"", json!({"description": "second"})).await,
        StatusCode::PRECONDITION_FAILED,
        "precondition_failed",
    )
    .await;
    assert_eq!(snapshot(&app, &acme).await, before);
    let after = expect_status(app.get(&path, &acme.admin).await, StatusCode::OK).await;
    assert_eq!(after, current);
}

#[tokio::test]
async fn a_malformed_if_match_is_refused_with_400_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let env = app.environment(&acme, "Test", "test").await;
    let path = format!("/v1/environments/{}", id_of(&env));
    let before = snapshot(&app, &acme).await;
    for bad in ["abc", "\"seven\"", "W/\"x\"", "\"1\", \"2\""] {
        expect_problem(patch_if_match(&app, &path, &acme.admin, bad, json!({"enabled": false})).await, StatusCode::BAD_REQUEST, "invalid_if_match").await;
    }
    assert_eq!(snapshot(&app, &acme).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_two_concurrent_patches_with_the_same_etag_exactly_one_wins() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    for round in 0..3 {
        let env = app.environment(&acme, &format!("Race {round}"), "test").await;
        let path = format!("/v1/environments/{}", id_of(&env));
        let etag = env["etag"].as_str().unwrap().to_string();
        let requests: Vec<_> = ["left", "right"]
            .into_iter()
            .map(|side| {
                let send = app.request(Method::PATCH, &path, Some(&acme.admin)).header("if-match", &etag).json(&json!({"description": side})).send();
                tokio::spawn(send)
            })
            .collect();
        let mut outcomes = vec![];
        for request in requests {
            let response = request.await.unwrap().unwrap();
            let status = response.status();
            outcomes.push((status, response.json::<Value>().await.unwrap()));
        }
        let statuses: Vec<u16> = outcomes.iter().map(|(s, _)| s.as_u16()).collect();
        let mut sorted = statuses.clone();
        sorted.sort();
        assert_eq!(sorted, [200, 412], "round {round}: one winner, one loser: {outcomes:?}");
        let (_, winner) = outcomes.iter().find(|(s, _)| *s == StatusCode::OK).unwrap();
        let (_, loser) = outcomes.iter().find(|(s, _)| *s == StatusCode::PRECONDITION_FAILED).unwrap();
        assert_eq!(loser["code"], "precondition_failed");
        let stored = expect_status(app.get(&path, &acme.admin).await, StatusCode::OK).await;
        assert_eq!(&stored, winner, "the winner's write is what is stored");
    }
    let updates = app.audit(&acme).await.iter().filter(|e| e["action"] == "environment.updated").count();
    assert_eq!(updates, 3, "one update per round");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_concurrent_creates_of_one_name_in_any_letter_case_create_exactly_one_environment() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let names = ["Production", "production", "PRODUCTION", "Production", "pRODUCTION", "ProDuction", " production ", "Production"];
    let requests: Vec<_> = names
        .iter()
        .map(|name| {
            tokio::spawn(app.request(Method::POST, "/v1/environments", Some(&acme.admin)).json(&json!({"name": name, "classification": "production"})).send())
        })
        .collect();
    let mut created = 0;
    for request in requests {
        let response = request.await.unwrap().unwrap();
        if response.status() == StatusCode::CREATED {
            created += 1;
            response.text().await.unwrap();
        } else {
            expect_problem(response, StatusCode::CONFLICT, "name_exists").await;
        }
    }
    assert_eq!(created, 1);
    assert_eq!(list_items(&app, "/v1/environments", &acme.admin).await.len(), 1);
    let created_events = app.audit(&acme).await.iter().filter(|e| e["action"] == "environment.created").count();
    assert_eq!(created_events, 1);
}

#[tokio::test]
async fn renaming_an_environment_frees_its_old_name_and_takes_the_new_one() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let blue = app.environment(&acme, "Blue", "test").await;
    let blue_path = format!("/v1/environments/{}", id_of(&blue));
    let green = expect_status(app.patch(&blue_path, &acme.admin, json!({"name": "Green"})).await, StatusCode::OK).await;
    assert_eq!(green["name"], "Green");

    let new_blue = app.environment(&acme, "blue", "test").await;
    expect_problem(app.post("/v1/environments", &acme.admin, json!({"name": "GREEN", "classification": "test"})).await, StatusCode::CONFLICT, "name_exists")
        .await;
    let before = snapshot(&app, &acme).await;
    expect_problem(
        app.patch(&format!("/v1/environments/{}", id_of(&new_blue)), &acme.admin, json!({"name": "green"})).await,
        StatusCode::CONFLICT,
        "name_exists",
    )
    .await;
    assert_eq!(snapshot(&app, &acme).await, before, "a refused rename changes nothing");
    assert_eq!(environment_names(&app, &acme).await, ["Green", "blue"]);

    // A change of letter case only is a rename to the same name: allowed.
    let shouting = expect_status(app.patch(&blue_path, &acme.admin, json!({"name": "GREEN"})).await, StatusCode::OK).await;
    assert_eq!(shouting["name"], "GREEN");
    expect_problem(app.post("/v1/environments", &acme.admin, json!({"name": "Green", "classification": "test"})).await, StatusCode::CONFLICT, "name_exists")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_two_concurrent_renames_to_one_new_name_exactly_one_wins() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let a = app.environment(&acme, "Alpha", "test").await;
    let b = app.environment(&acme, "Beta", "test").await;
    let requests: Vec<_> = [&a, &b]
        .into_iter()
        .map(|env| {
            tokio::spawn(app.request(Method::PATCH, &format!("/v1/environments/{}", id_of(env)), Some(&acme.admin)).json(&json!({"name": "Gamma"})).send())
        })
        .collect();
    let mut statuses = vec![];
    for request in requests {
        let response = request.await.unwrap().unwrap();
        let status = response.status();
        if status == StatusCode::CONFLICT {
            expect_problem(response, status, "name_exists").await;
        }
        statuses.push(status.as_u16());
    }
    statuses.sort();
    assert_eq!(statuses, [200, 409]);
    let names = environment_names(&app, &acme).await;
    assert!(names == ["Beta", "Gamma"] || names == ["Alpha", "Gamma"], "one renamed, one kept its name: {names:?}");
    // The loser's old name is still its own; the winner's old name is free.
    let freed = if names.contains(&"Alpha".to_string()) { "Beta" } else { "Alpha" };
    app.environment(&acme, freed, "test").await;
}

#[tokio::test]
async fn a_tenant_patch_with_a_stale_etag_is_refused_with_412_and_does_not_suspend_it() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let platform = app.platform_token();
    let path = format!("/platform/v1/tenants/{}", acme.id);
    let read = expect_status(app.get(&path, &platform).await, StatusCode::OK).await;
    let stale = read["etag"].as_str().unwrap().to_string();
    expect_status(patch_if_match(&app, &path, &platform, &stale, json!({"name": "Acme Corp"})).await, StatusCode::OK).await;

    expect_problem(patch_if_match(&app, &path, &platform, &stale, json!({"suspended": true})).await, StatusCode::PRECONDITION_FAILED, "precondition_failed")
        .await;
    let after = expect_status(app.get(&path, &platform).await, StatusCode::OK).await;
    assert_eq!((after["name"].clone(), after["suspended"].clone()), (json!("Acme Corp"), json!(false)));
    app.environment(&acme, "Test", "test").await;
}
