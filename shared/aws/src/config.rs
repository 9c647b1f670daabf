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
    pub async fn from_env() -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
            loader = loader.http_client(lambda_https_client());
        }
        let sdk = loader.load().await;
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
    use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
    use base64::Engine as _;
    let mut pem = String::with_capacity(webpki_root_certs::TLS_SERVER_ROOT_CERTS.len() * 2048);
    for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        pem.push_str(&base64::engine::general_purpose::STANDARD.encode(cert.as_ref()));
        pem.push_str("\n-----END CERTIFICATE-----\n");
    }
    let store = TrustStore::empty().with_native_roots(false).with_pem_certificate(pem.into_bytes());
    let context = match TlsContext::builder().with_trust_store(store).build() {
        Ok(context) => context,
        // Not reachable with a trust store and no other setting; the default still works.
        Err(_) => TlsContext::default(),
    };
    aws_smithy_http_client::Builder::new().build_with_connector_fn(move |settings, components| {
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
        // Building the service clients checks the HTTP client, which builds a
        // rustls connector: every root parsed (a root it cannot parse panics).
        let sdk = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .http_client(lambda_https_client())
            .build();
        let _clients = AwsClients::from_sdk_config(&sdk, false);
    }
}
