//! The builder's `Berth` runs the real use cases end to end on the in-memory
//! store: a package deployed to an environment reaches its runtime's agent
//! and becomes the active version.

use berth_domain::component::ComponentType;
use berth_domain::deployment::{DeploymentStatus, TargetState};
use berth_domain::environment::NewEnvironment;
use berth_domain::ports::{AuditStore, TenantStore};
use berth_domain::runtime::RuntimeKind;
use berth_domain::usecases::{AgentRequest, NewComponent, NewDeployment, NewPackage};
use berth_domain::values::{Classification, Description, Name, Plan, Role};
use berth_memory::Memory;
use std::time::Duration;

fn name(raw: &str) -> Name {
    Name::parse(raw).expect("a valid name")
}

#[tokio::test]
async fn a_deployment_reaches_the_agent_and_its_version_becomes_active() {
    let memory = Memory::new();
    let berth = &memory.berth;
    let tenant = memory.tenant(Plan::default()).await;
    let admin = memory.ctx(tenant.id, "alice@acme.example", &[Role::Admin]);

    let env = berth
        .create_environment(
            &admin,
            NewEnvironment { name: name("Test"), classification: Classification::Test, enabled: true, description: Description::default() },
        )
        .await
        .expect("the environment is created");
    let created = berth.create_runtime(&admin, name("atom-1"), RuntimeKind::OnPremise).await.expect("the runtime is created");
    assert!(berth.attach_runtime(&admin, env.id, created.runtime.id).await.expect("attached"));
    let registration = berth.register_agent(&created.registration_token.reveal(), None, "1.0.0", &AgentRequest::default()).await.expect("the agent registers");
    assert_eq!(registration.tenant, tenant.id);

    let component = berth
        .create_component(
            &admin,
            NewComponent {
                name: name("Orders"),
                kind: ComponentType::Process,
                content: b"<process/>".to_vec(),
                references: vec![],
                extensions: Default::default(),
            },
        )
        .await
        .expect("the component is created");
    let package = berth
        .create_package(&admin, NewPackage { component_id: component.id, version: None, notes: String::new(), shareable: false, commit: None })
        .await
        .expect("the package is created");
    assert_eq!(package.version.as_str(), "1");
    assert!(memory.store.package_archive(tenant.id, package.id).is_some(), "the archive is written");

    let deployment = berth
        .create_deployment(
            &admin,
            NewDeployment {
                package_id: package.id,
                environment_id: env.id,
                notes: String::new(),
                scheduled_at: None,
                hold_if_frozen: false,
                override_quarantine: false,
                commit: None,
                rollout: None,
            },
        )
        .await
        .expect("the deployment is requested");
    assert_eq!(memory.store.enqueued_deployments(), [(tenant.id, deployment.id)]);
    assert_eq!(memory.dispatch_enqueued().await.expect("dispatched"), 1);

    let agent = berth.authenticate_runtime(&registration.credential.reveal(), &AgentRequest::default()).await.expect("the agent authenticates");
    let offer = berth.next_job(&agent, Duration::from_secs(20)).await.expect("polled").expect("a job is offered");
    assert_eq!(offer.deployment_id, deployment.id);
    assert!(berth.next_job(&agent, Duration::from_secs(20)).await.expect("polled").is_none(), "the job is handed out once, and an empty poll does not wait");
    for phase in [TargetState::Downloading, TargetState::Applying, TargetState::Deployed] {
        berth.report_job_event(&agent, offer.job_id, Some(offer.deployment_id), phase, String::new()).await.expect("the report is recorded");
    }

    let done = berth.get_deployment(&admin, deployment.id).await.expect("read");
    assert_eq!(done.status, DeploymentStatus::Succeeded);
    let active = berth.active_versions(&admin, env.id).await.expect("read");
    assert_eq!(active.iter().map(|a| a.active.package_id).collect::<Vec<_>>(), [package.id]);
    assert!(memory.store.queued_jobs(&created.runtime.queue_url).is_empty(), "the finished job's message is deleted");
    let audit = memory.store.audit_head(tenant.id).await.expect("the head");
    assert!(audit.seq >= 8, "every change is audited: {}", audit.seq);
}

#[tokio::test]
async fn two_stores_share_nothing() {
    let (a, b) = (Memory::new(), Memory::new());
    let tenant = a.tenant(Plan::default()).await;
    assert!(b.store.get_tenant(tenant.id).await.expect("read").is_none());
}
