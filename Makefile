# Cloisonné — local platform, tests and benchmarks.
#   make up     install what is missing, then run the platform with demo content (root)
#               (DB=postgres: the hub database on a private PostgreSQL cluster)
#   make down   stop it and remove every namespace, interface, nft table and cgroup
#   make test   the whole suite (unit, integration, browser; DB=postgres: hubs on PostgreSQL)
#   make bench  benchmarks -> BENCHMARKS.md and bench/results.json
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= /usr/bin/python3
VENV := .venv
PY := $(VENV)/bin/python
CHP := .node/node_modules/.bin/configurable-http-proxy
# oidc-provider 8.x: the 9.x line targets Node 22 and Debian ships Node 20.
OIDC_PROVIDER := .node/node_modules/oidc-provider/package.json
APT_PACKAGES := bubblewrap nftables iproute2 util-linux python3 python3-venv python3-dev nodejs npm \
  postgresql chromium softhsm2
DB ?= sqlite
PYTEST_ARGS ?=

.PHONY: help up down test unit integration lint bench deps root clean kube images labextension

help:
	@sed -n '1,7p' Makefile | sed 's/^# \{0,1\}//'

root:
	@if [ "$$(id -u)" != "0" ]; then \
	  echo "Cloisonné needs root: each workspace runs in its own network namespace with nftables"; \
	  echo "rules and cgroup limits, switched to its user's uid; only root can set these up."; \
	  echo "Run: sudo make $(MAKECMDGOALS)"; exit 1; fi

# Debian packages, only those missing (a fresh Debian machine has none of them).
.deps/apt: Makefile | root
	@mkdir -p .deps
	@missing=""; for p in $(APT_PACKAGES); do \
	  case $$p in nodejs) command -v node >/dev/null && continue;; npm) command -v npm >/dev/null && continue;; esac; \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@touch $@

$(VENV)/.stamp: pyproject.toml extensions/cloisonne/labextension/package.json | .deps/apt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -e '.[test,airlock,kube,data,notebooks,bench]'
	@touch $@

$(CHP) $(OIDC_PROVIDER): | .deps/apt
	npm install --prefix .node --no-audit --no-fund --loglevel=error \
	  configurable-http-proxy@5.3.0 oidc-provider@8.8.1

deps: .deps/apt $(VENV)/.stamp $(CHP) $(OIDC_PROVIDER)

up: root deps
	CLOISONNE_DB=$(DB) $(VENV)/bin/cloisonne up

down: root
	$(VENV)/bin/cloisonne down

lint: $(VENV)/.stamp
	$(VENV)/bin/ruff check extensions hub_config tests bench
	$(VENV)/bin/ruff format --check extensions hub_config tests bench
	$(VENV)/bin/lint-imports

# Every test that starts no hub, sandbox or server: all but integration/, browser/ and the
# tests marked `server` (PostgreSQL, SeaweedFS, the service's tornado app, Jupyter kernels).
unit: $(VENV)/.stamp
	$(VENV)/bin/pytest -q -p no:cacheprovider tests --ignore=tests/integration --ignore=tests/browser \
	  -m "not server" $(PYTEST_ARGS)

integration: root deps
	CLOISONNE_TEST_DB=$(DB) $(VENV)/bin/pytest -q tests/integration $(PYTEST_ARGS)

# DB=postgres runs every hub the integration fixtures start on a private PostgreSQL cluster.
test: root deps lint
	CLOISONNE_TEST_DB=$(DB) $(VENV)/bin/pytest -q -p no:cacheprovider tests $(PYTEST_ARGS)
	bash images/check-requirements.sh

kube: $(VENV)/.stamp
	$(VENV)/bin/pytest -q tests/backends/kube $(PYTEST_ARGS)

# Install the images' pinned requirements in fresh venvs and import them (no Docker here).
images:
	bash images/check-requirements.sh

bench: root deps
	$(PY) bench/run.py

# Rebuild the prebuilt JupyterLab extension (committed under extensions/cloisonne/labextension,
# installed by the package into share/jupyter/labextensions); needs Node and the venv's jlpm.
labextension: $(VENV)/.stamp
	cd extensions/labextension && PATH=$(CURDIR)/$(VENV)/bin:$$PATH jlpm install && \
	  PATH=$(CURDIR)/$(VENV)/bin:$$PATH jlpm build:prod
	$(VENV)/bin/pip install -q --disable-pip-version-check --no-deps -e .

clean:
	rm -rf $(VENV) .node .deps
