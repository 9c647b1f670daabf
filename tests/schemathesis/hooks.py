"""Berth's own schemathesis check, loaded through SCHEMATHESIS_HOOKS by run.sh."""

import re

import schemathesis


@schemathesis.check
def errors_are_problems_with_a_code(ctx, response, case):
    """Every 4xx and 5xx is application/problem+json with a string `code` (README, Conventions)."""
    if response.status_code < 400:
        return None
    content_type = (response.headers.get("content-type") or [""])[0].split(";")[0].strip()
    if content_type != "application/problem+json":
        raise AssertionError(f"{response.status_code} answered as {content_type or 'no content type'!r}, not application/problem+json")
    try:
        problem = response.json()
    except Exception as e:  # noqa: BLE001 - any unreadable body fails the check
        raise AssertionError(f"{response.status_code} problem is not JSON: {e}") from e
    if not isinstance(problem, dict) or not isinstance(problem.get("code"), str) or not problem["code"]:
        raise AssertionError(f"{response.status_code} problem without a string code: {problem!r}")
    if problem.get("status") != response.status_code:
        raise AssertionError(f"{response.status_code} problem says status {problem.get('status')!r}")
    return None


# The fields whose refusal of schema-valid data depends on data, not shape
# (see schemathesis.toml): by operation, the field paths (as the 422 names
# them, indices stripped) a positive request may be refused on.
CURSOR = {"cursor"}
PositiveRefusals = {
    # A property's default must be of the property's `type`: a rule across two
    # fields, which the document states in words, not in the schema.
    "POST /v1/components": {"references[]", "extensions.properties[].default"},
    "POST /v1/components/{id}/revisions": {"references[]", "references", "extensions.properties[].default"},
    # What the uploaded content turned out to be (stored data), and the revision's fields as above.
    "POST /v1/components/{id}/uploads/{upload_id}/complete": {"references[]", "references", "extensions.properties[].default", "size", "sha256"},
    # A rollout's batch_size goes with strategy batches only (a rule across two fields, stated in words; at a deploy
    # the strategy may be the stored policy's).
    "PUT /v1/environments/{id}/policy": {"require_success_in[]", "require_success_in", "approver_roles", "freeze_windows[].end", "rollout.batch_size"},
    "POST /v1/api-keys": {"expires_at"},
    # A deployment names a package, or a component with latest_revision: true;
    # the document lists both sets of fields (one object), the server takes one.
    "POST /v1/deployments": {"scheduled_at", "component_id", "package_id", "latest_revision", "rollout.batch_size"},
    "POST /v1/deployments/validate": {"component_id", "package_id", "latest_revision"},
    "GET /v1/audit/verify": CURSOR,
}
# Field paths by prefix: an environment's extension values are judged against
# the extension points its components declare (stored data): `components.<id>...`.
PositiveRefusalPrefixes = {
    "PUT /v1/environments/{id}/extensions": ("components.",),
}
# On every POST: an Idempotency-Key used before with another body (state).
IDEMPOTENCY_KEY = {"Idempotency-Key"}


def _field_pattern(field):
    return re.sub(r"\[\d+\]", "[]", field)


@schemathesis.check
def positive_data_refused_only_for_state(ctx, response, case):
    """Schema-valid data answered 422 only on a field whose validity depends on stored data or the clock."""
    meta = case.meta
    if response.status_code != 422 or meta is None or not meta.generation.mode.is_positive:
        return None
    try:
        problem = response.json()
    except Exception:  # noqa: BLE001 - errors_are_problems_with_a_code reports it
        return None
    fields = {_field_pattern(e.get("field", "")) for e in problem.get("errors") or [] if isinstance(e, dict)}
    operation = f"{case.operation.method.upper()} {case.operation.path}"
    allowed = PositiveRefusals.get(operation, set())
    if case.method.upper() == "GET":
        allowed = allowed | CURSOR
    if case.method.upper() == "POST":
        allowed = allowed | IDEMPOTENCY_KEY
    if not fields:
        raise AssertionError(f"schema-valid data refused 422 without naming a field: {problem.get('code')!r}")
    prefixes = PositiveRefusalPrefixes.get(operation, ())
    if prefixes:
        fields = {f for f in fields if not f.startswith(prefixes)}
    if not fields <= allowed:
        raise AssertionError(f"schema-valid data refused 422 on {sorted(fields - allowed) or problem.get('code')!r}: {problem.get('errors')!r}")
    return None
