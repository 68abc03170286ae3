#!/usr/bin/env bash
# The main job's installer (demo.sh, test.sh and CI all call it): creates .venv with voicecart and
# every pinned dependency in pyproject.toml, which holds all that the pipeline's steps and the
# local endpoint need (torch-model-archiver for export-bundle's .mar included), then checks that
# every module and executable the steps name resolves in it (`voicecart pipeline check`).
# Idempotent: the install is skipped when pyproject.toml has not changed since the last one.
# pip's own output goes to $VENV/setup.log; the terminal gets one line per stage.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
VENV="${VENV:-.venv}"
stamp="$VENV/.installed"
log="$VENV/setup.log"

stage() {  # stage "what" command...: run it with its output in the log, one line with its duration
  local what="$1" start=$SECONDS
  shift
  printf 'setup: %s ... ' "$what"
  if "$@" >>"$log" 2>&1; then
    echo "$((SECONDS - start)) s"
  else
    echo "failed"
    echo "setup: '$*' failed; the last lines of $log:" >&2
    tail -n 25 "$log" >&2
    exit 1
  fi
}

if [ ! -f "$stamp" ] || [ ! "$stamp" -nt pyproject.toml ]; then
  if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
      "$PYTHON" -m venv "$VENV"
    else
      echo "error: '$PYTHON -m venv' failed; install Python 3.11 with venv (Debian: apt-get install python3-venv)" >&2
      exit 1
    fi
  fi
  : >"$log"
  stage "pip" "$VENV/bin/pip" install --upgrade pip
  # torch first and pinned, so no later requirement pulls another build
  stage "torch 2.13.0" "$VENV/bin/pip" install torch==2.13.0
  stage "voicecart and its pinned dependencies (log: $log)" "$VENV/bin/pip" install -e '.[dev]'
  touch "$stamp"
fi
"$VENV/bin/voicecart" pipeline check
