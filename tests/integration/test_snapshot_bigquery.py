"""The BigQuery path for real: the same snapshot built twice from a slice of real Ta-Feng — on DuckDB, and
through the official BigQuery client against the local emulator with the SQL transpiled — holds the same
rows. The transpiled SQL also type-checks under Google's own analyzer (ZetaSQL), which the emulator (DuckDB
underneath) does not enforce. Skipped with a reason when the emulator is not installed."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime

import numpy as np
import pyarrow as pa
import pytest

from tests.bigquery_emulator import PROJECT, VENV, bigquery_emulator
from tests.conftest import shared_file
from voicecart.features.offline_bigquery import BigQueryEngine, upload_tables
from voicecart.features.offline_duckdb import DuckDBEngine
from voicecart.features.snapshot import TABLES, as_of_day, build_snapshot, window_lines
from voicecart.features.sql import CANONICAL, CUTS, MOMENTS, QUERIES, REQUESTS, render, to_bigquery

pytestmark = [pytest.mark.integration, pytest.mark.slow]
START, TEST, END = datetime(2001, 1, 18), datetime(2001, 1, 25), datetime(2001, 2, 1)


@pytest.fixture(scope="module")
def slice_(tmp_path_factory: pytest.TempPathFactory):
    from voicecart.data.window import prepare_window

    out = tmp_path_factory.mktemp("bq") / "slice"
    prepare_window("tafeng", shared_file("tafeng", "ta_feng.csv.zip"), out, window_start="2000-12-01",
                   window_end="2001-02-01", max_customers=150, seed=3)
    return out


def snapshot(engine):  # noqa: ANN001
    lines = as_of_day(window_lines(engine, START, END))
    return build_snapshot(engine, lines, cuts=[START, TEST], extra_moments=[END])


def canonical(table: pa.Table, keys: list[str]) -> list[tuple]:
    """Rows sorted by ``keys``; floats rounded past their last bits (the engines sum in different orders)."""
    def cell(v):  # noqa: ANN001, ANN202
        if isinstance(v, float):
            return None if np.isnan(v) else round(v, 9)
        if isinstance(v, list):
            return tuple(cell(x) for x in v)
        return v

    names = sorted(table.column_names)
    rows = [tuple(cell(r[n]) for n in names) for r in table.select(names).to_pylist()]
    order = [names.index(k) for k in keys]
    return sorted(rows, key=lambda r: tuple(str(r[i]) for i in order + list(range(len(names)))))


KEYS = {"lines": ["order_id", "product_id"], "customers": ["customer_id", "event_timestamp"],
        "pairs": ["customer_id", "event_timestamp", "product_id"], "products": ["product_id", "event_timestamp"],
        "catalog": ["product_id"], "cut_pairs": ["customer_id", "event_timestamp", "product_id"]}


def test_duckdb_and_bigquery_build_the_same_snapshot(slice_):
    from voicecart.data import load_dataset

    local = snapshot(DuckDBEngine(slice_))
    with bigquery_emulator() as client:
        client.create_dataset("shop")
        engine = BigQueryEngine(client, PROJECT, "shop")
        tables = load_dataset(slice_)
        upload_tables(engine, [(name, tables[name]) for name in CANONICAL])
        remote = snapshot(engine)
    assert set(KEYS) == set(TABLES)
    for name in TABLES:
        a, b = getattr(local, name), getattr(remote, name)
        assert a.num_rows > 0, name
        assert a.schema.names == b.schema.names or sorted(a.schema.names) == sorted(b.schema.names), name
        assert canonical(a, KEYS[name]) == canonical(b, KEYS[name]), name


def test_every_transpiled_query_type_checks_under_googlesql():
    python = VENV / "bin" / "python"
    if not python.exists():
        pytest.skip("the BigQuery emulator venv (with the zetasql analyzer) is not installed: "
                    "run `bash scripts/tools/bqemulator.sh`")
    dataset = f"{PROJECT}.shop"
    columns = {
        "orders": [["order_id", "STRING"], ["customer_id", "STRING"], ["timestamp", "TIMESTAMP"]],
        "order_lines": [["order_id", "STRING"], ["product_id", "STRING"], ["quantity", "FLOAT64"], ["price", "FLOAT64"]],
        "products": [["product_id", "STRING"]] + [[f"category_l{k}", "STRING"] for k in (1, 2, 3)],
        "customers": [["customer_id", "STRING"]],
        REQUESTS: [["customer_id", "STRING"], ["as_of", "TIMESTAMP"]],
        MOMENTS: [["as_of", "TIMESTAMP"], ["wanted", "BOOL"]],
        CUTS: [["as_of", "TIMESTAMP"]],
    }
    queries = {name: to_bigquery(render(name), dataset) for name in QUERIES}
    out = subprocess.run([str(python), "scripts/zetasql_check.py"], capture_output=True, text=True, timeout=900,
                         input=json.dumps({"tables": {f"{dataset}.{t}": c for t, c in columns.items()},
                                           "queries": queries}))
    assert out.returncode == 0, out.stderr[-2000:]
    errors = {k: v for k, v in json.loads(out.stdout).items() if v}
    assert not errors, errors
