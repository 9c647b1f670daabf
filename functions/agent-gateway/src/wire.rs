//! The one place where the domain's values become the agent protocol's wire
//! types (`berth-protocol`) and back. The protocol carries plain strings; the
//! checks the domain's types make on deserialising are made here, naming the
//! field the way a deserialising error would.

use berth_domain::DomainError;
use berth_domain::deployment::{DeploymentKind, TargetState};
use berth_domain::extension::{ConnectionTest, PropertyValue, ResolvedExtensions};
use berth_domain::runtime::{AgentHealth, Digest, RunningPackage, RuntimeStatus};
use berth_domain::usecases::JobOffer;
use berth_domain::values::Name;
use berth_protocol as wire;

pub fn name(raw: Option<String>) -> Result<Option<Name>, DomainError> {
    raw.map(|n| Name::parse(&n)).transpose().map_err(|m| DomainError::invalid("name", m))
}

pub fn health(h: wire::AgentHealth) -> AgentHealth {
    match h {
        wire::AgentHealth::Ok => AgentHealth::Ok,
        wire::AgentHealth::Degraded => AgentHealth::Degraded,
    }
}

pub fn running(running: Vec<wire::RunningPackage>) -> Result<Vec<RunningPackage>, DomainError> {
    running
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let digest = Digest::parse(&r.digest).map_err(|m| DomainError::invalid(format!("running[{i}].digest"), m))?;
            Ok(RunningPackage { component_id: r.component_id, package_id: r.package_id, digest })
        })
        .collect()
}

pub fn runtime_status(s: RuntimeStatus) -> wire::RuntimeStatus {
    match s {
        RuntimeStatus::Online => wire::RuntimeStatus::Online,
        RuntimeStatus::Offline => wire::RuntimeStatus::Offline,
        RuntimeStatus::Unknown => wire::RuntimeStatus::Unknown,
    }
}

/// A sync goes out as a `deploy` of the exact version the environment runs:
/// to an agent it is one (download, back up, apply, restore on failure), and
/// agents that know only the four kinds keep working.
fn kind(k: DeploymentKind) -> wire::JobKind {
    match k {
        DeploymentKind::Deploy | DeploymentKind::Sync => wire::JobKind::Deploy,
        DeploymentKind::Redeploy => wire::JobKind::Redeploy,
        DeploymentKind::Rollback => wire::JobKind::Rollback,
        DeploymentKind::Undeploy => wire::JobKind::Undeploy,
    }
}

pub fn job(job: JobOffer) -> wire::Job {
    wire::Job {
        job_id: job.job_id.as_uuid(),
        deployment_id: job.deployment_id.as_uuid(),
        kind: kind(job.kind),
        environment_id: job.environment_id.as_uuid(),
        component_id: job.component_id.as_uuid(),
        package_id: job.package_id.as_uuid(),
        version: job.version.to_string(),
        digest: job.digest.as_str().to_string(),
        size: job.size,
        download_url: job.download_url,
        deadline: job.deadline,
    }
}

/// The resolved values on the wire: the one place where a secret leaves `Sensitive`.
pub fn extensions(version: u64, resolved: Vec<ResolvedExtensions>) -> wire::JobExtensions {
    let components = resolved
        .into_iter()
        .map(|r| {
            let connection = r.connection.iter().map(|(k, v)| (k.clone(), v.reveal().to_string())).collect();
            let properties = r.properties.into_iter().map(|(k, v)| (k, property(v))).collect();
            (r.component_id.as_uuid(), wire::ComponentExtensions { connection, properties, lookups: r.lookups })
        })
        .collect();
    wire::JobExtensions { version, components }
}

pub fn connection_test(t: &ConnectionTest) -> wire::ConnectionTestJob {
    wire::ConnectionTestJob { test_id: t.id.as_uuid(), environment_id: t.environment_id.as_uuid(), component_id: t.component_id.as_uuid() }
}

fn property(v: PropertyValue) -> serde_json::Value {
    match v {
        PropertyValue::Boolean(b) => serde_json::Value::Bool(b),
        PropertyValue::Number(n) => serde_json::Value::Number(n),
        PropertyValue::String(s) => serde_json::Value::String(s),
    }
}

pub fn phase(p: wire::Phase) -> TargetState {
    match p {
        wire::Phase::Delivered => TargetState::Delivered,
        wire::Phase::Downloading => TargetState::Downloading,
        wire::Phase::BackingUp => TargetState::BackingUp,
        wire::Phase::Applying => TargetState::Applying,
        wire::Phase::Deployed => TargetState::Deployed,
        wire::Phase::Failed => TargetState::Failed,
        wire::Phase::Restored => TargetState::Restored,
    }
}

pub fn job_status(s: TargetState) -> wire::JobStatus {
    match s {
        // A job waiting for its batch was never sent: to an agent, it is pending.
        TargetState::Waiting | TargetState::Pending => wire::JobStatus::Pending,
        TargetState::Delivered => wire::JobStatus::Delivered,
        TargetState::Downloading => wire::JobStatus::Downloading,
        TargetState::BackingUp => wire::JobStatus::BackingUp,
        TargetState::Applying => wire::JobStatus::Applying,
        TargetState::Deployed => wire::JobStatus::Deployed,
        TargetState::Failed => wire::JobStatus::Failed,
        TargetState::Restored => wire::JobStatus::Restored,
        TargetState::Skipped => wire::JobStatus::Skipped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_domain::deployment::JobMessage;
    use berth_domain::ids::{DeploymentId, JobId, RuntimeId, TenantId};

    #[test]
    fn a_sync_goes_to_the_agent_as_a_deploy_and_every_other_kind_as_itself() {
        let sent = [DeploymentKind::Deploy, DeploymentKind::Redeploy, DeploymentKind::Rollback, DeploymentKind::Undeploy, DeploymentKind::Sync].map(kind);
        assert_eq!(sent, [wire::JobKind::Deploy, wire::JobKind::Redeploy, wire::JobKind::Rollback, wire::JobKind::Undeploy, wire::JobKind::Deploy]);
    }

    #[test]
    fn the_job_message_in_a_runtime_queue_is_the_protocols_and_carries_no_secret_or_url() {
        let job = JobMessage { tenant_id: TenantId::new(), deployment_id: DeploymentId::new(), runtime_id: RuntimeId::new(), job_id: JobId::new() };
        let body = serde_json::to_value(&job).expect("it serialises");
        let mut keys: Vec<&str> = body.as_object().expect("an object").keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["deployment_id", "job_id", "runtime_id", "tenant_id"]);
        let read: berth_protocol::JobMessage = serde_json::from_value(body).expect("an agent reads it");
        assert_eq!(read.job_id, job.job_id.as_uuid());
        assert_eq!(read.tenant_id, job.tenant_id.as_uuid());
    }
}
