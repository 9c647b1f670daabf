//! Environment extensions: reading and writing an environment's values,
//! what a deployment checks of them, and their resolution for a job.

use super::agents::RuntimeCtx;
use super::{Berth, NewDeployment};
use crate::audit::AuditDraft;
use crate::audit::summary::ExtensionsUpdated;
use crate::context::{Permission, TenantCtx};
use crate::deployment::{ActiveVersion, Deployment, DeploymentStatus, TargetState};
use crate::extension::{
    ConnectionTest, ConnectionTestStatus, ConnectionValue, EnvironmentExtensions, ExtensionPoints, ExtensionsInput, PropertyValue, ResolvedExtensions,
    SecretScope, check_input, check_size, gaps, merged, resolve, secrets_to_seal,
};
use crate::ids::{ComponentId, EnvironmentId, JobId, TenantId};
use crate::package::Package;
use crate::validation::ExtensionFacts;
use crate::values::Version;
use crate::webhook::SealedSecret;
use crate::{DomainError, Result};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// An environment's values as a reader sees them: a secret only as set, when and by whom.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtensionsView {
    pub version: Version,
    pub components: BTreeMap<ComponentId, ComponentValuesView>,
    pub updated_at: Option<DateTime<Utc>>,
    pub updated_by: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ComponentValuesView {
    pub connection: BTreeMap<String, ShownValue>,
    pub properties: BTreeMap<String, PropertyValue>,
    pub lookups: BTreeMap<String, BTreeMap<String, String>>,
}

/// A connection field's value as shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShownValue {
    Plain(String),
    /// A secret: never shown, only that it is set.
    SecretSet {
        updated_at: DateTime<Utc>,
        updated_by: String,
    },
}

impl ExtensionsView {
    fn of(values: &EnvironmentExtensions) -> Self {
        let components = values
            .components
            .iter()
            .filter(|(_, c)| !c.is_empty())
            .map(|(id, c)| {
                let connection = c
                    .connection
                    .iter()
                    .map(|(k, v)| {
                        let shown = match v {
                            ConnectionValue::Plain { value } => ShownValue::Plain(value.clone()),
                            ConnectionValue::Secret { updated_at, updated_by, .. } => {
                                ShownValue::SecretSet { updated_at: *updated_at, updated_by: updated_by.clone() }
                            }
                        };
                        (k.clone(), shown)
                    })
                    .collect();
                (*id, ComponentValuesView { connection, properties: c.properties.clone(), lookups: c.lookups.clone() })
            })
            .collect();
        Self { version: Version(values.version), components, updated_at: values.updated_at, updated_by: values.updated_by.clone() }
    }
}

impl Berth {
    /// The environment's values (admins only); secrets show only as set.
    pub async fn get_extensions(&self, ctx: &TenantCtx, env: EnvironmentId) -> Result<ExtensionsView> {
        self.get_environment(ctx, env).await?;
        ctx.require(Permission::ReadExtensions)?;
        Ok(ExtensionsView::of(&self.ports.extensions.get_extensions(ctx.tenant, env).await?))
    }

    /// Writes the environment's values (admins only; `expected` is the
    /// version read, from `If-Match`, which is required: secrets are
    /// write-only, so a blind overwrite could not even be seen). Each value must fit what the
    /// component's latest revision declares; secrets are sealed one by one
    /// before anything is stored, bound to (tenant, environment, component, field).
    #[tracing::instrument(skip(self, ctx, input), fields(tenant_id = %ctx.tenant, request_id = %ctx.request_id))]
    pub async fn put_extensions(&self, ctx: &TenantCtx, env: EnvironmentId, input: ExtensionsInput, expected: Option<Version>) -> Result<ExtensionsView> {
        let environment = self.get_environment(ctx, env).await?;
        ctx.require(Permission::ManageEnvironments)?;
        let expected = expected.ok_or(DomainError::PreconditionRequired)?;
        let before = self.ports.extensions.get_extensions(ctx.tenant, env).await?;
        if before.version != expected.0 {
            return Err(DomainError::PreconditionFailed);
        }
        let ids: Vec<ComponentId> = input.components.keys().copied().collect();
        let declared: BTreeMap<ComponentId, (String, ExtensionPoints)> =
            self.ports.components.get_components(ctx.tenant, &ids).await?.into_iter().map(|c| (c.id, (c.name.to_string(), c.extensions))).collect();
        check_input(&input, &declared)?;
        let mut sealed: BTreeMap<(ComponentId, String), SealedSecret> = BTreeMap::new();
        for (component, field, value) in secrets_to_seal(&input, &declared) {
            let scope = SecretScope { tenant: ctx.tenant, environment: env, component, field: field.to_string() };
            sealed.insert((component, field.to_string()), self.ports.extension_sealer.seal_extension(&scope, value).await?);
        }
        let (after, changes) = merged(&before, &input, &declared, &sealed, &ctx.actor.id, Utc::now());
        check_size(&after)?;
        let audit = AuditDraft::by(ctx, env, ExtensionsUpdated { environment: environment.name.clone(), version: after.version, components: changes });
        self.ports.extensions.put_extensions(ctx.tenant, env, &after, before.version, audit).await?;
        Ok(ExtensionsView::of(&after))
    }

    /// What validation needs of the environment's values for `package`:
    /// the gaps of what it bundles (by the extension points it was packaged
    /// with), the version read and whether the values changed since the
    /// component's `active` deployment there was requested.
    pub(crate) async fn extension_facts(
        &self,
        tenant: TenantId,
        values: &EnvironmentExtensions,
        package: &Package,
        active: Option<&ActiveVersion>,
    ) -> Result<ExtensionFacts> {
        let bundled = package.manifest.components.iter().map(|e| (e.id, e.name.as_str(), &e.extensions));
        let gaps = gaps(bundled, values);
        let changed = match active {
            None => None,
            Some(a) => {
                let since = match a.extensions_version {
                    Some(v) => v,
                    // Activated before the version was kept with it: its deployment says.
                    None => self.ports.deployments.get_deployment(tenant, a.deployment_id).await?.and_then(|d| d.extensions_version).unwrap_or(0),
                };
                Some(package.manifest.components.iter().any(|e| values.components.get(&e.id).is_some_and(|c| c.changed_in > since)))
            }
        };
        Ok(ExtensionFacts { version: values.version, changed, gaps })
    }

    /// The values one component uses in one environment, secrets opened:
    /// for the server side of a job (never for a portal read). The
    /// component's latest revision says what is declared (and the defaults).
    #[tracing::instrument(skip(self))]
    pub async fn resolved_extensions(&self, tenant: TenantId, env: EnvironmentId, component: ComponentId) -> Result<ResolvedExtensions> {
        let points = self.ports.components.get_component(tenant, component).await?.ok_or(DomainError::not_found("component"))?.extensions;
        let values = self.ports.extensions.get_extensions(tenant, env).await?;
        self.resolve_one(tenant, env, component, &points, &values).await
    }

    /// The values of every component `package` bundles, in its manifest's
    /// order, by the extension points each was packaged with (components
    /// that declare none are left out): what one job of the package uses.
    #[tracing::instrument(skip(self, package), fields(package_id = %package.id))]
    pub async fn resolved_package_extensions(&self, tenant: TenantId, env: EnvironmentId, package: &Package) -> Result<Vec<ResolvedExtensions>> {
        let values = self.ports.extensions.get_extensions(tenant, env).await?;
        let mut out = vec![];
        for entry in package.manifest.components.iter().filter(|e| !e.extensions.is_empty()) {
            out.push(self.resolve_one(tenant, env, entry.id, &entry.extensions, &values).await?);
        }
        Ok(out)
    }

    /// The values a job of this runtime applies with, secrets opened: only
    /// while the job is under way (handed out, not settled, its deployment
    /// neither cancelled nor superseded); any other job is not found. Read
    /// now, so a job started after a change of values applies the new ones.
    #[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant, runtime_id = %ctx.runtime.id, job_id = %job))]
    pub async fn job_extensions(&self, ctx: &RuntimeCtx, job: JobId) -> Result<(u64, Vec<ResolvedExtensions>)> {
        let not_found = || DomainError::not_found("job");
        let deployment_id = self.ports.deployments.find_job(ctx.tenant, ctx.runtime.id, job).await?.ok_or_else(not_found)?;
        let target = self.ports.deployments.get_target(ctx.tenant, deployment_id, ctx.runtime.id).await?.ok_or_else(not_found)?;
        let under_way = matches!(target.state, TargetState::Delivered | TargetState::Downloading | TargetState::BackingUp | TargetState::Applying);
        if target.job_id != job || !under_way {
            return Err(not_found());
        }
        let d = self.ports.deployments.get_deployment(ctx.tenant, deployment_id).await?.ok_or_else(not_found)?;
        if matches!(d.status, DeploymentStatus::Cancelled | DeploymentStatus::Superseded) {
            return Err(not_found());
        }
        let package = self.ports.packages.get_package(ctx.tenant, d.package_id).await?.ok_or_else(not_found)?;
        let resolved = self.resolved_package_extensions(ctx.tenant, d.environment_id, &package).await?;
        let version = match resolved.first() {
            Some(r) => r.version,
            None => self.ports.extensions.get_extensions(ctx.tenant, d.environment_id).await?.version,
        };
        Ok((version, resolved))
    }

    /// Deploys the package active for `component` in the environment again,
    /// so that its runtimes apply the environment's current values: a
    /// deployment like any other (policy, validation, approvals);
    /// `not_deployed` when nothing is active for the component there.
    pub async fn deploy_extensions(&self, ctx: &TenantCtx, env: EnvironmentId, component: ComponentId) -> Result<Deployment> {
        let environment = self.get_environment(ctx, env).await?;
        ctx.require(Permission::Deploy)?;
        let active = self.ports.deployments.active_version(ctx.tenant, env, component).await?.ok_or_else(|| {
            DomainError::conflict("not_deployed", format!("nothing is deployed for the component in the environment \"{}\"", environment.name))
        })?;
        let input = NewDeployment {
            package_id: active.package_id,
            environment_id: env,
            notes: "extension values changed".to_string(),
            scheduled_at: None,
            hold_if_frozen: false,
            commit: None,
            override_quarantine: false,
            rollout: None,
        };
        self.create_deployment(ctx, input).await
    }

    /// Tests the component's connection in the environment: a test for one
    /// attached runtime that is online, which runs it with the environment's
    /// values (it learns of it at its next heartbeat). It replaces the
    /// previous test. Deployers, as it runs on the environment's runtimes.
    #[tracing::instrument(skip(self, ctx), fields(tenant_id = %ctx.tenant, request_id = %ctx.request_id))]
    pub async fn test_connection(&self, ctx: &TenantCtx, env: EnvironmentId, component: ComponentId) -> Result<ConnectionTest> {
        let environment = self.get_environment(ctx, env).await?;
        ctx.require(Permission::Deploy)?;
        let declared = self.ports.components.get_component(ctx.tenant, component).await?.ok_or(DomainError::not_found("component"))?;
        if declared.extensions.connection_fields.is_empty() {
            return Err(DomainError::conflict("no_connection", format!("\"{}\" declares no connection fields to test", declared.name)));
        }
        let runtimes = self.all_environment_runtimes(ctx.tenant, env).await?;
        let Some(runtime) = runtimes.iter().find(|r| self.runtime_status(r) == crate::runtime::RuntimeStatus::Online) else {
            return Err(DomainError::conflict("no_runtime_online", format!("no runtime attached to \"{}\" is online to run the test", environment.name)));
        };
        let test = ConnectionTest {
            id: JobId::new(),
            environment_id: env,
            component_id: component,
            runtime_id: runtime.id,
            status: ConnectionTestStatus::Pending,
            message: String::new(),
            requested_at: Utc::now(),
            requested_by: ctx.actor.id.clone(),
            at: None,
        };
        self.ports.extensions.put_connection_test(ctx.tenant, &test).await?;
        Ok(test)
    }

    /// The latest test of the component's connection in the environment, if any.
    pub async fn get_connection_test(&self, ctx: &TenantCtx, env: EnvironmentId, component: ComponentId) -> Result<Option<ConnectionTest>> {
        self.get_environment(ctx, env).await?;
        ctx.require(Permission::Read)?;
        self.ports.components.get_component(ctx.tenant, component).await?.ok_or(DomainError::not_found("component"))?;
        Ok(self.ports.extensions.get_connection_test(ctx.tenant, env, component).await?.map(|t| t.as_of(Utc::now())))
    }

    /// The connection tests waiting for this runtime (not those timed out).
    pub async fn pending_connection_tests(&self, ctx: &RuntimeCtx) -> Result<Vec<ConnectionTest>> {
        let now = Utc::now();
        let pending = self.ports.extensions.pending_connection_tests(ctx.tenant, ctx.runtime.id).await?;
        Ok(pending.into_iter().filter(|t| t.clone().as_of(now).status == ConnectionTestStatus::Pending).collect())
    }

    async fn pending_connection_test(&self, ctx: &RuntimeCtx, id: JobId) -> Result<ConnectionTest> {
        let pending = self.pending_connection_tests(ctx).await?;
        pending.into_iter().find(|t| t.id == id).ok_or(DomainError::not_found("connection test"))
    }

    /// The values a pending connection test of this runtime runs with, secrets opened.
    #[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant, runtime_id = %ctx.runtime.id, test_id = %id))]
    pub async fn connection_test_extensions(&self, ctx: &RuntimeCtx, id: JobId) -> Result<ResolvedExtensions> {
        let test = self.pending_connection_test(ctx, id).await?;
        self.resolved_extensions(ctx.tenant, test.environment_id, test.component_id).await
    }

    /// How a pending connection test of this runtime went; its message is
    /// redacted as any job message. 404 once it ended or a newer test replaced it.
    #[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant, runtime_id = %ctx.runtime.id, test_id = %id))]
    pub async fn report_connection_test(&self, ctx: &RuntimeCtx, id: JobId, succeeded: bool, message: &str) -> Result<ConnectionTest> {
        let test = self.pending_connection_test(ctx, id).await?;
        let status = if succeeded { ConnectionTestStatus::Succeeded } else { ConnectionTestStatus::Failed };
        let ended = ConnectionTest { status, message: crate::redact::redact(message), at: Some(Utc::now()), ..test };
        match self.ports.extensions.finish_connection_test(ctx.tenant, &ended).await {
            Err(DomainError::Refused(crate::refusal::Refusal::Stale(_))) => Err(DomainError::not_found("connection test")),
            other => other.map(|()| ended),
        }
    }

    async fn resolve_one(
        &self,
        tenant: TenantId,
        env: EnvironmentId,
        component: ComponentId,
        points: &ExtensionPoints,
        values: &EnvironmentExtensions,
    ) -> Result<ResolvedExtensions> {
        let stored = values.components.get(&component);
        let mut opened = BTreeMap::new();
        for field in points.connection_fields.iter() {
            if let Some(ConnectionValue::Secret { sealed, .. }) = stored.and_then(|s| s.connection.get(&field.name)) {
                let scope = SecretScope { tenant, environment: env, component, field: field.name.clone() };
                opened.insert(field.name.clone(), self.ports.extension_sealer.open_extension(&scope, sealed).await?);
            }
        }
        Ok(resolve(component, values.version, stored, points, opened))
    }
}
