#!/usr/bin/env bash
# Installs the serving tests' and benchmark's outside tools (Debian packages): haproxy, the real
# round-robin proxy the integration tests put in front of two `voicecart serve` replicas, and hey,
# the HTTP load generator benchmarks/serving.py runs next to its own open-loop client.
# Each test starts its own instance on a free localhost port. Safe to re-run.
set -euo pipefail
missing=()
for tool in haproxy hey; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
if [ ${#missing[@]} -eq 0 ]; then
  echo "haproxy and hey already installed: $(haproxy -v | sed -n 1p)"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
install() { $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
install || { $SUDO apt-get update -qq && install; }
echo "installed: ${missing[*]}"
