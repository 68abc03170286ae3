# Everything a person does twice. `make demo` and `make test` create the venv themselves.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
DATA   ?= data

.PHONY: setup tools demo test test-unit test-integration test-e2e bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

tools: setup
	PATH="$(abspath $(BIN)):$$PATH" bash scripts/install_tools.sh

demo: setup
	$(BIN)/voicecart data prepare --source tafeng --out $(DATA)/tafeng
	$(BIN)/voicecart data describe $(DATA)/tafeng

test: setup tools
	$(BIN)/python -m pytest tests -q

test-unit: setup
	$(BIN)/python -m pytest tests/unit -q

test-integration: setup tools
	$(BIN)/python -m pytest tests/integration -q

test-e2e: setup tools
	$(BIN)/python -m pytest tests/e2e -q

bench: setup
	for b in benchmarks/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache build dist
