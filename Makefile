# flywheel — two entry points for a fresh machine:
#   make demo   the reward model, then two rounds on the real SmolLM2-135M-Instruct, on CPU, embedded services
#   make test   unit + integration tests (real Ray, vLLM, DeepSpeed, Prefect, MLflow, S3 on 127.0.0.1)
# Both create .venv and install the pinned CPU stack first (requirements/cpu.txt, ~3-6 minutes, cached).

PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
DEPS_HASH := $(shell cat requirements/cpu.txt requirements/test.txt pyproject.toml | sha256sum | cut -c1-16)
STAMP  := $(VENV)/.installed-$(DEPS_HASH)
PYTEST_ARGS ?=

export HF_HUB_OFFLINE := 1
export DO_NOT_TRACK := true
export MLFLOW_DISABLE_TELEMETRY := true
export RAY_USAGE_STATS_ENABLED := 0
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export VLLM_NO_USAGE_STATS := 1


.PHONY: install develop demo test test-unit test-slow test-integration lint format clean

install: develop

$(STAMP): requirements/cpu.txt requirements/test.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python 3.11)"; exit 1; }
	[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	DS_BUILD_OPS=0 $(PY) -m pip install -q -r requirements/cpu.txt -r requirements/test.txt
	# CUDA builds pulled in transitively; they cannot load beside CPU torch and break `import vllm`/`import trl`
	$(PY) -m pip uninstall -q -y torchvision torchaudio torchcodec
	touch $(STAMP)

develop: $(STAMP)
	@# the build backend's notices go to a log, shown only if the install fails
	@$(PY) -m pip install -q --no-deps -e . >$(VENV)/.develop.log 2>&1 || { cat $(VENV)/.develop.log; exit 1; }

demo: install
	$(VENV)/bin/flywheel models pull smollm2
	$(VENV)/bin/flywheel iterate --rounds 2 --config configs/demo.yaml

test: install
	OMP_NUM_THREADS=1 $(PY) -m pytest tests -m "not slow and not gpu" $(PYTEST_ARGS)

test-unit: install
	OMP_NUM_THREADS=1 $(PY) -m pytest tests/unit $(PYTEST_ARGS)

# the slow tests: fault injection (a tiny round killed inside every stage, ~15 min) and real-model runs
test-slow: install
	OMP_NUM_THREADS=1 $(PY) -m pytest tests -m slow $(PYTEST_ARGS)

test-integration: install
	OMP_NUM_THREADS=1 $(PY) -m pytest tests/integration -m "integration and not slow" $(PYTEST_ARGS)

# ruff (lint + format check) and mypy (strict on sdg/, judges/, train/, evals/; see pyproject.toml)
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy flywheel flows

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf runs .pytest_cache
