# Everything a person does twice. `make demo` and `make test` create the venv themselves;
# each target is a thin alias of a script in scripts/ (which work without make too).
.PHONY: setup tools demo test test-unit test-integration test-e2e bench clean

setup:
	bash scripts/setup.sh

tools: setup
	PATH="$(CURDIR)/.venv/bin:$$PATH" bash scripts/install_tools.sh

demo:
	bash scripts/demo.sh

test:
	bash scripts/test.sh

test-unit: setup
	.venv/bin/python -m pytest tests/unit -q

test-integration: tools
	.venv/bin/python -m pytest tests/integration -q

test-e2e: tools
	.venv/bin/python -m pytest tests/e2e -q

bench: setup
	for b in benchmarks/*.py; do case $$b in */_*) continue;; esac; .venv/bin/python $$b || exit 1; done

clean:
	rm -rf .venv .pytest_cache build dist
