//! What an agent may do with its own job queue when it reads it straight
//! from SQS: the queue's ARN, derived from the URL Berth stored for it, and
//! the session policy that narrows the vended credentials to that one queue.
//!
//! The role the gateway assumes allows more (every runtime queue of the
//! deployment); the session policy is what makes one runtime's credentials
//! useless on another runtime's queue: the effective permissions of an
//! assumed-role session are the intersection of the role's and the session's.

use serde_json::{Value, json};

/// The only SQS actions an agent needs to consume its queue: receive a job,
/// keep it hidden while it runs, delete it once handled.
pub const QUEUE_ACTIONS: [&str; 3] = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"];

/// The IAM policy document for an agent's session: exactly `QUEUE_ACTIONS`
/// on exactly `queue_arn`, nothing else.
pub fn queue_session_policy(queue_arn: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "ConsumeOwnRuntimeQueue",
            "Effect": "Allow",
            "Action": QUEUE_ACTIONS,
            "Resource": queue_arn,
        }]
    })
}

/// The ARN of the queue at `queue_url`. Account id and queue name are the
/// URL's last two path segments; the region is in the host
/// (`sqs.<region>.amazonaws.com`, or the legacy `<region>.queue.amazonaws.com`),
/// in a LocalStack path (`/queue/<region>/<account>/<name>`), or, when the URL
/// names none (LocalStack's `http://localhost:4566/<account>/<name>`), it is
/// `default_region`, the region Berth's own clients use.
pub fn queue_arn(queue_url: &str, default_region: &str) -> Result<String, String> {
    let invalid = || format!("not an SQS queue URL: {queue_url}");
    let rest = queue_url.strip_prefix("https://").or_else(|| queue_url.strip_prefix("http://")).ok_or_else(invalid)?;
    let (host, path) = rest.split_once('/').ok_or_else(invalid)?;
    let host = host.split(':').next().unwrap_or_default();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let [before @ .., account, name] = segments.as_slice() else {
        return Err(invalid());
    };
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(invalid());
    }
    let from_host = match host.split('.').collect::<Vec<_>>().as_slice() {
        ["sqs", region, ..] if is_region(region) => Some(*region),
        [region, "queue", ..] if is_region(region) => Some(*region),
        _ => None,
    };
    let from_path = match before {
        ["queue", region] if is_region(region) => Some(*region),
        _ => None,
    };
    let region = from_host.or(from_path).unwrap_or(default_region);
    if !is_region(region) {
        return Err(format!("not an AWS region: {region}"));
    }
    Ok(format!("arn:{}:sqs:{region}:{account}:{name}", partition(region)))
}

/// `us-east-1`, `eu-central-2`, `us-gov-west-1`, `cn-north-1`...
fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
        && parts.last().is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
}

fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_policy_allows_exactly_three_queue_actions_on_exactly_one_queue_and_nothing_else() {
        let arn = "arn:aws:sqs:eu-west-1:123456789012:berth-rt-1";
        let policy = queue_session_policy(arn);
        assert_eq!(
            policy,
            json!({
                "Version": "2012-10-17",
                "Statement": [{
                    "Sid": "ConsumeOwnRuntimeQueue",
                    "Effect": "Allow",
                    "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"],
                    "Resource": arn,
                }]
            })
        );
        let text = policy.to_string();
        assert!(!text.contains('*'), "no wildcard anywhere: {text}");
        assert!(!text.contains("NotAction") && !text.contains("NotResource") && !text.contains("Condition"), "{text}");
        // AssumeRole refuses a packed session policy over 2,048 characters.
        assert!(text.len() < 2048);
    }

    #[test]
    fn the_session_policy_of_another_queue_names_only_that_queue() {
        let a = queue_session_policy("arn:aws:sqs:us-east-1:123456789012:berth-a");
        let b = queue_session_policy("arn:aws:sqs:us-east-1:123456789012:berth-b");
        assert_eq!(a["Statement"][0]["Resource"], "arn:aws:sqs:us-east-1:123456789012:berth-a");
        assert_eq!(b["Statement"][0]["Resource"], "arn:aws:sqs:us-east-1:123456789012:berth-b");
        assert_eq!(a["Statement"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn a_queue_arn_takes_region_account_and_name_from_an_aws_queue_url() {
        assert_eq!(
            queue_arn("https://sqs.eu-west-1.amazonaws.com/123456789012/berth-0f3a", "us-east-1").as_deref(),
            Ok("arn:aws:sqs:eu-west-1:123456789012:berth-0f3a")
        );
        assert_eq!(
            queue_arn("https://ap-southeast-2.queue.amazonaws.com/123456789012/berth-x", "us-east-1").as_deref(),
            Ok("arn:aws:sqs:ap-southeast-2:123456789012:berth-x")
        );
        assert_eq!(
            queue_arn("https://sqs.cn-north-1.amazonaws.com.cn/123456789012/berth-x", "us-east-1").as_deref(),
            Ok("arn:aws-cn:sqs:cn-north-1:123456789012:berth-x")
        );
        assert_eq!(
            queue_arn("https://sqs.us-gov-west-1.amazonaws.com/123456789012/berth-x", "us-east-1").as_deref(),
            Ok("arn:aws-us-gov:sqs:us-gov-west-1:123456789012:berth-x")
        );
    }

    #[test]
    fn a_localstack_queue_url_without_a_region_uses_the_clients_region() {
        assert_eq!(queue_arn("http://localhost:4566/000000000000/bt-1-rt", "us-east-1").as_deref(), Ok("arn:aws:sqs:us-east-1:000000000000:bt-1-rt"));
        assert_eq!(
            queue_arn("http://sqs.eu-central-1.localhost.localstack.cloud:4566/000000000000/bt-1-rt", "us-east-1").as_deref(),
            Ok("arn:aws:sqs:eu-central-1:000000000000:bt-1-rt")
        );
        assert_eq!(
            queue_arn("http://localhost:4566/queue/eu-west-3/000000000000/bt-1-rt", "us-east-1").as_deref(),
            Ok("arn:aws:sqs:eu-west-3:000000000000:bt-1-rt")
        );
    }

    #[test]
    fn what_is_not_a_queue_url_gives_no_arn() {
        for url in [
            "",
            "sqs.us-east-1.amazonaws.com/123456789012/q",
            "https://sqs.us-east-1.amazonaws.com/",
            "https://sqs.us-east-1.amazonaws.com/q",
            "https://sqs.us-east-1.amazonaws.com/12345/q",
            "https://sqs.us-east-1.amazonaws.com/123456789012/q*",
            "https://sqs.us-east-1.amazonaws.com/123456789012/q:x",
        ] {
            assert!(queue_arn(url, "us-east-1").is_err(), "{url:?} has no ARN");
        }
        assert!(queue_arn("http://localhost:4566/000000000000/q", "nowhere").is_err(), "a bad default region gives no ARN");
    }
}
