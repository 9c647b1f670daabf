use crate::fixtures::*;
use crate::stores::Stores;
use berth_domain::ids::{ComponentId, PackageId};
use berth_domain::package::{Package, PackageStatus, VersionLabel};
use berth_domain::page::PageRequest;
use berth_domain::refusal::{Entity, Refusal, Taken};
use berth_domain::values::Plan;

fn label(raw: &str) -> VersionLabel {
    VersionLabel::parse(raw).expect("a version label")
}

pub async fn a_package_version_is_unique_per_component_and_counted_even_once_deleted(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let (orders, invoices) = (ComponentId::new(), ComponentId::new());
    let create = async |p: &Package| s.packages.create_package(acme, p, draft("package.created", "package", p.id)).await;

    let first = package(orders, "1", &[]);
    create(&first).await.expect("created");
    assert_eq!(s.packages.get_package(acme, first.id).await.expect("read"), Some(first.clone()));
    assert_eq!(refused(create(&package(orders, "1", &[])).await), Refusal::Taken(Taken::PackageVersion(label("1"))));
    create(&package(invoices, "1", &[])).await.expect("another component may use the version");
    assert!(s.packages.version_exists(acme, orders, &label("1")).await.expect("read"));
    assert!(!s.packages.version_exists(acme, orders, &label("2")).await.expect("read"));
    assert_eq!(s.packages.count_packages(acme, orders).await.expect("counted"), 1);

    create(&package(orders, "2", &[])).await.expect("created");
    s.packages.mark_package_deleted(acme, first.id, draft("package.deleted", "package", first.id)).await.expect("deleted");
    assert!(s.packages.get_package(acme, first.id).await.expect("read").expect("kept").deleted, "marked deleted, kept for the record");
    assert_eq!(s.packages.count_packages(acme, orders).await.expect("counted"), 2, "deleted packages still count");
    assert!(s.packages.version_exists(acme, orders, &label("1")).await.expect("read"), "a deleted package's version stays taken");
    assert_eq!(refused(create(&package(orders, "1", &[])).await), Refusal::Taken(Taken::PackageVersion(label("1"))));

    let missing = PackageId::new();
    assert_eq!(refused(s.packages.mark_package_deleted(acme, missing, draft("package.deleted", "package", missing)).await), Refusal::Missing(Entity::Package));
    let same_id = Package { version: label("3"), ..first.clone() };
    assert_eq!(refused(create(&same_id).await), Refusal::Exists(Entity::Package));
    assert!(!s.packages.version_exists(acme, orders, &label("3")).await.expect("read"), "the refused create reserved no version");
    let actions = s.actions(acme).await;
    assert_eq!((actions.iter().filter(|a| *a == "package.created").count(), actions.iter().filter(|a| *a == "package.deleted").count()), (3, 1));
}

pub async fn packages_are_listed_newest_first_for_the_tenant_and_for_one_component(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let (orders, invoices) = (ComponentId::new(), ComponentId::new());
    let mut all_ids = vec![];
    let mut orders_ids = vec![];
    for (i, component) in [orders, invoices, orders, invoices, orders].into_iter().enumerate() {
        let p = package(component, &format!("{i}"), &[]);
        s.packages.create_package(acme, &p, draft("package.created", "package", p.id)).await.expect("created");
        all_ids.push(p.id);
        if component == orders {
            orders_ids.push(p.id);
        }
    }
    all_ids.sort_by(|a, b| b.cmp(a));
    orders_ids.sort_by(|a, b| b.cmp(a));

    let listed: Vec<PackageId> = all(2, async |page| s.packages.list_packages(acme, None, &page).await).await.iter().map(|p| p.id).collect();
    assert_eq!(listed, all_ids, "newest first");
    let listed: Vec<PackageId> = all(2, async |page| s.packages.list_packages(acme, Some(orders), &page).await).await.iter().map(|p| p.id).collect();
    assert_eq!(listed, orders_ids, "one component's, newest first");

    let tenant_cursor = s.packages.list_packages(acme, None, &PageRequest::first(1)).await.expect("a page").next_cursor;
    let orders_cursor = s.packages.list_packages(acme, Some(orders), &PageRequest::first(1)).await.expect("a page").next_cursor;
    assert!(tenant_cursor.is_some() && orders_cursor.is_some());
    let result = s.packages.list_packages(acme, Some(orders), &PageRequest { limit: 1, cursor: tenant_cursor }).await;
    assert_eq!(refused(result), Refusal::InvalidCursor, "the tenant list's cursor does not page a component's");
    let result = s.packages.list_packages(acme, None, &PageRequest { limit: 1, cursor: orders_cursor.clone() }).await;
    assert_eq!(refused(result), Refusal::InvalidCursor, "nor the other way round");
    let result = s.packages.list_packages(acme, Some(invoices), &PageRequest { limit: 1, cursor: orders_cursor }).await;
    assert_eq!(refused(result), Refusal::InvalidCursor, "nor one component's another's");
}

pub async fn a_building_package_is_ended_once_ready_or_failed_and_reads_back_as_ended(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let orders = ComponentId::new();
    let building = |version: &str| Package { status: PackageStatus::Building, digest: None, size: 0, ..package(orders, version, &[]) };
    let (first, second) = (building("1"), building("2"));
    for p in [&first, &second] {
        s.packages.create_package(acme, p, draft("package.created", "package", p.id)).await.expect("reserved");
    }
    assert_eq!(s.packages.get_package(acme, first.id).await.expect("read"), Some(first.clone()), "building, with no digest yet");

    let ready = first.built(digest('c'), 4096);
    s.packages.finish_package_build(acme, &ready, None).await.expect("built");
    assert_eq!(s.packages.get_package(acme, first.id).await.expect("read"), Some(ready.clone()));
    assert_eq!(refused(s.packages.finish_package_build(acme, &first.build_failed("late"), None).await), Refusal::Stale(Entity::Package), "ended once");
    assert_eq!(s.packages.get_package(acme, first.id).await.expect("read"), Some(ready), "the refused end changed nothing");

    let failed = second.build_failed("bundled content is missing");
    s.packages.finish_package_build(acme, &failed, Some(draft("package.build_failed", "package", second.id))).await.expect("failed");
    assert_eq!(s.packages.get_package(acme, second.id).await.expect("read"), Some(failed));
    let gone = building("3");
    assert_eq!(refused(s.packages.finish_package_build(acme, &gone.built(digest('d'), 1), None).await), Refusal::Stale(Entity::Package), "no such package");
    let actions = s.actions(acme).await;
    assert_eq!(actions.iter().filter(|a| *a == "package.build_failed").count(), 1, "only the audited end is recorded");
}

pub async fn a_deploy_subject_is_read_at_once_and_only_the_tenants(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let env = s.create_env(acme, "Test").await.expect("created");
    let p = package(ComponentId::new(), "1.0.0", &[]);
    s.packages.create_package(acme, &p, draft("package.created", "package", p.id)).await.expect("created");
    let policy = berth_domain::policy::Policy { required_approvals: 2, version: berth_domain::values::Version(1), ..Default::default() };
    s.policies
        .put_policy(acme, env.id, &policy, berth_domain::values::Version(0), draft("policy.updated", "environment", env.id))
        .await
        .expect("the first policy");

    let subject = s.subjects.deploy_subject(acme, env.id, p.id).await.expect("read");
    assert_eq!(subject.environment.map(|e| e.id), Some(env.id));
    assert_eq!(subject.package.as_ref(), Some(&p));
    assert_eq!(subject.policy.map(|p| p.required_approvals), Some(2));
    assert_eq!(subject.quarantine, None, "not quarantined there");
    assert_eq!(subject.extensions, Default::default(), "no extension values set");

    let missing = s.subjects.deploy_subject(acme, env.id, PackageId::new()).await.expect("read");
    assert!(missing.environment.is_some() && missing.package.is_none(), "a package that does not exist is absent, the environment still read");
    let globex = s.tenant(Plan::default()).await;
    let elsewhere = s.subjects.deploy_subject(globex, env.id, p.id).await.expect("read");
    assert!(elsewhere.environment.is_none() && elsewhere.package.is_none() && elsewhere.policy.is_none(), "another tenant's items are not read");
}
