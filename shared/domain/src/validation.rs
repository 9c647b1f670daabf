//! The dry run before a deployment: a pure report over facts the use case
//! gathers. `errors` block; `warnings` do not.

use crate::component::ComponentType;
use crate::deployment::ActiveVersion;
use crate::environment::Environment;
use crate::extension::ExtensionGap;
use crate::ids::{ComponentId, DeploymentId};
use crate::package::Package;
use crate::quarantine::Quarantine;
use crate::runtime::RuntimeStatus;
use serde::Serialize;
use std::collections::HashSet;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Issue {
    pub code: &'static str,
    pub message: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ValidationReport {
    pub errors: Vec<Issue>,
    pub warnings: Vec<Issue>,
    /// The target environment's extensions version the report was made at.
    pub extensions_version: u64,
    /// Whether the extension values of what the package bundles changed since
    /// the component's active deployment there was requested (`None`: none is active).
    pub extensions_changed: Option<bool>,
}

impl ValidationReport {
    fn error(&mut self, code: &'static str, message: impl Into<String>) {
        self.errors.push(Issue { code, message: message.into() });
    }
    fn warning(&mut self, code: &'static str, message: impl Into<String>) {
        self.warnings.push(Issue { code, message: message.into() });
    }
}

/// A connection component holding a licence: its name and the environments
/// (by name) where it does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionInUse {
    pub id: ComponentId,
    pub name: String,
    pub environments: Vec<String>,
}

/// What validation knows of the target environment's extension values.
#[derive(Clone, Debug, Default)]
pub struct ExtensionFacts {
    pub version: u64,
    pub changed: Option<bool>,
    /// Missing required values and unresolved lookups of what the package bundles.
    pub gaps: Vec<ExtensionGap>,
}

/// Everything validation looks at.
pub struct Facts<'a> {
    pub environment: &'a Environment,
    pub package: &'a Package,
    /// What the environment's policy says about this change (roles, freeze, approvals).
    pub verdict: &'a crate::policy::Verdict,
    /// The caller's roles allow deploying at all.
    pub may_deploy: bool,
    pub in_flight: Option<DeploymentId>,
    /// Attached runtimes: name and status.
    pub runtimes: Vec<(String, RuntimeStatus)>,
    /// What the target environment runs now.
    pub active_here: &'a [ActiveVersion],
    /// The tenant's licence allowance for this environment's classification.
    pub connection_licenses: u32,
    /// Distinct connection components active (or in flight) in environments
    /// of the same classification, except in the slot this deployment replaces.
    pub connections_elsewhere: Vec<ConnectionInUse>,
    /// Environments (by name) the policy requires success in, where this package has not succeeded.
    pub promotion_missing: Vec<String>,
    /// The package's quarantine in the environment, if it is quarantined there.
    pub quarantine: Option<&'a Quarantine>,
    /// The request deploys it despite a quarantine.
    pub override_quarantine: bool,
    pub extensions: ExtensionFacts,
}

pub fn validate(f: &Facts<'_>) -> ValidationReport {
    let mut r = ValidationReport::default();
    if f.package.status != crate::package::PackageStatus::Ready {
        r.error("package_not_ready", f.package.not_ready_reason());
    }
    if !f.environment.enabled {
        r.error("environment_not_enabled", format!("environment \"{}\" is not enabled", f.environment.name));
    }
    if f.package.deleted {
        r.error("package_deleted", "the package was deleted");
    }
    if let Some(q) = f.quarantine {
        let why = format!(
            "version \"{}\" is quarantined in environment \"{}\": it was rolled back there (deployment {})",
            q.version, f.environment.name, q.deployment_id
        );
        if f.override_quarantine {
            r.warning("quarantine_overridden", format!("{why}; it is deployed anyway, as the request overrides the quarantine"));
        } else {
            r.error(
                "quarantined",
                format!(
                    "{why}. To deploy it anyway, request it with \"override_quarantine\": true (POST /v1/deployments), or lift the quarantine: DELETE /v1/environments/{}/quarantine/{}",
                    q.environment_id, q.package_id
                ),
            );
        }
    }
    if !f.may_deploy {
        r.error("forbidden", "your roles do not allow deploying");
    }
    // A caller with no deploying role at all is told once.
    for (code, message) in f.verdict.blocking().into_iter().filter(|(code, _)| f.may_deploy || *code != "forbidden") {
        r.error(code, message);
    }
    if let Some(d) = f.in_flight {
        let held = crate::refusal::Refusal::InFlight { deployment: Some(d) }.into_error();
        r.error(held.code(), held.to_string());
    }
    for env in &f.promotion_missing {
        r.error("promotion_required", format!("the package must first succeed in environment \"{env}\""));
    }
    for (code, message) in f.verdict.waits() {
        r.warning(code, message);
    }
    if f.runtimes.is_empty() {
        r.error("no_runtimes", "no runtime is attached to the environment");
    }
    for (name, status) in &f.runtimes {
        if *status != RuntimeStatus::Online {
            r.warning("runtime_offline", format!("runtime \"{name}\" is {status:?}; its job waits until it is back").to_lowercase());
        }
    }
    for req in &f.package.requirements {
        if !f.active_here.iter().any(|a| a.component_id == req.id) {
            r.error("requirement_missing", format!("{} \"{}\" must be deployed to this environment first (it is never bundled)", req.kind.as_str(), req.name));
        }
    }
    r.extensions_version = f.extensions.version;
    r.extensions_changed = f.extensions.changed;
    let env = &f.environment.name;
    for gap in &f.extensions.gaps {
        match gap {
            ExtensionGap::Missing { component_id, component, field } => r.error(
                "extension_missing",
                format!(
                    "component \"{component}\" ({component_id}) needs connection field \"{field}\" set in environment \"{env}\": PUT /v1/environments/{}/extensions",
                    f.environment.id
                ),
            ),
            ExtensionGap::Unresolved { component_id, component, table, key } => r.warning(
                "lookup_unresolved",
                format!("component \"{component}\" ({component_id}): lookup table \"{table}\" has no mapping for source key \"{key}\" in environment \"{env}\""),
            ),
        }
    }
    let bundled: HashSet<ComponentId> = f.package.manifest.components.iter().filter(|e| e.kind == ComponentType::Connection).map(|e| e.id).collect();
    let mut connections: HashSet<ComponentId> = f.connections_elsewhere.iter().map(|c| c.id).collect();
    connections.extend(bundled.iter().copied());
    if connections.len() as u64 > u64::from(f.connection_licenses) {
        // What would need to be freed: the connections in use that this package does not bundle.
        let excess = connections.len() as u64 - u64::from(f.connection_licenses);
        let freeable: Vec<String> = f
            .connections_elsewhere
            .iter()
            .filter(|c| !bundled.contains(&c.id))
            .map(|c| format!("\"{}\" ({}) in {}", c.name, c.id, c.environments.join(", ")))
            .collect();
        let classification = format!("{:?}", f.environment.classification).to_lowercase();
        r.error(
            "connection_licenses_exceeded",
            format!(
                "{} connections would be deployed in {classification} environments ({} in use there, {} bundled by this package); the plan allows {}. \
                 Free {excess} licence(s) by undeploying one of the connections in use: {}",
                connections.len(),
                f.connections_elsewhere.len(),
                bundled.len(),
                f.connection_licenses,
                if freeable.is_empty() { "none (this package alone needs more licences than the plan allows)".to_string() } else { freeable.join("; ") },
            ),
        );
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::component::{Component, ContentRef};
    use crate::environment::NewEnvironment;
    use crate::package::{Requirement, VersionLabel, snapshot};
    use crate::policy::{Change, FreezeWindow, Policy, Verdict};
    use crate::runtime::Digest;
    use crate::values::{Classification, Description, Name, Role};
    use chrono::Utc;
    use std::collections::HashMap;

    fn environment(enabled: bool) -> Environment {
        Environment::new(
            NewEnvironment { name: Name::parse("Test").unwrap(), classification: Classification::Test, enabled, description: Description::default() },
            Utc::now(),
        )
    }

    fn package(kinds: &[ComponentType], requirements: Vec<Requirement>) -> Package {
        let content = ContentRef { sha256: Digest::parse(&format!("sha256:{}", "c".repeat(64))).unwrap(), size: 1 };
        let children: Vec<Component> = kinds
            .iter()
            .enumerate()
            .map(|(i, k)| Component::new(Name::parse(&format!("c{i}")).unwrap(), *k, vec![], content.clone(), "a", Utc::now()).0)
            .collect();
        let root =
            Component::new(Name::parse("root").unwrap(), ComponentType::Process, children.iter().map(|c| c.id).collect(), content.clone(), "a", Utc::now()).0;
        let all: HashMap<_, _> = children.iter().map(|c| (c.id, c.clone())).collect();
        let (manifest, _) = snapshot(&root, &all).unwrap();
        Package {
            id: Default::default(),
            component_id: root.id,
            version: VersionLabel::number(1),
            notes: String::new(),
            shareable: false,
            deleted: false,
            status: crate::package::PackageStatus::Ready,
            failure: None,
            digest: Some(content.sha256.clone()),
            size: 1,
            manifest,
            requirements,
            commit: None,
            created_by: "a".into(),
            created_at: Utc::now(),
        }
    }

    fn open_verdict() -> &'static Verdict {
        static OPEN: std::sync::OnceLock<Verdict> = std::sync::OnceLock::new();
        OPEN.get_or_init(|| Policy::default().judge(Change::Deploy, &[Role::Deployer], Utc::now(), false))
    }

    fn facts<'a>(env: &'a Environment, pkg: &'a Package, active: &'a [ActiveVersion]) -> Facts<'a> {
        Facts {
            environment: env,
            package: pkg,
            verdict: open_verdict(),
            may_deploy: true,
            in_flight: None,
            runtimes: vec![("atom".into(), RuntimeStatus::Online)],
            active_here: active,
            connection_licenses: 10,
            connections_elsewhere: vec![],
            promotion_missing: vec![],
            quarantine: None,
            override_quarantine: false,
            extensions: ExtensionFacts::default(),
        }
    }

    #[test]
    fn a_missing_required_value_is_an_error_and_an_unresolved_lookup_a_warning_each_naming_what_is_missing() {
        let (env, pkg) = (environment(true), package(&[], vec![]));
        let mut f = facts(&env, &pkg, &[]);
        let crm = ComponentId::new();
        f.extensions = ExtensionFacts {
            version: 4,
            changed: Some(true),
            gaps: vec![
                ExtensionGap::Missing { component_id: crm, component: "CRM".into(), field: "password".into() },
                ExtensionGap::Unresolved { component_id: crm, component: "CRM".into(), table: "countries".into(), key: "DE".into() },
            ],
        };
        let report = validate(&f);
        assert_eq!((report.errors[0].code, report.warnings[0].code), ("extension_missing", "lookup_unresolved"));
        for part in ["\"CRM\"", &crm.to_string(), "\"password\"", "\"Test\""] {
            assert!(report.errors[0].message.contains(part), "{} names {part}", report.errors[0].message);
        }
        for part in ["\"CRM\"", "\"countries\"", "\"DE\""] {
            assert!(report.warnings[0].message.contains(part), "{} names {part}", report.warnings[0].message);
        }
        assert_eq!((report.extensions_version, report.extensions_changed), (4, Some(true)));
    }

    #[test]
    fn a_healthy_deployment_has_no_errors_or_warnings() {
        let (env, pkg) = (environment(true), package(&[ComponentType::Map], vec![]));
        assert_eq!(validate(&facts(&env, &pkg, &[])), ValidationReport::default());
    }

    #[test]
    fn a_disabled_environment_is_the_first_error() {
        let (env, pkg) = (environment(false), package(&[], vec![]));
        let mut f = facts(&env, &pkg, &[]);
        f.in_flight = Some(DeploymentId::new());
        let report = validate(&f);
        assert_eq!(report.errors[0].code, "environment_not_enabled");
        assert_eq!(report.errors[1].code, "deployment_in_progress");
    }

    #[test]
    fn an_offline_runtime_is_only_a_warning_but_no_runtime_is_an_error() {
        let (env, pkg) = (environment(true), package(&[], vec![]));
        let mut f = facts(&env, &pkg, &[]);
        f.runtimes = vec![("atom".into(), RuntimeStatus::Offline)];
        let report = validate(&f);
        assert!(report.errors.is_empty());
        assert_eq!(report.warnings[0].code, "runtime_offline");
        f.runtimes = vec![];
        assert_eq!(validate(&f).errors[0].code, "no_runtimes");
    }

    #[test]
    fn a_required_certificate_must_be_active_in_the_environment() {
        let cert = Requirement { id: ComponentId::new(), name: "TLS".into(), kind: ComponentType::Certificate };
        let (env, pkg) = (environment(true), package(&[], vec![cert.clone()]));
        assert_eq!(validate(&facts(&env, &pkg, &[])).errors[0].code, "requirement_missing");
    }

    #[test]
    fn a_package_that_has_not_succeeded_where_the_policy_says_is_refused() {
        let (env, pkg) = (environment(true), package(&[], vec![]));
        let mut f = facts(&env, &pkg, &[]);
        f.promotion_missing = vec!["Test".into()];
        assert_eq!(validate(&f).errors[0].code, "promotion_required");
    }

    #[test]
    fn a_freeze_window_refuses_unless_the_request_asks_to_be_held() {
        let (env, pkg) = (environment(true), package(&[], vec![]));
        let now = Utc::now();
        let frozen = Policy {
            freeze_windows: vec![FreezeWindow { start: now - chrono::Duration::hours(1), end: now + chrono::Duration::hours(1), weekly: false }],
            ..Policy::default()
        };
        let refused = frozen.judge(Change::Deploy, &[Role::Deployer], now, false);
        let mut f = facts(&env, &pkg, &[]);
        f.verdict = &refused;
        assert_eq!(validate(&f).errors[0].code, "freeze_window");
        let held = frozen.judge(Change::Deploy, &[Role::Deployer], now, true);
        f.verdict = &held;
        let report = validate(&f);
        assert!(report.errors.is_empty());
        assert_eq!(report.warnings[0].code, "freeze_window");
    }

    #[test]
    fn connections_beyond_the_plan_are_refused() {
        let (env, pkg) = (environment(true), package(&[ComponentType::Connection, ComponentType::Connection], vec![]));
        let mut f = facts(&env, &pkg, &[]);
        f.connection_licenses = 2;
        assert!(validate(&f).errors.is_empty(), "two connections fit two licences");
        let sftp = ComponentId::new();
        f.connections_elsewhere = vec![ConnectionInUse { id: sftp, name: "SFTP".into(), environments: vec!["Test".into(), "Staging".into()] }];
        let refused = &validate(&f).errors[0];
        assert_eq!(refused.code, "connection_licenses_exceeded");
        for part in ["3 connections", "test environments", "allows 2", "Free 1 licence(s)", &format!("\"SFTP\" ({sftp}) in Test, Staging")] {
            assert!(refused.message.contains(part), "{} names {part}", refused.message);
        }
    }

    #[test]
    fn a_quarantined_version_is_refused_naming_it_the_environment_and_the_ways_on_unless_the_request_overrides_it() {
        let (env, pkg) = (environment(true), package(&[], vec![]));
        let q = Quarantine {
            environment_id: env.id,
            package_id: pkg.id,
            component_id: pkg.component_id,
            version: pkg.version.clone(),
            deployment_id: DeploymentId::new(),
            quarantined_at: Utc::now(),
        };
        let mut f = facts(&env, &pkg, &[]);
        f.quarantine = Some(&q);
        let report = validate(&f);
        assert_eq!(report.errors[0].code, "quarantined");
        let message = &report.errors[0].message;
        for part in ["version \"1\"", "\"Test\"", "override_quarantine", &format!("DELETE /v1/environments/{}/quarantine/{}", env.id, pkg.id)] {
            assert!(message.contains(part), "{message} names {part}");
        }
        f.override_quarantine = true;
        let report = validate(&f);
        assert!(report.errors.is_empty(), "{report:?}");
        assert_eq!(report.warnings[0].code, "quarantine_overridden");
    }
}
