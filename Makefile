# klambda: `make run` tries it, `make test` checks it. Everything else is a step of those.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CACHE ?= $(HOME)/.cache/klambda
export PIP_CACHE_DIR ?= $(CACHE)/pip

.PHONY: help venv run test setup testenv lint typecheck importlint check proto crds pytest bench soak clean images chart-crds \
	dashboard docker-engine cluster-images cluster cluster-down

help:
	@echo "make run    - set up, start the example functions locally and invoke them"
	@echo "make test   - set up everything the tests need, then run lint, types and all tests"
	@echo "make bench  - run the benchmarks and rewrite bench/RESULTS.md"
	@echo "make soak   - a long run of mixed load (SOAK_MINUTES, default 30); writes bench/SOAK.md"
	@echo "make cluster / cluster-down - klambda on a local kind cluster (docs/kubernetes.md)"

$(VENV)/.installed: pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "klambda needs Python >= 3.11")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev,operator,tune,deploy]'
	touch $@

venv: $(VENV)/.installed

run: venv
	scripts/run-demo.sh

# System packages the integration tests start for real (nats-server, prometheus, openssl),
# and the AWS SAM CLI (in its own venv) whose sample events the trigger tests compare with.
setup:
	scripts/setup-system.sh
	CACHE=$(CACHE) scripts/setup-sam.sh

# The Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager) and helm,
# built from the Go module proxy once and cached in $(CACHE)/bin.
testenv:
	scripts/testenv.sh

PY_PATHS := runtime operator tests scripts $(wildcard bench)

lint: venv
	$(VENV)/bin/ruff check $(PY_PATHS)
	$(VENV)/bin/ruff format --check $(PY_PATHS)

typecheck: venv
	$(VENV)/bin/mypy

importlint: venv
	$(VENV)/bin/lint-imports

check: lint typecheck importlint

proto: venv
	scripts/gen-proto.sh

crds: venv
	$(PY) scripts/gen_crds.py
	scripts/check-chart.sh --sync-crds

chart-crds:
	scripts/check-chart.sh --sync-crds

# The chart's Grafana dashboard, generated with grafana-foundation-sdk
dashboard: venv
	$(PY) scripts/gen_dashboard.py

# A Docker engine set up for kind here (Debian's dockerd, started in the background).
docker-engine:
	scripts/cluster/docker-engine.sh

# The operator, runtime and NATS images, built with no registry (docs/kubernetes.md);
# KLAMBDA_IMAGE_SOURCE=registry builds from python:slim and PyPI instead.
images: venv docker-engine
	scripts/cluster/images.sh

# Everything the kind tier (tests/kind) and `make cluster` need, built and cached, so the
# tests themselves only create the cluster: with prometheus-operator and Prometheus, which
# the monitoring test installs.
cluster-images: venv docker-engine
	scripts/cluster/node-image.sh >/dev/null
	scripts/cluster/images.sh >/dev/null
	scripts/cluster/images.sh --monitoring >/dev/null
	scripts/testenv.sh kind kubectl helm >/dev/null

# klambda on a kind cluster: build what is missing, create it, helm install, apply examples.
cluster: venv
	scripts/cluster/up.sh

cluster-down:
	scripts/cluster/down.sh

pytest: venv
	scripts/pytest.sh

test: venv setup testenv cluster-images check pytest

bench: venv setup
	$(PY) -m bench.run

# Bounded: SOAK_MINUTES of load, then an idle check of a few minutes; needs wrk (make setup).
SOAK_MINUTES ?= 30
soak: venv
	$(PY) -m bench.soak --minutes $(SOAK_MINUTES)

clean:
	rm -rf $(VENV) examples/functions/.klambda .mypy_cache .ruff_cache .pytest_cache
