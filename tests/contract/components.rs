use crate::fixtures::*;
use crate::stores::Stores;
use berth_domain::component::{Component, ComponentType, ContentRef, Revision};
use berth_domain::ids::{ComponentId, TenantId};
use berth_domain::page::PageRequest;
use berth_domain::refusal::{Entity, Refusal, Taken};
use berth_domain::values::Plan;
use chrono::Utc;

fn content(hex_digit: char) -> ContentRef {
    ContentRef { sha256: digest(hex_digit), size: 3 }
}

impl Stores {
    async fn create_component(&self, tenant: TenantId, component_name: &str, kind: ComponentType) -> berth_domain::Result<(Component, Revision)> {
        let (component, first) = Component::new(name(component_name), kind, vec![], content('a'), "alice", Utc::now());
        self.components.create_component(tenant, &component, &first, draft("component.created", "component", component.id)).await.map(|()| (component, first))
    }
}

pub async fn component_names_are_unique_per_type_whatever_their_case(s: Stores) {
    let (acme, globex) = (s.tenant(Plan::default()).await, s.tenant(Plan::default()).await);
    let (orders, first) = s.create_component(acme, "Orders", ComponentType::Process).await.expect("created");
    assert_eq!(s.components.get_component(acme, orders.id).await.expect("read"), Some(orders.clone()));
    assert_eq!(s.components.get_revision(acme, orders.id, 1).await.expect("read"), Some(first.clone()), "with its first revision");

    let taken = s.create_component(acme, "ORDERS", ComponentType::Process).await;
    assert_eq!(refused(taken), Refusal::Taken(Taken::ComponentName { kind: ComponentType::Process, name: name("ORDERS") }));
    s.create_component(acme, "orders", ComponentType::Map).await.expect("another type may use the name");
    s.create_component(globex, "Orders", ComponentType::Process).await.expect("another tenant may use the name");

    let same_id = Component { name: name("Invoices"), ..orders.clone() };
    let refusal = refused(s.components.create_component(acme, &same_id, &first, draft("component.created", "component", orders.id)).await);
    assert_eq!(refusal, Refusal::Exists(Entity::Component));
    assert_eq!(s.components.get_component(acme, orders.id).await.expect("read"), Some(orders));
    s.create_component(acme, "Invoices", ComponentType::Process).await.expect("the refused create reserved no name");
    assert_eq!(s.actions(acme).await.iter().filter(|a| *a == "component.created").count(), 3);
}

pub async fn a_revision_is_added_only_on_top_of_the_revision_read(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let (v1, r1) = s.create_component(acme, "Orders", ComponentType::Process).await.expect("created");
    let reference = ComponentId::new();
    let (v2, r2) = v1.revised(vec![reference], content('b'), "bob", Utc::now());
    s.components.add_revision(acme, &v2, &r2, draft("component.revised", "component", v1.id)).await.expect("revised");
    assert_eq!(s.components.get_component(acme, v1.id).await.expect("read"), Some(v2.clone()));

    let (stale, stale_revision) = v1.revised(vec![], content('c'), "carol", Utc::now());
    assert_eq!(
        refused(s.components.add_revision(acme, &stale, &stale_revision, draft("component.revised", "component", v1.id)).await),
        Refusal::Stale(Entity::Component)
    );
    assert_eq!(s.components.get_component(acme, v1.id).await.expect("read"), Some(v2.clone()), "the stale revision changed nothing");
    assert_eq!(s.components.get_revision(acme, v1.id, 2).await.expect("read"), Some(r2.clone()), "revision 2 is bob's");
    assert_eq!(s.components.get_revision(acme, v1.id, 3).await.expect("read"), None);

    let (ghost, _) = Component::new(name("Ghost"), ComponentType::Map, vec![], content('a'), "alice", Utc::now());
    let (ghost2, ghost_r2) = ghost.revised(vec![], content('b'), "bob", Utc::now());
    assert_eq!(
        refused(s.components.add_revision(acme, &ghost2, &ghost_r2, draft("component.revised", "component", ghost.id)).await),
        Refusal::Stale(Entity::Component),
        "a missing component"
    );

    let revisions = pages(1, async |page| s.components.list_revisions(acme, v1.id, &page).await).await;
    assert_eq!(revisions.concat(), [r1, r2], "in revision order");
    assert_eq!(s.actions(acme).await.iter().filter(|a| *a == "component.revised").count(), 1);
}

pub async fn get_components_returns_those_that_exist_once_each(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let (a, _) = s.create_component(acme, "A", ComponentType::Process).await.expect("created");
    let (b, _) = s.create_component(acme, "B", ComponentType::Map).await.expect("created");
    let mut found = s.components.get_components(acme, &[b.id, a.id, b.id, ComponentId::new()]).await.expect("read");
    found.sort_by_key(|c| c.id);
    let mut expected = vec![a, b];
    expected.sort_by_key(|c| c.id);
    assert_eq!(found, expected);
    assert_eq!(s.components.get_components(acme, &[]).await.expect("read"), []);
    let globex = s.tenant(Plan::default()).await;
    assert_eq!(s.components.get_components(globex, &[expected[0].id]).await.expect("read"), [], "another tenant's components are not found");
}

pub async fn components_are_listed_oldest_first_and_revisions_per_component(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let mut created = vec![];
    for i in 0..5 {
        created.push(s.create_component(acme, &format!("c-{i}"), ComponentType::Process).await.expect("created").0.id);
    }
    created.sort();
    let listed: Vec<ComponentId> = all(2, async |page| s.components.list_components(acme, &page).await).await.iter().map(|c| c.id).collect();
    assert_eq!(listed, created);

    let (c, _) = s.create_component(acme, "Revised", ComponentType::Process).await.expect("created");
    let (c2, r2) = c.revised(vec![], content('b'), "bob", Utc::now());
    s.components.add_revision(acme, &c2, &r2, draft("component.revised", "component", c.id)).await.expect("revised");
    let cursor = s.components.list_revisions(acme, c.id, &PageRequest::first(1)).await.expect("a page").next_cursor;
    let result = s.components.list_revisions(acme, created[0], &PageRequest { limit: 1, cursor }).await;
    assert_eq!(refused(result), Refusal::InvalidCursor, "one component's revisions cursor does not page another's");
}
