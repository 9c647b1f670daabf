# Sourced by the test scripts that need a whole Berth over HTTP
# (tests/portal/run.sh, tests/schemathesis/run.sh): a berth-local on a free
# port, on resources of its own in the running LocalStack (started here if it
# is not), stopped when the script exits; and a tenant with a token holding
# every tenant role, created through the platform API.
#
#   start_berth_local <stem-prefix>   sets base, server_log
#   tenant_with_token <name> <sub>    sets tenant, token
#
# The caller sets `set -euo pipefail`, runs from the repository root and
# defines `log`.

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

start_berth_local() {
    local prefix="$1" port stem
    cargo build -p berth-local
    bash localstack/localstack.sh start >/dev/null
    port="$(free_port)"
    stem="$prefix-$(date +%s)-$$"
    base="http://127.0.0.1:$port"
    server_log="$(mktemp -t "berth-$prefix-server.XXXXXX")"
    BERTH_BIND="127.0.0.1:$port" BERTH_TABLE="$stem" BERTH_BUCKET="$stem" BERTH_DEPLOYMENTS_QUEUE="$stem-deployments" BERTH_PACKAGE_BUILDS_QUEUE="$stem-package-builds" BERTH_QUEUE_PREFIX="$stem-" \
        ./target/debug/berth-local serve >"$server_log" 2>&1 &
    server=$!
    trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT

    for _ in $(seq 120); do
        curl -sf "$base/v1/openapi.json" >/dev/null && return 0
        kill -0 "$server" 2>/dev/null || { cat "$server_log"; log "berth-local exited"; exit 1; }
        sleep 0.5
    done
    cat "$server_log"
    log "berth-local did not answer on $base"
    exit 1
}

tenant_with_token() {
    local name="$1" sub="$2" platform
    platform="$(./target/debug/berth-local token --roles platform_admin)"
    tenant="$(curl -sf -X POST "$base/platform/v1/tenants" -H "Authorization: Bearer $platform" -H 'Content-Type: application/json' \
        -d "{\"name\":\"$name\"}" | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')"
    token="$(./target/debug/berth-local token --tenant "$tenant" --roles admin,developer,deployer,approver --sub "$sub")"
}
