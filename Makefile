# Silt: one list of function names that the build, Terraform and SAM follow.
# `make demo` runs the local pipeline; `make test` is what CI runs.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
CARGO ?= cargo
# Where cargo puts what it builds: users who set CARGO_TARGET_DIR get it there.
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
FUNCTIONS := ingest land transform monitor
DEMO_EVENTS ?= 20000
export SILT_PII_KEY ?= demo-only-key-do-not-use-in-production

TOOLS := .tools
MOTO := $(TOOLS)/moto/bin/moto_server
CARGO_LAMBDA_BIN := $(TOOLS)/cargo-lambda/bin
# Pinned so a fresh CI machine gets what the tests were written against.
MOTO_VERSION := 5.2.5
CARGO_LAMBDA_VERSION := 1.9.2
SAM_VERSION := 1.170.0
CFN_LINT_VERSION := 1.58.0
CHECKOV_VERSION := 3.3.30
HCL2_VERSION := 8.1.4
PYYAML_VERSION := 6.0.4
BOTO3_VERSION := 1.44.18
PYARROW_VERSION := 26.0.1
DUCKDB_VERSION := 2.0.1

# Headless Chromium renders the HTML report in its test (Debian's package).
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# make fuzz: cargo-fuzz on the nightly toolchain, each target for FUZZ_SECONDS.
CARGO_FUZZ_VERSION := 0.13.2
CARGO_FUZZ := $(TOOLS)/cargo-fuzz/bin/cargo-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := ingest_debezium ingest_dms ingest_dynamodb ingest_plain ingest_auto config

SAM_VENV := $(TOOLS)/sam
CHECKOV_VENV := $(TOOLS)/checkov
HCL2_VENV := $(TOOLS)/hcl2
# The infra venv: python-hcl2 and PyYAML read the templates, boto3 puts their
# roles into moto for the IAM contract. The stamp names the versions, so a
# venv from before a version change is completed.
INFRA_PY := $(HCL2_VENV)/.ready-$(HCL2_VERSION)-$(BOTO3_VERSION)
# Other readers of Silt's Parquet (tests/readback.rs): pyarrow and DuckDB.
READBACK_VENV := $(TOOLS)/readback
READBACK_PY := $(READBACK_VENV)/.ready-$(PYARROW_VERSION)-$(DUCKDB_VERSION)
STACK ?= silt
# SSM SecureString parameter holding the PII key on AWS (create it before deploying).
PII_KEY_PARAMETER ?= /silt/pii-key
REGION ?= eu-west-1

.PHONY: help demo test lint unit lambda-smoke infra-check tools readback-venv build deploy-sam deploy-tf bench bench-instructions load fuzz clean

help: ## List targets.
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

demo: ## Generate sample CDC events and run the whole local pipeline on them.
	$(CARGO) build -p silt-cli
	@# 20,000 events at about 0.46 s apart span about 2.6 hours: starting 160 minutes ago, the newest is minutes old.
	$(TARGET_DIR)/debug/silt generate --events $(DEMO_EVENTS) --seed 42 --start now-160m --out examples/shop/events.jsonl
	$(TARGET_DIR)/debug/silt run --project examples/shop --input examples/shop/events.jsonl

test: lint unit lambda-smoke infra-check ## Everything CI checks.

lint: ## Formatting, clippy (warnings as errors), no import cycle in silt-core, crate layering.
	$(CARGO) fmt --all --check
	python3 scripts/module_cycles.py
	@# Crate layering: the transform function gets DataFusion from silt-engine,
	@# not from silt-local; ingest, land and monitor link no DataFusion at all.
	@if $(CARGO) tree -p transform -e normal --prefix none | grep -q '^silt-local '; then \
	  echo "lint: the transform function links silt-local"; exit 1; fi
	@for f in ingest land monitor; do \
	  if $(CARGO) tree -p $$f -e normal --prefix none | grep -q '^datafusion'; then \
	    echo "lint: the $$f function links DataFusion"; exit 1; fi; done
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit: $(MOTO) $(CHROMIUM) $(INFRA_PY) $(READBACK_PY) ## Unit, end-to-end, property, CLI, headless-Chromium, read-back and moto-backed AWS tests.
	@# The moto-backed function tests act through the Terraform roles, then again through the SAM roles.
	SILT_MOTO_SERVER=$(abspath $(MOTO)) SILT_CHROMIUM=$(CHROMIUM) SILT_READBACK_PYTHON=$(abspath $(READBACK_VENV))/bin/python \
	  SILT_ROLES_FROM=terraform $(CARGO) test --workspace
	SILT_MOTO_SERVER=$(abspath $(MOTO)) SILT_ROLES_FROM=sam $(CARGO) test -p silt-tests --test suite aws::

lambda-smoke: $(MOTO) $(CARGO_LAMBDA_BIN)/cargo-lambda ## Every function through the Lambda Runtime API (cargo lambda watch) against moto.
	$(TOOLS)/moto/bin/python scripts/lambda_smoke.py

tools: $(MOTO) $(CHROMIUM) $(CARGO_LAMBDA_BIN)/cargo-lambda $(SAM_VENV)/bin/sam $(CHECKOV_VENV)/bin/checkov $(INFRA_PY) $(READBACK_PY) ## Install the test tools into .tools/ (one venv each).

infra-check: $(SAM_VENV)/bin/sam $(CHECKOV_VENV)/bin/checkov $(INFRA_PY) ## Offline checks of Terraform and SAM, and their parity.
	AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=offline AWS_SECRET_ACCESS_KEY=offline SAM_CLI_TELEMETRY=0 \
	  $(SAM_VENV)/bin/sam validate --lint -t infra/sam/template.yaml
	$(SAM_VENV)/bin/cfn-lint infra/sam/template.yaml
	$(CHECKOV_VENV)/bin/checkov -d infra/terraform --skip-download --compact --quiet
	$(CHECKOV_VENV)/bin/checkov -f infra/sam/template.yaml --framework cloudformation --skip-download --compact --quiet
	@if command -v terraform >/dev/null; then \
	  TF_CLI_CONFIG_FILE=/dev/null terraform fmt -check -recursive infra/terraform && echo "terraform fmt: ok"; \
	else echo "terraform fmt: skipped (no terraform binary here; HCL is still parsed below)"; fi
	$(HCL2_VENV)/bin/python infra/checks/parity.py --self-test

# Each Python tool gets its own venv: installed together, pip downgrades some of them.
$(MOTO):
	python3 -m venv $(TOOLS)/moto
	$(TOOLS)/moto/bin/pip install --quiet --disable-pip-version-check 'moto[server]==$(MOTO_VERSION)'

$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "Install Chromium (Debian/Ubuntu package chromium) or pass CHROMIUM=/path/to/chromium"; exit 1; }
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium

$(CARGO_FUZZ):
	$(CARGO) install --locked --quiet --root $(TOOLS)/cargo-fuzz cargo-fuzz --version $(CARGO_FUZZ_VERSION)

$(CARGO_LAMBDA_BIN)/cargo-lambda:
	python3 -m venv $(TOOLS)/cargo-lambda
	$(TOOLS)/cargo-lambda/bin/pip install --quiet --disable-pip-version-check 'cargo-lambda==$(CARGO_LAMBDA_VERSION)'

$(SAM_VENV)/bin/sam:
	python3 -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check 'aws-sam-cli==$(SAM_VERSION)' 'cfn-lint==$(CFN_LINT_VERSION)'

$(CHECKOV_VENV)/bin/checkov:
	python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check 'checkov==$(CHECKOV_VERSION)'

# checkov ships a fork that takes over `import hcl2`: the parity check gets its own venv.
$(INFRA_PY):
	[ -x $(HCL2_VENV)/bin/python ] || python3 -m venv $(HCL2_VENV)
	$(HCL2_VENV)/bin/pip install --quiet --disable-pip-version-check 'python-hcl2==$(HCL2_VERSION)' 'pyyaml==$(PYYAML_VERSION)' 'boto3==$(BOTO3_VERSION)'
	touch $@

# The zips go to target/lambda whatever CARGO_TARGET_DIR says: both templates deploy from there.
$(READBACK_PY):
	[ -x $(READBACK_VENV)/bin/python ] || python3 -m venv $(READBACK_VENV)
	$(READBACK_VENV)/bin/pip install --quiet --disable-pip-version-check 'pyarrow==$(PYARROW_VERSION)' 'duckdb==$(DUCKDB_VERSION)'
	touch $@

readback-venv: $(READBACK_PY) ## The pyarrow and DuckDB venv the read-back test reads Silt's files with.

build: $(CARGO_LAMBDA_BIN)/cargo-lambda ## Release arm64 zips of every function: target/lambda/<name>/bootstrap.zip.
	PATH="$(abspath $(CARGO_LAMBDA_BIN)):$$PATH" cargo lambda build --release --arm64 --output-format zip --lambda-dir target/lambda $(addprefix --bin ,$(FUNCTIONS))
	@for f in $(FUNCTIONS); do ls -l target/lambda/$$f/bootstrap.zip; done

deploy-sam: build $(SAM_VENV)/bin/sam ## Deploy with AWS SAM (needs AWS credentials): STACK=silt REGION=eu-west-1.
	$(SAM_VENV)/bin/sam deploy --template-file infra/sam/template.yaml --stack-name $(STACK) --region $(REGION) \
	  --resolve-s3 --capabilities CAPABILITY_NAMED_IAM --parameter-overrides Name=$(STACK) PiiKeyParameter=$(PII_KEY_PARAMETER)

deploy-tf: build ## Deploy with Terraform (needs AWS credentials and the registry): infra/terraform/examples/complete.
	cd infra/terraform/examples/complete && terraform init && terraform apply -var region=$(REGION)

# The benchmarks measure what users get: the pipeline benchmark runs as
# `silt run` does (mimalloc's defaults), decode_land with the allocator options
# both templates give the ingest and land functions (README, "Memory").
SILT_STREAM_ALLOCATOR := MIMALLOC_ARENA_EAGER_COMMIT=0 MIMALLOC_PURGE_DELAY=1000 \
  GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4194304:glibc.malloc.trim_threshold=67108864
BENCH_INPUT := $(TARGET_DIR)/bench/events-200000.jsonl

# One core for both sides of the yardstick, where taskset exists.
PIN_ONE_CORE := $(shell command -v taskset >/dev/null 2>&1 && echo taskset -c 0)

bench: $(READBACK_PY) ## Throughput and peak memory of the local pipeline, decode and land apart, and the Lambda handlers per invocation with their cost (release build).
	$(CARGO) bench -p silt-local --bench pipeline --no-run
	$(CARGO) bench -p silt-lake --bench decode_land --no-run
	$(CARGO) bench -p ingest --bench invocations --no-run
	@for batch in 50000 10000; do for n in 100000 200000; do \
	  echo "== $$n events, one core, batches of $$batch"; \
	  SILT_BENCH_EVENTS=$$n SILT_BENCH_THREADS=1 SILT_BENCH_BATCH=$$batch $(CARGO) bench -q -p silt-local --bench pipeline; \
	done; done
	@echo "== 200000 events, two cores"
	@SILT_BENCH_EVENTS=200000 SILT_BENCH_THREADS=2 $(CARGO) bench -q -p silt-local --bench pipeline
	@mkdir -p $(dir $(BENCH_INPUT))
	@test -s $(BENCH_INPUT) || SILT_BENCH_GENERATE_TO=$(abspath $(BENCH_INPUT)) SILT_BENCH_EVENTS=200000 $(CARGO) bench -q -p silt-local --bench pipeline
	@echo "== the yardstick, one core: silt's local pipeline, then bench/pyarrow_duckdb.py, over the same 200000 events"
	@SILT_BENCH_EVENTS=200000 SILT_BENCH_THREADS=1 $(PIN_ONE_CORE) $(CARGO) bench -q -p silt-local --bench pipeline
	@$(PIN_ONE_CORE) $(READBACK_VENV)/bin/python bench/pyarrow_duckdb.py $(BENCH_INPUT) $(TARGET_DIR)/bench/yardstick
	@echo "== decode and land apart: 200000 events, one thread, batches of 10000, in memory"
	@$(SILT_STREAM_ALLOCATOR) SILT_BENCH_INPUT=$(abspath $(BENCH_INPUT)) $(CARGO) bench -q -p silt-lake --bench decode_land
	@echo "== Lambda-shaped: the ingest and land handlers per invocation, by batch shape, with cost per million events"
	@# The handlers' EMF lines go to stdout, as on Lambda; the results to stderr.
	@$(SILT_STREAM_ALLOCATOR) SILT_BENCH_INPUT=$(abspath $(BENCH_INPUT)) $(CARGO) bench -q -p ingest --bench invocations >/dev/null

# Timings move 10-20% between runs and more between machines; instruction
# counts do not, so changes to decode and land are compared with these.
bench-instructions: ## Instructions per event of decode and land under callgrind (valgrind), 20,000 events.
	@mkdir -p $(dir $(BENCH_INPUT))
	@test -s $(BENCH_INPUT) || SILT_BENCH_GENERATE_TO=$(abspath $(BENCH_INPUT)) SILT_BENCH_EVENTS=200000 $(CARGO) bench -q -p silt-local --bench pipeline
	@bin=$$($(CARGO) bench -p silt-lake --bench decode_land --no-run 2>&1 | sed -n 's/.*Executable.*(\(.*\)).*/\1/p'); \
	  test -n "$$bin" || { echo "bench-instructions: no decode_land binary"; exit 1; }; \
	  $(SILT_STREAM_ALLOCATOR) python3 scripts/bench_instructions.py "$$bin" $(BENCH_INPUT) 20000

LOAD_EVENTS ?= 1000000
LOAD_DIR ?= $(TARGET_DIR)/load
load: ## LOAD_EVENTS (default 1,000,000) generated events through silt run (release build), with peak memory.
	$(CARGO) build --profile bench -p silt-cli
	@mkdir -p $(LOAD_DIR)
	@test -s $(LOAD_DIR)/events-$(LOAD_EVENTS).jsonl || $(TARGET_DIR)/release/silt generate --events $(LOAD_EVENTS) --seed 7 --out $(LOAD_DIR)/events-$(LOAD_EVENTS).jsonl
	@rm -rf $(LOAD_DIR)/warehouse
	@/usr/bin/time -f 'load: %e s wall, peak RSS %M KiB' $(TARGET_DIR)/release/silt run --project examples/shop \
	  --input $(LOAD_DIR)/events-$(LOAD_EVENTS).jsonl --warehouse $(LOAD_DIR)/warehouse | tail -n 12

fuzz: $(CARGO_FUZZ) ## Run every cargo-fuzz target for FUZZ_SECONDS (default 60) on nightly; crashes are kept in fuzz/regressions/.
	@rustup run nightly rustc --version >/dev/null 2>&1 || { echo "make fuzz needs the nightly toolchain: rustup toolchain install nightly"; exit 1; }
	@status=0; for t in $(FUZZ_TARGETS); do \
	  mkdir -p fuzz/corpus/$$t fuzz/regressions/$$t; \
	  case $$t in config) seeds="../examples ../events/hostile";; *) seeds="../events";; esac; \
	  echo "== $$t for $(FUZZ_SECONDS) s"; \
	  mkdir -p fuzz/target; log=fuzz/target/$$t.log; \
	  if (cd fuzz && PATH="$(abspath $(TOOLS)/cargo-fuzz/bin):$$PATH" cargo +nightly fuzz run $$t corpus/$$t $$seeds \
	    -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -timeout=10 -print_final_stats=1) > $$log 2>&1; \
	  then grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb)' $$log || true; \
	  else status=1; tail -n 30 $$log; fi; \
	  if ls fuzz/artifacts/$$t/* >/dev/null 2>&1; then \
	    echo "!! $$t found crashes: copied to fuzz/regressions/$$t/ (tests/fuzz_regressions.rs replays them)"; \
	    cp fuzz/artifacts/$$t/* fuzz/regressions/$$t/; rm -f fuzz/artifacts/$$t/*; status=1; \
	  fi; \
	done; exit $$status

clean: ## Remove build output and the demo warehouse.
	$(CARGO) clean
	rm -rf examples/shop/warehouse examples/shop/events.jsonl
