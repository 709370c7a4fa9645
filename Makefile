# Two environments: the client (.venv) never has TensorFlow, the trainer (.venv-trainer) never has
# kubernetes/kubeflow-katib (their protobuf pins conflict).
PYTHON ?= python3
VENV := .venv
TVENV := .venv-trainer

.PHONY: setup test test-client test-trainer lint demo train-demo manifests clean

setup: $(VENV)/.installed $(TVENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[client,local,dev]'
	touch $@

$(TVENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(TVENV)
	$(TVENV)/bin/pip install -q --upgrade pip
	$(TVENV)/bin/pip install -q -e '.[trainer-cpu]' 'pytest>=8.0' 'pytest-timeout>=2.3' 'pytest-asyncio>=0.23' 'hypothesis>=6.100'
	touch $@

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check katib_hp trainer tests bench
	$(VENV)/bin/mypy

test-client: $(VENV)/.installed
	$(VENV)/bin/pytest -q tests --ignore=tests/trainer

test-trainer: $(TVENV)/.installed
	$(TVENV)/bin/pytest -q tests/trainer

test: lint test-client test-trainer

clean:
	rm -rf $(VENV) $(TVENV) build *.egg-info

# The main job: tune the built-in model on scikit-learn's bundled digits locally, with Katib's Bayesian
# optimization, exactly as the Experiment would run on a cluster (about two minutes on 2 CPU cores).
demo: $(VENV)/.installed $(TVENV)/.installed
	rm -rf runs/digits-quick
	$(VENV)/bin/katib-hp run-local examples/digits-quick.yaml --work-dir runs/digits-quick

# One training run of the built-in model (5 epochs), Katib metric lines on stdout.
train-demo: $(TVENV)/.installed
	$(TVENV)/bin/python -u -m trainer --epochs=5 --summary-file=runs/demo/summary.json

# Regenerate the checked-in Experiments from examples/ (tests fail when they differ).
manifests: $(VENV)/.installed
	@for f in examples/*.yaml; do $(VENV)/bin/katib-hp generate -q $$f --output manifests/gpu/$$(basename $$f) || exit 1; done
	@for f in examples/kind/*.yaml; do $(VENV)/bin/katib-hp generate -q $$f --output manifests/cpu/$$(basename $$f) || exit 1; done

# End to end on a throwaway kind cluster (needs docker, kind, kubectl, git and network; see README).
#   kind-up: cluster + Katib v0.19.0   kind-e2e: the whole run, cluster deleted after (KEEP_CLUSTER=1 keeps it)
.PHONY: kind-up kind-e2e kind-down
kind-up:
	scripts/kind-e2e.sh up

kind-e2e: $(VENV)/.installed
	scripts/kind-e2e.sh all

kind-down:
	scripts/kind-e2e.sh down
