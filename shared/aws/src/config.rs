use aws_config::{BehaviorVersion, SdkConfig};

/// The key alias `make run` seals webhook secrets with unless `BERTH_KMS_KEY_ID` says otherwise.
pub const LOCAL_KMS_KEY_ALIAS: &str = "alias/berth-webhook-secrets";
/// The key alias every test shares.
pub const TEST_KMS_KEY_ALIAS: &str = "alias/berth-test-webhook-secrets";

/// The names of Berth's AWS resources, from the environment (one definition,
/// used by the functions, the bootstrap and the tests).
#[derive(Clone, Debug)]
pub struct ResourceNames {
    /// `BERTH_TABLE`
    pub table: String,
    /// `BERTH_BUCKET`
    pub bucket: String,
    /// Name of the deployments queue (its DLQ is `<name>-dlq`); `BERTH_DEPLOYMENTS_QUEUE`.
    pub deployments_queue: String,
    /// Prefix of every per-runtime queue name; `BERTH_QUEUE_PREFIX`.
    pub queue_prefix: String,
    /// `BERTH_DEPLOYMENTS_QUEUE_URL`, when known (otherwise looked up by name once).
    pub deployments_queue_url: Option<String>,
    /// Name of the package-builds queue (API → package builder; its DLQ is `<name>-dlq`); `BERTH_PACKAGE_BUILDS_QUEUE`.
    pub package_builds_queue: String,
    /// `BERTH_PACKAGE_BUILDS_QUEUE_URL`, when known (otherwise looked up by name once).
    pub package_builds_queue_url: Option<String>,
    /// The role the agent gateway assumes to vend agents their queue
    /// credentials; `BERTH_AGENT_QUEUE_ROLE_ARN`.
    pub queue_role_arn: Option<String>,
    /// The KMS key that seals webhook secrets: a key id, key ARN or alias
    /// (`alias/...`, which the bootstrap creates when missing); `BERTH_KMS_KEY_ID`.
    pub kms_key_id: String,
}

impl ResourceNames {
    pub fn from_env() -> Self {
        let var = |k: &str, default: &str| std::env::var(k).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_string());
        Self {
            table: var("BERTH_TABLE", "berth"),
            bucket: var("BERTH_BUCKET", "berth-packages"),
            deployments_queue: var("BERTH_DEPLOYMENTS_QUEUE", "berth-deployments"),
            queue_prefix: var("BERTH_QUEUE_PREFIX", "berth-"),
            deployments_queue_url: std::env::var("BERTH_DEPLOYMENTS_QUEUE_URL").ok().filter(|v| !v.is_empty()),
            package_builds_queue: var("BERTH_PACKAGE_BUILDS_QUEUE", "berth-package-builds"),
            package_builds_queue_url: std::env::var("BERTH_PACKAGE_BUILDS_QUEUE_URL").ok().filter(|v| !v.is_empty()),
            queue_role_arn: std::env::var("BERTH_AGENT_QUEUE_ROLE_ARN").ok().filter(|v| !v.is_empty()),
            kms_key_id: var("BERTH_KMS_KEY_ID", LOCAL_KMS_KEY_ALIAS),
        }
    }

    /// Names unique to one test (or one parallel run), sharing `stem`.
    pub fn unique(stem: &str) -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let short = &id[..12];
        Self {
            table: format!("{stem}-{short}"),
            bucket: format!("{stem}-{short}"),
            deployments_queue: format!("{stem}-{short}-deployments"),
            queue_prefix: format!("{stem}-{short}-"),
            deployments_queue_url: None,
            package_builds_queue: format!("{stem}-{short}-package-builds"),
            package_builds_queue_url: None,
            // Tests run on LocalStack, which takes any well-formed role ARN.
            queue_role_arn: Some(crate::sts::LOCALSTACK_QUEUE_ROLE_ARN.to_string()),
            // One key for every test: creating a KMS key per test would cost more than the test.
            kms_key_id: TEST_KMS_KEY_ALIAS.to_string(),
        }
    }
}

/// The SDK clients, built once per cold start from one `SdkConfig`.
#[derive(Clone, Debug)]
pub struct AwsClients {
    pub dynamo: aws_sdk_dynamodb::Client,
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub sts: aws_sdk_sts::Client,
    pub kms: aws_sdk_kms::Client,
}

impl AwsClients {
    /// Loads the standard AWS configuration (region, credentials and
    /// `AWS_ENDPOINT_URL` from the environment). S3 path-style addressing is
    /// chosen by `BERTH_S3_FORCE_PATH_STYLE=true` (LocalStack needs it).
    pub async fn from_env() -> Self {
        let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
        let path_style = std::env::var("BERTH_S3_FORCE_PATH_STYLE").map(|v| v == "true" || v == "1").unwrap_or(false);
        Self::from_sdk_config(&sdk, path_style)
    }

    pub fn from_sdk_config(sdk: &SdkConfig, s3_path_style: bool) -> Self {
        let mut dynamo = aws_sdk_dynamodb::config::Builder::from(sdk);
        let mut s3 = aws_sdk_s3::config::Builder::from(sdk).force_path_style(s3_path_style);
        let mut sqs = aws_sdk_sqs::config::Builder::from(sdk);
        let mut sts = aws_sdk_sts::config::Builder::from(sdk);
        let mut kms = aws_sdk_kms::config::Builder::from(sdk);
        // Only when a test records the calls (tests/iam): a Lambda adds nothing.
        if crate::calls::recording() {
            dynamo = dynamo.interceptor(crate::calls::Recorder);
            s3 = s3.interceptor(crate::calls::Recorder);
            sqs = sqs.interceptor(crate::calls::Recorder);
            sts = sts.interceptor(crate::calls::Recorder);
            kms = kms.interceptor(crate::calls::Recorder);
        }
        Self {
            dynamo: aws_sdk_dynamodb::Client::from_conf(dynamo.build()),
            s3: aws_sdk_s3::Client::from_conf(s3.build()),
            sqs: aws_sdk_sqs::Client::from_conf(sqs.build()),
            sts: aws_sdk_sts::Client::from_conf(sts.build()),
            kms: aws_sdk_kms::Client::from_conf(kms.build()),
        }
    }
}
