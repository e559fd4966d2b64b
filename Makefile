# deploybell — the two commands a newcomer needs: `make demo` and `make test`.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CLUSTER := $(PY) hack/cluster/localcluster.py
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

# deps-<goal>: the system packages that goal needs, installed when missing (hack/deps.py says
# what each is for; without root it names them and the command). `make deps` checks every goal's.
.PHONY: deps
deps: ## install the system packages every goal needs (Debian, as root), each said what it is for
	@PYTHON=$(PYTHON) $(PYTHON) hack/deps.py all

deps-%:
	@PYTHON=$(PYTHON) $(PYTHON) hack/deps.py $*

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

.PHONY: venv
venv: $(VENV)/.installed ## create the virtualenv with deploybell and its dev tools

# ---- test peers the project installs itself (not Debian packages): make test-peers ----
# The matrix provider's peer is a real homeserver: Synapse in a virtualenv of its own (its pinned
# dependencies clash with deploybell's), found by tests/support/peers/matrix.py at SYNAPSE_VENV.
SYNAPSE_VENV ?= $(HOME)/.cache/deploybell/synapse-1.98.0
SYNAPSE_REQUIREMENTS := hack/peers/synapse.txt

$(SYNAPSE_VENV)/.installed: $(SYNAPSE_REQUIREMENTS)
	$(PYTHON) -m venv $(SYNAPSE_VENV)
	$(SYNAPSE_VENV)/bin/pip install --quiet --upgrade pip
	$(SYNAPSE_VENV)/bin/pip install --quiet -r $(SYNAPSE_REQUIREMENTS)
	touch $@

.PHONY: synapse
synapse: $(SYNAPSE_VENV)/.installed ## install the Matrix homeserver the tests run (Synapse, ~1 min)

# The provider tests' real servers built from their Go modules (cached under ~/.cache/deploybell/
# test-tools; a no-op once built), before the tests so that no build runs inside a test's timeout.
.PHONY: test-peers
test-peers: synapse ## install the test peers that are no Debian package (Synapse; Gitea, Alertmanager, nats-server from Go)
	@for tool in gitea alertmanager nats-server; do nice -n 10 hack/cluster/build.sh $$tool >/dev/null; done
# ---- end of the test peers ----

.PHONY: cluster-build
cluster-build: ## build the local-cluster binaries (cached under ~/.cache/deploybell)
	hack/cluster/build.sh

.PHONY: cluster-up
cluster-up: ## start the local cluster (reuses a running one); last line: export KUBECONFIG=...
	@$(PYTHON) hack/cluster/localcluster.py up

.PHONY: cluster-down
cluster-down: ## stop the local cluster and delete its state
	@$(PYTHON) hack/cluster/localcluster.py down

.PHONY: kubeconfig
kubeconfig: ## print the local cluster's admin kubeconfig path
	@$(PYTHON) hack/cluster/localcluster.py kubeconfig

.PHONY: lint
lint: venv ## ruff, ruff format, mypy --strict, import-linter
	$(VENV)/bin/ruff check operator tests hack bench
	$(VENV)/bin/ruff format --check operator tests hack bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

.PHONY: test
test: deps-test lint test-peers ## lint, then every test suite against the real local cluster
	$(VENV)/bin/pytest $(PYTEST_ARGS) || { status=$$?; \
	  if [ $$status -eq 5 ]; then echo "pytest collected no tests (exit 5): failing" >&2; fi; exit $$status; }

.PHONY: reliability
reliability: deps-reliability venv ## the long fault-injection variants (50 jobs x 5 kills, 60 s outage)
	RELIABILITY_LONG=1 $(VENV)/bin/pytest tests/reliability -s $(PYTEST_ARGS)

# FRESH_PYTEST_ARGS: what `make test` runs inside (default: all but the image tests).
.PHONY: fresh-check
fresh-check: deps-fresh-check venv ## make demo and make test in a bare Debian container (podman), each one's exit and time
	$(PY) hack/fresh_check.py

.PHONY: unit
unit: venv ## only the fast tests (no cluster)
	$(VENV)/bin/pytest tests/unit $(PYTEST_ARGS)

.PHONY: run
run: venv ## run the operator in the foreground ($$KUBECONFIG, or the local cluster)
	@if [ -z "$${KUBECONFIG:-}" ]; then eval "$$($(PYTHON) hack/cluster/localcluster.py up | tail -n 1)"; fi; \
	  "$$(hack/cluster/build.sh | tail -n 1)/kubectl" apply -f crds/; \
	  exec $(VENV)/bin/deploybell run

.PHONY: demo
demo: deps-demo venv ## the main job: deploy, watch and notify on the local cluster
	$(PY) hack/demo.py

.PHONY: bench
bench: deps-bench venv ## latency, kubectl and Flux comparison, RSS/CPU, API load, restart, 10,000 DeployJobs (~11 min)
	$(PY) -m bench $(BENCH_ARGS)

# The image installs from these with --require-hashes; pyproject.toml keeps the ranges, and
# tests/unit/test_lock.py fails when a lock no longer matches them. LOCK_ARGS=--upgrade moves
# every pin to the newest version inside the ranges.
LOCK_ARGS ?=
UV_COMPILE := $(VENV)/bin/uv pip compile --quiet --generate-hashes --python-version 3.11 \
  --python-platform linux --custom-compile-command 'make lock' $(LOCK_ARGS)

.PHONY: lock
lock: venv ## lock the image's dependencies with hashes (requirements/*.lock)
	$(UV_COMPILE) pyproject.toml -o requirements/runtime.lock
	$(PY) -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")' \
	  | $(UV_COMPILE) - -o requirements/build.lock

.PHONY: sync-crds
sync-crds: ## copy crds/ into the Helm chart and the kustomize base (a test checks they match)
	cp crds/*.yaml manifests/helm/deploybell/crds/
	cp crds/*.yaml manifests/install/crds/

BASE ?=

.PHONY: image
image: deps-image venv ## build the operator image with podman: dist/deploybell-<version>.oci.tar (BASE=...)
	$(PY) hack/image/build_image.py $(if $(BASE),--base $(BASE))
