use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector};
use aws_smithy_runtime_api::client::runtime_components::{RuntimeComponents, RuntimeComponentsBuilder};
use aws_smithy_types::config_bag::ConfigBag;

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
    ///
    /// In Lambda, when the environment holds the region and the credentials
    /// (as Lambda gives them) and no other AWS setting, the `SdkConfig` is
    /// built from it directly ([`lambda_sdk_config`]); elsewhere, and in a
    /// Lambda configured otherwise, `aws_config`'s default chains load it.
    pub async fn from_env() -> Self {
        let sdk = match lambda_sdk_config(|k| std::env::var(k).ok(), std::env::vars_os().filter_map(|(k, _)| k.into_string().ok())) {
            Some(sdk) => sdk,
            None => {
                let mut loader = aws_config::defaults(BehaviorVersion::latest());
                if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
                    loader = loader.http_client(lambda_https_client());
                }
                loader.load().await
            }
        };
        let path_style = std::env::var("BERTH_S3_FORCE_PATH_STYLE").map(|v| v == "true" || v == "1").unwrap_or(false);
        Self::from_sdk_config(&sdk, path_style)
    }

    pub fn from_sdk_config(sdk: &SdkConfig, s3_path_style: bool) -> Self {
        let checked_once;
        let sdk = match sdk.http_client() {
            Some(inner) => {
                checked_once = sdk.to_builder().http_client(SharedHttpClient::new(CheckedOnce { inner, checked: std::sync::OnceLock::new() })).build();
                &checked_once
            }
            None => sdk,
        };
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

/// The variables Lambda sets (and `AWS_ENDPOINT_URL`), which [`lambda_sdk_config`]
/// reads or may ignore: any other `AWS_*` variable (a profile, a retry mode,
/// a service's own endpoint, FIPS...) is a setting only `aws_config`'s chains
/// read, so its presence sends the configuration through them.
const LAMBDA_AWS_VARS: &[&str] = &[
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_EXECUTION_ENV",
    // Lambda's container credentials (managed instances, SnapStart): the
    // default chain too prefers the keys in the environment to them.
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
];
const LAMBDA_AWS_PREFIXES: &[&str] = &["AWS_LAMBDA_", "AWS_XRAY_"];

/// The `SdkConfig` of a Lambda function, built from its environment without
/// `aws_config`'s provider chains: `None` unless `AWS_LAMBDA_FUNCTION_NAME`,
/// a region (`AWS_REGION`, else `AWS_DEFAULT_REGION`) and static credentials
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN` if
/// set) are all there and no `AWS_*` variable outside [`LAMBDA_AWS_VARS`] is.
///
/// What it holds is what the default chains resolve from that environment:
/// the region, the credentials of the environment (the chain's first
/// provider, so they win there too; Lambda's session credentials last as
/// long as the sandbox that holds them), `AWS_ENDPOINT_URL`, the standard
/// retry (3 attempts), the 3.1 s connect timeout, the lazy identity cache,
/// the latest behaviour version, tokio's sleep, the system clock and the
/// Lambda HTTPS client. It skips building the chains (profile files, IMDS,
/// ECS, SSO, web identity, and one provider per setting), the larger part
/// of a function's configuration time at cold start.
fn lambda_sdk_config(var: impl Fn(&str) -> Option<String>, names: impl Iterator<Item = String>) -> Option<SdkConfig> {
    use aws_config::Region;
    use aws_credential_types::Credentials;
    use aws_credential_types::provider::SharedCredentialsProvider;
    let var = |k: &str| var(k).filter(|v| !v.is_empty());
    var("AWS_LAMBDA_FUNCTION_NAME")?;
    let region = var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION"))?;
    let key = var("AWS_ACCESS_KEY_ID")?;
    let secret = var("AWS_SECRET_ACCESS_KEY")?;
    let mut names = names;
    if names.any(|n| n.starts_with("AWS_") && !LAMBDA_AWS_VARS.contains(&n.as_str()) && !LAMBDA_AWS_PREFIXES.iter().any(|p| n.starts_with(p))) {
        return None;
    }
    let credentials = Credentials::new(key, secret, var("AWS_SESSION_TOKEN"), None, "Environment");
    let mut builder = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .identity_cache(aws_config::identity::IdentityCache::lazy().build())
        .retry_config(aws_config::retry::RetryConfig::standard())
        .timeout_config(aws_config::timeout::TimeoutConfig::builder().connect_timeout(std::time::Duration::from_millis(3100)).build())
        .time_source(aws_smithy_async::time::SharedTimeSource::default())
        .http_client(lambda_https_client());
    builder.set_sleep_impl(aws_smithy_async::rt::sleep::default_async_sleep());
    builder.set_endpoint_url(var("AWS_ENDPOINT_URL"));
    Some(builder.build())
}

/// The SDK's HTTP client, shared by every service client of one `SdkConfig`,
/// whose TLS set-up is checked once per process instead of once per client.
///
/// Each `Client::from_conf` calls `validate_base_client_config`, and the
/// SDK's default HTTPS client answers it by building a whole rustls
/// connector (every system root certificate parsed into a fresh root store)
/// and dropping it, so that the certificate files are read before the first
/// request. With five service clients that is five root stores built and
/// thrown away at every cold start. The first check still reads the
/// certificates at init, and the connector the first request uses is built
/// then, as before; the four repeats are skipped.
#[derive(Debug)]
struct CheckedOnce {
    inner: SharedHttpClient,
    checked: std::sync::OnceLock<()>,
}

impl HttpClient for CheckedOnce {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        self.inner.http_connector(settings, components)
    }

    fn validate_base_client_config(&self, components: &RuntimeComponentsBuilder, cfg: &ConfigBag) -> Result<(), BoxError> {
        if self.checked.get().is_some() {
            return Ok(());
        }
        self.inner.validate_base_client_config(components, cfg)?;
        let _ = self.checked.set(());
        Ok(())
    }

    fn validate_final_config(&self, components: &RuntimeComponents, cfg: &ConfigBag) -> Result<(), BoxError> {
        self.inner.validate_final_config(components, cfg)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.inner.connector_metadata()
    }
}

/// The SDK's HTTPS client (rustls on aws-lc, proxy settings from the
/// environment, as the SDK's default) trusting the Mozilla root certificates
/// compiled into the binary (webpki-root-certs) instead of the system's.
///
/// Why, in Lambda only: the default reads the system trust store at init:
/// the bundle file and then every file of the certificate directory, each
/// certificate parsed from PEM. That file-system walk was the largest single
/// part of the functions' cold init. AWS endpoints chain to Amazon's roots,
/// which the Mozilla set holds. The local runner and the tests keep the
/// system store (a proxy or a private CA there keeps working).
fn lambda_https_client() -> SharedHttpClient {
    SharedHttpClient::new(NoEagerCheck(compiled_roots_https_client()))
}

/// [`lambda_https_client`] without [`NoEagerCheck`]. Its TLS context (the
/// roots as PEM, the form the SDK takes) is made when the first connector
/// is, not at init.
fn compiled_roots_https_client() -> SharedHttpClient {
    use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
    let context = std::sync::OnceLock::<TlsContext>::new();
    aws_smithy_http_client::Builder::new().build_with_connector_fn(move |settings, components| {
        let context = context.get_or_init(|| {
            use base64::Engine as _;
            let mut pem = String::with_capacity(webpki_root_certs::TLS_SERVER_ROOT_CERTS.len() * 2048);
            for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
                pem.push_str("-----BEGIN CERTIFICATE-----\n");
                pem.push_str(&base64::engine::general_purpose::STANDARD.encode(cert.as_ref()));
                pem.push_str("\n-----END CERTIFICATE-----\n");
            }
            let store = TrustStore::empty().with_native_roots(false).with_pem_certificate(pem.into_bytes());
            match TlsContext::builder().with_trust_store(store).build() {
                Ok(context) => context,
                // Not reachable with a trust store and no other setting; the default still works.
                Err(_) => TlsContext::default(),
            }
        });
        let mut builder = aws_smithy_http_client::ConnectorBuilder::default()
            .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc))
            .tls_context(context.clone());
        builder.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            builder.set_sleep_impl(components.sleep_impl());
        }
        builder.set_proxy_config(Some(aws_smithy_http_client::proxy::ProxyConfig::from_env()));
        builder.build()
    })
}

/// An HTTP client whose check at client construction builds nothing.
///
/// The SDK's check builds a whole connector, parses every root certificate
/// into a rustls root store, and drops it: its purpose is to read the
/// system's certificate files at init rather than at the first request.
/// With the roots compiled in there is nothing to read, and the first
/// request builds (and keeps) its own connector anyway, so the check's
/// connector was pure cost: about 150 roots base64-decoded (rustls decodes
/// PEM in constant time, slowly) and parsed, the largest single part of a
/// function's own init work.
#[derive(Debug)]
struct NoEagerCheck(SharedHttpClient);

impl HttpClient for NoEagerCheck {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn validate_base_client_config(&self, _: &RuntimeComponentsBuilder, _: &ConfigBag) -> Result<(), BoxError> {
        Ok(())
    }

    fn validate_final_config(&self, components: &RuntimeComponents, cfg: &ConfigBag) -> Result<(), BoxError> {
        self.0.validate_final_config(components, cfg)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// An HTTP client that counts the SDK's checks of it (and serves nothing).
    #[derive(Debug, Default)]
    struct Counting {
        checks: Arc<AtomicUsize>,
    }

    impl HttpClient for Counting {
        fn http_connector(&self, _: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
            unreachable!("no request is made")
        }

        fn validate_base_client_config(&self, _: &RuntimeComponentsBuilder, _: &ConfigBag) -> Result<(), BoxError> {
            self.checks.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    #[test]
    fn the_five_service_clients_check_the_shared_http_client_once_not_once_each() {
        let counting = Counting::default();
        let checks = counting.checks.clone();
        let sdk = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .http_client(SharedHttpClient::new(counting))
            .build();
        let _clients = AwsClients::from_sdk_config(&sdk, true);
        assert_eq!(checks.load(Ordering::SeqCst), 1, "the TLS set-up the check builds is done once per cold start");
    }

    #[test]
    fn the_lambda_https_client_builds_its_tls_connector_from_the_compiled_in_roots() {
        assert!(webpki_root_certs::TLS_SERVER_ROOT_CERTS.len() > 100, "the Mozilla set is compiled in");
        // The SDK's check of the inner client builds a rustls connector: every
        // root parsed (a root it cannot parse panics).
        compiled_roots_https_client().validate_base_client_config(&RuntimeComponentsBuilder::new("test"), &ConfigBag::base()).expect("connector built");
        // The Lambda client's check builds nothing (the first request does).
        let sdk = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .http_client(lambda_https_client())
            .build();
        let _clients = AwsClients::from_sdk_config(&sdk, false);
    }

    fn lambda_env(extra: &[(&str, &str)]) -> Option<SdkConfig> {
        let mut vars: Vec<(&str, &str)> = vec![
            ("AWS_LAMBDA_FUNCTION_NAME", "berth-api"),
            ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_SESSION_TOKEN", "session"),
            ("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023"),
            ("AWS_XRAY_DAEMON_ADDRESS", "169.254.79.129:2000"),
            ("BERTH_TABLE", "berth"),
        ];
        for (k, v) in extra {
            vars.retain(|(name, _)| name != k);
            vars.push((k, v));
        }
        let lookup = vars.clone();
        lambda_sdk_config(move |k| lookup.iter().find(|(name, _)| *name == k).map(|(_, v)| v.to_string()), vars.into_iter().map(|(k, _)| k.to_string()))
    }

    #[tokio::test]
    async fn in_lambda_the_sdk_config_is_built_from_the_environment() {
        use aws_credential_types::provider::ProvideCredentials;
        let sdk = lambda_env(&[]).expect("Lambda's environment is enough");
        assert_eq!(sdk.region().map(|r| r.as_ref()), Some("eu-west-1"));
        assert_eq!(sdk.endpoint_url(), None);
        assert_eq!(sdk.behavior_version(), Some(BehaviorVersion::latest()));
        assert_eq!(sdk.retry_config().map(|r| r.max_attempts()), Some(3));
        assert!(sdk.sleep_impl().is_some() && sdk.time_source().is_some() && sdk.http_client().is_some() && sdk.identity_cache().is_some());
        let credentials = sdk.credentials_provider().expect("credentials").provide_credentials().await.expect("static credentials");
        assert_eq!((credentials.access_key_id(), credentials.secret_access_key(), credentials.session_token()), ("AKIDEXAMPLE", "secret", Some("session")));
        assert_eq!(credentials.expiry(), None, "the sandbox's credentials last its life");

        let sdk = lambda_env(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"), ("AWS_REGION", ""), ("AWS_SESSION_TOKEN", "")]).expect("LocalStack's");
        assert_eq!(sdk.endpoint_url(), Some("http://127.0.0.1:4566"));
        assert_eq!(sdk.region().map(|r| r.as_ref()), Some("eu-west-1"), "AWS_DEFAULT_REGION when AWS_REGION is empty");
        let credentials = sdk.credentials_provider().expect("credentials").provide_credentials().await.expect("static credentials");
        assert_eq!(credentials.session_token(), None);
    }

    #[test]
    fn outside_lambda_or_with_another_aws_setting_the_default_chain_loads_the_config() {
        assert!(lambda_env(&[("AWS_LAMBDA_FUNCTION_NAME", "")]).is_none(), "not in Lambda: the local runner and the tests");
        assert!(lambda_env(&[("AWS_ACCESS_KEY_ID", "")]).is_none(), "no static credentials");
        assert!(lambda_env(&[("AWS_SECRET_ACCESS_KEY", "")]).is_none(), "no static credentials");
        assert!(lambda_env(&[("AWS_REGION", ""), ("AWS_DEFAULT_REGION", "")]).is_none(), "no region");
        for setting in [
            "AWS_PROFILE",
            "AWS_CONFIG_FILE",
            "AWS_MAX_ATTEMPTS",
            "AWS_RETRY_MODE",
            "AWS_ENDPOINT_URL_DYNAMODB",
            "AWS_USE_FIPS_ENDPOINT",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
        ] {
            assert!(lambda_env(&[(setting, "x")]).is_none(), "{setting} is read by the chains only");
        }
    }
}
