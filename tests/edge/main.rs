//! Edge behaviour: auth, bad input, idempotency, If-Match, quotas, concurrency.
