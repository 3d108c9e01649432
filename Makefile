# Two commands on a fresh machine with python3 and git: `make repro`, then `make test`.
# uv is bootstrapped into .tools/ when it is not on PATH; every target installs what it needs.

SHELL := /bin/bash
UV_VERSION := 0.13.9
UV ?= $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
# install (below) syncs .venv whenever pyproject.toml or uv.lock change; runs skip the re-check.
RUN := $(UV) run --no-sync
# make serve: where uvicorn listens (HOST=0.0.0.0 to accept other machines' requests)
HOST ?= 127.0.0.1
PORT ?= 8000
# make bench-scale: rows of synthetic data, engine of the pipeline side; BENCH_ARGS: more flags
# of tools/bench_scale.py (--keep, --json PATH, --markdown PATH, --set KEY=VALUE).
ROWS ?= 100000
ENGINE ?= pandas
# make test: test processes side by side (pytest-xdist; each test file stays in one process, so
# its fixtures are built once). TEST_WORKERS=0 runs them all in this process, in tier order.
TEST_WORKERS ?= 2
export UV_COMPILE_BYTECODE := 1
# OpenMP threads sleep while waiting (the stages set it too, tabml.cli): on a busy machine
# spinning threads made xgboost 10x slower; the bench's plain side gets the same setting.
export OMP_WAIT_POLICY ?= PASSIVE
export DVC_NO_ANALYTICS := 1

.DEFAULT_GOAL := help
.PHONY: help install repro status metrics exp-show remote-s3 remote-check push pull remote-status test test-unit test-fault test-pipeline test-dask test-remote coverage lint format importtime serve bench-serving bench-scale bench-automl

help: ## List the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  make %-15s %s\n", $$1, $$2}'

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

.venv/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --compile-bytecode
	@touch $@

install: .venv/.installed ## Install the locked environment into .venv (bytecode compiled)

repro: install ## Run the whole pipeline on the demo data (dvc repro)
	$(RUN) dvc repro
	@echo "Figures and report: plots/figures/, plots/report.html; metrics: make metrics"

status: install ## What dvc would rerun, and whether outputs match dvc.lock
	$(RUN) dvc status

metrics: install ## Leaderboards of the workspace: CV mean±std, test 95% interval, champion and why
	$(RUN) python -m tools.exp_show --workspace

exp-show: install ## Experiments side by side, best first: changed params, CV score per model (SORT=credit:xgb)
	$(RUN) python -m tools.exp_show $(if $(SORT),--sort-by $(SORT))

remote-s3: install ## Configure the S3 remote from .env (bucket, prefix, region, endpoint) as default
	$(RUN) python -m tools.remote configure-s3

remote-check: install ## Say whether the default remote (or REMOTE=name) is usable, and why not
	$(RUN) python -m tools.remote check $(if $(REMOTE),--remote $(REMOTE))

push: install ## dvc push to the default remote (or REMOTE=name), .env loaded, clear errors
	$(RUN) python -m tools.remote push $(if $(REMOTE),--remote $(REMOTE))

pull: install ## dvc pull from the default remote (or REMOTE=name), .env loaded, clear errors
	$(RUN) python -m tools.remote pull $(if $(REMOTE),--remote $(REMOTE))

remote-status: install ## Compare the local cache with the remote (dvc status -c)
	$(RUN) python -m tools.remote status $(if $(REMOTE),--remote $(REMOTE))

test: install ## Run every test (unit, pipeline, naming) with coverage, TEST_WORKERS at a time
	$(RUN) pytest -n $(TEST_WORKERS) --dist loadfile --cov --cov-config=$(CURDIR)/pyproject.toml --cov-report=term:skip-covered

test-unit: install ## Unit and serving tests only (fast)
	$(RUN) pytest -m "not pipeline and not remote and not fault and not dask"

test-fault: install ## Fault-injection tests: SIGKILL, full or read-only disks, hostile input, hangs
	$(RUN) pytest -m fault

test-pipeline: install ## Pipeline tests only: real dvc repro / exp run in a temporary repo
	$(RUN) pytest -m pipeline

test-dask: install ## Dask engine tests only: the pipeline on a 2-worker LocalCluster
	$(RUN) pytest -m dask

test-remote: install ## Remote tests only: push/pull round trips, a real S3 server on loopback
	$(RUN) pytest -m remote

coverage: install ## Tests with an HTML coverage report in htmlcov/
	$(RUN) pytest --cov --cov-config=$(CURDIR)/pyproject.toml --cov-report=term --cov-report=html

lint: install ## ruff lint and format check
	$(RUN) ruff check .
	$(RUN) ruff format --check .

format: install ## Apply ruff fixes and formatting
	$(RUN) ruff check --fix .
	$(RUN) ruff format .

importtime: install ## Import time of every stage module (each stage is its own process)
	$(RUN) python -m tools.importtime

serve: install ## Serve the models on HOST:PORT (default 127.0.0.1:8000); needs make repro
	$(RUN) uvicorn tabml.serving.app:app --host $(HOST) --port $(PORT) \
		--timeout-keep-alive 5 --limit-concurrency 64 --timeout-graceful-shutdown 10

bench-serving: install ## Latency and throughput of the model server on loopback (needs make repro)
	$(RUN) python -m tools.bench_serving

bench-scale: install ## Pipeline vs a plain script on ROWS synthetic rows (ROWS=100000 ENGINE=pandas|dask)
	$(RUN) python -m tools.bench_scale --rows $(ROWS) --engine $(ENGINE) $(BENCH_ARGS)

# make bench-automl: FLAML and LightGBM come from a throw-away uv overlay (--with), never the
# project's environment; BENCH_ARGS: more flags of tools/bench_automl.py (--trials N, --budget S,
# --datasets credit, --n-jobs N, --json PATH, --markdown PATH, --keep).
bench-automl: install ## Pipeline (tuning off, on) vs a 60 s FLAML run on the same split; several minutes
	$(UV) run --no-sync --with "flaml[automl]" python -m tools.bench_automl $(BENCH_ARGS)
