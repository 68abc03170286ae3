#!/usr/bin/env bash
# The README's test command: sets everything up (venv, Redis, helm/kubectl, Triton, TorchServe)
# and runs the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PATH="$PWD/.venv/bin:$PATH" bash scripts/install_tools.sh
exec .venv/bin/python -m pytest tests -q "$@"
