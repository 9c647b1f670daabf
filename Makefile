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

.PHONY: help run test bench build localstack-up localstack-down localstack-status lint-infra fmt

help:
	@echo "make run    - start LocalStack, create resources and a demo tenant, serve Berth on 127.0.0.1:8080"
	@echo "make test   - install what is needed, start LocalStack, run every test"
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

# Unit, adapter (LocalStack) and end-to-end tests; then the SAM template lint.
test: localstack-up
	cargo build -p berth-agent
ifeq ($(NEXTEST),yes)
	cargo nextest run --workspace --no-fail-fast
else
	cargo test --workspace --no-fail-fast
endif
	@$(MAKE) --no-print-directory lint-infra

# cfn-lint comes with the frozen LocalStack requirements (installed once, cached).
lint-infra:
	@$(LOCALSTACK) install >/dev/null
	@localstack/.venv/bin/cfn-lint infra/template.yaml && echo "cfn-lint: infra/template.yaml ok"

bench: localstack-up
	cargo run --release -p berth-tests --bin berth-bench

fmt:
	cargo fmt --all
