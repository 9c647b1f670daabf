//! Adapters that implement Berth's domain ports on AWS: DynamoDB (one table,
//! single-table design), S3 (one bucket) and SQS (the deployments queue and
//! one queue per runtime). Nothing here knows about LocalStack: the standard
//! `AWS_*` environment chooses the endpoint.

pub mod app;
pub mod bootstrap;
pub mod config;
pub mod dynamo;
pub mod keys;
pub mod s3;
pub mod sqs;
pub mod testing;

pub use config::{AwsClients, ResourceNames};
pub use dynamo::DynamoStore;
pub use s3::S3BlobStore;
pub use sqs::SqsRuntimeQueues;

use berth_domain::DomainError;

/// Any SDK failure the caller cannot fix: logged with its chain, shown as a 500.
pub(crate) fn unexpected<E>(err: E) -> DomainError
where
    E: std::error::Error + Send + Sync + 'static,
{
    DomainError::unexpected(err)
}
