//! Environment extensions: components declare what can be extended, each
//! environment sets its own values (secrets sealed, never read back), and a
//! deployment checks them.

use crate::fixture::*;
use berth_domain::DomainError;
use berth_domain::component::{Component, ComponentType};
use berth_domain::extension::{ComponentInput, ExtensionPoints, ExtensionsInput, PropertyValue};
use berth_domain::ids::ComponentId;
use berth_domain::package::Package;
use berth_domain::secret::Sensitive;
use berth_domain::usecases::{NewComponent, RevisionInput, ShownValue};
use berth_domain::values::{Role, Version};
use serde_json::json;
use std::collections::BTreeMap;

fn points() -> ExtensionPoints {
    serde_json::from_value(json!({
        "connection_fields": [{"name": "url", "secret": false, "required": true}, {"name": "password", "secret": true, "required": true}],
        "properties": [{"name": "batch_size", "type": "number", "default": 100}],
        "lookups": [{"table": "countries", "keys": ["DE", "FR"]}]
    }))
    .expect("extension points")
}

/// The connection `CRM` declaring `points()`, referenced by a process `Sync` packaged as `v1`.
async fn crm_package(w: &World) -> (Component, Package) {
    let input = NewComponent { name: name("CRM"), kind: ComponentType::Connection, content: b"crm".to_vec(), references: vec![], extensions: points() };
    let crm = w.berth.create_component(&w.admin, input).await.expect("the connection is created");
    let sync = w.component("Sync", ComponentType::Process, b"sync", &[crm.id]).await;
    (crm, w.package(sync.id, "v1").await)
}

fn values(crm: ComponentId, connection: &[(&str, Option<&str>)], lookups: &[(&str, &str)]) -> ExtensionsInput {
    let input = ComponentInput {
        connection: connection.iter().map(|(k, v)| (k.to_string(), v.map(Sensitive::new))).collect(),
        properties: BTreeMap::new(),
        lookups: BTreeMap::from([("countries".to_string(), lookups.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())]),
    };
    ExtensionsInput { components: BTreeMap::from([(crm, Some(input))]) }
}

#[tokio::test]
async fn a_package_snapshots_the_extension_points_of_what_it_bundles_and_a_later_revision_does_not_change_them() {
    let w = World::new().await;
    let (crm, v1) = crm_package(&w).await;
    let entry = v1.manifest.components.iter().find(|e| e.id == crm.id).expect("the connection is bundled");
    assert_eq!(entry.extensions, points());
    let revised = RevisionInput { content: None, references: None, extensions: Some(ExtensionPoints::default()) };
    let (after, _) = w.berth.revise_component(&w.admin, crm.id, revised, None).await.expect("revised");
    assert!(after.extensions.is_empty());
    let again = w.berth.get_package(&w.admin, v1.id).await.expect("the package").package;
    assert_eq!(again.manifest.components.iter().find(|e| e.id == crm.id).map(|e| e.extensions.clone()), Some(points()));
}

#[tokio::test]
async fn a_declaration_with_a_default_of_the_wrong_type_is_refused() {
    let w = World::new().await;
    let mut bad = points();
    bad.properties[0].default = Some(PropertyValue::String("many".into()));
    let input = NewComponent { name: name("CRM"), kind: ComponentType::Connection, content: b"crm".to_vec(), references: vec![], extensions: bad };
    let DomainError::Validation { errors, .. } = refused(w.berth.create_component(&w.admin, input).await) else { panic!("a validation error") };
    assert_eq!(errors[0].field, "extensions.properties[0].default");
}

#[tokio::test]
async fn each_environment_keeps_its_own_values_and_a_secret_reads_back_only_as_set() {
    let w = World::new().await;
    let (crm, _) = crm_package(&w).await;
    let test = w
        .berth
        .put_extensions(&w.admin, w.test.id, values(crm.id, &[("url", Some("https://crm.test")), ("password", Some("test-pw"))], &[]), Some(Version(0)))
        .await;
    let test = test.expect("Test's values are stored");
    w.berth
        .put_extensions(&w.admin, w.prod.id, values(crm.id, &[("url", Some("https://crm.prod"))], &[]), Some(Version(0)))
        .await
        .expect("Production's values");
    let read = w.berth.get_extensions(&w.admin, w.test.id).await.expect("Test's values");
    assert_eq!(read, test);
    assert_eq!(read.version, Version(1));
    let shown = &read.components[&crm.id].connection;
    assert_eq!(shown["url"], ShownValue::Plain("https://crm.test".into()));
    assert!(matches!(&shown["password"], ShownValue::SecretSet { updated_by, .. } if updated_by == ADMIN));
    assert!(!format!("{read:?}").contains("test-pw"), "the secret is never read back");
    let prod = w.berth.get_extensions(&w.admin, w.prod.id).await.expect("Production's values");
    assert_eq!(prod.components[&crm.id].connection["url"], ShownValue::Plain("https://crm.prod".into()));
    assert!(!prod.components[&crm.id].connection.contains_key("password"));

    let resolved = w.berth.resolved_extensions(w.tenant, w.test.id, crm.id).await.expect("resolved");
    assert_eq!(resolved.connection["password"].reveal(), "test-pw", "opened server-side for a job");
    assert_eq!(resolved.properties["batch_size"], PropertyValue::Number(100.into()), "the default applies");
}

#[tokio::test]
async fn a_write_needs_the_version_read_an_admin_and_components_that_exist_and_declare_the_fields() {
    let w = World::new().await;
    let (crm, _) = crm_package(&w).await;
    let write = || values(crm.id, &[("url", Some("https://crm.test"))], &[]);
    w.berth.put_extensions(&w.admin, w.test.id, write(), Some(Version(0))).await.expect("the first write");
    assert!(matches!(refused(w.berth.put_extensions(&w.admin, w.test.id, write(), Some(Version(0))).await), DomainError::PreconditionFailed));
    let ann = w.user(ANN, &[Role::Deployer]);
    assert_eq!(refused(w.berth.put_extensions(&ann, w.test.id, write(), Some(Version(1))).await).code(), "forbidden");
    assert_eq!(refused(w.berth.put_extensions(&w.admin, w.test.id, write(), None).await).code(), "precondition_required");
    assert_eq!(refused(w.berth.get_extensions(&ann, w.test.id).await).code(), "forbidden");
    let unknown = values(crm.id, &[("username", Some("bob"))], &[]);
    assert_eq!(refused(w.berth.put_extensions(&w.admin, w.test.id, unknown, Some(Version(1))).await).code(), "extension_unknown");
    let nowhere = values(ComponentId::new(), &[], &[]);
    let DomainError::Validation { code, errors } = refused(w.berth.put_extensions(&w.admin, w.test.id, nowhere.clone(), Some(Version(1))).await) else {
        panic!("a validation error")
    };
    assert_eq!((code, errors[0].field.starts_with("components.")), ("component_not_found", true));
    let undeclared = values(w.orders.id, &[("url", Some("x"))], &[]);
    assert_eq!(refused(w.berth.put_extensions(&w.admin, w.test.id, undeclared, Some(Version(1))).await).code(), "extension_unknown");
    assert_eq!(w.berth.get_extensions(&w.admin, w.test.id).await.expect("read").version, Version(1), "nothing refused was stored");
}

#[tokio::test]
async fn the_audit_records_which_fields_changed_never_a_value() {
    let w = World::new().await;
    let (crm, _) = crm_package(&w).await;
    w.berth.put_extensions(&w.admin, w.test.id, values(crm.id, &[("password", Some("audit-pw-123"))], &[]), Some(Version(0))).await.expect("stored");
    assert_eq!(w.audit_actions(w.test.id).await.last().map(String::as_str), Some("environment.extensions_updated"));
    let page = w.berth.list_audit(&w.admin, &Default::default(), &berth_domain::page::PageRequest::first(100)).await.expect("audit");
    let event = page.items.iter().find(|e| e.action == "environment.extensions_updated").expect("the event");
    assert_eq!(event.summary["components"][0], json!({"component_id": crm.id, "changed": ["connection.password"]}));
    assert!(!event.summary.to_string().contains("audit-pw-123"));
}

#[tokio::test]
async fn a_missing_secret_refuses_the_deploy_an_unresolved_lookup_only_warns_and_the_deployment_records_the_version() {
    let w = World::new().await;
    let (crm, v1) = crm_package(&w).await;
    w.berth
        .put_extensions(&w.admin, w.test.id, values(crm.id, &[("url", Some("https://crm.test"))], &[("DE", "Germany")]), Some(Version(0)))
        .await
        .expect("stored");
    let report = w.berth.validate_deployment(&w.admin, v1.id, w.test.id).await.expect("validated");
    assert_eq!(report.errors.iter().map(|e| e.code).collect::<Vec<_>>(), ["extension_missing"]);
    assert!(report.errors[0].message.contains("\"password\"") && report.errors[0].message.contains("\"CRM\""), "{:?}", report.errors);
    // The runtime has sent no heartbeat here: its `runtime_offline` warning is beside the point.
    let warnings: Vec<_> = report.warnings.iter().filter(|w| w.code != "runtime_offline").collect();
    assert_eq!(warnings.iter().map(|e| e.code).collect::<Vec<_>>(), ["lookup_unresolved"]);
    assert!(warnings[0].message.contains("\"countries\"") && warnings[0].message.contains("\"FR\""), "{warnings:?}");
    assert_eq!(refused(w.request(&w.admin, &v1, w.test.id).await).code(), "extension_missing");

    let set = values(crm.id, &[("url", Some("https://crm.test")), ("password", Some("pw"))], &[("DE", "Germany")]);
    w.berth.put_extensions(&w.admin, w.test.id, set, Some(Version(1))).await.expect("the secret is set");
    let d = w.deploy_active(&v1, w.test.id).await;
    assert_eq!((d.extensions_version, d.extensions_changed), (Some(2), None));

    let report = w.berth.validate_deployment(&w.admin, v1.id, w.test.id).await.expect("validated");
    assert_eq!(report.extensions_changed, Some(false), "nothing changed since the active deployment");
    let kept = values(crm.id, &[("url", Some("https://crm2.test"))], &[("DE", "Germany"), ("FR", "France")]);
    w.berth.put_extensions(&w.admin, w.test.id, kept, Some(Version(2))).await.expect("changed");
    let report = w.berth.validate_deployment(&w.admin, v1.id, w.test.id).await.expect("validated");
    let gaps = |codes: &[&str]| codes.iter().any(|c| *c == "extension_missing" || *c == "lookup_unresolved");
    let codes: Vec<&str> = report.errors.iter().chain(&report.warnings).map(|i| i.code).collect();
    assert!(!gaps(&codes), "the kept secret and the new mapping fill every gap: {report:?}");
    assert_eq!((report.extensions_version, report.extensions_changed), (3, Some(true)));
}

#[tokio::test]
async fn a_connection_test_its_runtime_never_reports_times_out_after_five_minutes_and_is_no_longer_handed_out() {
    use berth_domain::extension::{ConnectionTest, ConnectionTestStatus};
    use berth_domain::ports::ExtensionStore;
    let w = World::new().await;
    let (crm, _) = crm_package(&w).await;
    // Asked for six minutes ago and never reported (stored as it was then: the clock cannot be moved here).
    let test = ConnectionTest {
        id: berth_domain::ids::JobId::new(),
        environment_id: w.test.id,
        component_id: crm.id,
        runtime_id: w.atom.runtime,
        status: ConnectionTestStatus::Pending,
        message: String::new(),
        requested_at: chrono::Utc::now() - chrono::TimeDelta::minutes(6),
        requested_by: "alice".into(),
        at: None,
    };
    w.store.put_connection_test(w.tenant, &test).await.expect("stored");

    let shown = w.berth.get_connection_test(&w.admin, w.test.id, crm.id).await.expect("read").expect("a test");
    assert_eq!(shown.status, ConnectionTestStatus::TimedOut);
    assert_eq!(shown.message, "the runtime did not report within 5 minutes");
    let ctx = w.atom.ctx(&w.berth).await;
    assert!(w.berth.pending_connection_tests(&ctx).await.expect("read").is_empty(), "no longer handed out");
    let late = w.berth.report_connection_test(&ctx, test.id, true, "connected").await;
    assert!(matches!(refused(late), DomainError::NotFound { .. }), "a late report is refused");
    let shown = w.berth.get_connection_test(&w.admin, w.test.id, crm.id).await.expect("read").expect("a test");
    assert_eq!(shown.status, ConnectionTestStatus::TimedOut, "and changes nothing");
}
