#!/usr/bin/env bash
# The fault-injection suite (tests/faults/main.rs) against a LocalStack of its
# own: DYNAMODB_ERROR_PROBABILITY is global to an instance, so turning it on in
# the shared one would fail everyone else's tests. This instance has its own
# port (a free one unless BERTH_FAULTS_PORT is set), state directory, TMPDIR
# and FILESYSTEM_ROOT (LOCALSTACK_INSTANCE=faults), takes configuration at
# runtime (ENABLE_CONFIG_UPDATES=1) and is stopped when the suite ends.
#
#   tests/faults/run.sh                          # what `make test` runs
#   BERTH_FAULT_PROBABILITY=0.25 tests/faults/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

export LOCALSTACK_INSTANCE=faults
export LOCALSTACK_PORT="${BERTH_FAULTS_PORT:-$(free_port)}"
export ENABLE_CONFIG_UPDATES=1 DYNAMODB_IN_MEMORY=1
LOCALSTACK=(bash localstack/localstack.sh)

"${LOCALSTACK[@]}" start
trap '"${LOCALSTACK[@]}" stop >/dev/null' EXIT

export AWS_ENDPOINT_URL="http://127.0.0.1:$LOCALSTACK_PORT"
export AWS_REGION="${AWS_REGION:-us-east-1}" AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
export BERTH_S3_FORCE_PATH_STYLE=true
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run -p berth-tests --test faults --no-capture
else
    cargo test -p berth-tests --test faults -- --nocapture
fi
