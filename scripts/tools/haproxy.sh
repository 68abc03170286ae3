#!/usr/bin/env bash
# Installs haproxy (Debian package): the real round-robin proxy the serving integration tests put
# in front of two `voicecart serve` replicas (each test starts its own on a free localhost port).
# Safe to re-run: does nothing when already there.
set -euo pipefail
if command -v haproxy >/dev/null 2>&1; then
  echo "haproxy already installed: $(haproxy -v | sed -n 1p)"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
if ! apt-cache show haproxy >/dev/null 2>&1; then
  $SUDO apt-get update -qq
fi
$SUDO apt-get install -y -qq --no-install-recommends haproxy >/dev/null || {
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends haproxy >/dev/null; }
echo "installed: $(haproxy -v | sed -n 1p)"
