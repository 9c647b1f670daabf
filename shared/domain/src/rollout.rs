//! Gradual rollout and automatic retry: how a deployment goes out to the
//! runtimes of its environment (all at once, or in batches that each bake
//! before the next starts), how many failed targets it tolerates before it
//! halts, and how often a failed target is tried again by itself.

use crate::error::Validator;
use crate::{DomainError, FieldError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest bake between two batches (a day).
pub const MAX_BAKE_SECONDS: u32 = 86_400;
/// Most targets a batch may name, and most failures a rollout may tolerate.
pub const MAX_TARGETS: u32 = 10_000;
/// Most tries of one target `auto_retry` may ask for (the first included).
pub const MAX_ATTEMPTS: u32 = 10;
/// Longest wait before an automatic retry (an hour).
pub const MAX_BACKOFF_SECONDS: u32 = 3_600;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Every runtime is sent its job at once.
    #[default]
    AllAtOnce,
    /// Batches of `batch_size` runtimes, one after another.
    Batches,
}

/// How many runtimes a batch holds: a number, or a share of the targets
/// (`"25%"`: rounded up, at least one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchSize {
    Count(u32),
    Percent(u32),
}

impl BatchSize {
    /// The runtimes per batch out of `targets`.
    pub fn of(self, targets: usize) -> usize {
        match self {
            Self::Count(n) => usize::try_from(n).unwrap_or(usize::MAX).max(1),
            Self::Percent(p) => (targets * usize::try_from(p).unwrap_or(100)).div_ceil(100).max(1),
        }
    }

    fn check(self) -> Result<(), String> {
        match self {
            Self::Count(n) if n == 0 || n > MAX_TARGETS => Err(format!("must be between 1 and {MAX_TARGETS} targets")),
            Self::Percent(p) if p == 0 || p > 100 => Err("a percentage must be between 1% and 100%".into()),
            _ => Ok(()),
        }
    }
}

impl Serialize for BatchSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Count(n) => s.serialize_u32(*n),
            Self::Percent(p) => s.serialize_str(&format!("{p}%")),
        }
    }
}

impl<'de> Deserialize<'de> for BatchSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        const EXPECTED: &str = "a whole number of targets or a percentage such as \"25%\"";
        impl serde::de::Visitor<'_> for Visitor {
            type Value = BatchSize;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(EXPECTED)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<BatchSize, E> {
                u32::try_from(v).map(BatchSize::Count).map_err(|_| E::custom(format!("must be between 1 and {MAX_TARGETS} targets")))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<BatchSize, E> {
                u64::try_from(v).map_err(|_| E::custom(format!("must be between 1 and {MAX_TARGETS} targets"))).and_then(|v| self.visit_u64(v))
            }
            /// A whole number written `3.0` is a whole number (JSON Schema's `integer` allows it).
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<BatchSize, E> {
                if v.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&v) {
                    self.visit_u64(v as u64)
                } else {
                    Err(E::custom(format!("must be {EXPECTED}")))
                }
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<BatchSize, E> {
                v.strip_suffix('%')
                    .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|n| n.parse::<u32>().ok())
                    .map(BatchSize::Percent)
                    .ok_or_else(|| E::custom(format!("must be {EXPECTED}")))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// How a deployment goes out, as resolved when it was requested: the
/// environment's policy default, or the request's more careful override.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollout {
    pub strategy: Strategy,
    /// Only with `batches`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<BatchSize>,
    /// How long a batch that succeeded runs before the next starts.
    #[serde(default)]
    pub bake_seconds: u32,
    /// More failed targets than this (each after its last attempt) halt the rollout.
    #[serde(default)]
    pub max_failed_targets: u32,
}

/// What a request (or a policy) says of a rollout: fields left out take the
/// policy's (or the defaults).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutRequest {
    pub strategy: Option<Strategy>,
    pub batch_size: Option<BatchSize>,
    pub bake_seconds: Option<u32>,
    pub max_failed_targets: Option<u32>,
}

impl Rollout {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    pub fn in_batches(&self) -> bool {
        self.strategy == Strategy::Batches
    }

    /// `request` over `self` (fields it leaves out keep `self`'s), checked:
    /// fields are named under `prefix` (e.g. `rollout.batch_size`).
    pub fn merged(&self, request: &RolloutRequest, prefix: &str) -> crate::Result<Rollout> {
        let strategy = request.strategy.unwrap_or(self.strategy);
        let batch_size = match strategy {
            // Sizes do not carry over to all_at_once (there is one batch).
            Strategy::AllAtOnce => request.batch_size,
            Strategy::Batches => request.batch_size.or(self.batch_size),
        };
        let merged = Rollout {
            strategy,
            batch_size,
            bake_seconds: request.bake_seconds.unwrap_or(self.bake_seconds),
            max_failed_targets: request.max_failed_targets.unwrap_or(self.max_failed_targets),
        };
        merged.check(prefix)?;
        Ok(merged)
    }

    /// Impossible values, each named under `prefix`.
    pub fn check(&self, prefix: &str) -> crate::Result<()> {
        let mut v = Validator::default();
        let field = |name: &str| format!("{prefix}.{name}");
        match (self.strategy, self.batch_size) {
            (Strategy::Batches, None) => v.push(&field("batch_size"), "is required with strategy batches"),
            (Strategy::Batches, Some(size)) => {
                v.check(&field("batch_size"), size.check());
            }
            (Strategy::AllAtOnce, Some(_)) => v.push(&field("batch_size"), "is only meaningful with strategy batches"),
            (Strategy::AllAtOnce, None) => {}
        }
        if self.bake_seconds > MAX_BAKE_SECONDS {
            v.push(&field("bake_seconds"), format!("must be at most {MAX_BAKE_SECONDS}"));
        }
        if self.max_failed_targets > MAX_TARGETS {
            v.push(&field("max_failed_targets"), format!("must be at most {MAX_TARGETS}"));
        }
        v.finish()
    }

    /// Runtimes per batch out of `targets` (all of them at once).
    pub fn per_batch(&self, targets: usize) -> usize {
        match (self.strategy, self.batch_size) {
            (Strategy::Batches, Some(size)) => size.of(targets),
            _ => targets.max(1),
        }
    }

    /// How many batches `targets` runtimes make.
    pub fn batches(&self, targets: usize) -> u32 {
        u32::try_from(targets.div_ceil(self.per_batch(targets))).unwrap_or(u32::MAX).max(1)
    }

    /// The batch (1-based) of the runtime at `index` in runtime-id order.
    pub fn batch_of(&self, index: usize, targets: usize) -> u32 {
        u32::try_from(index / self.per_batch(targets) + 1).unwrap_or(u32::MAX)
    }

    /// Refuses `requested` (422 `rollout_less_careful`, naming each field)
    /// unless it is at least as careful as `self`, the policy's, for an
    /// environment of `targets` runtimes: batches no larger (all at once may
    /// become batches, not the reverse), a bake no shorter, no more failures tolerated.
    pub fn check_more_careful(&self, requested: &Rollout, targets: usize, prefix: &str) -> crate::Result<()> {
        let mut errors = vec![];
        let field = |name: &str| format!("{prefix}.{name}");
        if self.in_batches() && !requested.in_batches() {
            errors.push(FieldError::new(field("strategy"), "the environment's policy rolls out in batches: a deployment may not go all at once"));
        } else if requested.per_batch(targets) > self.per_batch(targets) {
            errors.push(FieldError::new(
                field("batch_size"),
                format!(
                    "{} target(s) per batch is more than the policy's {} for this environment's {targets} runtime(s)",
                    requested.per_batch(targets),
                    self.per_batch(targets)
                ),
            ));
        }
        if requested.bake_seconds < self.bake_seconds {
            errors.push(FieldError::new(field("bake_seconds"), format!("must be at least the policy's {}", self.bake_seconds)));
        }
        if requested.max_failed_targets > self.max_failed_targets {
            errors.push(FieldError::new(field("max_failed_targets"), format!("must be at most the policy's {}", self.max_failed_targets)));
        }
        if errors.is_empty() { Ok(()) } else { Err(DomainError::Validation { code: "rollout_less_careful", errors }) }
    }
}

/// A deployment's way through its batches (only a rollout in batches has one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// The batch under way (1-based).
    pub batch: u32,
    pub batches: u32,
    /// Set once the batch under way succeeded: the next starts then (it bakes until then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_batch_at: Option<DateTime<Utc>>,
    /// Failed targets a person accepted by resuming after a halt: only
    /// failures beyond them count against `max_failed_targets`.
    #[serde(default)]
    pub accepted_failures: u32,
    /// Counts every move of the rollout; each is written over the one before
    /// only (see `DeploymentStore::step_rollout`), so no move is made twice.
    #[serde(default)]
    pub step: u32,
}

impl Progress {
    /// At batch 1 of `batches`.
    pub fn start(batches: u32) -> Self {
        Self { batch: 1, batches, next_batch_at: None, accepted_failures: 0, step: 0 }
    }

    /// The next move from this one.
    pub fn then(self, change: impl FnOnce(&mut Progress)) -> Self {
        let mut next = self;
        change(&mut next);
        next.step = self.step + 1;
        next
    }
}

/// The environment's automatic retry of failed targets: `attempts` counts
/// every try of a target, the first included.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoRetry {
    pub attempts: u32,
    #[serde(default)]
    pub backoff_seconds: u32,
}

impl AutoRetry {
    pub fn check(&self, v: &mut Validator) {
        if self.attempts == 0 || self.attempts > MAX_ATTEMPTS {
            v.push("auto_retry.attempts", format!("must be between 1 and {MAX_ATTEMPTS} (the first try included)"));
        }
        if self.backoff_seconds > MAX_BACKOFF_SECONDS {
            v.push("auto_retry.backoff_seconds", format!("must be at most {MAX_BACKOFF_SECONDS}"));
        }
    }

    /// When a target that failed its `attempt`-th try at `now` is tried
    /// again, if it has a try left.
    pub fn next_try(&self, attempt: u32, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        (attempt < self.attempts).then(|| now + chrono::Duration::seconds(i64::from(self.backoff_seconds)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batches(size: BatchSize) -> Rollout {
        Rollout { strategy: Strategy::Batches, batch_size: Some(size), bake_seconds: 60, max_failed_targets: 1 }
    }

    fn fields(e: DomainError) -> (&'static str, Vec<String>) {
        match e {
            DomainError::Validation { code, errors } => (code, errors.into_iter().map(|e| e.field).collect()),
            other => panic!("not a validation error: {other:?}"),
        }
    }

    #[test]
    fn a_batch_size_is_a_number_or_a_percentage_rounded_up_and_at_least_one() {
        assert_eq!(serde_json::from_str::<BatchSize>("2").unwrap(), BatchSize::Count(2));
        assert_eq!(serde_json::from_str::<BatchSize>("\"25%\"").unwrap(), BatchSize::Percent(25));
        assert!(serde_json::from_str::<BatchSize>("\"25\"").is_err());
        assert!(serde_json::from_str::<BatchSize>("-1").is_err());
        assert!(serde_json::from_str::<BatchSize>("\"%\"").is_err());
        assert_eq!(serde_json::from_str::<BatchSize>("3.0").unwrap(), BatchSize::Count(3), "a whole number written 3.0");
        assert!(serde_json::from_str::<BatchSize>("2.5").is_err());
        assert_eq!(BatchSize::Percent(25).of(6), 2, "1.5 rounds up");
        assert_eq!(BatchSize::Percent(1).of(6), 1, "at least one");
        assert_eq!(serde_json::to_value(BatchSize::Percent(25)).unwrap(), serde_json::json!("25%"));
    }

    #[test]
    fn six_runtimes_in_batches_of_two_make_three_batches_numbered_in_order() {
        let r = batches(BatchSize::Count(2));
        assert_eq!(r.batches(6), 3);
        assert_eq!((0..6).map(|i| r.batch_of(i, 6)).collect::<Vec<_>>(), [1, 1, 2, 2, 3, 3]);
        assert_eq!(Rollout::default().batches(6), 1);
        assert_eq!(batches(BatchSize::Count(4)).batches(6), 2);
    }

    #[test]
    fn fields_left_out_of_a_request_keep_the_policys_and_impossible_values_are_named() {
        let policy = batches(BatchSize::Count(2));
        let merged = policy.merged(&RolloutRequest { bake_seconds: Some(120), ..Default::default() }, "rollout").unwrap();
        assert_eq!(merged, Rollout { bake_seconds: 120, ..policy });
        let zero = RolloutRequest { batch_size: Some(BatchSize::Count(0)), ..Default::default() };
        assert_eq!(fields(policy.merged(&zero, "rollout").unwrap_err()), ("validation_failed", vec!["rollout.batch_size".to_string()]));
        let no_size = RolloutRequest { strategy: Some(Strategy::Batches), ..Default::default() };
        assert_eq!(fields(Rollout::default().merged(&no_size, "rollout").unwrap_err()).1, ["rollout.batch_size"]);
        let too_much = RolloutRequest { batch_size: Some(BatchSize::Percent(150)), bake_seconds: Some(MAX_BAKE_SECONDS + 1), ..Default::default() };
        assert_eq!(fields(policy.merged(&too_much, "rollout").unwrap_err()).1, ["rollout.batch_size", "rollout.bake_seconds"]);
    }

    #[test]
    fn an_override_may_only_be_more_careful_than_the_policy() {
        let policy = batches(BatchSize::Count(2));
        let ok = Rollout { batch_size: Some(BatchSize::Count(1)), bake_seconds: 120, max_failed_targets: 0, ..policy };
        assert!(policy.check_more_careful(&ok, 6, "rollout").is_ok());
        assert!(policy.check_more_careful(&batches(BatchSize::Percent(30)), 6, "rollout").is_ok(), "30% of 6 is 2, as the policy's 2");
        let (code, named) = fields(policy.check_more_careful(&Rollout::default(), 6, "rollout").unwrap_err());
        assert_eq!((code, named), ("rollout_less_careful", vec!["rollout.strategy".to_string(), "rollout.bake_seconds".into()]));
        let bigger = Rollout { batch_size: Some(BatchSize::Percent(50)), bake_seconds: 10, max_failed_targets: 3, ..policy };
        assert_eq!(
            fields(policy.check_more_careful(&bigger, 6, "rollout").unwrap_err()).1,
            ["rollout.batch_size", "rollout.bake_seconds", "rollout.max_failed_targets"]
        );
        assert!(Rollout::default().check_more_careful(&Rollout { max_failed_targets: 0, ..policy }, 6, "rollout").is_ok(), "all at once may become batches");
    }

    #[test]
    fn an_automatic_retry_counts_the_first_try_and_waits_its_backoff() {
        let now = Utc::now();
        let retry = AutoRetry { attempts: 3, backoff_seconds: 5 };
        assert_eq!(retry.next_try(1, now), Some(now + chrono::Duration::seconds(5)));
        assert_eq!(retry.next_try(2, now), Some(now + chrono::Duration::seconds(5)));
        assert_eq!(retry.next_try(3, now), None, "the third try was the last");
        let mut v = Validator::default();
        AutoRetry { attempts: 0, backoff_seconds: MAX_BACKOFF_SECONDS + 1 }.check(&mut v);
        assert_eq!(fields(v.finish().unwrap_err()).1, ["auto_retry.attempts", "auto_retry.backoff_seconds"]);
    }
}
