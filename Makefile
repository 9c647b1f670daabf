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

.PHONY: help run test test-schemathesis test-faults bench build localstack-up localstack-down localstack-status lint-infra fmt

help:
	@echo "make run    - start LocalStack, create resources and a demo tenant, serve Berth on 127.0.0.1:8080"
	@echo "make test   - install what is needed, start LocalStack, run every test"
	@echo "make test-schemathesis - fuzz the served OpenAPI document (part of make test)"
	@echo "make test-faults - deploy storm under DynamoDB faults, on its own LocalStack (part of make test)"
	@echo "make bench  - print performance figures"
	@echo "make localstack-down - stop LocalStack"

localstack-up:
	@$(LOCALSTACK) start

localstack-down:
	@$(LOCALSTACK) stop

localstack-status:
	@$(LOCALSTACK) status

build:
	cargo build --workspace --bins

run: localstack-up
	cargo build -p berth-agent -p berth-local
	./target/debug/berth-local serve --demo-agent

# Unit, adapter (LocalStack) and end-to-end tests; the SAM template lint;
# then, one after the other, schemathesis against a running Berth and the
# fault-injection storm (on a LocalStack of its own).
test: localstack-up
	cargo build -p berth-agent
ifeq ($(NEXTEST),yes)
	cargo nextest run --workspace --no-fail-fast
else
	cargo test --workspace --no-fail-fast
endif
	@$(MAKE) --no-print-directory lint-infra
	@$(MAKE) --no-print-directory test-schemathesis
	@$(MAKE) --no-print-directory test-faults

test-schemathesis: localstack-up
	tests/schemathesis/run.sh

test-faults:
	tests/faults/run.sh

# cfn-lint comes with the frozen LocalStack requirements (installed once, cached).
lint-infra:
	@$(LOCALSTACK) install >/dev/null
	@localstack/.venv/bin/cfn-lint infra/template.yaml && echo "cfn-lint: infra/template.yaml ok"

bench: localstack-up
	cargo run --release -p berth-tests --bin berth-bench

fmt:
	cargo fmt --all
