use crate::stores::Stores;
use berth_domain::ids::RuntimeId;
use berth_domain::queue_access::{queue_arn, queue_session_policy};
use berth_domain::values::Plan;
use std::time::Duration;

const HOUR: Duration = Duration::from_secs(3600);

pub async fn vended_credentials_are_fresh_each_time_and_expire_after_the_duration_asked(s: Stores) {
    let policy = queue_session_policy("arn:aws:sqs:us-east-1:000000000000:berth-contract");
    let session = RuntimeId::new().to_string();
    let first = s.credentials.assume_role(&session, &policy, HOUR).await.expect("credentials are vended");
    let second = s.credentials.assume_role(&session, &policy, HOUR).await.expect("credentials are vended again");

    for c in [&first, &second] {
        assert!(!c.access_key_id.is_empty() && !c.secret_access_key.is_empty() && !c.session_token.is_empty(), "{c:?}");
        let left = c.expiration - chrono::Utc::now();
        assert!(left > chrono::Duration::minutes(55) && left <= chrono::Duration::minutes(61), "valid for the hour asked: {left}");
    }
    assert_ne!(first.access_key_id, second.access_key_id, "each call is a session of its own");
    assert_ne!(first.secret_access_key, second.secret_access_key);
    assert!(!format!("{first:?}").contains(&first.secret_access_key), "Debug never shows the secret");
}

pub async fn a_runtime_queue_has_an_arn_in_the_vendors_region(s: Stores) {
    let acme = s.tenant(Plan::default()).await;
    let runtime = RuntimeId::new();
    let url = s.runtime_queues.create_runtime_queue(acme, runtime).await.expect("the queue is created");
    let region = s.credentials.region();
    let arn = queue_arn(&url, &region).unwrap_or_else(|e| panic!("the queue URL {url} names an ARN: {e}"));
    assert!(arn.starts_with(&format!("arn:aws:sqs:{region}:")), "{arn}");
    assert!(arn.ends_with(&runtime.simple().to_string()), "the ARN names the runtime's queue: {arn}");
}
