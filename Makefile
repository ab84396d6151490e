# tickwire — two commands on a fresh machine: `make run` and `make test`.
PY      ?= python3
VENV    := .venv
VPY     := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
JOBS    ?= 2

.PHONY: setup run test bench kernels-check hw-report clean

setup: $(STAMP)

$(VENV)/bin/python:
	$(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip setuptools wheel

$(STAMP): $(VENV)/bin/python pyproject.toml
	$(VPY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

run: setup
	$(VENV)/bin/tickwire run

test: setup
	$(VPY) -m pytest -n $(JOBS) -q

bench: setup
	$(VENV)/bin/tickwire bench

kernels-check: setup
	$(VPY) -m tickwire.kernels.check

hw-report: setup
	$(VENV)/bin/tickwire hw report

clean:
	rm -rf $(VENV) build sim_build .pytest_cache
