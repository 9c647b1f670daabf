//! The portal API (`/v1`): the tenant comes from the token only.

use crate::{MALLORY, TwoTenants, ids, send};
use berth_tests::{expect_problem, expect_status};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// One request of B's naming A's resources, and the same request naming
/// resources that exist nowhere: B must not be able to tell the two apart.
struct Probe {
    method: Method,
    path: String,
    control: String,
    body: Option<Value>,
    if_match: Option<String>,
}

fn probe(method: Method, path: String, control: String) -> Probe {
    Probe { method, path, control, body: None, if_match: None }
}

#[tokio::test]
async fn tenant_b_gets_not_found_from_every_endpoint_naming_tenant_a_s_resources_and_a_is_left_unchanged() {
    let t = TwoTenants::spawn().await;
    let (app, a, b) = (&t.app, &t.a, &t.b);
    let before = t.a_snapshot().await;
    let (a_env, a_rt, b_env, b_rt) = (&a.env_id, &a.runtime_id, &b.env_id, &b.runtime_id);
    let (no_env, no_rt) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());

    let patch = json!({"name": "Pwned", "enabled": false, "description": "owned by Globex"});
    let probes = vec![
        probe(Method::GET, format!("/v1/environments/{a_env}"), format!("/v1/environments/{no_env}")),
        Probe { body: Some(patch.clone()), ..probe(Method::PATCH, format!("/v1/environments/{a_env}"), format!("/v1/environments/{no_env}")) },
        Probe {
            body: Some(patch),
            if_match: Some(before.etag.clone()),
            ..probe(Method::PATCH, format!("/v1/environments/{a_env}"), format!("/v1/environments/{no_env}"))
        },
        probe(Method::DELETE, format!("/v1/environments/{a_env}"), format!("/v1/environments/{no_env}")),
        probe(Method::GET, format!("/v1/environments/{a_env}/runtimes"), format!("/v1/environments/{no_env}/runtimes")),
        probe(Method::PUT, format!("/v1/environments/{a_env}/runtimes/{a_rt}"), format!("/v1/environments/{no_env}/runtimes/{no_rt}")),
        probe(Method::DELETE, format!("/v1/environments/{a_env}/runtimes/{a_rt}"), format!("/v1/environments/{no_env}/runtimes/{no_rt}")),
        // A's environment with B's runtime, and B's environment with A's runtime.
        probe(Method::PUT, format!("/v1/environments/{a_env}/runtimes/{b_rt}"), format!("/v1/environments/{no_env}/runtimes/{b_rt}")),
        probe(Method::DELETE, format!("/v1/environments/{a_env}/runtimes/{b_rt}"), format!("/v1/environments/{no_env}/runtimes/{b_rt}")),
        probe(Method::PUT, format!("/v1/environments/{b_env}/runtimes/{a_rt}"), format!("/v1/environments/{b_env}/runtimes/{no_rt}")),
        probe(Method::DELETE, format!("/v1/environments/{b_env}/runtimes/{a_rt}"), format!("/v1/environments/{b_env}/runtimes/{no_rt}")),
        probe(Method::GET, format!("/v1/runtimes/{a_rt}"), format!("/v1/runtimes/{no_rt}")),
        probe(Method::DELETE, format!("/v1/runtimes/{a_rt}"), format!("/v1/runtimes/{no_rt}")),
    ];

    for p in &probes {
        let mut answers = vec![];
        for path in [&p.path, &p.control] {
            let mut request = app.request(p.method.clone(), path, Some(&b.tenant.admin));
            if let Some(body) = &p.body {
                request = request.json(body);
            }
            if let Some(etag) = &p.if_match {
                request = request.header("If-Match", etag);
            }
            let response = request.send().await.expect("the request is sent");
            answers.push(expect_problem(response, StatusCode::NOT_FOUND, "not_found").await);
        }
        assert_eq!(answers[0], answers[1], "{} {} answers B exactly as for ids that exist nowhere", p.method, p.path);
    }

    let after = t.a_snapshot().await;
    assert_eq!(after, before, "A's environment, runtime, attachments and audit trail are unchanged");
    assert_eq!(after.runtime["environments"], json!([a_env]), "A's runtime is still attached");
    assert_eq!(after.attached.len(), 1);
    assert!(after.audit.iter().all(|e| e["actor"]["id"] != MALLORY), "A's audit trail records nothing of B's: {:?}", after.audit);

    let b_attached = expect_status(app.get(&format!("/v1/environments/{b_env}/runtimes"), &b.tenant.admin).await, StatusCode::OK).await;
    assert_eq!(ids(&b_attached), [b_rt.as_str()], "B's environment still has only B's runtime");
    let b_runtime = expect_status(app.get(&format!("/v1/runtimes/{b_rt}"), &b.tenant.admin).await, StatusCode::OK).await;
    assert_eq!(b_runtime["environments"], json!([b_env]), "B's runtime is attached to B's environment only");
}

#[tokio::test]
async fn tenant_b_s_lists_show_only_its_own_resources_even_when_the_query_names_tenant_a() {
    let t = TwoTenants::spawn().await;
    let (app, a, b) = (&t.app, &t.a, &t.b);
    let a_ids = [a.env_id.clone(), a.runtime_id.clone(), a.tenant.id.clone()];
    let a_ids: Vec<String> = a_ids.iter().flat_map(|id| [id.clone(), id.replace('-', "")]).collect();

    for (path, own) in [
        ("/v1/environments".to_string(), b.env_id.clone()),
        ("/v1/runtimes".to_string(), b.runtime_id.clone()),
        (format!("/v1/environments/{}/runtimes", b.env_id), b.runtime_id.clone()),
    ] {
        let plain = expect_status(app.get(&path, &b.tenant.admin).await, StatusCode::OK).await;
        assert_eq!(ids(&plain), [own], "{path} lists B's own resource only");
        let naming_a = expect_status(app.get(&format!("{path}?tenant_id={}", a.tenant.id), &b.tenant.admin).await, StatusCode::OK).await;
        assert_eq!(naming_a, plain, "{path}?tenant_id=<A> is B's list all the same");
        let text = naming_a.to_string();
        for id in &a_ids {
            assert!(!text.contains(id.as_str()), "{path} shows B nothing of A's ({id}): {text}");
        }
    }

    let audit = expect_status(app.get(&format!("/v1/audit?tenant_id={}", a.tenant.id), &b.tenant.admin).await, StatusCode::OK).await;
    let actions: Vec<&str> = audit["items"].as_array().expect("items").iter().map(|e| e["action"].as_str().expect("an action")).collect();
    assert_eq!(actions, ["tenant.created", "environment.created", "runtime.created", "runtime.registered", "runtime.attached"]);
    let text = audit.to_string();
    for id in &a_ids {
        assert!(!text.contains(id.as_str()), "B's audit trail shows nothing of A's ({id}): {text}");
    }
    assert!(text.contains(&b.env_id) && text.contains(&b.runtime_id), "B's audit trail is B's: {text}");

    let me = expect_status(app.get(&format!("/v1/me?tenant_id={}", a.tenant.id), &b.tenant.admin).await, StatusCode::OK).await;
    assert_eq!(me["tenant_id"], b.tenant.id.as_str(), "the tenant comes from the token: {me}");
}

#[tokio::test]
async fn a_tenant_id_in_a_request_body_is_refused_as_an_unknown_field_and_creates_nothing() {
    let t = TwoTenants::spawn().await;
    let (app, a, b) = (&t.app, &t.a, &t.b);
    let a_tenant = a.tenant.id.as_str();

    for (method, path, body) in [
        (Method::POST, "/v1/environments".to_string(), json!({"name": "Sneaky", "classification": "test", "tenant_id": a_tenant})),
        (Method::POST, "/v1/runtimes".to_string(), json!({"name": "sneaky-atom", "tenant_id": a_tenant})),
        (Method::PATCH, format!("/v1/environments/{}", b.env_id), json!({"description": "moved", "tenant_id": a_tenant})),
    ] {
        let response = send(app, method.clone(), &path, &b.tenant.admin, Some(&body)).await;
        let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert!(problem["errors"].to_string().contains("tenant_id"), "{method} {path} names the unknown field: {problem}");
    }

    for (tenant, env_id, runtime_id) in [(&a.tenant, &a.env_id, &a.runtime_id), (&b.tenant, &b.env_id, &b.runtime_id)] {
        let envs = expect_status(app.get("/v1/environments", &tenant.admin).await, StatusCode::OK).await;
        assert_eq!(ids(&envs), [env_id.as_str()], "no environment was created: {envs}");
        assert_eq!(envs["items"][0]["description"], "", "no environment was changed: {envs}");
        let runtimes = expect_status(app.get("/v1/runtimes", &tenant.admin).await, StatusCode::OK).await;
        assert_eq!(ids(&runtimes), [runtime_id.as_str()], "no runtime was created: {runtimes}");
    }
}

#[tokio::test]
async fn a_list_cursor_of_tenant_a_is_refused_for_tenant_b() {
    let t = TwoTenants::spawn().await;
    let (app, a, b) = (&t.app, &t.a, &t.b);
    // Give A's lists a second page.
    app.environment(&a.tenant, "Test", "test").await;
    let second = app.runtime(&a.tenant, "Acme-atom-2").await;
    let second_id = second["id"].as_str().expect("a runtime id");
    expect_status(app.put(&format!("/v1/environments/{}/runtimes/{second_id}", a.env_id), &a.tenant.admin).await, StatusCode::CREATED).await;

    for (a_list, b_list) in [
        ("/v1/environments".to_string(), "/v1/environments".to_string()),
        ("/v1/runtimes".to_string(), "/v1/runtimes".to_string()),
        ("/v1/audit".to_string(), "/v1/audit".to_string()),
        (format!("/v1/environments/{}/runtimes", a.env_id), format!("/v1/environments/{}/runtimes", b.env_id)),
    ] {
        let first = expect_status(app.get(&format!("{a_list}?limit=1"), &a.tenant.admin).await, StatusCode::OK).await;
        let cursor = first["next_cursor"].as_str().unwrap_or_else(|| panic!("{a_list} has a second page for A: {first}")).to_string();
        let next = expect_status(app.get(&format!("{a_list}?limit=1&cursor={cursor}"), &a.tenant.admin).await, StatusCode::OK).await;
        assert_eq!(next["items"].as_array().map(Vec::len), Some(1), "the cursor works for A: {next}");

        let refused =
            expect_problem(app.get(&format!("{b_list}?limit=1&cursor={cursor}"), &b.tenant.admin).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
                .await;
        assert_eq!(refused["errors"][0]["field"], "cursor", "{b_list} refuses A's cursor: {refused}");
    }
}

#[tokio::test]
async fn each_tenant_s_audit_trail_verifies_and_counts_only_its_own_events() {
    let t = TwoTenants::spawn().await;
    let (app, a, b) = (&t.app, &t.a, &t.b);
    // Interleave changes of both tenants, and B's failed attempts on A's resources.
    let a_test = app.environment(&a.tenant, "Test", "test").await;
    let b_test = app.environment(&b.tenant, "Test", "test").await;
    expect_status(
        app.patch(&format!("/v1/environments/{}", a_test["id"].as_str().expect("an id")), &a.tenant.admin, json!({"enabled": false})).await,
        StatusCode::OK,
    )
    .await;
    expect_problem(app.delete(&format!("/v1/runtimes/{}", a.runtime_id), &b.tenant.admin).await, StatusCode::NOT_FOUND, "not_found").await;
    expect_status(app.delete(&format!("/v1/environments/{}", b_test["id"].as_str().expect("an id")), &b.tenant.admin).await, StatusCode::NO_CONTENT).await;
    expect_problem(
        app.delete(&format!("/v1/environments/{}", a_test["id"].as_str().expect("an id")), &b.tenant.admin).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    let setup = ["tenant.created", "environment.created", "runtime.created", "runtime.registered", "runtime.attached"];
    for (tenant, own, other, expected) in [
        (a, [&a.env_id, &a.runtime_id, &a.tenant.id], [&b.env_id, &b.runtime_id, &b.tenant.id], "environment.updated"),
        (b, [&b.env_id, &b.runtime_id, &b.tenant.id], [&a.env_id, &a.runtime_id, &a.tenant.id], "environment.deleted"),
    ] {
        let events = app.audit(&tenant.tenant).await;
        let actions: Vec<&str> = events.iter().map(|e| e["action"].as_str().expect("an action")).collect();
        assert_eq!(actions, [&setup[..], &["environment.created", expected]].concat());
        let text = serde_json::to_string(&events).expect("JSON");
        assert!(own.iter().all(|id| text.contains(id.as_str())), "the trail holds the tenant's own events: {text}");
        assert!(other.iter().all(|id| !text.contains(id.as_str())), "the trail holds nothing of the other tenant: {text}");
        let mut verify = expect_status(app.get("/v1/audit/verify", &tenant.tenant.admin).await, StatusCode::OK).await;
        assert_eq!(verify["checkpoint"]["seq"], events.len(), "{verify}");
        verify.as_object_mut().expect("a report").remove("checkpoint");
        let n = events.len();
        let expected = json!({"ok": true, "checked": n, "first_broken": null, "full": false, "from_seq": 1, "to_seq": n, "head_seq": n, "remaining": 0, "next_cursor": null});
        assert_eq!(verify, expected);
    }
}

#[tokio::test]
async fn tenant_a_s_idempotency_key_replays_nothing_for_tenant_b() {
    let t = TwoTenants::spawn().await;
    let (app, a, b) = (&t.app, &t.a, &t.b);
    let body = json!({"name": "Staging", "classification": "test"});
    let post = |token: &str| app.request(Method::POST, "/v1/environments", Some(token)).header("Idempotency-Key", "create-staging-1").json(&body).send();

    let a_created = expect_status(post(&a.tenant.admin).await.expect("sent"), StatusCode::CREATED).await;
    let b_response = post(&b.tenant.admin).await.expect("sent");
    assert!(b_response.headers().get("idempotent-replayed").is_none(), "B's request is not a replay of A's");
    let b_created = expect_status(b_response, StatusCode::CREATED).await;
    assert_ne!(b_created["id"], a_created["id"], "B gets an environment of its own, not A's response");

    // Within B, the key does replay B's own response.
    let b_again = post(&b.tenant.admin).await.expect("sent");
    assert_eq!(b_again.headers().get("idempotent-replayed").and_then(|v| v.to_str().ok()), Some("true"));
    assert_eq!(expect_status(b_again, StatusCode::CREATED).await["id"], b_created["id"]);

    for (tenant, own, created) in [(&a.tenant, &a.env_id, &a_created), (&b.tenant, &b.env_id, &b_created)] {
        let mut listed = ids(&expect_status(app.get("/v1/environments", &tenant.admin).await, StatusCode::OK).await);
        listed.sort();
        let mut expected = vec![own.clone(), created["id"].as_str().expect("an id").to_string()];
        expected.sort();
        assert_eq!(listed, expected);
    }
}
