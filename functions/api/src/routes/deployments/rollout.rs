//! Request and response bodies of gradual rollouts and automatic retries
//! (on a policy, and on a deployment request).

use berth_domain::rollout::{AutoRetry, BatchSize, MAX_BAKE_SECONDS, MAX_TARGETS, Rollout, RolloutRequest, Strategy};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How a deployment goes out to the environment's runtimes. On a policy, the
/// default of its deployments (absent: all at once). On a deployment request,
/// fields left out take the policy's, and the result may only be more careful
/// than the policy (batches no larger, a bake no shorter, no more failures
/// tolerated; all at once may become batches, not the reverse): else 422
/// `rollout_less_careful` naming the fields.
#[derive(Serialize, Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"strategy": "batches", "batch_size": "25%", "bake_seconds": 300, "max_failed_targets": 0}))]
pub struct RolloutBody {
    /// `all_at_once` (default) or `batches`.
    #[schema(value_type = Option<StrategyName>, inline)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Strategy>,
    /// Runtimes per batch, in runtime-id order: a number, or a percentage of
    /// the targets such as `"25%"` (rounded up, at least 1). Required with
    /// `batches`, refused with `all_at_once` (the strategy this body sets, or
    /// else the policy's).
    #[schema(schema_with = batch_size_schema)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<BatchSize>,
    /// How long a batch that succeeded runs before the next starts.
    #[schema(minimum = 0, maximum = 86400)]
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "berth_web::extract::whole::optional")]
    pub bake_seconds: Option<u32>,
    /// More failed targets than this (each after its last attempt) halt the
    /// rollout: `halted`, or `rolled_back` with the policy's `auto_rollback`.
    #[schema(minimum = 0, maximum = 10000)]
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "berth_web::extract::whole::optional")]
    pub max_failed_targets: Option<u32>,
}

/// The strategies a rollout may take.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code, reason = "documents the strings `Strategy` reads")]
pub enum StrategyName {
    AllAtOnce,
    Batches,
}

fn batch_size_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
    Schema::OneOf(
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)).maximum(Some(MAX_TARGETS)))
            .item(ObjectBuilder::new().schema_type(Type::String).pattern(Some("^([1-9][0-9]?|100)%$")))
            .description(Some("a number of runtimes, or a percentage such as \"25%\""))
            .build(),
    )
}

impl From<&RolloutBody> for RolloutRequest {
    fn from(b: &RolloutBody) -> Self {
        RolloutRequest { strategy: b.strategy, batch_size: b.batch_size, bake_seconds: b.bake_seconds, max_failed_targets: b.max_failed_targets }
    }
}

impl RolloutBody {
    /// A policy's rollout (its fields' defaults: all at once, no bake, no failure tolerated).
    pub fn into_rollout(self) -> Rollout {
        Rollout {
            strategy: self.strategy.unwrap_or_default(),
            batch_size: self.batch_size,
            bake_seconds: self.bake_seconds.unwrap_or(0),
            max_failed_targets: self.max_failed_targets.unwrap_or(0),
        }
    }
}

impl From<&Rollout> for RolloutBody {
    fn from(r: &Rollout) -> Self {
        RolloutBody { strategy: Some(r.strategy), batch_size: r.batch_size, bake_seconds: Some(r.bake_seconds), max_failed_targets: Some(r.max_failed_targets) }
    }
}

/// Failed targets are tried again by themselves, each try a new job.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"attempts": 3, "backoff_seconds": 30}))]
pub struct AutoRetryBody {
    /// Every try of a target, the first included (1 to 10).
    #[schema(minimum = 1, maximum = 10)]
    #[serde(deserialize_with = "berth_web::extract::whole::number")]
    pub attempts: u32,
    /// The wait before each retry (0 to 3600; default 0).
    #[serde(default, deserialize_with = "berth_web::extract::whole::number")]
    #[schema(minimum = 0, maximum = 3600)]
    pub backoff_seconds: u32,
}

impl From<AutoRetryBody> for AutoRetry {
    fn from(b: AutoRetryBody) -> Self {
        AutoRetry { attempts: b.attempts, backoff_seconds: b.backoff_seconds }
    }
}

impl From<&AutoRetry> for AutoRetryBody {
    fn from(r: &AutoRetry) -> Self {
        AutoRetryBody { attempts: r.attempts, backoff_seconds: r.backoff_seconds }
    }
}

const _: () = assert!(MAX_BAKE_SECONDS == 86_400, "the schema's maximum of bake_seconds");

#[cfg(test)]
mod whole_number_tests {
    use super::{AutoRetryBody, RolloutBody};
    use serde_json::json;

    #[test]
    fn counts_written_with_a_zero_fraction_read_as_whole_numbers() {
        let retry = serde_json::from_value::<AutoRetryBody>(json!({"attempts": 3.0, "backoff_seconds": 30.0})).expect("whole numbers");
        assert_eq!((retry.attempts, retry.backoff_seconds), (3, 30));
        let rollout = serde_json::from_value::<RolloutBody>(json!({"bake_seconds": 60.0, "max_failed_targets": 0.0})).expect("whole numbers");
        assert_eq!((rollout.bake_seconds, rollout.max_failed_targets), (Some(60), Some(0)));
        assert!(serde_json::from_value::<AutoRetryBody>(json!({"attempts": 2.5})).is_err());
    }
}
