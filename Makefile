# The two commands a newcomer needs: `make run` and `make test` (see README.md).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STATE := .state
export ASTROMINED_STATE_DIR ?= $(CURDIR)/$(STATE)
# The suite runs on both cores (pytest-xdist); a test file stays on one worker (module fixtures).
PYTEST_PARALLEL ?= -n 2 --dist loadfile

.PHONY: help run dev test lint unit integration e2e system-tools simulate clean exporter dashboards demo-k8s reliability bench bench-quality

help:
	@echo "make run    - set up .venv and materialize every asset for the latest complete day (local)"
	@echo "make test   - set up .venv (+ test tools) and run ruff and the whole test suite"
	@echo "make dev    - the Dagster web UI and daemon on http://127.0.0.1:3000 (local)"
	@echo "make demo-k8s - the whole graph through the multi-cluster executor on two simulated clusters"
	@echo "make exporter - pipeline metrics for Prometheus on http://127.0.0.1:9464/metrics (local)"
	@echo "make dashboards - regenerate the alert rules, Grafana dashboards and their Kubernetes manifests (commit them)"
	@echo "make reliability - run every fault-injection/tamper/bad-input case; rewrite docs/reliability.md"
	@echo "make bench  - data-to-model latency, Dagster vs a plain script, on a 1 GB day (BENCHMARKS.md)"
	@echo "make lint | unit | integration | e2e | clean"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel

# Re-install whenever pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

run: $(VENV)/.installed
	$(BIN)/astromined run

# Every step a Kubernetes Job on simulated EKS-A / EKS clusters; prints where each step ran and why.
demo-k8s: $(VENV)/.installed
	$(BIN)/python -m astromined.placement.demo

dev: $(VENV)/.installed
	DAGSTER_HOME=$$($(BIN)/astromined home) $(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

exporter: $(VENV)/.installed
	DAGSTER_HOME=$$($(BIN)/astromined home) $(BIN)/astromined exporter --host 127.0.0.1 --port 9464

# Alert rules and Grafana dashboards as code (astromined/monitoring/rules/, dashboards/, their shared values in
# alert_values.py); a test fails if the committed YAML or JSON is stale.
dashboards: $(VENV)/.installed
	$(BIN)/python -m astromined.monitoring.rules
	$(BIN)/python -m astromined.monitoring.dashboards
	# The Kubernetes PrometheusRule and dashboard ConfigMaps embed the rules and dashboards (infra/k8s/base).
	$(BIN)/python -m astromined.monitoring.kube_manifests

system-tools:
	bash .ci/ensure-system-tools

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: $(VENV)/.installed-test system-tools lint
	$(BIN)/pytest -m "unit or integration or e2e" $(PYTEST_PARALLEL) --durations=25

unit: $(VENV)/.installed-test
	$(BIN)/pytest -m unit

integration: $(VENV)/.installed-test
	$(BIN)/pytest -m integration

e2e: $(VENV)/.installed-test system-tools
	$(BIN)/pytest -m e2e

# The company's metric: downlink files landed → signed uplink package on a 1 GB day, Dagster beside a plain
# script, per stage against its irreducible part; day N+1's cost for N = 1, 7, 30; the model-iteration loop
# (BENCHMARKS.md, "Data-to-model latency"). ~40 min; simulated days are cached under .state/bench/d2m/.
bench: $(VENV)/.installed
	$(BIN)/python benchmarks/data_to_model.py --sections latency,limits --json benchmarks/results/d2m-latency.json
	$(BIN)/python benchmarks/data_to_model.py --sections iteration --json benchmarks/results/d2m-iteration.json
	$(BIN)/python benchmarks/data_to_model.py --sections incremental --share 0.25 \
		--json benchmarks/results/d2m-incremental.json

# Candidate network vs the logistic-regression baseline over simulated populations x days, default scale (BENCHMARKS.md).
bench-quality: $(VENV)/.installed
	$(BIN)/python benchmarks/model_quality.py --unseen

# Every @pytest.mark.fault case, its outcome written to docs/reliability.md (commit it).
reliability: $(VENV)/.installed-test system-tools
	$(BIN)/pytest tests -m fault $(PYTEST_PARALLEL) --reliability-report docs/reliability.md

clean:
	rm -rf $(STATE)
