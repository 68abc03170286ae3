#!/usr/bin/env bash
# Installs a real TorchServe (PyPI torchserve==0.12.0 + torch-model-archiver==0.12.0) for the
# pipeline's .mar export and tests/integration/test_torchserve_*.py. They go into the main venv
# (.venv): the TorchServe worker must import the venv's torch, and neither package depends on
# torch or numpy (checked below: their versions must not move). Java 17 runs the frontend.
# Result: .venv/bin/torchserve and .venv/bin/torch-model-archiver. Safe to re-run.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${VOICECART_VENV:-$root/.venv}"
py="$venv/bin/python"
[ -x "$py" ] || { echo "torchserve: $py not found (run make setup first)" >&2; exit 1; }

if ! command -v java >/dev/null 2>&1; then
  echo "torchserve: installing Java 17 (apt)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null
fi

ready() {
  "$py" - <<'PY' 2>/dev/null
from importlib.metadata import version
assert version("torchserve") == "0.12.0" and version("torch-model-archiver") == "0.12.0"
PY
}
if ready && [ -x "$venv/bin/torchserve" ] && [ -x "$venv/bin/torch-model-archiver" ]; then
  echo "torchserve: already installed in $venv"
  exit 0
fi

before="$("$py" -c 'import torch, numpy; print(torch.__version__, numpy.__version__)')"
"$venv/bin/pip" install --quiet --disable-pip-version-check "torchserve==0.12.0" "torch-model-archiver==0.12.0"
after="$("$py" -c 'import torch, numpy; print(torch.__version__, numpy.__version__)')"
if [ "$before" != "$after" ]; then
  echo "torchserve: installing moved torch/numpy ($before -> $after); refusing" >&2
  exit 1
fi
echo "torchserve: installed torchserve 0.12.0 and torch-model-archiver 0.12.0 in $venv"
