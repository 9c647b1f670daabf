#!/usr/bin/env bash
# Fuzzes the served OpenAPI document with schemathesis: a berth-local on a
# free port, on resources of its own in the running LocalStack, with a tenant
# created through the platform API and a token holding every tenant role.
# Checks: all of schemathesis's (`--checks all`: no 5xx, every status,
# content type, header and response body as documented, schema-valid requests
# accepted and schema-invalid ones refused, ...), tuned in schemathesis.toml
# beside this script; and two of Berth's (hooks.py): every 4xx/5xx is
# application/problem+json with a string `code`, and schema-valid data is
# refused 422 only on fields whose validity depends on stored data or the clock.
#
#   tests/schemathesis/run.sh          # what `make test` runs (LocalStack up, AWS_* set)
#   BERTH_SCHEMATHESIS_SECONDS=300 tests/schemathesis/run.sh
#
# schemathesis is installed once into tests/schemathesis/.venv from the frozen
# requirements.txt beside this script (reinstalled when that file changes).
set -euo pipefail
cd "$(dirname "$0")/../.."
HERE=tests/schemathesis
VENV="$HERE/.venv"
SECONDS_BUDGET="${BERTH_SCHEMATHESIS_SECONDS:-90}"

log() { echo "schemathesis: $*"; }

install_venv() {
    local marker="$VENV/.requirements.sha256" want
    want="$(sha256sum "$HERE/requirements.txt" | cut -d' ' -f1)"
    if [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ] && "$VENV/bin/python" -c '' 2>/dev/null; then
        return
    fi
    log "installing schemathesis into $VENV..."
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$HERE/requirements.txt"
    echo "$want" >"$marker"
}

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

install_venv
cargo build -p berth-local
bash localstack/localstack.sh start >/dev/null

port="$(free_port)"
stem="st-$(date +%s)-$$"
base="http://127.0.0.1:$port"
server_log="$(mktemp -t berth-schemathesis-server.XXXXXX)"
BERTH_BIND="127.0.0.1:$port" BERTH_TABLE="$stem" BERTH_BUCKET="$stem" BERTH_DEPLOYMENTS_QUEUE="$stem-deployments" BERTH_PACKAGE_BUILDS_QUEUE="$stem-package-builds" BERTH_QUEUE_PREFIX="$stem-" \
    ./target/debug/berth-local serve >"$server_log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT

for _ in $(seq 120); do
    curl -sf "$base/v1/openapi.json" >/dev/null && break
    kill -0 "$server" 2>/dev/null || { cat "$server_log"; log "berth-local exited"; exit 1; }
    sleep 0.5
done
curl -sf "$base/v1/openapi.json" >/dev/null || { cat "$server_log"; log "berth-local did not answer on $base"; exit 1; }

platform="$(./target/debug/berth-local token --roles platform_admin)"
tenant="$(curl -sf -X POST "$base/platform/v1/tenants" -H "Authorization: Bearer $platform" -H 'Content-Type: application/json' \
    -d '{"name":"Schemathesis"}' | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')"
token="$(./target/debug/berth-local token --tenant "$tenant" --roles admin,developer,deployer,approver --sub schemathesis@berth.example)"

log "fuzzing $base/v1/openapi.json for ${SECONDS_BUDGET}s (tenant $tenant; server log $server_log)"
# Every check but `use_after_free`, which expects a deleted resource to answer
# 404: two DELETEs keep it readable by design (a revoked API key stays, with
# `revoked_at`, for the audit trail; a deleted package stays, marked `deleted`,
# as deployments name it), and 4.32.5's stateful phase does not honour a
# per-operation `enabled = false` for it.
# One worker: hypothesis's lambda descriptions call ast.parse, which CPython
# 3.11 does not make thread-safe ("AST constructor recursion depth mismatch").
SCHEMATHESIS_HOOKS=hooks PYTHONPATH="$HERE" "$VENV/bin/schemathesis" --config-file "$HERE/schemathesis.toml" run "$base/v1/openapi.json" \
    --header "Authorization: Bearer $token" \
    --checks all --exclude-checks use_after_free \
    --max-time "$SECONDS_BUDGET" --workers 1 --request-timeout 30 \
    --suppress-health-check all --no-color
