#!/usr/bin/env bash
# Installs a real Prometheus server (Debian's package) for the canary controller's integration
# test, and links it as tools/bin/prometheus. Idempotent; does not start any service.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="$root/tools/bin"
if ! command -v prometheus >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then echo "prometheus missing and not root: apt-get install prometheus" >&2; exit 1; fi
  apt-get update -qq
  # a policy-rc.d answering 101 keeps the package from starting a daemon (only if none exists)
  ours=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && ours=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus
  if [ -n "$ours" ]; then rm -f /usr/sbin/policy-rc.d; fi
fi
mkdir -p "$bin"
ln -sf "$(command -v prometheus)" "$bin/prometheus"
"$bin/prometheus" --version 2>&1 | sed -n 1p  # not head: SIGPIPE under pipefail
