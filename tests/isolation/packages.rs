//! Components, revisions and packages: B can neither read, revise, package,
//! reference nor download anything of A's.

use crate::{MALLORY, TwoTenants, ids};
use base64::Engine;
use berth_tests::{TestTenant, expect_problem, expect_status, sha256};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn b64(content: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(content)
}

/// A process component of `tenant` and its first package; returns both.
async fn component_and_package(t: &TwoTenants, tenant: &TestTenant, content: &str) -> (Value, Value) {
    let body = json!({"name": "Orders", "type": "process", "content": b64(content)});
    let component = expect_status(t.app.post("/v1/components", &tenant.admin, body).await, StatusCode::CREATED).await;
    let package = expect_status(t.app.post("/v1/packages", &tenant.admin, json!({"component_id": component["id"]})).await, StatusCode::CREATED).await;
    (component, package)
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("an id").to_string()
}

#[tokio::test]
async fn tenant_b_gets_not_found_for_tenant_a_s_components_and_packages_and_a_is_left_unchanged() {
    let t = TwoTenants::spawn().await;
    let (app, a, b) = (&t.app, &t.a, &t.b);
    let (a_component, a_package) = component_and_package(&t, &a.tenant, "acme's secret process").await;
    let (a_comp, a_pkg) = (id(&a_component), id(&a_package));
    let (no_comp, no_pkg) = (uuid::Uuid::new_v4().to_string(), uuid::Uuid::new_v4().to_string());
    let before_component = expect_status(app.get(&format!("/v1/components/{a_comp}"), &a.tenant.admin).await, StatusCode::OK).await;
    let before_package = expect_status(app.get(&format!("/v1/packages/{a_pkg}"), &a.tenant.admin).await, StatusCode::OK).await;
    let before_audit = app.audit(&a.tenant).await;

    let revision = json!({"content": b64("globex was here")});
    let probes: Vec<(Method, String, String, Option<Value>)> = vec![
        (Method::GET, format!("/v1/components/{a_comp}"), format!("/v1/components/{no_comp}"), None),
        (Method::GET, format!("/v1/components/{a_comp}/revisions"), format!("/v1/components/{no_comp}/revisions"), None),
        (Method::POST, format!("/v1/components/{a_comp}/revisions"), format!("/v1/components/{no_comp}/revisions"), Some(revision)),
        (Method::GET, format!("/v1/components/{a_comp}/revisions/1"), format!("/v1/components/{no_comp}/revisions/1"), None),
        (Method::GET, format!("/v1/packages/{a_pkg}"), format!("/v1/packages/{no_pkg}"), None),
        (Method::GET, format!("/v1/packages/{a_pkg}/download"), format!("/v1/packages/{no_pkg}/download"), None),
        (Method::DELETE, format!("/v1/packages/{a_pkg}"), format!("/v1/packages/{no_pkg}"), None),
    ];
    for (method, path, control, body) in probes {
        let mut answers = vec![];
        for p in [&path, &control] {
            let response = crate::send(app, method.clone(), p, &b.tenant.admin, body.as_ref()).await;
            answers.push(expect_problem(response, StatusCode::NOT_FOUND, "not_found").await);
        }
        assert_eq!(answers[0], answers[1], "{method} {path} answers B exactly as for ids that exist nowhere");
    }
    // Packaging A's component from B's account.
    let mut answers = vec![];
    for component_id in [&a_comp, &no_comp] {
        let response = app.post("/v1/packages", &b.tenant.admin, json!({"component_id": component_id, "version": "stolen"})).await;
        answers.push(expect_problem(response, StatusCode::NOT_FOUND, "not_found").await);
    }
    assert_eq!(answers[0], answers[1]);

    assert_eq!(expect_status(app.get(&format!("/v1/components/{a_comp}"), &a.tenant.admin).await, StatusCode::OK).await, before_component);
    assert_eq!(expect_status(app.get(&format!("/v1/packages/{a_pkg}"), &a.tenant.admin).await, StatusCode::OK).await, before_package);
    assert_eq!(before_package["deleted"], false);
    let revisions = expect_status(app.get(&format!("/v1/components/{a_comp}/revisions"), &a.tenant.admin).await, StatusCode::OK).await;
    assert_eq!(revisions["items"].as_array().map(Vec::len), Some(1), "A's component has its one revision: {revisions}");
    assert_eq!(app.audit(&a.tenant).await, before_audit, "A's audit trail is unchanged");
    assert!(before_audit.iter().all(|e| e["actor"]["id"] != MALLORY));
    let b_packages = expect_status(app.get("/v1/packages", &b.tenant.admin).await, StatusCode::OK).await;
    assert_eq!(b_packages["items"], json!([]), "B packaged nothing");
}

#[tokio::test]
async fn tenant_b_cannot_reference_tenant_a_s_component_to_bundle_it() {
    let t = TwoTenants::spawn().await;
    let (app, a, b) = (&t.app, &t.a, &t.b);
    let (a_component, _) = component_and_package(&t, &a.tenant, "acme's map").await;
    let a_comp = id(&a_component);

    let body = json!({"name": "Leech", "type": "process", "content": b64("calls acme"), "references": [a_comp]});
    let problem = expect_problem(app.post("/v1/components", &b.tenant.admin, body).await, StatusCode::UNPROCESSABLE_ENTITY, "reference_not_found").await;
    assert_eq!(problem["errors"][0]["field"], "references[0]", "{problem}");

    // Nor by revising a component of its own.
    let own = expect_status(
        app.post("/v1/components", &b.tenant.admin, json!({"name": "Own", "type": "process", "content": b64("mine")})).await,
        StatusCode::CREATED,
    )
    .await;
    let path = format!("/v1/components/{}/revisions", id(&own));
    let problem =
        expect_problem(app.post(&path, &b.tenant.admin, json!({"references": [a_comp]})).await, StatusCode::UNPROCESSABLE_ENTITY, "reference_not_found").await;
    assert_eq!(problem["errors"][0]["field"], "references[0]", "{problem}");

    let package = expect_status(app.post("/v1/packages", &b.tenant.admin, json!({"component_id": own["id"]})).await, StatusCode::CREATED).await;
    let bundled: Vec<&Value> = package["manifest"]["components"].as_array().expect("manifest components").iter().map(|c| &c["id"]).collect();
    assert_eq!(bundled, [&own["id"]], "B's package bundles B's component only: {package}");
    assert_eq!(ids(&expect_status(app.get("/v1/components", &b.tenant.admin).await, StatusCode::OK).await), [id(&own)]);
}

#[tokio::test]
async fn tenant_b_s_package_lists_and_download_urls_name_nothing_of_tenant_a() {
    let t = TwoTenants::spawn().await;
    let (app, a, b) = (&t.app, &t.a, &t.b);
    let (a_component, a_package) = component_and_package(&t, &a.tenant, "same content").await;
    let (b_component, b_package) = component_and_package(&t, &b.tenant, "same content").await;
    let a_ids = [id(&a_component), id(&a_package), a.tenant.id.clone()];

    for path in ["/v1/components".to_string(), "/v1/packages".to_string(), format!("/v1/packages?component_id={}", id(&a_component))] {
        let list = expect_status(app.get(&path, &b.tenant.admin).await, StatusCode::OK).await;
        let text = list.to_string();
        assert!(a_ids.iter().all(|i| !text.contains(i.as_str())), "{path} shows B nothing of A's: {text}");
    }
    let filtered = expect_status(app.get(&format!("/v1/packages?component_id={}", id(&a_component)), &b.tenant.admin).await, StatusCode::OK).await;
    assert_eq!(filtered["items"], json!([]), "filtering by A's component finds nothing for B");
    let own = expect_status(app.get(&format!("/v1/packages?component_id={}", id(&b_component)), &b.tenant.admin).await, StatusCode::OK).await;
    assert_eq!(ids(&own), [id(&b_package)]);

    let download = expect_status(app.get(&format!("/v1/packages/{}/download", id(&b_package)), &b.tenant.admin).await, StatusCode::OK).await;
    let url = download["url"].as_str().expect("a url");
    assert!(url.contains(&format!("tenants/{}/", b.tenant.id)), "B's archive lives under B's prefix: {url}");
    assert!(a_ids.iter().all(|i| !url.contains(i.as_str())), "B's URL names nothing of A's: {url}");
    let archive = app.http.get(url).send().await.expect("the download is sent");
    assert_eq!(archive.status(), StatusCode::OK);
    let bytes = archive.bytes().await.expect("the archive");
    assert_ne!(a_package["digest"], b_package["digest"], "the same content packaged by each tenant makes two archives");
    assert_eq!(sha256(&bytes), b_package["digest"], "the URL serves B's own archive, byte for byte");
}

#[tokio::test]
async fn tenant_a_s_component_and_package_cursors_are_refused_for_tenant_b() {
    let t = TwoTenants::spawn().await;
    let (app, a, b) = (&t.app, &t.a, &t.b);
    let (a_orders, _) = component_and_package(&t, &a.tenant, "orders v1").await;
    let a_orders_id = id(&a_orders);
    let billing = json!({"name": "Billing", "type": "map", "content": b64("billing")});
    expect_status(app.post("/v1/components", &a.tenant.admin, billing).await, StatusCode::CREATED).await;
    let revise = json!({"content": b64("orders v2")});
    expect_status(app.post(&format!("/v1/components/{a_orders_id}/revisions"), &a.tenant.admin, revise).await, StatusCode::CREATED).await;
    expect_status(app.post("/v1/packages", &a.tenant.admin, json!({"component_id": a_orders_id})).await, StatusCode::CREATED).await;
    let (b_orders, _) = component_and_package(&t, &b.tenant, "globex orders").await;
    let b_orders_id = id(&b_orders);

    for (a_list, b_list) in [
        ("/v1/components?".to_string(), "/v1/components?".to_string()),
        ("/v1/packages?".to_string(), "/v1/packages?".to_string()),
        (format!("/v1/packages?component_id={a_orders_id}&"), format!("/v1/packages?component_id={b_orders_id}&")),
        (format!("/v1/components/{a_orders_id}/revisions?"), format!("/v1/components/{b_orders_id}/revisions?")),
    ] {
        let first = expect_status(app.get(&format!("{a_list}limit=1"), &a.tenant.admin).await, StatusCode::OK).await;
        let cursor = first["next_cursor"].as_str().unwrap_or_else(|| panic!("{a_list} has a second page for A: {first}")).to_string();
        let next = expect_status(app.get(&format!("{a_list}limit=1&cursor={cursor}"), &a.tenant.admin).await, StatusCode::OK).await;
        assert_eq!(next["items"].as_array().map(Vec::len), Some(1), "the cursor works for A: {next}");

        let response = app.get(&format!("{b_list}limit=1&cursor={cursor}"), &b.tenant.admin).await;
        let refused = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(refused["errors"][0]["field"], "cursor", "{b_list} refuses A's cursor: {refused}");
    }
}
