use crate::fixtures::*;
use crate::stores::Stores;
use berth_domain::extension::{ComponentValues, ConnectionTest, ConnectionTestStatus, ConnectionValue, EnvironmentExtensions, PropertyValue, SecretScope};
use berth_domain::ids::{ComponentId, EnvironmentId, JobId, RuntimeId};
use berth_domain::policy::Policy;
use berth_domain::refusal::{Entity, Refusal};
use berth_domain::secret::Sensitive;
use berth_domain::values::{Plan, Version};
use chrono::{SubsecRound, Utc};
use std::collections::BTreeMap;

pub async fn an_environments_values_are_stored_once_per_version_read_and_each_environment_has_its_own(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let globex = s.tenant(Plan::default()).await;
    let (env, other, crm) = (EnvironmentId::new(), EnvironmentId::new(), ComponentId::new());
    assert_eq!(s.extensions.get_extensions(acme, env).await.expect("read"), EnvironmentExtensions::default(), "nothing yet: version 0");

    let values = |version: u64, url: &str| {
        let component = ComponentValues {
            changed_in: version,
            connection: BTreeMap::from([
                ("url".to_string(), ConnectionValue::Plain { value: url.to_string() }),
                (
                    "password".to_string(),
                    ConnectionValue::Secret {
                        sealed: berth_domain::webhook::SealedSecret("sealed".into()),
                        updated_at: Utc::now().trunc_subsecs(3),
                        updated_by: "alice".into(),
                    },
                ),
            ]),
            properties: BTreeMap::from([("batch_size".to_string(), PropertyValue::Number(50.into())), ("dry_run".to_string(), PropertyValue::Boolean(true))]),
            lookups: BTreeMap::from([("countries".to_string(), BTreeMap::from([("DE".to_string(), "Germany".to_string())]))]),
        };
        EnvironmentExtensions {
            version,
            components: BTreeMap::from([(crm, component)]),
            updated_at: Some(Utc::now().trunc_subsecs(3)),
            updated_by: Some("alice".into()),
        }
    };
    let put = async |after: &EnvironmentExtensions, expected: u64| {
        s.extensions.put_extensions(acme, env, after, expected, draft("environment.extensions_updated", "environment", env)).await
    };
    let v1 = values(1, "https://crm.test");
    put(&v1, 0).await.expect("the first values are stored");
    assert_eq!(s.extensions.get_extensions(acme, env).await.expect("read"), v1);
    assert_eq!(refused(put(&values(1, "https://rival"), 0).await), Refusal::Stale(Entity::Extensions), "a second first write");

    let v2 = values(2, "https://crm2.test");
    put(&v2, 1).await.expect("replaced from the version read");
    assert_eq!(refused(put(&values(2, "https://rival"), 1).await), Refusal::Stale(Entity::Extensions), "from a stale version");
    assert_eq!(s.extensions.get_extensions(acme, env).await.expect("read"), v2);
    assert_eq!(s.extensions.get_extensions(acme, other).await.expect("read"), EnvironmentExtensions::default(), "values are per environment");
    assert_eq!(s.extensions.get_extensions(globex, env).await.expect("read"), EnvironmentExtensions::default(), "and per tenant");
    assert_eq!(s.actions(acme).await.iter().filter(|a| *a == "environment.extensions_updated").count(), 2, "each write is audited, refusals are not");
}

pub async fn a_sealed_value_opens_only_for_the_tenant_environment_component_and_field_it_was_sealed_for(s: Stores) {
    let (acme, globex) = (s.tenant(Plan::default()).await, s.tenant(Plan::default()).await);
    let scope = SecretScope { tenant: acme, environment: EnvironmentId::new(), component: ComponentId::new(), field: "password".into() };
    let clear = Sensitive::new("correct horse battery staple");
    let sealed = s.extension_sealer.seal_extension(&scope, &clear).await.expect("sealed");
    assert!(!sealed.0.contains("horse"), "the sealed form is not the clear value");
    assert_eq!(s.extension_sealer.open_extension(&scope, &sealed).await.expect("opened"), clear);
    let elsewhere = [
        SecretScope { tenant: globex, ..scope.clone() },
        SecretScope { environment: EnvironmentId::new(), ..scope.clone() },
        SecretScope { component: ComponentId::new(), ..scope.clone() },
        SecretScope { field: "url".into(), ..scope.clone() },
    ];
    for other in elsewhere {
        assert!(s.extension_sealer.open_extension(&other, &sealed).await.is_err(), "opened for {other:?}");
    }
}

pub async fn a_connection_test_replaces_the_one_before_and_ends_only_while_it_is_the_pending_one(s: Stores) {
    let (acme, globex) = (s.tenant(Plan::default()).await, s.tenant(Plan::default()).await);
    let (env, crm, atom, other) = (EnvironmentId::new(), ComponentId::new(), RuntimeId::new(), RuntimeId::new());
    let test = |runtime: RuntimeId| ConnectionTest {
        id: JobId::new(),
        environment_id: env,
        component_id: crm,
        runtime_id: runtime,
        status: ConnectionTestStatus::Pending,
        message: String::new(),
        requested_at: Utc::now().trunc_subsecs(3),
        requested_by: "alice".into(),
        at: None,
    };
    assert_eq!(s.extensions.get_connection_test(acme, env, crm).await.expect("read"), None);
    let first = test(atom);
    s.extensions.put_connection_test(acme, &first).await.expect("stored");
    assert_eq!(s.extensions.pending_connection_tests(acme, atom).await.expect("read"), vec![first.clone()]);
    assert!(s.extensions.pending_connection_tests(acme, other).await.expect("read").is_empty(), "pending for its runtime only");
    assert!(s.extensions.pending_connection_tests(globex, atom).await.expect("read").is_empty(), "and its tenant only");

    let second = test(other);
    s.extensions.put_connection_test(acme, &second).await.expect("a new test replaces the one before");
    let late = ConnectionTest { status: ConnectionTestStatus::Succeeded, message: "ok".into(), at: Some(Utc::now().trunc_subsecs(3)), ..first };
    assert_eq!(refused(s.extensions.finish_connection_test(acme, &late).await), Refusal::Stale(Entity::Extensions), "a replaced test does not end");
    assert!(s.extensions.pending_connection_tests(acme, atom).await.expect("read").is_empty());

    let ended = ConnectionTest { status: ConnectionTestStatus::Failed, message: "refused".into(), at: Some(Utc::now().trunc_subsecs(3)), ..second };
    s.extensions.finish_connection_test(acme, &ended).await.expect("the pending test ends");
    assert_eq!(s.extensions.get_connection_test(acme, env, crm).await.expect("read"), Some(ended.clone()));
    assert_eq!(refused(s.extensions.finish_connection_test(acme, &ended).await), Refusal::Stale(Entity::Extensions), "once");
    assert!(s.extensions.pending_connection_tests(acme, other).await.expect("read").is_empty());
}

pub async fn deleting_an_environment_removes_its_policy_its_extension_values_and_its_connection_tests_and_no_one_elses(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let gone = s.create_env(acme, "Test").await.expect("created");
    let kept = s.create_env(acme, "Production").await.expect("created");
    let crm = ComponentId::new();
    for env in [gone.id, kept.id] {
        let policy = Policy { required_approvals: 1, version: Version(1), ..Policy::default() };
        s.policies.put_policy(acme, env, &policy, Version(0), draft("policy.updated", "environment", env)).await.expect("a policy");
        let connection = BTreeMap::from([("url".to_string(), ConnectionValue::Plain { value: "https://crm".into() })]);
        let values = EnvironmentExtensions {
            version: 1,
            components: BTreeMap::from([(crm, ComponentValues { changed_in: 1, connection, ..ComponentValues::default() })]),
            updated_at: Some(Utc::now().trunc_subsecs(3)),
            updated_by: Some("alice".into()),
        };
        s.extensions.put_extensions(acme, env, &values, 0, draft("environment.extensions_updated", "environment", env)).await.expect("values");
        let test = ConnectionTest {
            id: JobId::new(),
            environment_id: env,
            component_id: crm,
            runtime_id: RuntimeId::new(),
            status: ConnectionTestStatus::Pending,
            message: String::new(),
            requested_at: Utc::now().trunc_subsecs(3),
            requested_by: "alice".into(),
            at: None,
        };
        s.extensions.put_connection_test(acme, &test).await.expect("a test");
    }

    s.environments.delete_environment(acme, &gone, draft("environment.deleted", "environment", gone.id)).await.expect("deleted");
    assert_eq!(s.policies.get_policy(acme, gone.id).await.expect("read"), None, "its policy");
    assert_eq!(s.extensions.get_extensions(acme, gone.id).await.expect("read"), EnvironmentExtensions::default(), "its values");
    assert_eq!(s.extensions.get_connection_test(acme, gone.id, crm).await.expect("read"), None, "its connection test");
    assert!(s.policies.get_policy(acme, kept.id).await.expect("read").is_some(), "the other environment keeps its policy");
    assert_eq!(s.extensions.get_extensions(acme, kept.id).await.expect("read").version, 1, "its values");
    assert!(s.extensions.get_connection_test(acme, kept.id, crm).await.expect("read").is_some(), "and its connection test");
}
