use crate::fixtures::*;
use crate::stores::Stores;
use berth_domain::api_key::ApiKey;
use berth_domain::ids::{ApiKeyId, TenantId};
use berth_domain::refusal::{Entity, Refusal};
use berth_domain::secret::ApiKeyToken;
use berth_domain::values::{Plan, Role};
use chrono::{Duration, Utc};

/// A key of `tenant` as a use case would make it (never used, not revoked).
fn api_key(tenant: TenantId, key_name: &str) -> ApiKey {
    let token = ApiKeyToken::generate(tenant, ApiKeyId::new()).expect("a key");
    let now = Utc::now();
    ApiKey {
        id: token.key,
        name: name(key_name),
        roles: vec![Role::Developer, Role::Deployer],
        hash: token.hash(),
        created_by: "alice@acme.example".into(),
        created_at: now,
        expires_at: now + Duration::days(90),
        last_used_at: None,
        revoked_at: None,
    }
}

impl Stores {
    async fn create_key(&self, tenant: TenantId, key_name: &str) -> ApiKey {
        let key = api_key(tenant, key_name);
        self.api_keys.create_api_key(tenant, &key, draft("api_key.created", "api_key", key.id)).await.expect("the key is created");
        key
    }

    async fn read_key(&self, tenant: TenantId, id: ApiKeyId) -> ApiKey {
        self.api_keys.get_api_key(tenant, id).await.expect("read").expect("the key exists")
    }
}

pub async fn an_api_key_is_created_once_per_id_and_reads_back_as_written_for_its_tenant_only(s: Stores) {
    let (acme, globex) = (s.tenant(Plan::default()).await, s.tenant(Plan::default()).await);
    let key = s.create_key(acme, "ci-main").await;
    assert_eq!(s.read_key(acme, key.id).await, key);

    let same_id = ApiKey { name: name("other"), ..api_key(acme, "other") };
    let same_id = ApiKey { id: key.id, ..same_id };
    let again = s.api_keys.create_api_key(acme, &same_id, draft("api_key.created", "api_key", key.id)).await;
    assert_eq!(refused(again), Refusal::Exists(Entity::ApiKey));
    assert_eq!(s.read_key(acme, key.id).await.name, key.name, "the first key is kept");
    assert_eq!(s.api_keys.get_api_key(globex, key.id).await.expect("read"), None, "another tenant does not see it");
    assert_eq!(s.actions(acme).await, ["tenant.created", "api_key.created"]);
}

pub async fn an_api_key_is_revoked_once_its_record_stays_and_a_missing_one_is_refused(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let key = s.create_key(acme, "ci-main").await;
    let at = Utc::now();
    let revoke = async |id: ApiKeyId| s.api_keys.revoke_api_key(acme, id, at, draft("api_key.revoked", "api_key", id)).await;
    revoke(key.id).await.expect("revoked");
    assert_eq!(s.read_key(acme, key.id).await, ApiKey { revoked_at: Some(at), ..key.clone() }, "kept, marked revoked");

    assert_eq!(refused(revoke(key.id).await), Refusal::Stale(Entity::ApiKey), "revoked already");
    assert_eq!(refused(revoke(ApiKeyId::new()).await), Refusal::Missing(Entity::ApiKey));
    assert_eq!(s.actions(acme).await, ["tenant.created", "api_key.created", "api_key.revoked"], "one revocation, one event");
}

pub async fn an_api_key_use_is_recorded_unaudited_only_when_none_is_recorded_since_the_threshold(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let key = s.create_key(acme, "ci-main").await;
    let first = Utc::now();
    let record = async |at, since| s.api_keys.record_api_key_use(acme, key.id, at, since).await.expect("recorded or not");

    assert!(record(first, first - Duration::seconds(60)).await, "never used: recorded");
    assert_eq!(s.read_key(acme, key.id).await.last_used_at, Some(first));
    let soon = first + Duration::seconds(30);
    assert!(!record(soon, soon - Duration::seconds(60)).await, "a use within the minute is not recorded");
    assert_eq!(s.read_key(acme, key.id).await.last_used_at, Some(first));
    let later = first + Duration::seconds(61);
    assert!(record(later, later - Duration::seconds(60)).await, "a minute on, it is");
    assert_eq!(s.read_key(acme, key.id).await.last_used_at, Some(later));

    assert!(!s.api_keys.record_api_key_use(acme, ApiKeyId::new(), later, first).await.expect("no error"), "a missing key is not created");
    assert_eq!(s.api_keys.get_api_key(acme, ApiKeyId::new()).await.expect("read"), None);
    assert_eq!(s.actions(acme).await, ["tenant.created", "api_key.created"], "uses are not audited");
}

pub async fn api_keys_are_listed_oldest_first_page_by_page_revoked_ones_included(s: Stores) {
    let (acme, globex) = (s.tenant(Plan::default()).await, s.tenant(Plan::default()).await);
    let mut made = vec![];
    for i in 0..5 {
        made.push(s.create_key(acme, &format!("ci-{i}")).await.id);
    }
    s.create_key(globex, "theirs").await;
    s.api_keys.revoke_api_key(acme, made[1], Utc::now(), draft("api_key.revoked", "api_key", made[1])).await.expect("revoked");

    let listed = pages(2, async |page| s.api_keys.list_api_keys(acme, &page).await).await;
    assert!(listed.iter().all(|p| p.len() <= 2));
    let ids: Vec<ApiKeyId> = listed.into_iter().flatten().map(|k| k.id).collect();
    assert_eq!(ids, made, "each once, oldest first, the revoked one too, none of another tenant");
}
