# Quick start: `make demo` and `make test`. Both call `make setup`, which is idempotent.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.setup-stamp

.PHONY: setup test test-fast demo lint bench clean

setup: $(STAMP)
	@# Headless Chromium for the report's browser test: only as root, only with apt-get, only if missing; never fatal.
	@if { ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; } && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "installing chromium chromium-driver (browser test of radfair report)"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) >/dev/null 2>&1 \
			|| echo "note: could not install chromium chromium-driver; the browser test will be skipped"; \
	fi

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt "torch==2.13.0"
	$(PIP) install -q -c constraints.txt -e ".[dev,ray]"
	@$(PY) -c "import torch, sys; v = torch.__version__; print('torch', v); sys.exit(0 if v.startswith('2.13.0') and '+cpu' in v else 'torch must be 2.13.0+cpu, found ' + v)"
	@touch $(STAMP)

test: setup
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

demo: setup
	$(VENV)/bin/radfair demo --out demo_out --configs configs

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks

bench: setup
	$(PY) benchmarks/bench_audit.py
	$(PY) benchmarks/bench_degrade.py
	$(PY) benchmarks/bench_train.py

clean:
	rm -rf $(VENV) demo_out .pytest_cache
