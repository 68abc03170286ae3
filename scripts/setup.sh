#!/usr/bin/env bash
# Creates .venv with voicecart and its pinned dependencies (idempotent: skips when pyproject.toml
# has not changed since the last install).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
VENV="${VENV:-.venv}"
stamp="$VENV/.installed"
if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ]; then exit 0; fi
if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    "$PYTHON" -m venv "$VENV"
  else
    echo "error: '$PYTHON -m venv' failed; install Python 3.11 with venv (Debian: apt-get install python3-venv)" >&2
    exit 1
  fi
fi
"$VENV/bin/pip" install --quiet --upgrade pip
# torch first and pinned, so no later requirement pulls another build
"$VENV/bin/pip" install --quiet torch==2.13.0
"$VENV/bin/pip" install --quiet -e '.[dev]'
touch "$stamp"
echo "voicecart installed in $VENV"
