#!/usr/bin/env bash
# Installs the external tools the integration tests run for real (each script in scripts/tools/
# installs one and is safe to re-run). Called by `make tools`, hence by `make test` and .ci/run.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
for script in "$here"/tools/*.sh; do
  [ -e "$script" ] || continue
  echo "==> $(basename "$script")"
  bash "$script"
done
