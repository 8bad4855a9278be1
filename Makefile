# gitml — `make help` lists the targets.
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
# Stages in dvc.yaml call `gitml`; put the venv first on PATH for every recipe.
export PATH := $(BIN):$(PATH)
# uv (pinned) when it can be had, else pip; both with requirements/constraints.txt, which pins
# torch to the CPU build on disk (never a CUDA download). GITML_INSTALLER=pip forces pip.
INSTALL := $(BIN)/python requirements/install.py

.DEFAULT_GOAL := help
.PHONY: help install demo loop test test-e2e test-fast lint typecheck clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml requirements/constraints.txt requirements/install.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(INSTALL) -e '.[serve,dev]'
	touch $@

install: $(VENV)/.installed ## create .venv and install gitml with its test tools

demo: install ## run the whole pipeline on the built-in data and print a summary
	gitml config check
	dvc repro
	gitml summary
	@# The outputs are a function of the inputs (same data, params, code and libraries: same
	@# bytes), so on a commit whose dvc.lock was reproduced the tree stays clean; say so if not.
	@changed=$$(git status --porcelain 2>/dev/null | cut -c4- | xargs); \
	if [ -n "$$changed" ]; then echo "make demo: the tree is not clean ($$changed): local edits, or this commit's dvc.lock and reports were not reproduced from its conf/, code and library versions; review with 'git diff HEAD', then commit or 'git restore --staged --worktree' them"; fi

loop: install ## play the whole GitOps loop locally (origin, DVC remote, GitHub stand-in, server)
	$(BIN)/python -m gitml.ci.loop --workdir .loop

test: install ## run the test suite (slow tests included; the whole-loop e2e tests: make test-e2e)
	@$(BIN)/pytest -m "not e2e"; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests: failing" >&2; fi; \
	exit $$rc

test-e2e: install ## the whole loop end to end: make loop's story and three models in one repository (CI runs it)
	@$(BIN)/pytest -m e2e; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test-e2e: pytest collected no tests: failing" >&2; fi; \
	exit $$rc

test-fast: install ## run only the fast tests
	$(BIN)/pytest -m "not slow and not e2e"

lint: install ## ruff over src/, tests/ and benchmarks/
	$(BIN)/ruff check src tests benchmarks

typecheck: install ## mypy over src/
	$(BIN)/mypy

clean: ## remove pipeline outputs (not the venv)
	rm -rf data/raw data/prepared models reports/*.tmp .loop
