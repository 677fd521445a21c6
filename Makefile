# make run        - set up .venv on first use, then run the default workflow (digits, CPU, minutes)
# make test       - set up .venv on first use, then run the fast lane (everything not marked slow)
# make test-all   - lint, then the whole suite (the .test workflow, SLURM, torchrun, compile): what CI runs
# make test-floor - the whole suite in a second venv on the lowest versions pyproject.toml allows
VENV ?= .venv
CORES ?= all
# The torch build is machine-specific: override, e.g. make run TORCH="torch torchvision"
# (docs/install.md: which driver each build needs, and a CUDA 12 build).
TORCH ?= torch==2.14.1 torchvision==0.29.1
# faiss: the GPU wheels (faiss-gpu, CUDA 12) where an NVIDIA driver answers, else faiss-cpu.
FAISS ?= $(shell nvidia-smi >/dev/null 2>&1 && echo gpu || echo cpu)
PYTHON ?= python3
FLOOR_VENV ?= .venv-floor

ifeq ($(filter $(FAISS),cpu gpu),)
$(error FAISS must be cpu or gpu, not '$(FAISS)')
endif
OTHER_FAISS := faiss-$(if $(filter gpu,$(FAISS)),cpu,gpu)

BIN := $(abspath $(VENV))/bin
FLOOR_BIN := $(abspath $(FLOOR_VENV))/bin
export PATH := $(BIN):$(PATH)

.PHONY: run test test-all test-floor lint env clean

env: $(VENV)/.installed

# Reinstalled when pyproject.toml changes or the faiss build changes (the stamp names it).
# Both faiss wheels provide the module `faiss`: the other one is removed first.
$(VENV)/.installed: pyproject.toml $(VENV)/.faiss-$(FAISS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip uninstall --quiet --yes $(OTHER_FAISS)
	$(BIN)/python -m pip install --quiet -e '.[test,$(FAISS)]'
	touch $@

$(VENV)/.faiss-$(FAISS):
	mkdir -p $(VENV)
	rm -f $(VENV)/.faiss-*
	touch $@

run: env
	snakemake --cores $(CORES)

test: env
	python -m pytest -q -m "not slow"

test-all: lint
	python -m pytest -q

# torch, torchvision and the rest at their floors (constraints-floor.txt), faiss-cpu
$(FLOOR_VENV)/.installed: pyproject.toml constraints-floor.txt
	$(PYTHON) -m venv $(FLOOR_VENV)
	$(FLOOR_BIN)/python -m pip install --quiet --upgrade pip
	$(FLOOR_BIN)/python -m pip install --quiet -c constraints-floor.txt -e '.[test,cpu]'
	touch $@

test-floor: $(FLOOR_VENV)/.installed
	PATH=$(FLOOR_BIN):$$PATH python -m pytest -q

lint: env
	snakemake --lint
	snakefmt --check workflow
	ruff check lpa tests scripts

clean:
	rm -rf results .test/results .snakemake .test/.snakemake
