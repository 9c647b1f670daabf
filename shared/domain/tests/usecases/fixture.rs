//! A tenant's estate on the in-memory store, and the dispatcher's and the
//! agents' steps driven through the `Berth` methods, so a deployment can run
//! to its end without HTTP, queues or an agent process.

use berth_domain::change_request::{ChangeRequest, ChangeType};
use berth_domain::component::{Component, ComponentType};
use berth_domain::context::{Actor, PlatformCtx, TenantCtx};
use berth_domain::deployment::{Deployment, DeploymentStatus, TargetState};
use berth_domain::environment::{Environment, NewEnvironment};
use berth_domain::ids::{ComponentId, DeploymentId, EnvironmentId, JobId, RuntimeId, TenantId};
use berth_domain::package::{Package, VersionLabel};
use berth_domain::page::PageRequest;
use berth_domain::policy::{Decision, FreezeWindow, Policy};
use berth_domain::ports::DeploymentFilter;
use berth_domain::runtime::RuntimeKind;
use berth_domain::usecases::{
    AgentRequest, AuditFilter, Berth, ChangeRequestInput, JobEventOutcome, JobOffer, NewComponent, NewDeployment, NewPackage, RevisionInput, RuntimeCtx,
    Settings,
};
use berth_domain::values::{Classification, Description, Name, Plan, Role};
use berth_domain::{DomainError, Result};
use berth_memory::{Memory, MemoryStore};
use chrono::{DateTime, Duration, Utc};
use std::fmt::Debug;
use std::sync::Arc;

/// A deployer.
pub const ANN: &str = "ann@acme.example";
/// Approvers.
pub const BOB: &str = "bob@acme.example";
pub const CAROL: &str = "carol@acme.example";
pub const ADMIN: &str = "admin@acme.example";

/// The error of a call that must fail (the value it returned otherwise).
pub fn refused<T: Debug>(result: Result<T>) -> DomainError {
    match result {
        Ok(value) => panic!("expected a refusal, got {value:?}"),
        Err(e) => e,
    }
}

/// A caller of `tenant` with `roles`.
pub fn user(tenant: TenantId, sub: &str, roles: &[Role]) -> TenantCtx {
    TenantCtx { tenant, actor: Actor::user(sub), roles: roles.to_vec(), request_id: format!("req-{sub}"), client_request_id: None, tenant_suspended: false }
}

pub fn platform() -> PlatformCtx {
    PlatformCtx { actor: Actor::user("operator@berth.example"), request_id: "req-platform".into(), client_request_id: None }
}

pub fn name(raw: &str) -> Name {
    Name::parse(raw).expect("a valid name")
}

/// A window from `start` to `end`, once.
pub fn window(start: DateTime<Utc>, end: DateTime<Utc>) -> FreezeWindow {
    FreezeWindow { start, end, weekly: false }
}

/// A window around now, ending in an hour.
pub fn freeze_now() -> FreezeWindow {
    let now = Utc::now();
    window(now - Duration::hours(1), now + Duration::hours(1))
}

/// A registered agent: it authenticates afresh for every call, as the real
/// one does, so it sees its runtime's current attachments.
pub struct Agent {
    pub runtime: RuntimeId,
    credential: String,
}

impl Agent {
    pub async fn ctx(&self, berth: &Berth) -> RuntimeCtx {
        berth.authenticate_runtime(&self.credential, &AgentRequest::default()).await.expect("the agent's credential is valid")
    }

    /// The next job waiting for this runtime, if any (never waits).
    pub async fn next_job(&self, berth: &Berth) -> Option<JobOffer> {
        berth.next_job(&self.ctx(berth).await, std::time::Duration::ZERO).await.expect("the agent asks for work")
    }

    pub async fn report(&self, berth: &Berth, job: JobId, phase: TargetState) -> Result<JobEventOutcome> {
        berth.report_job_event(&self.ctx(berth).await, job, None, phase, String::new()).await
    }

    /// Runs every job waiting for this runtime through its phases to
    /// `outcome` (`Deployed` or `Failed`); returns the jobs it ran.
    pub async fn run_jobs(&self, berth: &Berth, outcome: TargetState) -> Vec<JobOffer> {
        let mut ran = vec![];
        while let Some(job) = self.next_job(berth).await {
            for phase in [TargetState::Downloading, TargetState::Applying, outcome] {
                self.report(berth, job.job_id, phase).await.expect("the agent reports its progress");
            }
            ran.push(job);
        }
        ran
    }
}

/// Acme: a Test and a Production environment with the runtime `atom`
/// attached to both, the process `Orders` packaged as `v1`, an admin, a
/// deployer (Ann) and two approvers (Bob, Carol).
pub struct World {
    pub berth: Berth,
    /// The store under `berth`: its deployments queue is the dispatcher's.
    pub store: Arc<MemoryStore>,
    pub tenant: TenantId,
    pub admin: TenantCtx,
    pub ann: TenantCtx,
    pub bob: TenantCtx,
    pub carol: TenantCtx,
    pub test: Environment,
    pub prod: Environment,
    pub atom: Agent,
    pub orders: Component,
    pub v1: Package,
}

impl World {
    pub async fn new() -> World {
        World::with_plan(Plan::default()).await
    }

    pub async fn with_plan(plan: Plan) -> World {
        World::with_settings(plan, Settings::default()).await
    }

    pub async fn with_settings(plan: Plan, settings: Settings) -> World {
        let Memory { berth, store } = Memory::with_settings(settings);
        let tenant = berth.create_tenant(&platform(), name("Acme"), plan).await.expect("the tenant is created").id;
        let admin = user(tenant, ADMIN, &[Role::Admin]);
        let ann = user(tenant, ANN, &[Role::Deployer]);
        let bob = user(tenant, BOB, &[Role::Approver]);
        let carol = user(tenant, CAROL, &[Role::Approver]);
        let test = environment(&berth, &admin, "Test", Classification::Test).await;
        let prod = environment(&berth, &admin, "Production", Classification::Production).await;
        let atom = runtime(&berth, &admin, "atom", &[test.id, prod.id]).await;
        let orders = component(&berth, &admin, "Orders", ComponentType::Process, b"orders v1", &[]).await;
        let v1 = package(&berth, &admin, orders.id, "v1").await;
        World { berth, store, tenant, admin, ann, bob, carol, test, prod, atom, orders, v1 }
    }

    pub fn user(&self, sub: &str, roles: &[Role]) -> TenantCtx {
        user(self.tenant, sub, roles)
    }

    pub async fn environment(&self, name: &str, classification: Classification) -> Environment {
        environment(&self.berth, &self.admin, name, classification).await
    }

    /// A registered runtime attached to `envs`.
    pub async fn runtime(&self, name: &str, envs: &[EnvironmentId]) -> Agent {
        runtime(&self.berth, &self.admin, name, envs).await
    }

    pub async fn component(&self, name: &str, kind: ComponentType, content: &[u8], references: &[ComponentId]) -> Component {
        component(&self.berth, &self.admin, name, kind, content, references).await
    }

    pub async fn package(&self, component: ComponentId, version: &str) -> Package {
        package(&self.berth, &self.admin, component, version).await
    }

    /// Orders revised and packaged as `version`.
    pub async fn next_orders(&self, version: &str) -> Package {
        let input = RevisionInput { content: Some(format!("orders {version}").into_bytes()), references: None, extensions: None };
        self.berth.revise_component(&self.admin, self.orders.id, input, None).await.expect("Orders is revised");
        self.package(self.orders.id, version).await
    }

    /// Replaces `env`'s policy (as the admin).
    pub async fn set_policy(&self, env: EnvironmentId, policy: Policy) -> Policy {
        self.berth.put_policy(&self.admin, env, policy, None).await.expect("the policy is stored")
    }

    pub async fn request(&self, ctx: &TenantCtx, package: &Package, env: EnvironmentId) -> Result<Deployment> {
        self.berth.create_deployment(ctx, deploy_input(package, env)).await
    }

    /// `request` with `hold_if_frozen`.
    pub async fn request_held(&self, ctx: &TenantCtx, package: &Package, env: EnvironmentId) -> Result<Deployment> {
        self.berth.create_deployment(ctx, NewDeployment { hold_if_frozen: true, ..deploy_input(package, env) }).await
    }

    pub async fn decide(&self, ctx: &TenantCtx, d: &Deployment, decision: Decision) -> Result<Deployment> {
        self.berth.decide_deployment(ctx, d.id, decision, String::new()).await
    }

    /// What the dispatcher does with every message of the deployments queue
    /// since it last ran; returns the deployments it was sent (each once,
    /// though a deployment the sweeper queued again comes twice).
    pub async fn dispatch(&self) -> Vec<DeploymentId> {
        let mut sent = vec![];
        for (tenant, id) in self.store.take_enqueued_deployments() {
            self.berth.dispatch_deployment(tenant, id).await.expect("the dispatcher handles the message");
            if !sent.contains(&id) {
                sent.push(id);
            }
        }
        sent
    }

    /// Dispatches what is queued and lets `atom` run its jobs to `outcome`.
    pub async fn run(&self, outcome: TargetState) {
        self.dispatch().await;
        self.atom.run_jobs(&self.berth, outcome).await;
    }

    /// `package` requested by the admin in `env` and run to success.
    pub async fn deploy_active(&self, package: &Package, env: EnvironmentId) -> Deployment {
        let d = self.request(&self.admin, package, env).await.expect("the deployment is accepted");
        self.run(TargetState::Deployed).await;
        let d = self.deployment(d.id).await;
        assert_eq!(d.status, DeploymentStatus::Succeeded, "{d:?}");
        d
    }

    /// `package` requested by the admin in `env` and failed by the agent.
    pub async fn deploy_and_fail(&self, package: &Package, env: EnvironmentId) -> Deployment {
        let d = self.request(&self.admin, package, env).await.expect("the deployment is accepted");
        self.run(TargetState::Failed).await;
        self.deployment(d.id).await
    }

    pub async fn deployment(&self, id: DeploymentId) -> Deployment {
        self.berth.get_deployment(&self.admin, id).await.expect("the deployment exists")
    }

    pub async fn status(&self, d: &Deployment) -> DeploymentStatus {
        self.deployment(d.id).await.status
    }

    /// Every deployment of the tenant, newest first.
    pub async fn deployments(&self) -> Vec<Deployment> {
        self.berth.list_deployments(&self.admin, &DeploymentFilter::default(), &PageRequest::first(100)).await.expect("deployments are listed").items
    }

    /// The version of Orders that `env` runs.
    pub async fn active_orders(&self, env: EnvironmentId) -> Option<String> {
        let active = self.berth.active_versions(&self.admin, env).await.expect("active versions are listed");
        active.into_iter().find(|a| a.active.component_id == self.orders.id).map(|a| a.active.version.to_string())
    }

    /// The audit trail's actions about `entity_id`, oldest first.
    pub async fn audit_actions(&self, entity_id: impl ToString) -> Vec<String> {
        let filter = AuditFilter { entity_id: Some(entity_id.to_string()), ..AuditFilter::default() };
        let page = self.berth.list_audit(&self.admin, &filter, &PageRequest::first(100)).await.expect("the audit trail is listed");
        page.items.into_iter().map(|e| e.action).collect()
    }

    /// The lines of a deployment's timeline, oldest first.
    pub async fn timeline(&self, d: &Deployment) -> Vec<String> {
        let page = self.berth.list_deployment_events(&self.admin, d.id, &PageRequest::first(100)).await.expect("the timeline is listed");
        page.items.into_iter().map(|e| e.message).collect()
    }

    pub fn change_input(&self, env: EnvironmentId, items: &[&Package]) -> ChangeRequestInput {
        ChangeRequestInput {
            name: name("Quarterly release"),
            overview: "orders and billing".into(),
            change_type: ChangeType::Normal,
            target_environment_id: env,
            items: items.iter().map(|p| p.id).collect(),
            links: vec!["https://tickets.acme.example/CHG-7".into()],
        }
    }

    /// A change request of `items` to `env`, drafted and submitted by `ctx`.
    pub async fn submitted_change(&self, ctx: &TenantCtx, env: EnvironmentId, items: &[&Package]) -> ChangeRequest {
        let cr = self.berth.create_change_request(ctx, self.change_input(env, items)).await.expect("the change request is drafted");
        self.berth.submit_change_request(ctx, cr.id).await.expect("the change request is submitted")
    }

    pub async fn change(&self, cr: &ChangeRequest) -> ChangeRequest {
        self.berth.get_change_request(&self.admin, cr.id).await.expect("the change request exists")
    }
}

/// A tenant on `plan` with nothing in it, and its admin.
pub async fn bare_tenant(plan: Plan) -> (Berth, TenantCtx) {
    let berth = Memory::new().berth;
    let tenant = berth.create_tenant(&platform(), name("Acme"), plan).await.expect("the tenant is created").id;
    (berth, user(tenant, ADMIN, &[Role::Admin]))
}

pub fn deploy_input(package: &Package, env: EnvironmentId) -> NewDeployment {
    NewDeployment {
        package_id: package.id,
        environment_id: env,
        notes: String::new(),
        scheduled_at: None,
        hold_if_frozen: false,
        override_quarantine: false,
        commit: None,
        rollout: None,
    }
}

async fn environment(berth: &Berth, admin: &TenantCtx, name: &str, classification: Classification) -> Environment {
    let input = NewEnvironment { name: self::name(name), classification, enabled: true, description: Description::default() };
    berth.create_environment(admin, input).await.expect("the environment is created")
}

async fn runtime(berth: &Berth, admin: &TenantCtx, name: &str, envs: &[EnvironmentId]) -> Agent {
    let created = berth.create_runtime(admin, self::name(name), RuntimeKind::OnPremise).await.expect("the runtime is created");
    let registration = berth.register_agent(&created.registration_token.reveal(), None, "1.0.0", &AgentRequest::default()).await.expect("the agent registers");
    for env in envs {
        berth.attach_runtime(admin, *env, created.runtime.id).await.expect("the runtime is attached");
    }
    Agent { runtime: created.runtime.id, credential: registration.credential.reveal() }
}

async fn component(berth: &Berth, admin: &TenantCtx, name: &str, kind: ComponentType, content: &[u8], references: &[ComponentId]) -> Component {
    let input = NewComponent { name: self::name(name), kind, content: content.to_vec(), references: references.to_vec(), extensions: Default::default() };
    berth.create_component(admin, input).await.expect("the component is created")
}

async fn package(berth: &Berth, admin: &TenantCtx, component: ComponentId, version: &str) -> Package {
    let input = NewPackage {
        component_id: component,
        version: Some(VersionLabel::parse(version).expect("a version")),
        notes: String::new(),
        shareable: false,
        commit: None,
    };
    berth.create_package(admin, input).await.expect("the package is created")
}
