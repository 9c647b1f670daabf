use crate::fixtures::*;
use crate::stores::Stores;
use berth_domain::audit::{AuditCheckpoint, AuditHead, verify_chain};
use berth_domain::change_request::{ChangeRequest, ChangeStatus, ChangeType};
use berth_domain::component::{Component, ComponentType, ContentRef};
use berth_domain::deployment::DeploymentStatus;
use berth_domain::environment::{Environment, NewEnvironment};
use berth_domain::ids::{ChangeRequestId, EnvironmentId, PackageId, RuntimeId};
use berth_domain::policy::{Decision, Policy};
use berth_domain::tenant::Tenant;
use berth_domain::values::{Classification, Description, Plan, Version};
use chrono::Utc;
use std::collections::BTreeSet;

pub async fn twenty_concurrent_creates_leave_one_gapless_verifiable_audit_chain(s: Stores) {
    let acme = s.tenant(Plan::new(10, 10, 100).expect("a plan")).await;

    let mut creates = tokio::task::JoinSet::new();
    for i in 0..20 {
        let environments = s.environments.clone();
        creates.spawn(async move {
            let env = Environment::new(
                NewEnvironment { name: name(&format!("env-{i:02}")), classification: Classification::Test, enabled: true, description: Description::default() },
                Utc::now(),
            );
            environments.create_environment(acme, &env, draft("environment.created", "environment", env.id)).await.map(|()| env.id)
        });
    }
    let mut created = BTreeSet::new();
    while let Some(joined) = creates.join_next().await {
        created.insert(joined.expect("the task ran").expect("every concurrent create succeeds").to_string());
    }
    assert_eq!(created.len(), 20);

    let events = s.audit_trail(acme).await;
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=21).collect::<Vec<u64>>(), "seq runs 1..=21 without gaps");
    for pair in events.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash, "event {} links to event {}", pair[1].seq, pair[0].seq);
    }
    let logged: BTreeSet<String> = events.iter().filter(|e| e.action == "environment.created").map(|e| e.entity_id.clone()).collect();
    assert_eq!(logged, created, "each create is audited exactly once");
    let end = verify_chain(&AuditHead::genesis(), &events).expect("the chain verifies");
    let head = s.audit.audit_head(acme).await.expect("the head is read");
    assert_eq!(head, end);
    assert_eq!(head, events.last().expect("events").head(), "the head is the last event");
}

pub async fn each_tenant_has_its_own_chain_from_the_genesis(s: Stores) {
    let (acme, globex) = (s.tenant(Plan::default()).await, s.tenant(Plan::default()).await);
    s.create_env(acme, "Test").await.expect("created");
    s.create_env(globex, "Test").await.expect("created");
    s.create_env(acme, "Prod").await.expect("created");

    for (tenant, expected) in [(acme, 3), (globex, 2)] {
        let events = s.audit_trail(tenant).await;
        assert_eq!(events.first().map(|e| e.prev_hash.clone()), Some(AuditHead::genesis().hash), "each chain starts at the genesis");
        assert_eq!(verify_chain(&AuditHead::genesis(), &events).expect("the chain verifies").seq, expected);
        assert_eq!(s.audit.audit_head(tenant).await.expect("the head").seq, expected);
    }
    let drafted = draft("environment.created", "environment", "x");
    let first = &s.audit_trail(acme).await[0];
    assert_eq!((first.actor.clone(), first.request_id.as_str(), first.entity_type.as_str()), (drafted.actor, "req-1", "tenant"), "an event records its draft");
    assert_eq!(s.audit.audit_head(berth_domain::ids::TenantId::new()).await.expect("the head"), AuditHead::genesis(), "no event yet: the genesis");
}

pub async fn audit_events_are_read_one_by_one_after_a_seq_or_page_by_page_in_seq_order(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    for env in ["A", "B", "C", "D"] {
        s.create_env(acme, env).await.expect("created");
    }
    let events = s.audit_trail(acme).await;
    assert_eq!(events.len(), 5);

    assert_eq!(s.audit.audit_events_after(acme, 0, 100).await.expect("read"), events);
    assert_eq!(s.audit.audit_events_after(acme, 2, 2).await.expect("read"), events[2..4], "at most max, after the seq");
    assert_eq!(s.audit.audit_events_after(acme, 5, 10).await.expect("read"), []);
    assert_eq!(s.audit.audit_event(acme, 3).await.expect("read"), Some(events[2].clone()));
    assert_eq!(s.audit.audit_event(acme, 6).await.expect("read"), None);
    let pages = pages(2, async |page| s.audit.list_audit(acme, &page).await).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);
    assert_eq!(pages.concat(), events);
}

pub async fn the_audit_checkpoint_only_moves_forward(s: Stores) {
    let (acme, globex) = (s.tenant(Plan::default()).await, s.tenant(Plan::default()).await);
    let checkpoint = |seq: u64, by: &str| AuditCheckpoint { seq, hash: format!("{seq:064}"), at: Utc::now(), by: by.into() };
    assert_eq!(s.audit.audit_checkpoint(acme).await.expect("read"), None);

    let third = checkpoint(3, "alice");
    assert!(s.audit.advance_audit_checkpoint(acme, &third).await.expect("advanced"), "the first checkpoint is stored");
    assert!(!s.audit.advance_audit_checkpoint(acme, &checkpoint(2, "bob")).await.expect("kept"), "an earlier one is not");
    assert!(!s.audit.advance_audit_checkpoint(acme, &checkpoint(3, "bob")).await.expect("kept"), "nor the same seq again");
    assert_eq!(s.audit.audit_checkpoint(acme).await.expect("read"), Some(third));
    let fifth = checkpoint(5, "bob");
    assert!(s.audit.advance_audit_checkpoint(acme, &fifth).await.expect("advanced"), "a later one is");
    assert_eq!(s.audit.audit_checkpoint(acme).await.expect("read"), Some(fifth));
    assert_eq!(s.audit.audit_checkpoint(globex).await.expect("read"), None, "checkpoints are per tenant");
}

/// One refused write of (nearly) every kind, each leaving the chain as it was.
pub async fn a_refused_write_records_no_audit_event(s: Stores) {
    let acme = s.tenant(Plan::new(10, 1, 10).expect("a plan")).await;
    let env = s.create_env(acme, "Test").await.expect("created");
    let runtime = s.create_runtime(acme, "atom-1").await.expect("created");
    assert!(s.attach(acme, env.id, runtime.id).await);
    let content = ContentRef { sha256: digest('a'), size: 1 };
    let (component, first) = Component::new(name("Orders"), ComponentType::Process, vec![], content.clone(), "alice", Utc::now());
    s.components.create_component(acme, &component, &first, draft("component.created", "component", component.id)).await.expect("created");
    let p = package(component.id, "1", &[]);
    s.packages.create_package(acme, &p, draft("package.created", "package", p.id)).await.expect("created");
    let d = deployment(env.id, &p);
    s.create_deployment(acme, &d).await.expect("created");
    let policy = Policy { version: Version(1), ..Policy::default() };
    s.policies.put_policy(acme, env.id, &policy, Version(0), draft("policy.updated", "environment", env.id)).await.expect("stored");
    let now = Utc::now();
    let cr = ChangeRequest {
        id: ChangeRequestId::new(),
        name: name("CHG-1"),
        overview: String::new(),
        change_type: ChangeType::Normal,
        status: ChangeStatus::Draft,
        target_environment_id: env.id,
        items: vec![p.id],
        digests: vec![p.digest.clone().unwrap()],
        links: vec![],
        required_approvals: 1,
        deployments: vec![],
        created_by: "alice".into(),
        item_editors: vec![],
        created_at: now,
        updated_at: now,
        version: Version::FIRST,
    };
    s.change_requests.create_change_request(acme, &cr, draft("change_request.created", "change_request", cr.id)).await.expect("created");
    let head = s.audit.audit_head(acme).await.expect("the head");

    let refused_draft = || draft("refused", "none", "x");
    let tenant = s.tenants.get_tenant(acme).await.expect("read").expect("there");
    let mut refusals = vec![];
    refusals.push(refused(s.tenants.create_tenant(&tenant, refused_draft()).await));
    refusals.push(refused(s.tenants.update_tenant(&Tenant { version: Version(9), ..tenant.clone() }, Version(7), refused_draft()).await));
    refusals.push(refused(s.create_env(acme, "TEST").await));
    refusals.push(refused(s.environments.update_environment(acme, &Environment { version: Version(7), ..env.clone() }, &env, refused_draft()).await));
    refusals.push(refused(s.environments.delete_environment(acme, &env, refused_draft()).await));
    refusals.push(refused(s.create_runtime(acme, "atom-2").await));
    refusals.push(refused(s.runtimes.attach_runtime(acme, env.id, RuntimeId::new(), refused_draft()).await));
    refusals.push(refused(s.runtimes.detach_runtime(acme, EnvironmentId::new(), runtime.id, refused_draft()).await));
    refusals.push(refused(
        s.runtimes.delete_runtime(acme, &berth_domain::runtime::Runtime { environments: vec![EnvironmentId::new()], ..runtime.clone() }, refused_draft()).await,
    ));
    refusals.push(refused(
        s.runtimes
            .complete_registration(
                acme,
                runtime.id,
                &berth_domain::secret::SecretHash("x".into()),
                &berth_domain::secret::SecretHash("y".into()),
                None,
                "1",
                refused_draft(),
            )
            .await,
    ));
    let (again, again_first) = Component::new(name("ORDERS"), ComponentType::Process, vec![], content.clone(), "alice", Utc::now());
    refusals.push(refused(s.components.create_component(acme, &again, &again_first, refused_draft()).await));
    let (stale, stale_revision) = Component { revision: 5, ..component.clone() }.revised(vec![], content, "alice", Utc::now());
    refusals.push(refused(s.components.add_revision(acme, &stale, &stale_revision, refused_draft()).await));
    refusals.push(refused(s.packages.create_package(acme, &package(component.id, "1", &[]), refused_draft()).await));
    refusals.push(refused(s.packages.mark_package_deleted(acme, PackageId::new(), refused_draft()).await));
    refusals.push(refused(s.deployments.create_deployment(acme, &deployment(env.id, &p), refused_draft(), &[]).await));
    refusals
        .push(refused(s.deployments.transition(acme, &moved(&d, DeploymentStatus::Cancelled), DeploymentStatus::PendingApproval, Some(refused_draft())).await));
    refusals.push(refused(s.deployments.add_approval(acme, d.id, &approval("bob", Decision::Approve, &[d.digest.clone()]), refused_draft()).await));
    refusals.push(refused(s.policies.put_policy(acme, env.id, &policy, Version(0), refused_draft()).await));
    refusals.push(refused(s.change_requests.update_change_request(acme, &cr, Version(5), refused_draft()).await));
    refusals.push(refused(s.change_requests.add_change_approval(acme, cr.id, &approval("bob", Decision::Approve, &cr.digests), refused_draft()).await));
    refusals.push(refused(
        s.deployments
            .finish_deployment(
                acme,
                &moved(&d, DeploymentStatus::Failed),
                DeploymentStatus::InProgress,
                &berth_domain::ports::Activation::Unchanged,
                None,
                refused_draft(),
            )
            .await,
    ));
    assert_eq!(refusals.len(), 21);

    assert_eq!(s.audit.audit_head(acme).await.expect("the head"), head, "no refused write moved the head: {refusals:?}");
    assert!(!s.actions(acme).await.iter().any(|a| a == "refused"), "no refused write left an event");
}

pub async fn a_change_chained_first_to_a_stale_head_hint_is_chained_to_the_real_head(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let env = s.create_env(acme, "Test").await.expect("created");
    let hinted = async |head: Option<AuditHead>| {
        let d = deployment(env.id, &package(berth_domain::ids::ComponentId::new(), "1", &[]));
        s.deployments.create_deployment(acme, &d, draft("deployment.requested", "deployment", d.id).after(head), &[]).await
    };
    // The genesis: stale since the environment was created.
    hinted(Some(AuditHead::genesis())).await.expect("written all the same");
    let fresh = s.audit.audit_head(acme).await.expect("the head");
    hinted(Some(fresh.clone())).await.expect("written with the head as read");
    hinted(Some(fresh)).await.expect("written after the head it was given moved");

    let events = s.audit_trail(acme).await;
    assert_eq!(events.iter().filter(|e| e.action == "deployment.requested").count(), 3, "each of the three is audited once");
    let end = verify_chain(&AuditHead::genesis(), &events).expect("the chain verifies");
    assert_eq!(end, s.audit.audit_head(acme).await.expect("the head"), "the head is the chain's last event");
}
