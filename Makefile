# MarketPulse task runner: `make help` lists the targets. CI calls these too.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# two installs: what running needs, and that plus the test tools (the `dev` extra)
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
ARGS ?=
KAFKA_PORT ?= 9092
KAFKA_HOME ?= .kafka
CHROMIUM ?= /usr/bin/chromium

.DEFAULT_GOAL := help

# Python keeps the bytecode of what it imports (in .venv and src): a PYTHONDONTWRITEBYTECODE
# in the environment (this CI machine sets it) made every process compile every module it
# imports again, numba's and pyarrow's too: 2.5 s of CPU before each command a test runs
# (uv, unlike pip, leaves the compiling to the first import).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: help install browser db-servers run test test-unit test-containers containers check lint docs forecasts screenshots bench bench-peers clean kafka-up kafka-down

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

# uv (installed into .venv by pip, pinned) resolves and installs the pinned dependencies in
# seconds where pip took most of a minute with a warm cache (docs/benchmarks.md, first run);
# where uv cannot be installed, pip does it as before. pip is installed into .venv either way.
# uv tries its cache alone first (--offline), then the index: this machine's package mirror
# answers every revalidation of pyspark's source distribution as modified, so an online
# install fetched and built its 300 MB again each time (the dev install took 29 s with a
# warm cache, 1 s offline). Offline, uv resolves against the index pages it cached last.
UV_VERSION ?= 0.13.9
UV := $(BIN)/uv
define install_into_venv
	@test -x $(UV) || $(PYTHON) -m pip --python $(BIN)/python install --quiet uv==$(UV_VERSION) \
	  || echo "uv could not be installed: pip installs instead"
	if test -x $(UV); then $(UV) pip install --quiet --offline --python $(BIN)/python $(1) 2>/dev/null \
	  || $(UV) pip install --quiet --python $(BIN)/python $(1); \
	else $(BIN)/python -m ensurepip --upgrade >/dev/null && $(BIN)/python -m pip install --quiet $(1); fi
endef

$(RUN_STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv --without-pip $(VENV)
	$(call install_into_venv,pip -e .)
	@touch $(RUN_STAMP)

$(DEV_STAMP): $(RUN_STAMP) pyproject.toml
	$(call install_into_venv,-e ".[dev]")
	@touch $(DEV_STAMP)

install: $(DEV_STAMP) ## create .venv and install MarketPulse with its test tools

# Debian's Chromium for the dashboard's browser tests (needs root, or install it yourself).
$(CHROMIUM):
	apt-get update -qq >/dev/null
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null

browser: $(CHROMIUM) ## install Debian's Chromium for the browser tests

# Debian's PostgreSQL and InfluxDB for the storage tests (the fixtures start private servers).
db-servers: ## install Debian's PostgreSQL, InfluxDB, kubectl and docker-compose when missing (needs root)
	@missing=""; ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="postgresql"; \
	command -v influxd >/dev/null || missing="$$missing influxdb"; \
	command -v kubectl >/dev/null || missing="$$missing kubectl"; \
	command -v docker-compose >/dev/null || { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >/dev/null; }; \
	if [ -n "$$missing" ]; then apt-get update -qq >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi

run: $(RUN_STAMP) ## run the embedded pipeline on a simulated market with the live view (ARGS="--duration 30"); installs no test tools
	$(BIN)/marketpulse run $(ARGS)

# pytest-xdist workers of `make test`: an integration file's tests run on one worker, the
# slowest files first (tests/conftest.py); they mostly wait, so four keep two cores busy
WORKERS ?= 4

test: $(DEV_STAMP) $(CHROMIUM) db-servers ## run the whole test suite (installs Chromium, PostgreSQL, InfluxDB when missing)
	$(BIN)/python -m pytest -n $(WORKERS) --dist loadgroup --no-loadscope-reorder $(ARGS)

test-unit: check ## the quick check, first in CI: ruff and mypy (check), then the unit tests on three workers
	$(BIN)/python -m pytest -n 3 tests/unit $(ARGS)

check: $(DEV_STAMP) ## ruff (lint and format check) over the package, tests, benchmarks and scripts; mypy over the public API
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts
	$(BIN)/mypy

lint: check ## check, then the docs build
	$(MAKE) --no-print-directory docs

docs: $(DEV_STAMP) ## build the documentation site into site/ (mkdocs build --strict: a warning or broken link fails)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir site

forecasts: $(DEV_STAMP) ## docs/forecasts.md: forecast evaluate over the Lean day, the Kaggle indices and a simulated session (a few minutes)
	$(BIN)/python scripts/docs/forecasts.py $(ARGS)

screenshots: $(DEV_STAMP) $(CHROMIUM) ## the dashboard's screenshots in docs/images/ (the Lean day replayed, served, photographed in Chromium)
	$(BIN)/python scripts/docs/screenshot.py --chromium $(CHROMIUM) $(ARGS)

bench: $(DEV_STAMP) ## run the benchmarks, save the runs in bench/results/ and regenerate docs/benchmarks.md
	$(BIN)/python bench/run_all.py

bench-peers: $(DEV_STAMP) ## Quix Streams, PySpark and the Spark route (local[1], local[2]; both stateful operators) beside marketpulse process on one Kafka topic, bars checked equal
	$(BIN)/python bench/peer_venvs.py
	$(BIN)/python bench/run_all.py --only peers

kafka-up: ## start a local Kafka broker (KAFKA_PORT=9092, data in KAFKA_HOME=.kafka)
	$(PYTHON) scripts/kafka_broker.py up --port $(KAFKA_PORT) --home $(KAFKA_HOME)

kafka-down: ## stop the local Kafka broker started by kafka-up
	$(PYTHON) scripts/kafka_broker.py down --home $(KAFKA_HOME)

clean: ## remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache

containers: ## as root: podman set up and the stack's images built from Debian packages (docs/containers.md)
	scripts/containers/setup_podman.sh
	scripts/containers/build_base.sh
	scripts/containers/build_kafka.sh
	scripts/containers/build_image.sh postgres
	scripts/containers/build_image.sh prometheus
	scripts/containers/build_image.sh influxdb
	scripts/containers/build_base.sh spark

test-containers: containers ## as root: the compose stack test: bars in the lake and PostgreSQL, equal; Prometheus scrapes every service; then the spark profile's route
	scripts/containers/stack_smoke.sh
