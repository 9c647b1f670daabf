#!/usr/bin/env bash
# Generates TypeScript types from the OpenAPI document a running Berth serves
# (openapi-typescript) and type-checks the portal-style client in src/ against
# them (tsc, strict). src/client.ts also holds `@ts-expect-error` lines: a
# mistake the types must catch (a wrong role, a missing required field, an
# unknown path...); if the document stops typing one, tsc fails on that line.
# Then it runs the client for real (src/smoke.ts) against that Berth.
#
#   tests/portal/run.sh          # what `make test` runs (LocalStack up, AWS_* set)
#
# Berth is a berth-local on a free port, on resources of its own in the
# running LocalStack, with a tenant created through the platform API.
# node_modules is installed with `npm ci` from the committed package-lock.json
# (reinstalled only when that file changes).
set -euo pipefail
cd "$(dirname "$0")/../.."
HERE=tests/portal

log() { echo "portal: $*"; }

install_node_modules() {
    local marker="$HERE/node_modules/.package-lock.sha256" want
    want="$(sha256sum "$HERE/package-lock.json" | cut -d' ' -f1)"
    if [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ]; then
        return
    fi
    log "installing openapi-typescript, typescript and openapi-fetch into $HERE/node_modules..."
    (cd "$HERE" && npm ci --prefer-offline --no-audit --no-fund --loglevel=error)
    echo "$want" >"$marker"
}

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

install_node_modules
cargo build -p berth-local
bash localstack/localstack.sh start >/dev/null

port="$(free_port)"
stem="pt-$(date +%s)-$$"
base="http://127.0.0.1:$port"
server_log="$(mktemp -t berth-portal-server.XXXXXX)"
BERTH_BIND="127.0.0.1:$port" BERTH_TABLE="$stem" BERTH_BUCKET="$stem" BERTH_DEPLOYMENTS_QUEUE="$stem-deployments" BERTH_PACKAGE_BUILDS_QUEUE="$stem-package-builds" BERTH_QUEUE_PREFIX="$stem-" \
    ./target/debug/berth-local serve >"$server_log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT

for _ in $(seq 120); do
    curl -sf "$base/v1/openapi.json" >/dev/null && break
    kill -0 "$server" 2>/dev/null || { cat "$server_log"; log "berth-local exited"; exit 1; }
    sleep 0.5
done
curl -sf "$base/v1/openapi.json" -o "$HERE/openapi.json" || { cat "$server_log"; log "berth-local did not answer on $base"; exit 1; }

log "generating $HERE/src/berth.d.ts from $base/v1/openapi.json"
(cd "$HERE" && npx --no-install openapi-typescript openapi.json --output src/berth.d.ts)
# One tsc run is both the check (any type error, or an unused
# @ts-expect-error, exits non-zero) and the build of the smoke runner.
log "type-checking the portal client (tsc, strict)"
(cd "$HERE" && rm -rf dist && npx --no-install tsc -p . --noEmit false --outDir dist)

platform="$(./target/debug/berth-local token --roles platform_admin)"
tenant="$(curl -sf -X POST "$base/platform/v1/tenants" -H "Authorization: Bearer $platform" -H 'Content-Type: application/json' \
    -d '{"name":"Portal"}' | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')"
token="$(./target/debug/berth-local token --tenant "$tenant" --roles admin,developer,deployer,approver --sub portal@berth.example)"

log "running the client against $base (tenant $tenant; server log $server_log)"
BERTH_URL="$base" BERTH_TOKEN="$token" node "$HERE/dist/smoke.js"
