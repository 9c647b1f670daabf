use crate::fixtures::*;
use crate::stores::Stores;
use berth_domain::ids::{EnvironmentId, RuntimeId};
use berth_domain::page::PageRequest;
use berth_domain::refusal::{Entity, Quota, Refusal};
use berth_domain::runtime::{AgentHealth, Heartbeat, RunningPackage};
use berth_domain::secret::{RuntimeToken, TokenKind};
use berth_domain::values::Plan;
use chrono::Utc;

pub async fn the_runtime_quota_is_enforced_by_the_store_and_freed_on_delete(s: Stores) {
    let acme = s.tenant(Plan::new(10, 2, 10).expect("a plan")).await;
    let first = s.create_runtime(acme, "atom-1").await.expect("1 of 2");
    s.create_runtime(acme, "atom-2").await.expect("2 of 2");
    assert_eq!(refused(s.create_runtime(acme, "atom-3").await), Refusal::QuotaExceeded(Quota::Runtimes), "3 of 2");

    s.runtimes.delete_runtime(acme, &first, draft("runtime.deleted", "runtime", first.id)).await.expect("deleted");
    assert_eq!(s.runtimes.get_runtime(acme, first.id).await.expect("read"), None);
    s.create_runtime(acme, "atom-3").await.expect("the deleted runtime's slot is free again");
    assert_eq!(refused(s.create_runtime(acme, "atom-4").await), Refusal::QuotaExceeded(Quota::Runtimes));
    let actions = s.actions(acme).await;
    assert_eq!(actions, ["tenant.created", "runtime.created", "runtime.created", "runtime.deleted", "runtime.created"]);
}

pub async fn a_runtime_is_stored_never_seen_and_attached_nowhere_once_per_id(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let mut new = runtime("atom-1", acme);
    new.last_seen_at = Some(Utc::now());
    new.agent_version = Some("9.9.9".into());
    new.environments = vec![EnvironmentId::new()];
    s.runtimes.create_runtime(acme, &new, draft("runtime.created", "runtime", new.id)).await.expect("created");

    let stored = s.read_runtime(acme, new.id).await;
    assert_eq!((stored.last_seen_at, stored.agent_version.as_deref(), stored.health, stored.environments.len()), (None, None, None, 0));
    assert_eq!(
        (&stored.name, &stored.registration_hash, &stored.queue_url, stored.created_at),
        (&new.name, &new.registration_hash, &new.queue_url, new.created_at)
    );

    let same_id = berth_domain::runtime::Runtime { name: name("atom-2"), ..new.clone() };
    assert_eq!(refused(s.runtimes.create_runtime(acme, &same_id, draft("runtime.created", "runtime", new.id)).await), Refusal::Exists(Entity::Runtime));
    assert_eq!(s.read_runtime(acme, new.id).await.name, new.name);
    assert_eq!(s.runtimes.get_runtime(acme, RuntimeId::new()).await.expect("read"), None);
}

pub async fn attaching_twice_changes_nothing_and_attaching_what_is_missing_is_refused(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let env = s.create_env(acme, "Test").await.expect("created");
    let runtime = s.create_runtime(acme, "atom-1").await.expect("created");

    assert!(s.attach(acme, env.id, runtime.id).await, "attached");
    assert!(!s.attach(acme, env.id, runtime.id).await, "attached already: nothing changes");
    assert_eq!(s.read_runtime(acme, runtime.id).await.environments, [env.id]);

    let missing_runtime = s.runtimes.attach_runtime(acme, env.id, RuntimeId::new(), draft("runtime.attached", "environment", env.id)).await;
    assert_eq!(refused(missing_runtime), Refusal::Missing(Entity::Runtime));
    let missing_env = s.runtimes.attach_runtime(acme, EnvironmentId::new(), runtime.id, draft("runtime.attached", "environment", env.id)).await;
    assert_eq!(refused(missing_env), Refusal::Missing(Entity::Environment));
    assert_eq!(s.read_runtime(acme, runtime.id).await.environments, [env.id], "the refused attach changed nothing");
    assert_eq!(s.actions(acme).await.iter().filter(|a| *a == "runtime.attached").count(), 1, "one attach happened, one is audited");
}

pub async fn detaching_what_is_not_attached_is_refused_and_a_detach_is_undone_everywhere(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let env = s.create_env(acme, "Test").await.expect("created");
    let runtime = s.create_runtime(acme, "atom-1").await.expect("created");
    let detach = async || s.runtimes.detach_runtime(acme, env.id, runtime.id, draft("runtime.detached", "environment", env.id)).await;

    assert_eq!(refused(detach().await), Refusal::Missing(Entity::Attachment));
    assert!(s.attach(acme, env.id, runtime.id).await);
    detach().await.expect("detached");
    assert_eq!(refused(detach().await), Refusal::Missing(Entity::Attachment), "detached already");

    assert_eq!(s.read_runtime(acme, runtime.id).await.environments, Vec::<EnvironmentId>::new());
    assert!(s.runtimes.list_environment_runtimes(acme, env.id, &PageRequest::first(10)).await.expect("listed").items.is_empty());
    s.environments.delete_environment(acme, &env, draft("environment.deleted", "environment", env.id)).await.expect("nothing is attached any more");
    assert_eq!(s.actions(acme).await.iter().filter(|a| *a == "runtime.detached").count(), 1);
}

pub async fn deleting_a_runtime_detaches_it_from_every_environment_at_once(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let (test, prod) = (s.create_env(acme, "Test").await.expect("created"), s.create_env(acme, "Prod").await.expect("created"));
    let (gone, stays) = (s.create_runtime(acme, "atom-1").await.expect("created"), s.create_runtime(acme, "atom-2").await.expect("created"));
    for (env, runtime) in [(test.id, gone.id), (prod.id, gone.id), (test.id, stays.id)] {
        assert!(s.attach(acme, env, runtime).await);
    }

    let read = s.read_runtime(acme, gone.id).await;
    assert_eq!(read.environments, [test.id, prod.id]);
    s.runtimes.delete_runtime(acme, &read, draft("runtime.deleted", "runtime", gone.id)).await.expect("deleted");

    assert_eq!(s.runtimes.get_runtime(acme, gone.id).await.expect("read"), None);
    let in_test: Vec<RuntimeId> =
        s.runtimes.list_environment_runtimes(acme, test.id, &PageRequest::first(10)).await.expect("listed").items.iter().map(|r| r.id).collect();
    assert_eq!(in_test, [stays.id]);
    assert!(s.runtimes.list_environment_runtimes(acme, prod.id, &PageRequest::first(10)).await.expect("listed").items.is_empty());
    s.environments.delete_environment(acme, &prod, draft("environment.deleted", "environment", prod.id)).await.expect("Prod has no runtime left");
    assert_eq!(s.read_runtime(acme, stays.id).await.environments, [test.id], "the other runtime keeps its attachment");
}

pub async fn deleting_a_runtime_read_before_one_of_its_attachments_went_is_refused(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let env = s.create_env(acme, "Test").await.expect("created");
    let runtime = s.create_runtime(acme, "atom-1").await.expect("created");
    assert!(s.attach(acme, env.id, runtime.id).await);
    let read = s.read_runtime(acme, runtime.id).await;
    s.runtimes.detach_runtime(acme, env.id, runtime.id, draft("runtime.detached", "environment", env.id)).await.expect("detached meanwhile");

    assert_eq!(refused(s.runtimes.delete_runtime(acme, &read, draft("runtime.deleted", "runtime", runtime.id)).await), Refusal::Stale(Entity::Runtime));
    assert!(s.runtimes.get_runtime(acme, runtime.id).await.expect("read").is_some(), "the refused delete changed nothing");
    let unknown = crate::fixtures::runtime("never-stored", acme);
    assert_eq!(refused(s.runtimes.delete_runtime(acme, &unknown, draft("runtime.deleted", "runtime", unknown.id)).await), Refusal::Stale(Entity::Runtime));
    assert!(!s.actions(acme).await.contains(&"runtime.deleted".to_string()));
}

pub async fn deleting_a_runtime_read_before_it_was_attached_again_is_refused_and_leaves_no_orphan_attachment(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let test = s.create_env(acme, "Test").await.expect("created");
    let prod = s.create_env(acme, "Production").await.expect("created");
    let runtime = s.create_runtime(acme, "atom-1").await.expect("created");
    assert!(s.attach(acme, test.id, runtime.id).await);
    let read = s.read_runtime(acme, runtime.id).await;
    assert!(s.attach(acme, prod.id, runtime.id).await, "attached to Production meanwhile");

    assert_eq!(refused(s.runtimes.delete_runtime(acme, &read, draft("runtime.deleted", "runtime", runtime.id)).await), Refusal::Stale(Entity::Runtime));
    let in_prod: Vec<RuntimeId> =
        s.runtimes.list_environment_runtimes(acme, prod.id, &PageRequest::first(10)).await.expect("listed").items.iter().map(|r| r.id).collect();
    assert_eq!(in_prod, [runtime.id], "the runtime and its new attachment are both still there");
    let again = s.read_runtime(acme, runtime.id).await;
    s.runtimes.delete_runtime(acme, &again, draft("runtime.deleted", "runtime", runtime.id)).await.expect("deleted once read afresh");
    assert!(s.runtimes.list_environment_runtimes(acme, prod.id, &PageRequest::first(10)).await.expect("listed").items.is_empty());
    s.environments.delete_environment(acme, &prod, draft("environment.deleted", "environment", prod.id)).await.expect("no attachment is left behind");
}

pub async fn a_runtime_registration_completes_once(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let runtime = s.create_runtime(acme, "atom-1").await.expect("created");
    let (id, registration) = (runtime.id, runtime.registration_hash.clone().expect("a registration hash"));

    let first = RuntimeToken::generate(TokenKind::RuntimeCredential, acme, id).expect("a token").hash();
    s.runtimes.complete_registration(acme, id, &registration, &first, None, "1.0.0", draft("runtime.registered", "runtime", id)).await.expect("registered");
    let second = RuntimeToken::generate(TokenKind::RuntimeCredential, acme, id).expect("a token").hash();
    let again =
        s.runtimes.complete_registration(acme, id, &registration, &second, Some(&name("hijacked")), "6.6.6", draft("runtime.registered", "runtime", id)).await;
    assert_eq!(refused(again), Refusal::RegistrationUsed, "a registration completes once");

    let stored = s.read_runtime(acme, id).await;
    assert_eq!(stored.credential_hash, Some(first), "the first credential stands");
    assert_eq!(stored.registration_hash, None, "the registration hash is gone");
    assert_eq!((stored.name.as_str(), stored.agent_version.as_deref()), ("atom-1", Some("1.0.0")));
    let registered = s.actions(acme).await.into_iter().filter(|a| a == "runtime.registered").count();
    assert_eq!(registered, 1, "only the registration that happened is audited");

    let renamed = s.create_runtime(acme, "atom-2").await.expect("created");
    let hash = renamed.registration_hash.clone().expect("a registration hash");
    s.runtimes
        .complete_registration(acme, renamed.id, &hash, &second, Some(&name("edge-1")), "1.0.1", draft("runtime.registered", "runtime", renamed.id))
        .await
        .expect("registered");
    assert_eq!(s.read_runtime(acme, renamed.id).await.name.as_str(), "edge-1", "an agent may name its runtime when it registers");
    let missing = s.runtimes.complete_registration(acme, RuntimeId::new(), &hash, &second, None, "1.0.0", draft("runtime.registered", "runtime", id)).await;
    assert_eq!(refused(missing), Refusal::RegistrationUsed);
}

pub async fn a_heartbeat_is_recorded_on_the_runtime_unaudited_and_refused_for_a_missing_one(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let runtime = s.create_runtime(acme, "atom-1").await.expect("created");
    let head = s.audit.audit_head(acme).await.expect("the head");
    let running = vec![RunningPackage { component_id: uuid::Uuid::new_v4(), package_id: uuid::Uuid::new_v4(), digest: digest('c') }];
    let heartbeat = Heartbeat { agent_version: "1.2.3".into(), health: AgentHealth::Degraded, running: running.clone(), at: Utc::now() };

    s.runtimes.record_heartbeat(acme, runtime.id, &heartbeat).await.expect("recorded");
    let stored = s.read_runtime(acme, runtime.id).await;
    assert_eq!(
        (stored.last_seen_at, stored.agent_version.as_deref(), stored.health, stored.running),
        (Some(heartbeat.at), Some("1.2.3"), Some(AgentHealth::Degraded), running)
    );
    assert_eq!(s.audit.audit_head(acme).await.expect("the head"), head, "heartbeats are not audited");
    assert_eq!(refused(s.runtimes.record_heartbeat(acme, RuntimeId::new(), &heartbeat).await), Refusal::Missing(Entity::Runtime));
}

pub async fn runtimes_are_listed_oldest_first_and_each_lists_its_environments_in_attach_order(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let mut created = vec![];
    for i in 0..5 {
        created.push(s.create_runtime(acme, &format!("atom-{i}")).await.expect("created").id);
    }
    created.sort();
    let listed: Vec<RuntimeId> = all(2, async |page| s.runtimes.list_runtimes(acme, &page).await).await.iter().map(|r| r.id).collect();
    assert_eq!(listed, created, "each runtime once, oldest first");

    let envs = [
        s.create_env(acme, "B").await.expect("created").id,
        s.create_env(acme, "A").await.expect("created").id,
        s.create_env(acme, "C").await.expect("created").id,
    ];
    for env in [envs[1], envs[0], envs[2]] {
        assert!(s.attach(acme, env, created[0]).await);
    }
    assert_eq!(s.read_runtime(acme, created[0]).await.environments, [envs[1], envs[0], envs[2]], "in the order they were attached");

    for runtime in [created[3], created[1], created[4]] {
        assert!(s.attach(acme, envs[0], runtime).await);
    }
    let pages = pages(2, async |page| s.runtimes.list_environment_runtimes(acme, envs[0], &page).await).await;
    let attached: Vec<RuntimeId> = pages.iter().flatten().map(|r| r.id).collect();
    assert_eq!(attached, [created[0], created[1], created[3], created[4]], "an environment's runtimes, oldest first");
    assert!(pages.iter().flatten().all(|r| r.environments.contains(&envs[0])), "each as read, with its environments");

    let other_list = s.runtimes.list_runtimes(acme, &PageRequest::first(1)).await.expect("a page").next_cursor;
    let result = s.runtimes.list_environment_runtimes(acme, envs[0], &PageRequest { limit: 1, cursor: other_list }).await;
    assert_eq!(refused(result), Refusal::InvalidCursor, "the runtimes list's cursor does not page an environment's runtimes");
}
