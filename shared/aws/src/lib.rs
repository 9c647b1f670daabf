//! Adapters that implement Berth's domain ports on AWS: DynamoDB (one table,
//! single-table design), S3 (one bucket), SQS (the deployments queue and
//! one queue per runtime) and KMS (sealing webhook secrets). Nothing here knows about LocalStack: the standard
//! `AWS_*` environment chooses the endpoint.

pub mod app;
pub mod bootstrap;
pub mod calls;
pub mod config;
pub mod dynamo;
pub mod keys;
pub mod kms;
pub mod s3;
pub mod sqs;
pub mod sts;
pub mod testing;

pub use config::{AwsClients, ResourceNames};
pub use dynamo::DynamoStore;
pub use kms::KmsSealer;
pub use s3::S3BlobStore;
pub use sqs::SqsRuntimeQueues;
pub use sts::StsCredentialVendor;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use berth_domain::DomainError;
use std::error::Error;

/// Any failure the caller cannot fix that is not an AWS call's: logged with
/// its chain, shown as a 500.
pub(crate) fn unexpected<E>(err: E) -> DomainError
where
    E: Error + Send + Sync + 'static,
{
    DomainError::unexpected(err)
}

/// Error codes meaning "busy, or briefly failing: the same call may succeed
/// later", from DynamoDB, S3 and SQS, plus the generic ones the SDK itself
/// retries. (`TransactionConflict` as a cancellation reason is handled where
/// transactions are written.)
const TRANSIENT_CODES: &[&str] = &[
    // DynamoDB
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "TransactionConflictException",
    "TransactionInProgressException",
    "LimitExceededException",
    // S3
    "SlowDown",
    "ServiceUnavailable",
    "InternalError",
    "RequestTimeout",
    // SQS
    "RequestThrottled",
    "KmsThrottled",
    "AWS.SimpleQueueService.ServiceUnavailable",
    "InternalFailure",
    // KMS
    "KMSInternalException",
    "DependencyTimeoutException",
    "KeyUnavailableException",
    // Generic
    "Throttling",
    "ThrottledException",
    "TooManyRequestsException",
    "ServiceUnavailableException",
    "RequestTimeoutException",
    "PriorRequestNotComplete",
];

fn transient_code(code: Option<&str>) -> bool {
    code.is_some_and(|c| TRANSIENT_CODES.contains(&c))
}

/// Throttling, a 5xx, a timeout, a lost connection or an unreadable response:
/// worth retrying later.
fn transient<E: ProvideErrorMetadata>(err: &SdkError<E>) -> bool {
    match err {
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) => true,
        // A user error is a configuration mistake (say, a bad endpoint): retrying will not help.
        SdkError::DispatchFailure(failure) => !failure.is_user(),
        SdkError::ServiceError(context) => transient_code(context.err().code()) || context.raw().status().is_server_error(),
        _ => false,
    }
}

/// The one classifier of failed AWS calls, seen after the SDK's own retries
/// are spent: a transient failure is `Unavailable` (503 with `Retry-After`,
/// so clients and agents retry), anything else `Unexpected` (500).
pub(crate) fn sdk_error<E>(err: SdkError<E>) -> DomainError
where
    E: ProvideErrorMetadata + Error + Send + Sync + 'static,
{
    let retry = transient(&err);
    // The service's own error when there is one (its code and message are the useful part of the log).
    let source: Box<dyn Error + Send + Sync> = match err {
        SdkError::ServiceError(context) => Box::new(context.into_err()),
        other => Box::new(other),
    };
    if retry { DomainError::unavailable(source) } else { DomainError::unexpected(source) }
}

/// `sdk_error` for a call site that already took the operation error out
/// (`into_service_error`) to look for an expected one. Failures that were not
/// the service's (timeouts, lost connections) travel inside it as its source.
pub(crate) fn service_error<E>(err: E) -> DomainError
where
    E: ProvideErrorMetadata + Error + Send + Sync + 'static,
{
    let retry = transient_code(err.code()) || err.source().and_then(|s| s.downcast_ref::<SdkError<E>>()).is_some_and(transient);
    if retry { DomainError::unavailable(err) } else { DomainError::unexpected(err) }
}
