use crate::fixtures::*;
use crate::stores::Stores;
use berth_domain::DomainError;
use berth_domain::environment::EnvironmentPatch;
use berth_domain::ids::EnvironmentId;
use berth_domain::page::PageRequest;
use berth_domain::refusal::{Entity, Quota, Refusal, Taken};
use berth_domain::values::Plan;
use chrono::Utc;

pub async fn environment_names_are_unique_per_tenant_whatever_their_case_but_two_tenants_may_share_one(s: Stores) {
    let (acme, globex) = (s.tenant(Plan::default()).await, s.tenant(Plan::default()).await);

    s.create_env(acme, "Production").await.expect("the first Production is created");
    for taken in ["Production", "PRODUCTION", "production"] {
        assert_eq!(refused(s.create_env(acme, taken).await), Refusal::Taken(Taken::EnvironmentName), "{taken}");
    }
    s.create_env(globex, "production").await.expect("another tenant may use the same name");

    assert_eq!(s.env_names(acme).await, ["Production"]);
    assert_eq!(s.env_names(globex).await, ["production"]);
    assert_eq!(s.actions(acme).await, ["tenant.created", "environment.created"], "refused creates leave no audit event");
}

pub async fn an_environment_created_with_an_id_in_use_is_refused(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let test = s.create_env(acme, "Test").await.expect("created");
    let same_id = berth_domain::environment::Environment { name: name("Staging"), ..test.clone() };
    let refusal = refused(s.environments.create_environment(acme, &same_id, draft("environment.created", "environment", test.id)).await);
    assert_eq!(refusal, Refusal::Exists(Entity::Environment));
    assert_eq!(s.env_names(acme).await, ["Test"]);
    s.create_env(acme, "Staging").await.expect("the refused create reserved no name");
}

pub async fn the_environment_quota_is_enforced_by_the_store_and_freed_on_delete(s: Stores) {
    let acme = s.tenant(Plan::new(10, 10, 2).expect("a plan")).await;

    let test = s.create_env(acme, "Test").await.expect("1 of 2");
    s.create_env(acme, "Staging").await.expect("2 of 2");
    assert_eq!(refused(s.create_env(acme, "Production").await), Refusal::QuotaExceeded(Quota::Environments), "3 of 2");
    assert_eq!(s.env_names(acme).await, ["Staging", "Test"]);

    s.environments.delete_environment(acme, &test, draft("environment.deleted", "environment", test.id)).await.expect("the environment is deleted");
    assert_eq!(s.environments.get_environment(acme, test.id).await.expect("read"), None);
    s.create_env(acme, "Production").await.expect("the deleted environment's slot is free again (and the refused name was never reserved)");
    assert_eq!(refused(s.create_env(acme, "Test").await), Refusal::QuotaExceeded(Quota::Environments), "the plan is full again");
    assert_eq!(s.env_names(acme).await, ["Production", "Staging"]);
}

pub async fn an_update_from_a_stale_version_is_refused_and_a_rename_moves_the_name_reservation(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let v1 = s.create_env(acme, "Test").await.expect("created");

    let v2 = v1.patched(EnvironmentPatch { name: Some(name("Staging")), ..Default::default() }, Utc::now());
    s.environments.update_environment(acme, &v1, &v2, draft("environment.updated", "environment", v1.id)).await.expect("renamed");
    assert_eq!(s.environments.get_environment(acme, v1.id).await.expect("read"), Some(v2.clone()));

    let stale = v1.patched(EnvironmentPatch { enabled: Some(false), ..Default::default() }, Utc::now());
    let refusal = refused(s.environments.update_environment(acme, &v1, &stale, draft("environment.updated", "environment", v1.id)).await);
    assert_eq!(refusal, Refusal::Stale(Entity::Environment));
    assert_eq!(s.environments.get_environment(acme, v1.id).await.expect("read"), Some(v2.clone()), "the stale update changed nothing");

    assert_eq!(refused(s.create_env(acme, "STAGING").await), Refusal::Taken(Taken::EnvironmentName), "the new name is reserved");
    s.create_env(acme, "test").await.expect("the old name is free again");

    // Renaming onto a taken name is refused, and leaves both reservations as they were.
    let v3 = v2.patched(EnvironmentPatch { name: Some(name("TEST")), ..Default::default() }, Utc::now());
    let refusal = refused(s.environments.update_environment(acme, &v2, &v3, draft("environment.updated", "environment", v1.id)).await);
    assert_eq!(refusal, Refusal::Taken(Taken::EnvironmentName));
    assert_eq!(s.env_names(acme).await, ["Staging", "test"]);
    assert_eq!(refused(s.create_env(acme, "staging").await), Refusal::Taken(Taken::EnvironmentName), "still reserved");

    // A new case of its own name is no rename: it keeps its reservation.
    let v4 = v2.patched(EnvironmentPatch { name: Some(name("STAGING")), ..Default::default() }, Utc::now());
    s.environments.update_environment(acme, &v2, &v4, draft("environment.updated", "environment", v1.id)).await.expect("recased");
    assert_eq!(s.env_names(acme).await, ["STAGING", "test"]);
    assert_eq!(refused(s.create_env(acme, "Staging").await), Refusal::Taken(Taken::EnvironmentName));
    assert_eq!(s.actions(acme).await.iter().filter(|a| *a == "environment.updated").count(), 2, "only the updates that happened are audited");
}

pub async fn an_environment_with_attached_runtimes_cannot_be_deleted_until_they_are_detached(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let env = s.create_env(acme, "Test").await.expect("created");
    let runtime = s.create_runtime(acme, "atom-1").await.expect("created");
    assert!(s.attach(acme, env.id, runtime.id).await);

    let refusal = refused(s.environments.delete_environment(acme, &env, draft("environment.deleted", "environment", env.id)).await);
    assert_eq!(refusal, Refusal::HasRuntimes);
    assert_eq!(s.env_names(acme).await, ["Test"]);

    s.runtimes.detach_runtime(acme, env.id, runtime.id, draft("runtime.detached", "environment", env.id)).await.expect("detached");
    s.environments.delete_environment(acme, &env, draft("environment.deleted", "environment", env.id)).await.expect("deleted once nothing is attached");
    assert_eq!(s.env_names(acme).await, Vec::<String>::new());
    s.create_env(acme, "test").await.expect("its name is free again");
}

pub async fn deleting_an_environment_that_is_gone_is_refused_as_missing(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let env = s.create_env(acme, "Test").await.expect("created");
    s.environments.delete_environment(acme, &env, draft("environment.deleted", "environment", env.id)).await.expect("deleted");
    let refusal = refused(s.environments.delete_environment(acme, &env, draft("environment.deleted", "environment", env.id)).await);
    assert_eq!(refusal, Refusal::Missing(Entity::Environment));
    assert_eq!(s.actions(acme).await.iter().filter(|a| *a == "environment.deleted").count(), 1);
}

pub async fn seven_environments_listed_three_at_a_time_come_back_each_exactly_once_in_creation_order(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let mut created = vec![];
    for i in 0..7 {
        created.push(s.create_env(acme, &format!("env-{i}")).await.expect("created").id);
    }
    created.sort();

    let pages = pages(3, async |page| s.environments.list_environments(acme, &page).await).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 1]);
    let seen: Vec<EnvironmentId> = pages.into_iter().flatten().map(|e| e.id).collect();
    assert_eq!(seen, created, "every environment, once, in the order of their (time-ordered) ids");
}

pub async fn a_list_cursor_from_another_tenant_or_another_list_is_refused(s: Stores) {
    let (acme, globex) = (s.tenant(Plan::default()).await, s.tenant(Plan::default()).await);
    for i in 0..3 {
        s.create_env(acme, &format!("acme-{i}")).await.expect("created");
        s.create_env(globex, &format!("globex-{i}")).await.expect("created");
    }
    let acme_cursor = s.environments.list_environments(acme, &PageRequest::first(1)).await.expect("a page").next_cursor.expect("a cursor");
    let globex_cursor = s.environments.list_environments(globex, &PageRequest::first(1)).await.expect("a page").next_cursor.expect("a cursor");
    let audit_cursor = s.audit.list_audit(acme, &PageRequest::first(1)).await.expect("a page").next_cursor.expect("a cursor");

    let own = s.environments.list_environments(acme, &PageRequest { limit: 1, cursor: Some(acme_cursor.clone()) }).await.expect("a tenant's own cursor works");
    assert_eq!(own.items.len(), 1);

    for (what, cursor) in
        [("another tenant's", globex_cursor), ("another list's", audit_cursor), ("a made-up", "eyJwayI6IlQjeCJ9".into()), ("a garbled", "%%%".into())]
    {
        let result = s.environments.list_environments(acme, &PageRequest { limit: 1, cursor: Some(cursor) }).await;
        assert!(matches!(result, Err(DomainError::Refused(Refusal::InvalidCursor))), "{what} cursor is refused as invalid, not {result:?}");
    }
    let result = s.environments.list_environments(globex, &PageRequest { limit: 1, cursor: Some(acme_cursor) }).await;
    assert_eq!(refused(result).into_error().code(), "validation_failed");
}
