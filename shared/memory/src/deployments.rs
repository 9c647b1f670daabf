use crate::page::{Order, page_of};
use crate::{MemoryStore, Tenancy, time_key};
use async_trait::async_trait;
use berth_domain::audit::AuditDraft;
use berth_domain::component::ComponentType;
use berth_domain::deployment::{ActiveVersion, Deployment, DeploymentEvent, DeploymentStatus, SweeperWatch, Target, TargetState};
use berth_domain::ids::{ComponentId, DeploymentId, EnvironmentId, JobId, PackageId, RuntimeId, TenantId};
use berth_domain::page::{Page, PageRequest};
use berth_domain::policy::Approval;
use berth_domain::ports::{Activation, ActivationReads, AuditStore, ConnectionSlot, DeploymentFilter, DeploymentStore, PackageStore, SweepItem};
use berth_domain::quarantine::Quarantine;
use berth_domain::refusal::{Decided, Entity, Refusal};
use berth_domain::{DomainError, Result};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};

/// A tenant's deployments and everything they write.
#[derive(Default)]
pub(crate) struct Deployments {
    records: BTreeMap<DeploymentId, Stored>,
    /// The (environment, component) locks.
    locks: BTreeMap<(EnvironmentId, ComponentId), Lock>,
    actives: BTreeMap<(EnvironmentId, ComponentId), ActiveVersion>,
    /// Package activity markers: (package, environment) -> the deployment that activated it.
    pub activity: BTreeMap<(PackageId, EnvironmentId), DeploymentId>,
    /// Where each package succeeded (promotion): (package, environment) -> deployment.
    successes: BTreeMap<(PackageId, EnvironmentId), DeploymentId>,
    targets: BTreeMap<(DeploymentId, RuntimeId), StoredTarget>,
    jobs: HashMap<(RuntimeId, JobId), DeploymentId>,
    /// (deployment, `<time>#<uuid>`) -> timeline line.
    events: BTreeMap<(DeploymentId, String), DeploymentEvent>,
    /// (deployment, approver) -> decision.
    approvals: BTreeMap<(DeploymentId, String), Approval>,
    /// Quarantined versions: (environment, package) -> the record.
    quarantines: BTreeMap<(EnvironmentId, PackageId), Quarantine>,
}

/// A deployment as written, with what the sweeper watched it for at that time
/// (the adapter's sparse index: `QueuedSince` is the time of the write).
struct Stored {
    deployment: Deployment,
    watch: Option<SweeperWatch>,
}

impl Stored {
    fn new(deployment: &Deployment) -> Self {
        Self { deployment: deployment.clone(), watch: deployment.sweeper_watch(Utc::now()) }
    }
}

struct Lock {
    deployment: DeploymentId,
    connections: Vec<ComponentId>,
}

struct StoredTarget {
    target: Target,
    receipt: Option<String>,
}

fn stale() -> DomainError {
    Refusal::Stale(Entity::Deployment).into()
}

impl Deployments {
    /// The condition of every write that moves a deployment on from `from`:
    /// it is still `from` and, leaving `pending_approval`, no decision arrived
    /// since `after.decisions` were counted.
    fn still(&self, after: &Deployment, from: DeploymentStatus) -> bool {
        self.records.get(&after.id).is_some_and(|stored| {
            stored.deployment.status == from && (from != DeploymentStatus::PendingApproval || stored.deployment.decisions == after.decisions)
        })
    }

    /// The lock is held by this deployment (the condition of releasing it).
    fn holds(&self, d: &Deployment) -> bool {
        self.locks.get(&(d.environment_id, d.component_id)).is_some_and(|lock| lock.deployment == d.id)
    }

    fn holder(&self, d: &Deployment) -> Option<DeploymentId> {
        self.locks.get(&(d.environment_id, d.component_id)).map(|lock| lock.deployment)
    }

    fn take_lock(&mut self, d: &Deployment) {
        self.locks.insert((d.environment_id, d.component_id), Lock { deployment: d.id, connections: d.connections.clone() });
    }

    /// The deployments pending approval (the adapter's sparse inbox index).
    pub(crate) fn pending_approval(&self) -> impl Iterator<Item = &Deployment> {
        self.records.values().map(|s| &s.deployment).filter(|d| d.status == DeploymentStatus::PendingApproval)
    }

    fn is_succeeded(&self, id: DeploymentId) -> bool {
        self.records.get(&id).is_some_and(|stored| stored.deployment.status == DeploymentStatus::Succeeded)
    }

    fn supersede(&mut self, id: DeploymentId) {
        // Only the status changes, as the adapter's update: the sweeper's watch stays.
        if let Some(stored) = self.records.get_mut(&id) {
            stored.deployment.status = DeploymentStatus::Superseded;
        }
    }

    /// Every condition of `activation`, as the items of the adapter's transaction.
    fn activation_allowed(&self, after: &Deployment, activation: &Activation) -> bool {
        match activation {
            Activation::Activate { new, previous } => {
                let current = self.actives.get(&(new.environment_id, new.component_id)).map(|a| a.deployment_id);
                current == previous.as_ref().map(|p| p.deployment_id)
                    && previous.as_ref().is_none_or(|p| p.deployment_id == after.id || self.is_succeeded(p.deployment_id))
            }
            Activation::Deactivate { previous } => {
                self.actives.get(&(previous.environment_id, previous.component_id)).is_some_and(|a| a.deployment_id == previous.deployment_id)
                    && self.is_succeeded(previous.deployment_id)
            }
            Activation::Unchanged => true,
        }
    }

    fn activate(&mut self, after: &Deployment, activation: &Activation) {
        match activation {
            Activation::Activate { new, previous } => {
                self.actives.insert((new.environment_id, new.component_id), new.clone());
                self.activity.insert((new.package_id, new.environment_id), new.deployment_id);
                self.successes.insert((new.package_id, new.environment_id), new.deployment_id);
                if let Some(p) = previous {
                    if p.package_id != new.package_id {
                        self.activity.remove(&(p.package_id, p.environment_id));
                    }
                    if p.deployment_id != after.id {
                        self.supersede(p.deployment_id);
                    }
                }
            }
            Activation::Deactivate { previous } => {
                self.actives.remove(&(previous.environment_id, previous.component_id));
                self.activity.remove(&(previous.package_id, previous.environment_id));
                self.supersede(previous.deployment_id);
            }
            Activation::Unchanged => {}
        }
    }

    /// Appends timeline lines, keyed as the adapter keys them (time, then a uuid).
    fn note<'a>(&mut self, deployment: DeploymentId, events: impl IntoIterator<Item = &'a DeploymentEvent>) {
        for event in events {
            let key = format!("{}#{}", time_key(event.at), uuid::Uuid::new_v4());
            self.events.insert((deployment, key), event.clone());
        }
    }

    fn put_target(&mut self, target: &Target, receipt: Option<String>) {
        self.targets.insert((target.deployment_id, target.runtime_id), StoredTarget { target: target.clone(), receipt });
    }

    fn locks_in(&self, env: EnvironmentId) -> impl Iterator<Item = (&ComponentId, &Lock)> {
        self.locks.iter().filter(move |((e, _), _)| *e == env).map(|((_, c), lock)| (c, lock))
    }
}

impl Tenancy {
    fn in_flight_refusal(&self, d: &Deployment) -> DomainError {
        Refusal::InFlight { deployment: self.deployments.holder(d) }.into()
    }
}

/// The sweeper's index keys (`<time>#<tenant>#<deployment>[#<runtime>]`)
/// before `before`, across tenants, in key order: the adapter's index query.
fn swept(mut found: Vec<(String, SweepItem)>, before: DateTime<Utc>, limit: u32) -> Vec<SweepItem> {
    let before = time_key(before);
    found.retain(|(key, _)| *key < before);
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found.into_iter().take(usize::try_from(limit).unwrap_or(usize::MAX)).map(|(_, item)| item).collect()
}

impl MemoryStore {
    fn watched(&self, want: fn(&SweeperWatch) -> Option<DateTime<Utc>>) -> Vec<(String, SweepItem)> {
        let s = self.lock();
        let mut found = vec![];
        for (tenant, t) in &s.tenancies {
            for (id, stored) in &t.deployments.records {
                if let Some(at) = stored.watch.as_ref().and_then(want) {
                    found.push((format!("{}#{tenant}#{id}", time_key(at)), SweepItem { tenant: *tenant, deployment: *id, runtime: None }));
                }
            }
        }
        found
    }
}

#[async_trait]
impl DeploymentStore for MemoryStore {
    async fn create_deployment(&self, tenant: TenantId, d: &Deployment, audit: AuditDraft, events: &[DeploymentEvent]) -> Result<()> {
        let mut s = self.lock();
        let t = s.t(tenant);
        if t.deployments.records.contains_key(&d.id) {
            return Err(Refusal::Exists(Entity::Deployment).into());
        }
        if d.holds_lock() && t.deployments.holder(d).is_some() {
            return Err(t.in_flight_refusal(d));
        }
        t.deployments.records.insert(d.id, Stored::new(d));
        if d.holds_lock() {
            t.deployments.take_lock(d);
        }
        t.deployments.note(d.id, events);
        s.record(tenant, audit);
        Ok(())
    }

    async fn get_deployment(&self, tenant: TenantId, id: DeploymentId) -> Result<Option<Deployment>> {
        Ok(self.lock().t(tenant).deployments.records.get(&id).map(|stored| stored.deployment.clone()))
    }

    /// Newest first (ids are UUIDv7). As the adapter, filters narrow a page
    /// after it is read: a page may hold fewer than `limit` while `next_cursor` goes on.
    async fn list_deployments(&self, tenant: TenantId, filter: &DeploymentFilter, page: &PageRequest) -> Result<Page<Deployment>> {
        let mut s = self.lock();
        let items = s.t(tenant).deployments.records.iter().map(|(id, stored)| (id.to_string(), stored.deployment.clone())).collect();
        let page = page_of(&format!("{tenant}/deployments"), items, page, Order::NewestFirst)?;
        let items = page
            .items
            .into_iter()
            .filter(|d| filter.environment.is_none_or(|e| d.environment_id == e))
            .filter(|d| filter.component.is_none_or(|c| d.component_id == c))
            .filter(|d| filter.status.is_none_or(|s| d.status == s))
            .collect();
        Ok(Page { items, next_cursor: page.next_cursor })
    }

    async fn in_flight(&self, tenant: TenantId, env: EnvironmentId, component: ComponentId) -> Result<Option<DeploymentId>> {
        Ok(self.lock().t(tenant).deployments.locks.get(&(env, component)).map(|lock| lock.deployment))
    }

    async fn in_flight_deployments(&self, tenant: TenantId, env: EnvironmentId) -> Result<Vec<DeploymentId>> {
        Ok(self.lock().t(tenant).deployments.locks_in(env).map(|(_, lock)| lock.deployment).collect())
    }

    async fn connection_slots(&self, tenant: TenantId) -> Result<Vec<ConnectionSlot>> {
        let mut s = self.lock();
        let ds = &s.t(tenant).deployments;
        let active = ds.actives.iter().map(|((e, c), a)| ConnectionSlot {
            environment: *e,
            component: *c,
            in_flight: false,
            connections: a.components.iter().filter(|c| c.kind == ComponentType::Connection).map(|c| c.id).collect(),
        });
        let in_flight =
            ds.locks.iter().map(|((e, c), lock)| ConnectionSlot { environment: *e, component: *c, in_flight: true, connections: lock.connections.clone() });
        let mut slots: Vec<ConnectionSlot> = active.chain(in_flight).filter(|slot| !slot.connections.is_empty()).collect();
        slots.sort_by_key(|slot| (slot.environment.to_string(), slot.in_flight, slot.component.to_string()));
        Ok(slots)
    }

    async fn transition_noting(
        &self,
        tenant: TenantId,
        after: &Deployment,
        from: DeploymentStatus,
        audit: Option<AuditDraft>,
        events: &[DeploymentEvent],
    ) -> Result<()> {
        let mut s = self.lock();
        let ds = &mut s.t(tenant).deployments;
        let release = after.releases_lock_from(from);
        if !ds.still(after, from) || (release && !ds.holds(after)) {
            return Err(stale());
        }
        ds.records.insert(after.id, Stored::new(after));
        if release {
            ds.locks.remove(&(after.environment_id, after.component_id));
        }
        ds.note(after.id, events);
        if let Some(audit) = audit {
            s.record(tenant, audit);
        }
        Ok(())
    }

    async fn finish_deployment_noting(
        &self,
        tenant: TenantId,
        after: &Deployment,
        from: DeploymentStatus,
        activation: &Activation,
        quarantine: Option<&Quarantine>,
        audit: AuditDraft,
        events: &[DeploymentEvent],
    ) -> Result<()> {
        let mut s = self.lock();
        let ds = &mut s.t(tenant).deployments;
        let release = after.releases_lock_from(from);
        if !ds.still(after, from) || (release && !ds.holds(after)) || !ds.activation_allowed(after, activation) {
            return Err(stale());
        }
        ds.records.insert(after.id, Stored::new(after));
        if release {
            ds.locks.remove(&(after.environment_id, after.component_id));
        }
        ds.activate(after, activation);
        if let Some(q) = quarantine {
            ds.quarantines.insert((q.environment_id, q.package_id), q.clone());
        }
        ds.note(after.id, events);
        s.record(tenant, audit);
        Ok(())
    }

    async fn reopen_deployment(&self, tenant: TenantId, after: &Deployment, from: DeploymentStatus, targets: &[Target], audit: AuditDraft) -> Result<()> {
        let mut s = self.lock();
        let t = s.t(tenant);
        let take = after.takes_lock_from(from);
        if !t.deployments.still(after, from) {
            return Err(stale());
        }
        if take && t.deployments.holder(after).is_some() {
            return Err(t.in_flight_refusal(after));
        }
        let ds = &mut t.deployments;
        ds.records.insert(after.id, Stored::new(after));
        if take {
            ds.take_lock(after);
        }
        // As the adapter: each target is reset with its job, unless that job exists already.
        for target in targets {
            if ds.jobs.contains_key(&(target.runtime_id, target.job_id)) {
                continue;
            }
            ds.put_target(target, None);
            ds.jobs.insert((target.runtime_id, target.job_id), target.deployment_id);
        }
        s.record(tenant, audit);
        Ok(())
    }

    async fn step_rollout(&self, tenant: TenantId, after: &Deployment, from: DeploymentStatus, audit: Option<AuditDraft>) -> Result<()> {
        let mut s = self.lock();
        let t = s.t(tenant);
        let previous = after.progress.and_then(|p| p.step.checked_sub(1));
        let at_step = t.deployments.records.get(&after.id).is_some_and(|stored| stored.deployment.progress.map(|p| p.step) == previous);
        if previous.is_none() || !at_step || !t.deployments.still(after, from) {
            return Err(stale());
        }
        let (take, release) = (after.takes_lock_from(from), after.releases_lock_from(from));
        if take && t.deployments.holder(after).is_some() {
            return Err(t.in_flight_refusal(after));
        }
        if release && !t.deployments.holds(after) {
            return Err(stale());
        }
        let ds = &mut t.deployments;
        ds.records.insert(after.id, Stored::new(after));
        if take {
            ds.take_lock(after);
        }
        if release {
            ds.locks.remove(&(after.environment_id, after.component_id));
        }
        if let Some(audit) = audit {
            s.record(tenant, audit);
        }
        Ok(())
    }

    async fn put_target_if_absent(&self, tenant: TenantId, target: &Target) -> Result<bool> {
        let mut s = self.lock();
        let ds = &mut s.t(tenant).deployments;
        if ds.targets.contains_key(&(target.deployment_id, target.runtime_id)) || ds.jobs.contains_key(&(target.runtime_id, target.job_id)) {
            return Ok(false);
        }
        ds.put_target(target, None);
        ds.jobs.insert((target.runtime_id, target.job_id), target.deployment_id);
        Ok(true)
    }

    async fn put_targets_if_absent(&self, tenant: TenantId, targets: &[Target]) -> Result<Vec<bool>> {
        let mut written = Vec::with_capacity(targets.len());
        for t in targets {
            written.push(self.put_target_if_absent(tenant, t).await?);
        }
        Ok(written)
    }

    async fn get_target(&self, tenant: TenantId, deployment: DeploymentId, runtime: RuntimeId) -> Result<Option<Target>> {
        Ok(self.lock().t(tenant).deployments.targets.get(&(deployment, runtime)).map(|stored| stored.target.clone()))
    }

    /// In the order of the runtimes' ids.
    async fn activation_reads(&self, tenant: TenantId, package: PackageId, env: EnvironmentId, component: ComponentId) -> Result<ActivationReads> {
        Ok(ActivationReads {
            package: PackageStore::get_package(self, tenant, package).await?,
            active: self.active_version(tenant, env, component).await?,
            audit_head: Some(AuditStore::audit_head(self, tenant).await?),
        })
    }

    async fn list_targets(&self, tenant: TenantId, deployment: DeploymentId) -> Result<Vec<Target>> {
        let mut s = self.lock();
        Ok(s.t(tenant).deployments.targets.iter().filter(|((d, _), _)| *d == deployment).map(|(_, stored)| stored.target.clone()).collect())
    }

    async fn update_target_noting(
        &self,
        tenant: TenantId,
        target: &Target,
        from: TargetState,
        receipt: Option<&str>,
        event: Option<&DeploymentEvent>,
    ) -> Result<()> {
        let mut s = self.lock();
        let ds = &mut s.t(tenant).deployments;
        let Some(stored) = ds.targets.get(&(target.deployment_id, target.runtime_id)).filter(|t| t.target.state == from && t.target.job_id == target.job_id)
        else {
            return Err(Refusal::Stale(Entity::Target).into());
        };
        let receipt = receipt.map(str::to_string).or_else(|| stored.receipt.clone());
        ds.put_target(target, receipt);
        ds.note(target.deployment_id, event);
        Ok(())
    }

    async fn reset_target(&self, tenant: TenantId, target: &Target, from: &Target) -> Result<()> {
        let mut s = self.lock();
        let ds = &mut s.t(tenant).deployments;
        let still = ds.targets.get(&(from.deployment_id, from.runtime_id)).is_some_and(|t| t.target.state == from.state && t.target.job_id == from.job_id);
        if !still || ds.jobs.contains_key(&(target.runtime_id, target.job_id)) {
            return Err(Refusal::Stale(Entity::Target).into());
        }
        ds.put_target(target, None);
        ds.jobs.insert((target.runtime_id, target.job_id), target.deployment_id);
        Ok(())
    }

    async fn target_receipt(&self, tenant: TenantId, deployment: DeploymentId, runtime: RuntimeId) -> Result<Option<String>> {
        Ok(self.lock().t(tenant).deployments.targets.get(&(deployment, runtime)).and_then(|stored| stored.receipt.clone()))
    }

    async fn find_job(&self, tenant: TenantId, runtime: RuntimeId, job: JobId) -> Result<Option<DeploymentId>> {
        Ok(self.lock().t(tenant).deployments.jobs.get(&(runtime, job)).copied())
    }

    async fn add_event(&self, tenant: TenantId, deployment: DeploymentId, event: &DeploymentEvent) -> Result<()> {
        self.lock().t(tenant).deployments.note(deployment, [event]);
        Ok(())
    }

    async fn list_events(&self, tenant: TenantId, deployment: DeploymentId, page: &PageRequest) -> Result<Page<DeploymentEvent>> {
        let mut s = self.lock();
        let items = s.t(tenant).deployments.events.iter().filter(|((d, _), _)| *d == deployment).map(|((_, key), e)| (key.clone(), e.clone())).collect();
        page_of(&format!("{tenant}/deployments/{deployment}/events"), items, page, Order::OldestFirst)
    }

    async fn add_approval(&self, tenant: TenantId, deployment: DeploymentId, approval: &Approval, audit: AuditDraft) -> Result<()> {
        let mut s = self.lock();
        let ds = &mut s.t(tenant).deployments;
        let Some(stored) = ds.records.get_mut(&deployment).filter(|stored| stored.deployment.status == DeploymentStatus::PendingApproval) else {
            return Err(Refusal::NotAwaitingApproval(Decided::Deployment).into());
        };
        let key = (deployment, approval.approver.clone());
        if ds.approvals.contains_key(&key) {
            return Err(Refusal::AlreadyDecided(Decided::Deployment).into());
        }
        // Counting decisions on the deployment orders them against its status change.
        stored.deployment.decisions += 1;
        ds.approvals.insert(key, approval.clone());
        s.record(tenant, audit);
        Ok(())
    }

    async fn approvals(&self, tenant: TenantId, deployment: DeploymentId) -> Result<Vec<Approval>> {
        let mut s = self.lock();
        let mut approvals: Vec<Approval> = s.t(tenant).deployments.approvals.iter().filter(|((d, _), _)| *d == deployment).map(|(_, a)| a.clone()).collect();
        approvals.sort_by_key(|a| a.created_at);
        Ok(approvals)
    }

    async fn succeeded_in(&self, tenant: TenantId, package: PackageId) -> Result<Vec<EnvironmentId>> {
        Ok(self.lock().t(tenant).deployments.successes.keys().filter(|(p, _)| *p == package).map(|(_, e)| *e).collect())
    }

    async fn package_successes(&self, tenant: TenantId, package: PackageId) -> Result<Vec<(EnvironmentId, DeploymentId)>> {
        Ok(self.lock().t(tenant).deployments.successes.iter().filter(|((p, _), _)| *p == package).map(|((_, e), d)| (*e, *d)).collect())
    }

    /// In the order of the components' ids.
    async fn active_versions(&self, tenant: TenantId, env: EnvironmentId) -> Result<Vec<ActiveVersion>> {
        Ok(self.lock().t(tenant).deployments.actives.iter().filter(|((e, _), _)| *e == env).map(|(_, a)| a.clone()).collect())
    }

    async fn active_version(&self, tenant: TenantId, env: EnvironmentId, component: ComponentId) -> Result<Option<ActiveVersion>> {
        Ok(self.lock().t(tenant).deployments.actives.get(&(env, component)).cloned())
    }

    /// In the order of the packages' ids.
    async fn quarantined(&self, tenant: TenantId, env: EnvironmentId) -> Result<Vec<Quarantine>> {
        Ok(self.lock().t(tenant).deployments.quarantines.iter().filter(|((e, _), _)| *e == env).map(|(_, q)| q.clone()).collect())
    }

    async fn get_quarantine(&self, tenant: TenantId, env: EnvironmentId, package: PackageId) -> Result<Option<Quarantine>> {
        Ok(self.lock().t(tenant).deployments.quarantines.get(&(env, package)).cloned())
    }

    async fn lift_quarantine(&self, tenant: TenantId, env: EnvironmentId, package: PackageId, audit: AuditDraft) -> Result<()> {
        let mut s = self.lock();
        if s.t(tenant).deployments.quarantines.remove(&(env, package)).is_none() {
            return Err(Refusal::Missing(Entity::Quarantine).into());
        }
        s.record(tenant, audit);
        Ok(())
    }

    async fn overdue_targets(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<SweepItem>> {
        let s = self.lock();
        let mut found = vec![];
        for (tenant, t) in &s.tenancies {
            for ((d, r), stored) in &t.deployments.targets {
                if let Some(deadline) = stored.target.watched_deadline() {
                    found.push((format!("{}#{tenant}#{d}#{r}", time_key(deadline)), SweepItem { tenant: *tenant, deployment: *d, runtime: Some(*r) }));
                }
            }
        }
        Ok(swept(found, now, limit))
    }

    async fn due_scheduled(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<SweepItem>> {
        let found = self.watched(|w| match w {
            SweeperWatch::DueAt(at) => Some(*at),
            SweeperWatch::QueuedSince(_) => None,
        });
        Ok(swept(found, now, limit))
    }

    async fn stale_queued(&self, queued_before: DateTime<Utc>, limit: u32) -> Result<Vec<SweepItem>> {
        let found = self.watched(|w| match w {
            SweeperWatch::QueuedSince(at) => Some(*at),
            SweeperWatch::DueAt(_) => None,
        });
        Ok(swept(found, queued_before, limit))
    }
}
