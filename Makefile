# qikflow: `make run` starts the whole local pipeline, `make test` runs the full suite.
# Both install everything they need into .venv and .qikflow/ first.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The console's browser tests drive Debian's chromium (Playwright never downloads a browser).
CHROMIUM := /usr/bin/chromium
# bench/ingest loads the servers with Debian's wrk (a C generator that needs little CPU).
WRK      := /usr/bin/wrk
# The drill with two ingest replicas puts Debian's Caddy in front of them (deploy/Caddyfile).
CADDY    := /usr/bin/caddy
SUDO     := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: install run test drill lint bench clean

install: $(STAMP) .qikflow/kafka/libs/.fetched

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[local,dev,bench]'
	touch $@

.qikflow/kafka/libs/.fetched: $(STAMP) qikflow/local/kafka-pom.xml
	$(BIN)/qikflow broker fetch
	touch $@

# Only when the binary is missing; `make run` does not need it.
$(CHROMIUM):
	$(SUDO) apt-get update
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium

$(CADDY):
	$(SUDO) apt-get update
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends caddy

run: install
	$(BIN)/qikflow up

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

# Starts a test Kafka broker and PostgreSQL, runs the suite, stops what it started.
# Two pytest processes, each taking whole files: most tests wait on Kafka, a process or a
# timeout, so two share this machine's two cores well; a file's tests keep their order.
PYTEST_WORKERS ?= 2
test: lint $(CHROMIUM) $(CADDY)
	bash scripts/with-test-services.sh $(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile --durations=25 $(PYTEST_ARGS)

# The fault drills as soaks: longer load, the broker hung 30 s instead of 15, the rolling
# restart of every broker (too long for `make test`: marked soak), and a table per drill
# (load held, answers by status, answer times, records lost, copies dropped).
drill: install $(CADDY)
	QIKFLOW_DRILL_SOAK=1 bash scripts/with-test-services.sh $(BIN)/pytest -p no:cacheprovider \
		-m '' --timeout 1200 -s -q tests/e2e/test_drills.py tests/e2e/test_cluster_drills.py $(PYTEST_ARGS)

# Only when the binary is missing: a second `make bench` installs nothing.
$(WRK):
	$(SUDO) apt-get update
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends wrk

bench: install $(WRK)
	bash scripts/with-test-services.sh $(BIN)/python -m bench

clean:
	-$(BIN)/qikflow broker stop
	-$(BIN)/qikflow broker stop --name test --port 29092
	-$(BIN)/qikflow pg stop
	-$(BIN)/qikflow pg stop --name pg-test --port 54330
	rm -rf $(VENV) .qikflow .mypy_cache .ruff_cache .pytest_cache .hypothesis *.egg-info
