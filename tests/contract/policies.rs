use crate::fixtures::*;
use crate::stores::Stores;
use berth_domain::ids::EnvironmentId;
use berth_domain::policy::Policy;
use berth_domain::refusal::{Entity, Refusal};
use berth_domain::values::{Plan, Version};

pub async fn a_policy_is_stored_once_and_then_replaced_only_from_the_version_read(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let (env, other) = (EnvironmentId::new(), EnvironmentId::new());
    let put =
        async |policy: &Policy, expected: u64| s.policies.put_policy(acme, env, policy, Version(expected), draft("policy.updated", "environment", env)).await;
    assert_eq!(s.policies.get_policy(acme, env).await.expect("read"), None);

    let v1 = Policy { required_approvals: 1, version: Version(1), ..Policy::default() };
    put(&v1, 0).await.expect("the first policy is stored");
    assert_eq!(s.policies.get_policy(acme, env).await.expect("read"), Some(v1.clone()));
    let rival = Policy { required_approvals: 3, version: Version(1), ..Policy::default() };
    assert_eq!(refused(put(&rival, 0).await), Refusal::Stale(Entity::Policy), "a second first policy");

    let v2 = Policy { auto_rollback: true, version: Version(2), ..v1.clone() };
    put(&v2, 1).await.expect("replaced from the version read");
    assert_eq!(refused(put(&Policy { version: Version(2), ..rival }, 1).await), Refusal::Stale(Entity::Policy), "from a stale version");
    assert_eq!(s.policies.get_policy(acme, env).await.expect("read"), Some(v2));
    assert_eq!(s.policies.get_policy(acme, other).await.expect("read"), None, "policies are per environment");
    let stale_elsewhere = s.policies.put_policy(acme, other, &v1, Version(1), draft("policy.updated", "environment", other)).await;
    assert_eq!(refused(stale_elsewhere), Refusal::Stale(Entity::Policy), "a version where there is none");
    assert_eq!(s.actions(acme).await.iter().filter(|a| *a == "policy.updated").count(), 2);
}
