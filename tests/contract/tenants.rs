use crate::fixtures::*;
use crate::stores::Stores;
use berth_domain::ids::TenantId;
use berth_domain::refusal::{Entity, Refusal};
use berth_domain::tenant::{PlanPatch, Tenant, TenantPatch};
use berth_domain::values::{Plan, Version};
use chrono::{Duration, Utc};

pub async fn a_tenant_is_created_once_and_reads_back_as_written(s: Stores) {
    let tenant = Tenant::new(name("Acme"), Plan::new(3, 4, 5).expect("a plan"), Utc::now());
    s.tenants.create_tenant(&tenant, draft("tenant.created", "tenant", tenant.id)).await.expect("created");
    assert_eq!(s.tenants.get_tenant(tenant.id).await.expect("read"), Some(tenant.clone()));

    let again = Tenant { name: name("Globex"), ..tenant.clone() };
    assert_eq!(refused(s.tenants.create_tenant(&again, draft("tenant.created", "tenant", tenant.id)).await), Refusal::Exists(Entity::Tenant));
    assert_eq!(s.tenants.get_tenant(tenant.id).await.expect("read"), Some(tenant.clone()), "the refused create changed nothing");
    assert_eq!(s.actions(tenant.id).await, ["tenant.created"], "the create is audited on the tenant's own chain, the refused one is not");
    assert_eq!(s.tenants.get_tenant(TenantId::new()).await.expect("read"), None);
}

pub async fn a_tenant_update_from_a_stale_version_is_refused_and_changes_nothing(s: Stores) {
    let v1 = Tenant::new(name("Acme"), Plan::default(), Utc::now());
    s.tenants.create_tenant(&v1, draft("tenant.created", "tenant", v1.id)).await.expect("created");
    let patch = TenantPatch { plan: Some(PlanPatch { max_runtimes: Some(2), ..Default::default() }), suspended: Some(true), ..Default::default() };
    let v2 = v1.patched(patch, Utc::now()).expect("patched");
    s.tenants.update_tenant(&v2, v1.version, draft("tenant.suspended", "tenant", v1.id)).await.expect("updated from the version read");
    assert_eq!(s.tenants.get_tenant(v1.id).await.expect("read"), Some(v2.clone()));

    let stale = v1.patched(TenantPatch { name: Some(name("Globex")), ..Default::default() }, Utc::now()).expect("patched");
    assert_eq!(refused(s.tenants.update_tenant(&stale, v1.version, draft("tenant.updated", "tenant", v1.id)).await), Refusal::Stale(Entity::Tenant));
    assert_eq!(s.tenants.get_tenant(v1.id).await.expect("read"), Some(v2), "the stale update changed nothing");

    let nobody = Tenant::new(name("Nobody"), Plan::default(), Utc::now());
    assert_eq!(refused(s.tenants.update_tenant(&nobody, Version::FIRST, draft("tenant.updated", "tenant", nobody.id)).await), Refusal::Stale(Entity::Tenant));
    assert_eq!(s.actions(v1.id).await, ["tenant.created", "tenant.suspended"]);
}

pub async fn tenants_are_listed_oldest_first_page_by_page(s: Stores) {
    let base = Utc::now() - Duration::hours(1);
    let mut tenants = vec![];
    for minutes in [3, 0, 4, 1, 2] {
        let tenant = Tenant::new(name(&format!("t-{minutes}")), Plan::default(), base + Duration::minutes(minutes));
        s.tenants.create_tenant(&tenant, draft("tenant.created", "tenant", tenant.id)).await.expect("created");
        tenants.push(tenant);
    }
    tenants.sort_by_key(|t| t.created_at);

    let pages = pages(2, async |page| s.tenants.list_tenants(&page).await).await;
    let listed: Vec<&str> = pages.iter().flatten().map(|t| t.name.as_str()).collect();
    assert_eq!(listed, ["t-0", "t-1", "t-2", "t-3", "t-4"], "oldest first, each once");
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);
    assert_eq!(pages.into_iter().flatten().collect::<Vec<_>>(), tenants, "listed as written");
}
