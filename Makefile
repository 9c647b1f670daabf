# Berth — the two commands: `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# LocalStack through the standard AWS environment (override to point elsewhere).
export AWS_ENDPOINT_URL ?= http://127.0.0.1:4566
export AWS_REGION ?= us-east-1
export AWS_ACCESS_KEY_ID ?= test
export AWS_SECRET_ACCESS_KEY ?= test
export BERTH_S3_FORCE_PATH_STYLE ?= true
export CARGO_TERM_COLOR ?= never

LOCALSTACK := bash localstack/localstack.sh
NEXTEST := $(shell cargo nextest --version >/dev/null 2>&1 && echo yes)

.PHONY: help bins run test test-schemathesis test-portal test-faults bench build package localstack-up localstack-down localstack-status lint-infra fmt agent-dist

help:
	@echo "make run    - start LocalStack, create resources and a demo tenant, serve Berth on 127.0.0.1:8080"
	@echo "make test   - install what is needed, start LocalStack, run every test"
	@echo "make test-schemathesis - fuzz the served OpenAPI document (part of make test)"
	@echo "make test-portal - type-check a TypeScript client generated from the served OpenAPI document (part of make test)"
	@echo "make test-faults - deploy storm under DynamoDB faults, on its own LocalStack (part of make test)"
	@echo "make bench  - print performance figures"
	@echo "make package - build the Lambda zips and target/package/template.yaml for sam deploy (release, slow)"
	@echo "make agent-dist - build the release berth-agent for old and new Linux (target/dist, with SHA256SUMS)"
	@echo "make localstack-down - stop LocalStack"

localstack-up:
	@$(LOCALSTACK) start

localstack-down:
	@$(LOCALSTACK) stop

localstack-status:
	@$(LOCALSTACK) status

build:
	cargo build --workspace --bins

# The two binaries `make run` starts, built exactly as `make test` builds them:
# one package per cargo invocation. Built together, their dependencies'
# features unify differently (aws-lc-rs, the smithy runtime, ...), so every
# shared crate would compile a second time and `make run` after `make test`
# would wait minutes instead of seconds.
bins:
	cargo build -p berth-agent
	cargo build -p berth-local

run: localstack-up bins
	./target/debug/berth-local serve --demo-agent

# Unit, adapter (LocalStack) and end-to-end tests; the SAM template lint;
# then, one after the other, schemathesis against a running Berth and the
# fault-injection storm (on a LocalStack of its own).
test: localstack-up bins
ifeq ($(NEXTEST),yes)
	cargo nextest run --workspace --no-fail-fast
else
	cargo test --workspace --no-fail-fast
endif
	@$(MAKE) --no-print-directory lint-infra
	@$(MAKE) --no-print-directory test-schemathesis
	@$(MAKE) --no-print-directory test-portal
	@$(MAKE) --no-print-directory test-faults

test-schemathesis: localstack-up
	tests/schemathesis/run.sh

test-portal: localstack-up
	tests/portal/run.sh

test-faults:
	tests/faults/run.sh

# cfn-lint comes with the frozen LocalStack requirements (installed once, cached);
# aws-sam-cli with infra/requirements.txt, into infra/.venv (reinstalled when that
# file changes). `sam validate --lint` transforms the template as SAM does, offline.
SAM_VENV := infra/.venv
lint-infra:
	@$(LOCALSTACK) install >/dev/null
	@localstack/.venv/bin/cfn-lint infra/template.yaml && echo "cfn-lint: infra/template.yaml ok"
	@want="$$(sha256sum infra/requirements.txt | cut -d' ' -f1)"; \
	if [ "$$(cat $(SAM_VENV)/.requirements.sha256 2>/dev/null)" != "$$want" ] || ! $(SAM_VENV)/bin/python -c '' 2>/dev/null; then \
		echo "lint-infra: installing aws-sam-cli into $(SAM_VENV)..."; rm -rf $(SAM_VENV) && python3 -m venv $(SAM_VENV) && \
		$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check -r infra/requirements.txt && echo "$$want" > $(SAM_VENV)/.requirements.sha256; \
	fi
	@SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam validate --lint --template infra/template.yaml --region us-east-1

bench: localstack-up
	cargo build --release -p berth-agent -p berth-local
	cargo build --release -p berth-bench-hello -p berth-api -p berth-agent-gateway -p berth-webhooks -p berth-dispatcher -p berth-packager -p berth-sweeper
	cargo run --release -p berth-tests --bin berth-bench

fmt:
	cargo fmt --all

# The five Lambda functions as release zips (cargo-lambda + zig from PyPI,
# glibc pinned to Amazon Linux 2023's 2.34) and a template that deploys them:
# see infra/package.sh. Not part of `make test` (a release build of five
# functions takes many minutes on 2 cores).
package:
	infra/package.sh

# The release agent for customers' machines: linked by zig against an old
# glibc (2.17) so that one binary runs on old and new distributions. zig and
# cargo-zigbuild come from PyPI into a venv of their own (installed once).
# Another target: make agent-dist AGENT_TARGET=aarch64-unknown-linux-gnu.2.17
# (or x86_64-unknown-linux-musl), once `rustup target add` has installed it.
AGENT_TARGET ?= x86_64-unknown-linux-gnu.2.17
AGENT_DIST_VENV := agent/dist/.venv
AGENT_VERSION = $(shell sed -n 's/^version = "\(.*\)"/\1/p' agent/Cargo.toml | head -1)

agent-dist:
	@test -x $(AGENT_DIST_VENV)/bin/cargo-zigbuild || { python3 -m venv $(AGENT_DIST_VENV) && $(AGENT_DIST_VENV)/bin/pip install -q ziglang cargo-zigbuild; }
	PATH="$(abspath $(AGENT_DIST_VENV))/bin:$$PATH" CARGO_PROFILE_RELEASE_STRIP=symbols \
		cargo zigbuild --release --locked -p berth-agent --target $(AGENT_TARGET)
	@mkdir -p target/dist
	@triple=$$(echo '$(AGENT_TARGET)' | sed -E 's/\.[0-9]+\.[0-9]+$$//'); \
		out=berth-agent-$(AGENT_VERSION)-$$triple; \
		cp target/$$triple/release/berth-agent target/dist/$$out && \
		cd target/dist && sha256sum berth-agent-* > SHA256SUMS && ls -l $$out && cat SHA256SUMS
