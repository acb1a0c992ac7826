# Every target that needs the environment depends on .venv/.installed, so a fresh
# clone with only python3.11 and make gets everything it needs.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test proto lint bench clean bench-latency bench-throughput bench-append bench-replay bench-routes bench-optimize bench-memory bench-quick

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

BENCH_STAMP := $(VENV)/.bench-installed
BENCH_ARGS ?=
BENCHES := latency throughput append replay routes optimize memory

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/pip install -q -e '.[test,bench]'
	touch $(BENCH_STAMP)

demo: $(STAMP)
	$(BIN)/dspyops demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

proto: $(STAMP)
	$(BIN)/python -m dspyops.protogen

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

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
