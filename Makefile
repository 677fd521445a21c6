# make run   - set up .venv on first use, then run the default workflow (digits, CPU, minutes)
# make test  - set up .venv on first use, then run the test suite (includes the .test workflow)
VENV ?= .venv
CORES ?= all
# The torch build is machine-specific: override, e.g. make run TORCH="torch torchvision"
TORCH ?= torch==2.14.1 torchvision==0.29.1
PYTHON ?= python3

BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)

.PHONY: run test lint env clean

env: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

run: env
	snakemake --cores $(CORES)

test: env
	python -m pytest -q

lint: env
	snakemake --lint
	snakefmt --check workflow
	ruff check lpa tests

clean:
	rm -rf results .test/results .snakemake .test/.snakemake
