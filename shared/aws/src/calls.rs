//! A record of every AWS request each function makes, for the IAM coverage
//! test (tests/iam): it compares what the code does with what
//! infra/template.yaml grants each function's role.
//!
//! Off unless a test calls [`start_recording`] before the clients are built:
//! then every client gets an interceptor, and the local runner marks each
//! request with the function serving it ([`serving`]). In a Lambda nothing
//! here runs: no interceptor is added and no request is marked.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// One AWS request, as IAM sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsCall {
    /// The function serving the request (`api`, `agent-gateway`, `webhooks`,
    /// `dispatcher`, `sweeper`), or `None` outside any (the local runner's
    /// bootstrap, a test's own checks).
    pub function: Option<&'static str>,
    /// The SDK's service name: `DynamoDB`, `S3`, `SQS`, `KMS`, `STS`.
    pub service: String,
    /// The SDK's operation name, e.g. `TransactWriteItems`.
    pub operation: String,
    /// What the request acts on, as `(part, resource)`. `part` is empty for
    /// the operation itself, or names a piece IAM authorises on its own:
    /// each item of a DynamoDB transaction (`Put`, `Update`, `Delete`,
    /// `ConditionCheck`, `Get`), `Tags` on an SQS `CreateQueue`, `CopySource`
    /// (the object an S3 `CopyObject` reads), or is
    /// `EncryptionContext:<key>` for each key of a KMS request's context (a
    /// condition IAM can require). `resource` is
    /// a table (`<table>` or `<table>/index/<index>`), an S3 `<bucket>/<key>`,
    /// a queue name, a KMS key id or alias, or a role ARN.
    pub targets: Vec<(String, String)>,
    /// A presigned URL's signing ([`presigning`]): IAM must allow it, but it
    /// is never sent from here (the bench leaves it out of its counts).
    pub presigned: bool,
}

static RECORDING: AtomicBool = AtomicBool::new(false);
static CALLS: Mutex<Vec<AwsCall>> = Mutex::new(Vec::new());

tokio::task_local! {
    static FUNCTION: &'static str;
    static PRESIGNING: ();
}

/// Records every request of the clients built from now on (a test's switch).
pub fn start_recording() {
    RECORDING.store(true, Ordering::SeqCst);
}

pub fn recording() -> bool {
    RECORDING.load(Ordering::SeqCst)
}

/// Every request recorded so far.
pub fn recorded() -> Vec<AwsCall> {
    CALLS.lock().map(|calls| calls.clone()).unwrap_or_default()
}

/// How many requests were recorded so far: a mark to count from with [`since`].
pub fn mark() -> usize {
    CALLS.lock().map(|calls| calls.len()).unwrap_or_default()
}

/// Every request recorded after `mark` (the bench counts an operation's calls so).
pub fn since(mark: usize) -> Vec<AwsCall> {
    CALLS.lock().map(|calls| calls.get(mark..).map(<[AwsCall]>::to_vec).unwrap_or_default()).unwrap_or_default()
}

/// Runs `work` as `function`: the requests it makes are recorded as that function's.
pub async fn serving<F: std::future::Future>(function: &'static str, work: F) -> F::Output {
    FUNCTION.scope(function, work).await
}

/// Runs `work`, the signing of a presigned URL: its request is recorded as `presigned`.
pub async fn presigning<F: std::future::Future>(work: F) -> F::Output {
    PRESIGNING.scope((), work).await
}

/// The interceptor [`crate::AwsClients`] adds while recording.
#[derive(Debug, Default)]
pub(crate) struct Recorder;

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "BerthCallRecorder"
    }

    // Before signing: a presigned request (which is never sent) gets this far too.
    fn read_before_signing(&self, ctx: &BeforeTransmitInterceptorContextRef<'_>, _: &RuntimeComponents, cfg: &mut ConfigBag) -> Result<(), BoxError> {
        let Some(metadata) = cfg.load::<Metadata>() else { return Ok(()) };
        let request = ctx.request();
        let body = request.body().bytes().unwrap_or_default();
        let mut targets = targets(metadata.service(), metadata.name(), request.uri(), body);
        // A copy reads its source (IAM: s3:GetObject on it) as well as writing its target.
        if let Some(source) = request.headers().get("x-amz-copy-source") {
            targets.push(("CopySource".to_string(), percent_encoding::percent_decode_str(source).decode_utf8_lossy().into_owned()));
        }
        let call = AwsCall {
            function: FUNCTION.try_with(|f| *f).ok(),
            service: metadata.service().to_string(),
            operation: metadata.name().to_string(),
            targets,
            presigned: PRESIGNING.try_with(|_| ()).is_ok(),
        };
        if let Ok(mut calls) = CALLS.lock() {
            calls.push(call);
        }
        Ok(())
    }
}

fn targets(service: &str, operation: &str, uri: &str, body: &[u8]) -> Vec<(String, String)> {
    // DynamoDB, SQS and KMS speak JSON (an S3 body is the object itself: not parsed).
    let json = || serde_json::from_slice::<serde_json::Value>(body).unwrap_or_default();
    let whole = |resource: String| vec![(String::new(), resource)];
    match service {
        "DynamoDB" => dynamo_targets(&json()),
        "S3" => whole(s3_object(uri)),
        "SQS" => {
            let json = json();
            // A queue URL's last segment is the queue's name.
            let name = match json["QueueName"].as_str() {
                Some(name) => name.to_string(),
                None => json["QueueUrl"].as_str().and_then(|url| url.rsplit('/').next()).unwrap_or_default().to_string(),
            };
            let mut targets = whole(name.clone());
            if operation == "CreateQueue" && json["tags"].as_object().is_some_and(|t| !t.is_empty()) {
                targets.push(("Tags".to_string(), name));
            }
            targets
        }
        // The encryption context's keys, which IAM conditions can require.
        "KMS" => {
            let json = json();
            let key = json["KeyId"].as_str().unwrap_or_default().to_string();
            let context = json["EncryptionContext"].as_object().into_iter().flatten().map(|(k, _)| (format!("EncryptionContext:{k}"), key.clone()));
            whole(key.clone()).into_iter().chain(context).collect()
        }
        // STS speaks the query protocol: a form body.
        "STS" => whole(form_urlencoded::parse(body).find(|(k, _)| k == "RoleArn").map(|(_, v)| v.into_owned()).unwrap_or_default()),
        _ => whole(String::new()),
    }
}

fn dynamo_targets(json: &serde_json::Value) -> Vec<(String, String)> {
    let table = |request: &serde_json::Value| {
        let name = request["TableName"].as_str().unwrap_or_default();
        match request["IndexName"].as_str() {
            Some(index) => format!("{name}/index/{index}"),
            None => name.to_string(),
        }
    };
    if let Some(items) = json["TransactItems"].as_array() {
        let part = |item: &serde_json::Value| item.as_object().into_iter().flatten().map(|(kind, request)| (kind.clone(), table(request))).collect::<Vec<_>>();
        return items.iter().flat_map(part).collect();
    }
    if let Some(tables) = json["RequestItems"].as_object() {
        return tables.keys().map(|name| (String::new(), name.clone())).collect();
    }
    vec![(String::new(), table(json))]
}

/// `<bucket>/<key>` of a path-style URL (the local runner's), or of a
/// virtual-hosted one (`<bucket>.s3.<region>.amazonaws.com/<key>`).
fn s3_object(uri: &str) -> String {
    let rest = uri.split_once("://").map_or(uri, |(_, rest)| rest);
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let path = path.split('?').next().unwrap_or_default();
    let path = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    match host.split_once(".s3.") {
        Some((bucket, _)) => format!("{bucket}/{path}"),
        None => path.into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transaction_is_recorded_as_its_items_and_a_query_on_an_index_as_the_index() {
        let body = br#"{"TransactItems":[{"Put":{"TableName":"t","Item":{}}},{"ConditionCheck":{"TableName":"t","Key":{}}}]}"#;
        assert_eq!(targets("DynamoDB", "TransactWriteItems", "", body), [("Put".into(), "t".into()), ("ConditionCheck".into(), "t".into())]);
        let query = br#"{"TableName":"t","IndexName":"gsi1"}"#;
        assert_eq!(targets("DynamoDB", "Query", "", query), [(String::new(), "t/index/gsi1".into())]);
    }

    #[test]
    fn queues_objects_and_roles_are_named_as_iam_sees_them() {
        let create = br#"{"QueueName":"s-rt-1","tags":{"berth:tenant":"x"}}"#;
        assert_eq!(targets("SQS", "CreateQueue", "", create), [(String::new(), "s-rt-1".into()), ("Tags".into(), "s-rt-1".into())]);
        let send = br#"{"QueueUrl":"http://127.0.0.1:4566/000000000000/s-rt-1"}"#;
        assert_eq!(targets("SQS", "SendMessage", "", send), [(String::new(), "s-rt-1".into())]);
        assert_eq!(s3_object("http://127.0.0.1:4566/b/tenants/a%23b/c?x-id=GetObject"), "b/tenants/a#b/c");
        assert_eq!(s3_object("https://b.s3.us-east-1.amazonaws.com/tenants/x"), "b/tenants/x");
        let assume = b"Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fq&Version=2011-06-15";
        assert_eq!(targets("STS", "AssumeRole", "", assume), [(String::new(), "arn:aws:iam::1:role/q".into())]);
        let encrypt = br#"{"KeyId":"alias/k","Plaintext":"c2VjcmV0","EncryptionContext":{"tenant_id":"t1"}}"#;
        assert_eq!(targets("KMS", "Encrypt", "", encrypt), [(String::new(), "alias/k".into()), ("EncryptionContext:tenant_id".into(), "alias/k".into())]);
    }
}
