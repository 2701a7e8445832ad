# `make repro` and `make test` work on a fresh machine: they create .venv, install torch
# (TORCH_SPEC: pinned to the torch 2.14.1 wheels these machines carry on disk - a CUDA build that
# also runs on the CPU; set it to another build for your GPU box)
# and the project, then run the pipeline or the tests.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test repro clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

test: install
	$(BIN)/python -m pytest -q

repro: install
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro

clean:
	rm -rf $(VENV) .pytest_cache
