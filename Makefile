# Silt: one list of function names that the build, Terraform and SAM follow.
# `make demo` runs the local pipeline; `make test` is what CI runs.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
CARGO ?= cargo
FUNCTIONS := ingest land transform monitor
DEMO_EVENTS ?= 20000
export SILT_PII_KEY ?= demo-only-key-do-not-use-in-production

TOOLS := .tools
MOTO := $(TOOLS)/moto/bin/moto_server
CARGO_LAMBDA_BIN := $(TOOLS)/cargo-lambda/bin
# Pinned so a fresh CI machine gets what the tests were written against.
MOTO_VERSION := 5.2.5
CARGO_LAMBDA_VERSION := 1.9.2

.PHONY: help demo test lint unit lambda-smoke tools build bench clean

help: ## List targets.
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

demo: ## Generate sample CDC events and run the whole local pipeline on them.
	$(CARGO) build -p silt-cli
	target/debug/silt generate --events $(DEMO_EVENTS) --seed 42 --start now-3h --out examples/shop/events.jsonl
	target/debug/silt run --project examples/shop --input examples/shop/events.jsonl

test: lint unit lambda-smoke ## Everything CI checks.

lint: ## Formatting and clippy, warnings as errors.
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit: $(MOTO) ## Unit, end-to-end, property, CLI and moto-backed AWS tests.
	SILT_MOTO_SERVER=$(abspath $(MOTO)) $(CARGO) test --workspace

lambda-smoke: $(MOTO) $(CARGO_LAMBDA_BIN)/cargo-lambda ## Every function through the Lambda Runtime API (cargo lambda watch) against moto.
	$(TOOLS)/moto/bin/python scripts/lambda_smoke.py

tools: $(MOTO) $(CARGO_LAMBDA_BIN)/cargo-lambda ## Install the test tools into .tools/ (one venv each).

# Each Python tool gets its own venv: installed together, pip downgrades some of them.
$(MOTO):
	python3 -m venv $(TOOLS)/moto
	$(TOOLS)/moto/bin/pip install --quiet --disable-pip-version-check 'moto[server]==$(MOTO_VERSION)'

$(CARGO_LAMBDA_BIN)/cargo-lambda:
	python3 -m venv $(TOOLS)/cargo-lambda
	$(TOOLS)/cargo-lambda/bin/pip install --quiet --disable-pip-version-check 'cargo-lambda==$(CARGO_LAMBDA_VERSION)'

build: $(CARGO_LAMBDA_BIN)/cargo-lambda ## Release arm64 zips of every function: target/lambda/<name>/bootstrap.zip.
	PATH="$(abspath $(CARGO_LAMBDA_BIN)):$$PATH" cargo lambda build --release --arm64 --output-format zip $(addprefix --bin ,$(FUNCTIONS))
	@for f in $(FUNCTIONS); do ls -l target/lambda/$$f/bootstrap.zip; done

bench: ## Throughput and peak memory of the local pipeline (release build).
	$(CARGO) bench -p silt-local --bench pipeline --no-run
	@for n in 100000 200000; do \
	  echo "== $$n events, one core"; \
	  SILT_BENCH_EVENTS=$$n SILT_BENCH_THREADS=1 $(CARGO) bench -q -p silt-local --bench pipeline; \
	done
	@echo "== 200000 events, two cores"
	@SILT_BENCH_EVENTS=200000 SILT_BENCH_THREADS=2 $(CARGO) bench -q -p silt-local --bench pipeline

clean: ## Remove build output and the demo warehouse.
	$(CARGO) clean
	rm -rf examples/shop/warehouse examples/shop/events.jsonl
