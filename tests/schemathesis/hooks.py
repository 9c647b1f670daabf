"""Berth's own schemathesis check, loaded through SCHEMATHESIS_HOOKS by run.sh."""

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
