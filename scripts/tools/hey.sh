#!/usr/bin/env bash
# Installs hey (Debian package): the HTTP load generator benchmarks/serving.py runs next to its own
# open-loop client. Safe to re-run: does nothing when already there.
set -euo pipefail
if command -v hey >/dev/null 2>&1; then
  echo "hey already installed"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
if ! apt-cache show hey >/dev/null 2>&1; then
  $SUDO apt-get update -qq
fi
$SUDO apt-get install -y -qq --no-install-recommends hey >/dev/null || {
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends hey >/dev/null; }
echo "installed: hey"
