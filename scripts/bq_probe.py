"""Which feature SQL runs on BigQuery (the local emulator as stand-in), and does it agree with DuckDB?

Starts the emulator (tests/bigquery_emulator.py; install it with scripts/tools/bqemulator.sh), loads
one tiny deterministic dataset into it AND into an in-memory DuckDB (same table names), runs every
query of ``voicecart.features.sql.QUERIES`` on both (DuckDB: ``render`` as written; emulator:
``to_bigquery(render(...), "voicecart-test.probe")``) and compares the results row by row.

    .venv/bin/python scripts/bq_probe.py                 # queries (+ the single-construct checks)
    .venv/bin/python scripts/bq_probe.py --zetasql       # + GoogleSQL type check of the BigQuery text (~3 min)
    .venv/bin/python scripts/bq_probe.py --load 5000 --types   # + loading methods (rows/s), result Arrow types
    .venv/bin/python scripts/bq_probe.py --sql /tmp/sql.py --src ../main/src   # a patched copy of sql.py

The emulator runs BigQuery SQL on DuckDB, so it accepts some SQL real BigQuery rejects (a TIMESTAMP
compared with a DATETIME); ``--zetasql`` (scripts/zetasql_check.py, Google's analyzer) catches those.

``--sql`` runs another copy of sql.py (default: this checkout's); ``--src`` puts a source tree first on
sys.path (what that copy imports ``voicecart.*`` from). Exit status 1 when a query fails or differs.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import math
import random
import sys
import time
import traceback
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PROJECT = "voicecart-test"
DATASET = "probe"

# -- the dataset ------------------------------------------------------------------------------------
START = datetime(2024, 1, 1)
MOMENTS = [datetime(2024, 1, 20), datetime(2024, 2, 1), datetime(2024, 2, 15)]
CUTS = [datetime(2024, 2, 1), datetime(2024, 2, 15)]

SCHEMAS: dict[str, list[tuple[str, str]]] = {
    "customers": [("customer_id", "STRING"), ("age_group", "STRING"), ("postal_area", "STRING")],
    "products": [("product_id", "STRING"), ("title", "STRING"), ("brand", "STRING"), ("size", "STRING"),
                 ("category_l1", "STRING"), ("category_l2", "STRING"), ("category_l3", "STRING"),
                 ("category_l1_name", "STRING"), ("category_l2_name", "STRING"), ("category_l3_name", "STRING")],
    "orders": [("order_id", "STRING"), ("customer_id", "STRING"), ("timestamp", "TIMESTAMP")],
    "order_lines": [("order_id", "STRING"), ("product_id", "STRING"), ("quantity", "FLOAT64"), ("price", "FLOAT64")],
    "snapshot_requests": [("customer_id", "STRING"), ("as_of", "TIMESTAMP")],
    "snapshot_moments": [("as_of", "TIMESTAMP"), ("wanted", "BOOL")],
    "snapshot_cuts": [("as_of", "TIMESTAMP")],
}


def dataset(sql: ModuleType) -> dict[str, list[dict[str, Any]]]:
    """Five customers, eight products in a 2 > 3 > 4 category tree, ~35 orders over 45 days, with the
    corner cases: a product twice in one order, a NULL and a zero price, fractional quantities, a
    customer with one order (no gap to average), one whose orders all come after their request."""
    rng = random.Random(7)
    tree = [("A", "A1", "A1a"), ("A", "A1", "A1b"), ("A", "A2", "A2a"), ("B", "B1", "B1a")]
    products = []
    for i in range(8):
        l1, l2, l3 = tree[i % len(tree)]
        products.append({"product_id": f"p{i}", "title": f"product {i}", "brand": f"b{i % 3}", "size": None,
                         "category_l1": l1, "category_l2": l2, "category_l3": l3,
                         "category_l1_name": None, "category_l2_name": None, "category_l3_name": None})
    customers = [{"customer_id": f"c{i}", "age_group": None, "postal_area": None} for i in range(5)]
    orders, lines = [], []
    plan = {"c0": 12, "c1": 9, "c2": 8, "c3": 1, "c4": 4}
    for cid, n in plan.items():
        for k in range(n):
            oid = f"o_{cid}_{k}"
            if cid == "c4":  # all after every moment but the last
                ts = datetime(2024, 2, 2) + timedelta(days=k, hours=rng.randrange(24), seconds=rng.randrange(3600))
            elif cid == "c3":
                ts = datetime(2024, 1, 5, 10, 30, 15)
            else:
                ts = START + timedelta(days=rng.randrange(45), hours=rng.randrange(24), minutes=rng.randrange(60),
                                       seconds=rng.randrange(60))
            orders.append({"order_id": oid, "customer_id": cid, "timestamp": ts})
            for pid in rng.sample([p["product_id"] for p in products], rng.randrange(1, 4)):
                lines.append({"order_id": oid, "product_id": pid, "quantity": float(rng.choice([1, 1, 2, 3, 0.5])),
                              "price": round(rng.uniform(0.5, 20.0), 2)})
    lines.append({"order_id": "o_c0_0", "product_id": lines[0]["product_id"], "quantity": 2.0, "price": 3.5})
    lines.append({"order_id": "o_c1_1", "product_id": "p7", "quantity": 1.0, "price": None})
    lines.append({"order_id": "o_c2_2", "product_id": "p6", "quantity": 1.0, "price": 0.0})
    requests = [{"customer_id": c, "as_of": m} for c in ("c0", "c1", "c2", "c3") for m in MOMENTS]
    requests.append({"customer_id": "c4", "as_of": datetime(2024, 1, 10)})
    requests.append({"customer_id": "c4", "as_of": datetime(2024, 2, 15)})
    grid = sql.product_grid(MOMENTS)
    return {
        "customers": customers, "products": products, "orders": orders, "order_lines": lines,
        "snapshot_requests": requests,
        "snapshot_moments": [{"as_of": m, "wanted": w} for m, w in grid],
        "snapshot_cuts": [{"as_of": m} for m in CUTS],
    }


def cases(sql: ModuleType) -> dict[str, str]:
    """name -> DuckDB text: every query of QUERIES, plus customer_product over every customer at each cut
    (what the snapshot's cut_pairs run)."""
    out = {name: sql.render(name, t0=MOMENTS[0]) for name in sql.QUERIES}
    if hasattr(sql, "ALL_CUSTOMERS") and hasattr(sql, "CUTS") and "customer_product" in sql.QUERIES:
        out["customer_product[ALL_CUSTOMERS at CUTS]"] = sql.render("customer_product", requests=sql.ALL_CUSTOMERS,
                                                                    moments=sql.CUTS)
    return out


# -- engines ------------------------------------------------------------------------------------------
def arrow_tables(data: dict[str, list[dict[str, Any]]]):
    import pyarrow as pa

    types = {"STRING": pa.string(), "TIMESTAMP": pa.timestamp("us"), "FLOAT64": pa.float64(), "BOOL": pa.bool_(),
             "INT64": pa.int64()}
    return {name: pa.Table.from_pylist(rows, schema=pa.schema([(c, types[t]) for c, t in SCHEMAS[name]]))
            for name, rows in data.items()}


def load_emulator(client, data: dict[str, list[dict[str, Any]]]) -> None:
    from google.cloud import bigquery

    from tests.bigquery_emulator import load_rows

    client.create_dataset(DATASET, exists_ok=True)
    for name, rows in data.items():
        schema = [bigquery.SchemaField(c, t) for c, t in SCHEMAS[name]]
        ref = f"{PROJECT}.{DATASET}.{name}"
        client.create_table(bigquery.Table(ref, schema=schema), exists_ok=True)
        n = load_rows(client, ref, schema, rows)
        assert n == len(rows), (name, n, len(rows))


def run_emulator(client, text: str):
    return client.query(text).result().to_arrow(create_bqstorage_client=False)


# -- comparison ---------------------------------------------------------------------------------------
def normalized(table):
    """Timestamps as timestamp[us, UTC], decimals as float64 (what voicecart.features.offline.normalize does)."""
    import pyarrow as pa

    columns, fields = [], []
    for field, column in zip(table.schema, table.columns):
        t = field.type
        if pa.types.is_timestamp(t):
            column = (column.cast(pa.timestamp("us")) if t.tz is None else column).cast(pa.timestamp("us", tz="UTC"))
        elif pa.types.is_decimal(t):
            column = column.cast(pa.float64())
        columns.append(column)
        fields.append(pa.field(field.name, column.type))
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def _key(row: dict[str, Any], keys: list[str]) -> tuple:
    return tuple((row[k] is None, row[k] if row[k] is not None else 0) for k in keys)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        if math.isnan(a) and math.isnan(b):
            return True
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def compare(duck, bq) -> list[str]:
    """Differences between two results (empty: the same rows, up to row order and float rounding)."""
    import pyarrow as pa

    duck, bq = normalized(duck), normalized(bq)
    problems = []
    if duck.column_names != bq.column_names:
        problems.append(f"columns: duckdb {duck.column_names} vs emulator {bq.column_names}")
        return problems
    for f_d, f_b in zip(duck.schema, bq.schema):
        if f_d.type != f_b.type:
            problems.append(f"type of {f_d.name}: duckdb {f_d.type} vs emulator {f_b.type}")
    if duck.num_rows != bq.num_rows:
        problems.append(f"rows: duckdb {duck.num_rows} vs emulator {bq.num_rows}")
    keys = [f.name for f in duck.schema if pa.types.is_string(f.type) or pa.types.is_timestamp(f.type)]
    d_rows = sorted(duck.to_pylist(), key=lambda r: _key(r, keys))
    b_rows = sorted(bq.to_pylist(), key=lambda r: _key(r, keys))
    d_index = {_key(r, keys): r for r in d_rows}
    b_index = {_key(r, keys): r for r in b_rows}
    shown = 0
    for k in sorted(set(d_index) | set(b_index)):
        d, b = d_index.get(k), b_index.get(k)
        label = ", ".join(f"{c}={_fmt((d or b)[c])}" for c in keys)
        if d is None or b is None:
            problems.append(f"row ({label}) only on {'emulator' if d is None else 'duckdb'}")
            shown += 1
        else:
            diffs = [f"{c}: duckdb {_fmt(d[c])} vs emulator {_fmt(b[c])}" for c in duck.column_names
                     if not _same(d[c], b[c])]
            if diffs:
                problems.append(f"row ({label}): " + "; ".join(diffs))
                shown += 1
        if shown >= 12:
            problems.append("... (more rows differ)")
            break
    return problems


def _fmt(v: Any) -> str:
    if isinstance(v, datetime):
        return v.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(v, float):
        return f"{v:.10g}"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return repr(v)


# -- single constructs ----------------------------------------------------------------------------------
# Each: the DuckDB text (over the probe tables); run on DuckDB as written and on the emulator transpiled.
CONSTRUCTS: dict[str, str] = {
    "date_diff('second', TIMESTAMP literal, ts)": "SELECT order_id, date_diff('second', TIMESTAMP '1970-01-01 00:00:00', timestamp) AS s FROM orders",
    "date_diff('second', MIN(ts), MAX(ts))": "SELECT customer_id, CAST(date_diff('second', MIN(timestamp), MAX(timestamp)) AS DOUBLE) AS s FROM orders GROUP BY customer_id",
    "ts >= TIMESTAMP literal": "SELECT order_id FROM orders WHERE timestamp >= TIMESTAMP '2024-01-20 00:00:00'",
    "NULLIF(COUNT(*) - 1, 0)": "SELECT customer_id, 1.0 / NULLIF(COUNT(*) - 1, 0) AS x FROM orders GROUP BY customer_id",
    "COUNT(DISTINCT)": "SELECT order_id, COUNT(DISTINCT product_id) AS n FROM order_lines GROUP BY order_id",
    "SUM(int) (result type)": "SELECT order_id, SUM(CASE WHEN price > 0 THEN 1 ELSE 0 END) AS n FROM order_lines GROUP BY order_id",
    "CASE WHEN .. THEN LN(x) ELSE 0 END": "SELECT order_id, product_id, CASE WHEN price > 0 THEN LN(price) ELSE 0 END AS l FROM order_lines",
    "CASE WHEN .. END (no ELSE)": "SELECT order_id, product_id, CASE WHEN price > 0 THEN price END AS p FROM order_lines",
    "POW(2.0, x)": "SELECT order_id, POW(2.0, CAST(date_diff('second', MIN(timestamp), MAX(timestamp)) AS DOUBLE) / 2592000.0) AS w FROM orders GROUP BY order_id",
    "EXP(x)": "SELECT order_id, product_id, EXP(quantity) AS e FROM order_lines",
    "ts - INTERVAL 7 DAY": "SELECT as_of, as_of - INTERVAL 7 DAY AS earlier FROM snapshot_moments",
    "JOIN ON ts = ts - INTERVAL 7 DAY": "SELECT a.as_of, b.as_of AS week_before FROM snapshot_moments AS a JOIN snapshot_moments AS b ON b.as_of = a.as_of - INTERVAL 7 DAY",
    "LAG(ts) OVER (ORDER BY ts)": "SELECT as_of, LAG(as_of) OVER (ORDER BY as_of) AS previous FROM snapshot_moments",
    "LAG(ts) OVER (ORDER BY ts NULLS FIRST)": "SELECT as_of, LAG(as_of) OVER (ORDER BY as_of NULLS FIRST) AS previous FROM snapshot_moments",
    "SUM OVER (PARTITION BY .. ORDER BY .. ROWS ..)": "SELECT order_id, customer_id, CAST(SUM(1) OVER (PARTITION BY customer_id ORDER BY timestamp ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS DOUBLE) AS n FROM orders",
    "SUM OVER (.. ORDER BY .. NULLS FIRST ROWS ..)": "SELECT order_id, customer_id, CAST(SUM(1) OVER (PARTITION BY customer_id ORDER BY timestamp NULLS FIRST ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS DOUBLE) AS n FROM orders",
    "SUM OVER (.. ORDER BY .. DESC ROWS ..)": "SELECT order_id, customer_id, CAST(SUM(1) OVER (PARTITION BY customer_id ORDER BY timestamp DESC ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS DOUBLE) AS n FROM orders",
    "named WINDOW w AS (.. ORDER BY ..)": "SELECT order_id, customer_id, CAST(SUM(1) OVER w AS DOUBLE) AS n FROM orders WINDOW w AS (PARTITION BY customer_id ORDER BY timestamp ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)",
    "named WINDOW w AS (.. ORDER BY .. NULLS FIRST ..)": "SELECT order_id, customer_id, CAST(SUM(1) OVER w AS DOUBLE) AS n FROM orders WINDOW w AS (PARTITION BY customer_id ORDER BY timestamp NULLS FIRST ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)",
    "MIN(ts) OVER w": "SELECT order_id, customer_id, MIN(timestamp) OVER w AS first FROM orders WINDOW w AS (PARTITION BY customer_id ORDER BY timestamp NULLS FIRST ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)",
    "SUM(COUNT(*)) OVER (PARTITION BY ..)": "SELECT o.customer_id, l.product_id, CAST(COUNT(*) AS DOUBLE) / SUM(COUNT(*)) OVER (PARTITION BY o.customer_id) AS share FROM orders AS o JOIN order_lines AS l ON l.order_id = o.order_id GROUP BY o.customer_id, l.product_id",
    "AVG(x) OVER (PARTITION BY ..)": "SELECT order_id, product_id, price - AVG(price) OVER (PARTITION BY product_id) AS rel FROM order_lines",
    "CROSS JOIN": "SELECT p.product_id, m.as_of FROM products AS p CROSS JOIN snapshot_moments AS m",
    "WHERE x IN (SELECT ..)": "SELECT product_id FROM products WHERE product_id IN (SELECT product_id FROM order_lines)",
    "SELECT c.*, CASE .. FROM cte AS c": "WITH c AS (SELECT order_id, price FROM order_lines) SELECT c.*, CASE WHEN c.price > 0 THEN c.price END AS p FROM c",
    "WHERE bool_column AND ..": "SELECT as_of FROM snapshot_moments WHERE wanted AND NOT (as_of IS NULL)",
    "ARRAY_AGG(x ORDER BY k DESC, ..)": "SELECT order_id, ARRAY_AGG(product_id ORDER BY quantity DESC, product_id DESC) AS ids FROM order_lines GROUP BY order_id",
    "ARRAY_AGG(float ORDER BY k DESC)": "SELECT order_id, ARRAY_AGG(quantity ORDER BY quantity DESC, product_id DESC) AS q FROM order_lines GROUP BY order_id",
    "ARRAY_AGG(x ORDER BY k) (ASC)": "SELECT order_id, ARRAY_AGG(product_id ORDER BY product_id) AS ids FROM order_lines GROUP BY order_id",
    "ARRAY_AGG(x ORDER BY k NULLS FIRST) (ASC)": "SELECT order_id, ARRAY_AGG(product_id ORDER BY product_id NULLS FIRST) AS ids FROM order_lines GROUP BY order_id",
    "ARRAY_AGG of a NULL element": "SELECT order_id, ARRAY_AGG(price ORDER BY product_id DESC) AS prices FROM order_lines WHERE order_id = 'o_c1_1' GROUP BY order_id",
    "(SELECT DISTINCT ..) AS r JOIN": "SELECT r.customer_id, r.as_of FROM (SELECT DISTINCT o.customer_id, m.as_of FROM orders AS o JOIN snapshot_cuts AS m ON o.timestamp < m.as_of) AS r",
    "CAST(AVG(int) AS DOUBLE)": "SELECT customer_id, CAST(AVG(n) AS DOUBLE) AS a FROM (SELECT o.customer_id, o.order_id, COUNT(*) AS n FROM orders AS o JOIN order_lines AS l ON l.order_id = o.order_id GROUP BY o.customer_id, o.order_id) GROUP BY customer_id",
}


# -- static check ------------------------------------------------------------------------------------------
ZETASQL_PYTHON = REPO / ".venv-bqemulator" / "bin" / "python"


def zetasql_check(queries: dict[str, str], qualified: str) -> dict[str, str | None]:
    """name -> None (resolves and type-checks as GoogleSQL) or the analyzer's error (scripts/zetasql_check.py)."""
    import subprocess

    tables = {f"{qualified}.{name}": columns for name, columns in SCHEMAS.items()}
    done = subprocess.run([str(ZETASQL_PYTHON), str(REPO / "scripts" / "zetasql_check.py")],
                          input=json.dumps({"tables": tables, "queries": queries}), capture_output=True, text=True,
                          timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"zetasql_check failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout)


# -- loading + types --------------------------------------------------------------------------------------
def probe_loading(client, n: int, batches: list[int]) -> list[str]:
    """Every way of loading n (order_id, customer_id, timestamp) rows; rows/s of those that work."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from google.cloud import bigquery

    schema = [bigquery.SchemaField("order_id", "STRING"), bigquery.SchemaField("customer_id", "STRING"),
              bigquery.SchemaField("timestamp", "TIMESTAMP")]
    stamps = [START + timedelta(minutes=i) for i in range(n)]
    rows = [{"order_id": f"o{i}", "customer_id": f"c{i % 97}", "timestamp": t.isoformat(sep=" ")}
            for i, t in enumerate(stamps)]
    arrow = pa.table({"order_id": [r["order_id"] for r in rows], "customer_id": [r["customer_id"] for r in rows],
                      "timestamp": pa.array(stamps, pa.timestamp("us"))})
    ndjson = "".join(json.dumps(r) + "\n" for r in rows).encode()
    csv = ("order_id,customer_id,timestamp\n" + "".join(f"{r['order_id']},{r['customer_id']},{r['timestamp']}\n"
                                                        for r in rows)).encode()
    buf = io.BytesIO()
    pq.write_table(arrow, buf)
    parquet = buf.getvalue()
    client.create_dataset("load", exists_ok=True)

    def fresh(name: str) -> str:
        ref = f"{PROJECT}.load.{name}"
        client.delete_table(ref, not_found_ok=True)
        client.create_table(bigquery.Table(ref, schema=schema))
        return ref

    def file_load(fmt: str, data: bytes, **kw):
        def go(ref: str) -> None:
            config = bigquery.LoadJobConfig(schema=schema, source_format=fmt)
            if fmt == bigquery.SourceFormat.CSV:
                config.skip_leading_rows = 1
            client.load_table_from_file(io.BytesIO(data), ref, job_config=config, **kw).result()
        return go

    def inserts(batch: int):
        def go(ref: str) -> None:
            for i in range(0, n, batch):
                errors = client.insert_rows_json(ref, rows[i:i + batch])
                if errors:
                    raise RuntimeError(f"insert_rows_json errors: {errors[:3]}")
        return go

    methods = [(f"insert_rows_json, batches of {b}", inserts(b)) for b in batches]
    methods += [
        ("load_table_from_file NDJSON (resumable)", file_load(bigquery.SourceFormat.NEWLINE_DELIMITED_JSON, ndjson)),
        ("load_table_from_file CSV (resumable)", file_load(bigquery.SourceFormat.CSV, csv)),
        ("load_table_from_file PARQUET (resumable)", file_load(bigquery.SourceFormat.PARQUET, parquet)),
        ("load_table_from_file NDJSON, size= (multipart)",
         file_load(bigquery.SourceFormat.NEWLINE_DELIMITED_JSON, ndjson, size=len(ndjson))),
        ("load_table_from_json", lambda ref: client.load_table_from_json(
            rows, ref, job_config=bigquery.LoadJobConfig(schema=schema)).result()),
        ("load_table_from_dataframe", lambda ref: client.load_table_from_dataframe(
            arrow.to_pandas(), ref, job_config=bigquery.LoadJobConfig(schema=schema)).result()),
    ]
    out = [f"loading {n} rows (order_id STRING, customer_id STRING, timestamp TIMESTAMP):"]
    for i, (label, method) in enumerate(methods):
        ref = fresh(f"t{i}")
        t = time.perf_counter()
        try:
            method(ref)
            dt = time.perf_counter() - t
            got = list(client.query(f"SELECT COUNT(*) AS n, MAX(timestamp) AS t FROM `{ref}`").result())[0]
            ok = got.n == n and got.t.replace(tzinfo=None) == stamps[-1]
            out.append(f"  {label:50s} {'ok' if ok else 'WRONG'} {got.n} rows in {dt:.2f} s = {n / dt:,.0f} rows/s")
        except Exception as exc:  # noqa: BLE001
            out.append(f"  {label:50s} FAILS {type(exc).__name__}: {_short(exc)}")
    return out


def probe_types(client) -> list[str]:
    """Arrow types of query results, through both ways of fetching them."""
    text = """SELECT TIMESTAMP '2024-01-02 03:04:05' AS ts, CAST(1.5 AS FLOAT64) AS f, CAST(3 AS INT64) AS i, TRUE AS b,
        ['x', 'y'] AS strings, [1.0, 2.5] AS floats, COUNT(*) AS n, AVG(x) AS avg_int, SUM(1.5 * x) AS sum_float,
        ARRAY_AGG(CAST(x AS STRING) ORDER BY x DESC) AS agg_strings, ARRAY_AGG(x * 0.5 ORDER BY x DESC) AS agg_floats,
        MIN(CAST(x AS FLOAT64)) / NULLIF(0, 0) AS null_float
        FROM UNNEST([1, 2, 3]) AS x"""
    out = []
    for label, fetch in [
        ("client.query(sql).to_arrow(create_bqstorage_client=False)",
         lambda: client.query(text).to_arrow(create_bqstorage_client=False)),
        ("client.query(sql).result().to_arrow(create_bqstorage_client=False)",
         lambda: client.query(text).result().to_arrow(create_bqstorage_client=False)),
    ]:
        table = fetch()
        out.append(label + ":")
        out += [f"  {f.name:12s} {f.type}" for f in table.schema]
        out.append(f"  values: {table.to_pylist()[0]}")
    return out


def _short(exc: BaseException, n: int = 600) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= n else text[:n] + " ..."


# -- main ---------------------------------------------------------------------------------------------------
def load_sql_module(sql_path: Path | None, src: Path | None) -> ModuleType:
    if src is not None:
        sys.path.insert(0, str(src))
    if sql_path is None:
        sql_path = REPO / "src" / "voicecart" / "features" / "sql.py"
    if src is None and sql_path.parent.name == "features" and sql_path.parents[2].name == "src":
        sys.path.insert(0, str(sql_path.parents[2]))  # its own tree's voicecart.* imports
    spec = importlib.util.spec_from_file_location("probe_feature_sql", sql_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.__probe_path__ = str(sql_path)
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sql", type=Path, help="the sql.py to test (default: this checkout's)")
    parser.add_argument("--src", type=Path, help="a source tree to import voicecart.* from (first on sys.path)")
    parser.add_argument("--load", type=int, metavar="ROWS", help="also measure every loading method on ROWS rows")
    parser.add_argument("--batches", default="500,1000,5000", help="insert_rows_json batch sizes for --load")
    parser.add_argument("--types", action="store_true", help="also report the Arrow types of query results")
    parser.add_argument("--no-constructs", action="store_true", help="skip the single-construct checks")
    parser.add_argument("--only", action="append", help="run only this query (repeatable)")
    parser.add_argument("--show-sql", action="store_true", help="print the BigQuery text of failing queries")
    parser.add_argument("--zetasql", action="store_true",
                        help="also type-check the BigQuery text with ZetaSQL's analyzer (scripts/zetasql_check.py)")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(REPO))  # tests.bigquery_emulator
    sql = load_sql_module(args.sql, args.src)
    missing = [name for name in ("QUERIES", "render", "to_bigquery", "product_grid", "REQUESTS", "MOMENTS")
               if not hasattr(sql, name)]
    if missing:
        parser.error(f"{sql.__probe_path__} has no {', '.join(missing)}: it predates the snapshot tables "
                     "(snapshot_requests / snapshot_moments) this probe feeds")
    import duckdb
    import sqlglot

    from tests.bigquery_emulator import bigquery_emulator

    print(f"sql.py: {sql.__probe_path__}; duckdb {duckdb.__version__}, sqlglot {sqlglot.__version__}")
    data = dataset(sql)
    tables = arrow_tables(data)
    con = duckdb.connect()
    for name, table in tables.items():
        con.register(name, table)
    print("dataset: " + ", ".join(f"{n} {len(r)}" for n, r in data.items()))
    qualified = f"{PROJECT}.{DATASET}"
    report: dict[str, Any] = {"sql": sql.__probe_path__, "queries": {}, "constructs": {}}
    bad = 0

    t = time.perf_counter()
    with bigquery_emulator(PROJECT, skip=False) as client:
        print(f"emulator up in {time.perf_counter() - t:.1f} s at {client._connection.API_BASE_URL}")
        if args.types:
            print("\n".join(probe_types(client)))
        if args.load:
            print("\n".join(probe_loading(client, args.load, [int(b) for b in args.batches.split(",")])))
        load_emulator(client, data)

        def one(name: str, text: str) -> dict[str, Any]:
            entry: dict[str, Any] = {}
            try:
                duck = con.sql(text).to_arrow_table()
                entry["duckdb_rows"] = duck.num_rows
            except Exception as exc:  # noqa: BLE001
                return {"status": "duckdb fails", "error": f"{type(exc).__name__}: {_short(exc)}"}
            try:
                bq_text = sql.to_bigquery(text, qualified)
                entry["bigquery_sql"] = bq_text
            except Exception as exc:  # noqa: BLE001
                tb = traceback.extract_tb(exc.__traceback__)[-1]
                return entry | {"status": "transpile fails",
                                "error": f"{type(exc).__name__}: {_short(exc)} (at {Path(tb.filename).name}:{tb.lineno})"}
            try:
                bq = run_emulator(client, bq_text)
                entry["emulator_rows"] = bq.num_rows
            except Exception as exc:  # noqa: BLE001
                return entry | {"status": "emulator fails", "error": f"{type(exc).__name__}: {_short(exc, 1500)}"}
            problems = compare(duck, bq)
            return entry | {"status": "differs" if problems else "works", "differences": problems}

        print("\n== queries (DuckDB as written vs emulator transpiled) ==")
        for name, text in cases(sql).items():
            if args.only and name not in args.only:
                continue
            entry = one(name, text)
            report["queries"][name] = entry
            rows = f"duckdb {entry.get('duckdb_rows', '-')} rows, emulator {entry.get('emulator_rows', '-')} rows"
            print(f"{name}: {entry['status'].upper()} ({rows})")
            if entry["status"] != "works":
                bad += 1
                if "error" in entry:
                    print(f"    {entry['error']}")
                for p in entry.get("differences", []):
                    print(f"    {p}")
                if args.show_sql and "bigquery_sql" in entry:
                    print("    --- BigQuery text ---\n" + "\n".join("    " + l for l in entry["bigquery_sql"].splitlines()))

        if not args.no_constructs and not args.only:
            print("\n== single constructs (same comparison) ==")
            for name, text in CONSTRUCTS.items():
                entry = one(name, text)
                report["constructs"][name] = entry
                detail = entry.get("error") or "; ".join(entry.get("differences", [])[:3])
                print(f"{entry['status'].upper():16s} {name}" + (f"\n    {detail}" if detail else ""))
    if args.zetasql:
        print("\n== ZetaSQL analyzer on the BigQuery text (every language feature on; catches what the emulator lets through) ==")
        texts = {f"{kind}:{name}": entry["bigquery_sql"] for kind in ("queries", "constructs")
                 for name, entry in report[kind].items() if "bigquery_sql" in entry}
        t = time.perf_counter()
        verdicts = zetasql_check(texts, qualified)
        print(f"(analyzed {len(texts)} texts in {time.perf_counter() - t:.0f} s)")
        for key, error in verdicts.items():
            kind, name = key.split(":", 1)
            report[kind][name]["zetasql"] = error or "ok"
            if error and kind == "queries":
                bad += 1
            if error or kind == "queries":
                print(f"{'OK' if not error else 'INVALID':8s} {name}" + (f"\n    {error[:600]}" if error else ""))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
