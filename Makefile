# The two commands of the README: `make demo` and `make test`. Both bootstrap .venv themselves.
SHELL := /bin/bash
# python3.12 where it runs (librosa 1.0 needs it; pyenv shims may name it without running it), else python3 >= 3.11
PY ?= $(shell for p in python3.12 $$(ls -d $$HOME/.pyenv/versions/3.12*/bin/python3.12 2>/dev/null) python3; do \
	$$p -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null && { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BACKEND ?= emulator

.PHONY: demo test bench lab docs lint setup system venv thirdparty clean

setup: system venv thirdparty

# apt part (root assumed; see README). Retries while another apt holds the dpkg lock.
system:
	@bash scripts/system-deps.sh

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/python -c 'import sys; assert sys.version_info >= (3, 11), "python >= 3.11 needed"'
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $(STAMP)

# Third-party Live clients for tests/conformance/test_third_party.py, one virtualenv each, pinned.
THIRD := .venv-thirdparty
THIRD_REQ := tests/conformance/third_party
thirdparty: $(THIRD)/pipecat/.installed $(THIRD)/livekit/.installed

$(THIRD)/%/.installed: $(THIRD_REQ)/requirements-%.txt
	@test -x $(THIRD)/$*/bin/python || $(PY) -m venv $(THIRD)/$*
	$(THIRD)/$*/bin/python -m pip install -q --disable-pip-version-check -r $<
	@touch $@

demo: setup
	$(BIN)/livekit-lab demo --backend $(BACKEND)

test: setup
	$(BIN)/python -m pytest -p no:cacheprovider tests --nbmake notebooks

bench: setup
	$(BIN)/python benchmarks/run.py

# the documentation site into site/ (tests/test_docs.py builds it --strict in make test)
docs: venv
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict

# ruff and mypy with the settings in pyproject.toml (tests/test_lint.py runs both in make test)
lint: venv
	$(BIN)/python -m ruff check livekit_lab tests scripts benchmarks
	$(BIN)/python -m mypy

# mutation testing of turns, cost, scores, log, logschema and the emulator's detector -> benchmarks/mutation.json
mutation: setup
	$(BIN)/python -m pip install -q -e '.[test,mutation]'
	$(BIN)/python scripts/mutation.py

lab: setup
	$(BIN)/livekit-lab lab

clean:
	rm -rf $(VENV) $(THIRD) .pytest_cache site
