# Everything a person does twice. `make demo` and `make test` create the venv themselves;
# each target is a thin alias of a script in scripts/ (which work without make too).
.PHONY: setup check tools demo test ci test-unit test-integration test-e2e bench bench-demo clean

setup:
	bash scripts/setup.sh

check:  # what scripts/setup.sh ends with: everything the main job's steps name resolves in .venv
	.venv/bin/voicecart pipeline check

tools: setup
	PATH="$(CURDIR)/.venv/bin:$$PATH" bash scripts/install_tools.sh

demo:
	bash scripts/demo.sh

test:
	bash scripts/test.sh

ci:
	bash .ci/run

test-unit: setup
	.venv/bin/python -m pytest tests/unit -q

test-integration: tools
	.venv/bin/python -m pytest tests/integration -q

test-e2e: tools
	.venv/bin/python -m pytest tests/e2e -q

bench: setup
	for b in benchmarks/*.py; do case $$b in */_*) continue;; esac; .venv/bin/python $$b || exit 1; done

bench-demo: setup
	.venv/bin/python benchmarks/demo.py

clean:
	rm -rf .venv .pytest_cache build dist
