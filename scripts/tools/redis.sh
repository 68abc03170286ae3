#!/usr/bin/env bash
# Installs redis-server (Debian package) for the feature-store integration tests, which start
# their own instance on a free localhost port. Safe to re-run: does nothing when already there.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
  echo "redis-server already installed: $(redis-server --version | sed -n 1p)"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
if ! apt-cache show redis-server >/dev/null 2>&1; then
  $SUDO apt-get update -qq
fi
$SUDO apt-get install -y -qq --no-install-recommends redis-server >/dev/null || {
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends redis-server >/dev/null; }
# The package may start a system-wide instance on 6379; the tests never use it.
echo "installed: $(redis-server --version | sed -n 1p)"
