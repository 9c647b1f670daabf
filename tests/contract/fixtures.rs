//! What the checks build their data from, and how they read results back.

use crate::stores::Stores;
use berth_domain::audit::{AuditDraft, AuditEvent};
use berth_domain::component::ComponentType;
use berth_domain::context::Actor;
use berth_domain::deployment::{ActiveVersion, Deployment, DeploymentStatus, Target, TargetState};
use berth_domain::environment::{Environment, NewEnvironment};
use berth_domain::ids::{ComponentId, EnvironmentId, JobId, PackageId, RuntimeId, TenantId};
use berth_domain::package::{Manifest, ManifestEntry, Package, VersionLabel};
use berth_domain::page::{Page, PageRequest};
use berth_domain::policy::{Approval, Decision};
use berth_domain::refusal::Refusal;
use berth_domain::runtime::{Digest, Runtime, RuntimeKind};
use berth_domain::secret::{RuntimeToken, TokenKind};
use berth_domain::tenant::Tenant;
use berth_domain::values::{Classification, Description, Name, Plan};
use berth_domain::{DomainError, Result};
use chrono::Utc;
use serde_json::json;

pub fn draft(action: &str, entity_type: &'static str, id: impl ToString) -> AuditDraft {
    AuditDraft::new(&Actor::user("alice@acme.example"), "req-1", action, entity_type, id, json!({"note": action}))
}

pub fn name(raw: &str) -> Name {
    Name::parse(raw).expect("a valid name")
}

/// The refusal a write answered with.
#[track_caller]
pub fn refused<T: std::fmt::Debug>(result: Result<T>) -> Refusal {
    match result {
        Err(DomainError::Refused(refusal)) => refusal,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// A digest made of one repeated hex digit.
pub fn digest(hex_digit: char) -> Digest {
    Digest::parse(&format!("sha256:{}", hex_digit.to_string().repeat(64))).expect("a digest")
}

pub fn environment(env_name: &str) -> Environment {
    Environment::new(
        NewEnvironment { name: name(env_name), classification: Classification::Test, enabled: true, description: Description::default() },
        Utc::now(),
    )
}

/// A runtime waiting for its agent to register.
pub fn runtime(runtime_name: &str, tenant: TenantId) -> Runtime {
    let id = RuntimeId::new();
    Runtime {
        id,
        name: name(runtime_name),
        kind: RuntimeKind::OnPremise,
        registration_hash: Some(RuntimeToken::generate(TokenKind::Registration, tenant, id).expect("a token").hash()),
        credential_hash: None,
        registration_expires_at: Some(Utc::now() + chrono::Duration::hours(24)),
        pending_credential_hash: None,
        revoked_at: None,
        last_seen_at: None,
        agent_version: None,
        health: None,
        running: vec![],
        environments: vec![],
        queue_url: format!("http://queue.invalid/{runtime_name}"),
        created_at: Utc::now(),
    }
}

/// A package of `component` (not stored: deployments do not read it), bundling `connections`.
pub fn package(component: ComponentId, version: &str, connections: &[ComponentId]) -> Package {
    let entry = |id: ComponentId, kind: ComponentType| ManifestEntry {
        id,
        name: format!("c-{id}"),
        kind,
        revision: 1,
        sha256: digest('a'),
        size: 1,
        extensions: Default::default(),
    };
    let mut components = vec![entry(component, ComponentType::Process)];
    components.extend(connections.iter().map(|c| entry(*c, ComponentType::Connection)));
    Package {
        id: PackageId::new(),
        component_id: component,
        version: VersionLabel::parse(version).expect("a version label"),
        notes: String::new(),
        shareable: false,
        deleted: false,
        status: berth_domain::package::PackageStatus::Ready,
        failure: None,
        digest: Some(digest('b')),
        size: 10,
        manifest: Manifest { root: component, components },
        requirements: vec![],
        commit: None,
        created_by: "alice@acme.example".into(),
        created_at: Utc::now(),
    }
}

/// A queued deployment of `package` to `env` (it holds the lock).
pub fn deployment(env: EnvironmentId, package: &Package) -> Deployment {
    Deployment::new_deploy(env, package, "alice@acme.example", String::new(), None)
}

/// `d` moved to `status` (what a use case would write next).
pub fn moved(d: &Deployment, status: DeploymentStatus) -> Deployment {
    let mut next = d.clone();
    next.status = status;
    if !status.in_flight() {
        next.finished_at = Some(Utc::now());
    }
    next
}

/// What `d` leaves active once it succeeded.
pub fn active(d: &Deployment) -> ActiveVersion {
    d.activation(vec![], Utc::now())
}

pub fn target(d: &Deployment, runtime: RuntimeId) -> Target {
    Target {
        deployment_id: d.id,
        runtime_id: runtime,
        job_id: JobId::new(),
        state: TargetState::Pending,
        message: String::new(),
        deadline: None,
        updated_at: Utc::now(),
        batch: 1,
        attempt: 1,
        retry_at: None,
    }
}

pub fn approval(approver: &str, decision: Decision, digests: &[Digest]) -> Approval {
    Approval { approver: approver.into(), decision, comment: String::new(), digests: digests.to_vec(), created_at: Utc::now() }
}

/// Every page of a list, `limit` at a time (a last, empty page is left out:
/// DynamoDB may end a full page with a cursor to nothing).
pub async fn pages<T>(limit: u32, mut list: impl AsyncFnMut(PageRequest) -> Result<Page<T>>) -> Vec<Vec<T>> {
    let mut pages = vec![];
    let mut request = PageRequest::first(limit);
    loop {
        let page = list(request.clone()).await.expect("a page is listed");
        assert!(page.items.len() <= limit as usize, "a page holds at most its limit");
        let last = page.next_cursor.is_none();
        if !(last && page.items.is_empty() && !pages.is_empty()) {
            pages.push(page.items);
        }
        match page.next_cursor {
            Some(cursor) => request.cursor = Some(cursor),
            None => return pages,
        }
        assert!(pages.len() < 100, "pagination ends");
    }
}

/// Every item of a list, read `limit` at a time.
pub async fn all<T>(limit: u32, list: impl AsyncFnMut(PageRequest) -> Result<Page<T>>) -> Vec<T> {
    pages(limit, list).await.into_iter().flatten().collect()
}

impl Stores {
    pub async fn tenant(&self, plan: Plan) -> TenantId {
        let tenant = Tenant::new(name("Acme"), plan, Utc::now());
        self.tenants.create_tenant(&tenant, draft("tenant.created", "tenant", tenant.id)).await.expect("the tenant is created");
        tenant.id
    }

    pub async fn create_env(&self, tenant: TenantId, env_name: &str) -> Result<Environment> {
        let env = environment(env_name);
        self.environments.create_environment(tenant, &env, draft("environment.created", "environment", env.id)).await.map(|()| env)
    }

    pub async fn env_names(&self, tenant: TenantId) -> Vec<String> {
        let mut names: Vec<String> =
            all(100, async |page| self.environments.list_environments(tenant, &page).await).await.iter().map(|e| e.name.to_string()).collect();
        names.sort();
        names
    }

    pub async fn create_runtime(&self, tenant: TenantId, runtime_name: &str) -> Result<Runtime> {
        let r = runtime(runtime_name, tenant);
        self.runtimes.create_runtime(tenant, &r, draft("runtime.created", "runtime", r.id)).await.map(|()| r)
    }

    pub async fn read_runtime(&self, tenant: TenantId, id: RuntimeId) -> Runtime {
        self.runtimes.get_runtime(tenant, id).await.expect("read").expect("the runtime exists")
    }

    pub async fn attach(&self, tenant: TenantId, env: EnvironmentId, runtime: RuntimeId) -> bool {
        self.runtimes.attach_runtime(tenant, env, runtime, draft("runtime.attached", "environment", env)).await.expect("attached")
    }

    /// The tenant's whole audit trail, oldest first, read page by page.
    pub async fn audit_trail(&self, tenant: TenantId) -> Vec<AuditEvent> {
        all(100, async |page| self.audit.list_audit(tenant, &page).await).await
    }

    pub async fn actions(&self, tenant: TenantId) -> Vec<String> {
        self.audit_trail(tenant).await.into_iter().map(|e| e.action).collect()
    }

    pub async fn create_deployment(&self, tenant: TenantId, d: &Deployment) -> Result<()> {
        self.deployments.create_deployment(tenant, d, draft("deployment.requested", "deployment", d.id), &[]).await
    }

    pub async fn read_deployment(&self, tenant: TenantId, d: &Deployment) -> Deployment {
        self.deployments.get_deployment(tenant, d.id).await.expect("read").expect("the deployment exists")
    }

    /// Moves `d` on to `status` from the status it has; returns it as written.
    pub async fn transition(&self, tenant: TenantId, d: &Deployment, status: DeploymentStatus) -> Deployment {
        let after = moved(d, status);
        self.deployments.transition(tenant, &after, d.status, Some(draft("deployment.moved", "deployment", d.id))).await.expect("the deployment moves on");
        after
    }
}
