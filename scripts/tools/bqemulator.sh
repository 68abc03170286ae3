#!/usr/bin/env bash
# Installs a local BigQuery emulator for the offline-engine tests, without Docker: the PyPI package
# bqemulator 1.4.0 (DuckDB-backed; serves the REST API the official google-cloud-bigquery client
# speaks). It lives in its own venv (.venv-bqemulator) so the main venv's duckdb/sqlglot pins are
# never touched. tests/bigquery_emulator.py starts it on a free localhost port:
#   .venv-bqemulator/bin/bqemulator start --rest-port 0 --grpc-port 0 --project voicecart-test
# The emulator INSTALLs/LOADs DuckDB's spatial extension at startup and cannot download it here, so
# the extension file comes from the PyPI wheel duckdb-extension-spatial (same version as duckdb) and
# is copied where DuckDB looks: ~/.duckdb/extensions/v<duckdb>/<platform>/. numpy is pinned too:
# bqemulator registers numpy-backed UDFs at startup but does not declare it. The same venv holds
# zetasql (Google's GoogleSQL analyzer as WebAssembly) for scripts/zetasql_check.py: the emulator runs
# on DuckDB and lets through type errors real BigQuery rejects; the analyzer does not. Safe to re-run.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/.venv-bqemulator"
python="${PYTHON:-python3.11}"
stamp="$venv/.installed"
pins=("bqemulator==1.4.0" "duckdb==1.5.2" "duckdb-extension-spatial==1.5.2" "numpy==2.4.6"
      "zetasql==0.1.5" "wasmtime==50.0.1")

# Prints the extension file DuckDB loads (empty when the venv cannot say).
extension_target() {
  "$venv/bin/python" - <<'PY' 2>/dev/null || true
import os, duckdb
platform = duckdb.sql("PRAGMA platform").fetchone()[0]
print(os.path.expanduser(f"~/.duckdb/extensions/v{duckdb.__version__}/{platform}/spatial.duckdb_extension"))
PY
}

ready() {
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "${pins[*]}" ] && [ -x "$venv/bin/bqemulator" ] || return 1
  local target
  target="$(extension_target)"
  [ -n "$target" ] && [ -s "$target" ] || return 1
  "$venv/bin/python" -c 'import duckdb; duckdb.connect().execute("LOAD spatial")' >/dev/null 2>&1
}
if ready; then
  echo "bqemulator: already installed in $venv ($("$venv/bin/bqemulator" version))"
  exit 0
fi

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}"

site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
version="$("$venv/bin/python" -c 'import duckdb; print(duckdb.__version__)')"
source_file="$site/duckdb_extension_spatial/extensions/v$version/spatial.duckdb_extension"
[ -s "$source_file" ] || { echo "bqemulator: $source_file not found in the duckdb-extension-spatial wheel" >&2; exit 1; }
target="$(extension_target)"
[ -n "$target" ] || { echo "bqemulator: could not ask duckdb for its extension directory" >&2; exit 1; }
mkdir -p "$(dirname "$target")"
cp "$source_file" "$target.tmp" && mv "$target.tmp" "$target"

if ! "$venv/bin/python" -c 'import duckdb; duckdb.connect().execute("LOAD spatial")'; then
  echo "bqemulator: duckdb cannot load $target" >&2
  exit 1
fi
echo "${pins[*]}" > "$stamp"
ready || { echo "bqemulator: install incomplete in $venv" >&2; exit 1; }
echo "bqemulator: installed in $venv ($("$venv/bin/bqemulator" version)); spatial extension at $target"
