# `make repro` and `make test` work on a fresh machine: they create .venv, install torch
# (TORCH_SPEC: pinned to the torch 2.14.1 wheels these machines carry on disk - a CUDA build that
# also runs on the CPU; set it to another build for your GPU box)
# and the project, then run the pipeline or the tests.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
# Free disk the first install needs, in GB, on the disk of $(VENV): that torch build is 5.5 GB once
# installed (pip unpacks it in TMPDIR first). Checked before anything is written; 0 skips the check.
INSTALL_NEEDS_GB ?= 7
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test repro mutation clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@ls -d $(VENV)/lib/python*/site-packages/torch >/dev/null 2>&1 || $(PYTHON) -c 'import os, pathlib, shutil, sys; where = next(p for p in pathlib.Path("$(VENV)").absolute().parents if p.exists()); \
	free = shutil.disk_usage(where).free / 2**30; \
	sys.exit(None if free >= $(INSTALL_NEEDS_GB) else f"make install: {free:.1f} GB free on this disk, the install needs about $(INSTALL_NEEDS_GB) GB (torch into $(VENV)); free some space, or set TORCH_SPEC to a smaller build and INSTALL_NEEDS_GB=0")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

test: install
	$(BIN)/python -m pytest -q

repro: install
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro

# Dev-only: plant one bug at a time in the modules that compute numbers ([tool.mutmut] in
# pyproject.toml) and count the ones their tests miss (`mutmut results` lists the survivors).
# One OpenMP thread per child: mutmut forks a process that has used torch, and a forked child
# whose parent ran OpenMP threads can hang (every such mutant then reads as a timeout); with
# one thread each, the two children take the two cores. mutants/ starts empty every time: mutmut
# measures the covered lines in its copies, and a previous run's mutated copies have other line
# numbers, so only part of the code would be mutated. All modules: over an hour on 2 cores (the
# checkpoint and resume tests train); one group: make mutation MUTANTS='diffmodel.cli.photos*'.
MUTANTS ?=
mutation: install
	$(BIN)/python -m pip install --quiet 'mutmut==3.8.1'
	rm -rf $(CURDIR)/mutants
	cd $(CURDIR) && OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/mutmut run --max-children 2 $(MUTANTS); $(BIN)/mutmut results

clean:
	rm -rf $(VENV) .pytest_cache mutants
