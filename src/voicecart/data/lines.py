"""Your own export → canonical tables: one flat CSV or parquet file, one row per purchased line.

Required columns: ``customer_id, timestamp, product_id, quantity, price``. Optional: ``order_id``
(else one order per customer and timestamp), ``product_title, brand, size``, ``category_l1``,
``category_l2``, ``category_l3`` (codes or names; missing levels repeat the level above, a missing
path becomes ``uncategorized``), and ``age_group, postal_area`` per customer. See docs/data.md.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from voicecart.data.errors import DataError
from voicecart.data.sources import check_rows, read_csv_table, require_columns
from voicecart.data.store import CanonicalTables, duckdb_connect

REQUIRED = ["customer_id", "timestamp", "product_id", "quantity", "price"]
OPTIONAL = ["order_id", "product_title", "brand", "size", "category_l1", "category_l2", "category_l3",
            "age_group", "postal_area"]
_STRINGS = ["customer_id", "timestamp", "product_id", "order_id", "product_title", "brand", "size",
            "category_l1", "category_l2", "category_l3", "age_group", "postal_area"]


def _read(path: Path) -> pa.Table:
    if not path.exists():
        raise DataError("source file does not exist", file=str(path))
    if path.suffix == ".parquet":
        try:
            table = pq.read_table(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(f"cannot read the parquet file ({exc})", file=str(path)) from None
        table = table.cast(pa.schema([pa.field(f.name, pa.string()) if f.name in _STRINGS
                                      and not pa.types.is_timestamp(f.type) else f for f in table.schema]))
        return table.append_column("_row", pa.array(range(1, table.num_rows + 1), pa.int64()))
    return read_csv_table(path, string_columns=_STRINGS)


def load(path: Path) -> tuple[CanonicalTables, dict]:
    path = Path(path)
    raw = _read(path)
    require_columns(raw, REQUIRED, str(path))
    for col in OPTIONAL:
        if col not in raw.column_names:
            raw = raw.append_column(col, pa.nulls(raw.num_rows, pa.string()))
    con = duckdb_connect()
    con.register("raw", raw)
    _check(con, str(path))
    con.execute("""
        CREATE TABLE src AS SELECT
            customer_id, product_id, CAST(timestamp AS TIMESTAMP) AS ts,
            coalesce(nullif(order_id, ''), customer_id || '@' || strftime(CAST(timestamp AS TIMESTAMP), '%Y%m%dT%H%M%S')) AS oid,
            CAST(quantity AS DOUBLE) AS quantity, CAST(price AS DOUBLE) AS price,
            nullif(product_title, '') AS title, nullif(brand, '') AS brand, nullif(size, '') AS size,
            coalesce(nullif(category_l1, ''), 'uncategorized') AS c1,
            coalesce(nullif(category_l2, ''), nullif(category_l1, ''), 'uncategorized') AS c2,
            coalesce(nullif(category_l3, ''), nullif(category_l2, ''), nullif(category_l1, ''), 'uncategorized') AS c3,
            nullif(age_group, '') AS age_group, nullif(postal_area, '') AS postal_area
        FROM raw""")
    clash = con.execute("SELECT oid FROM src GROUP BY oid HAVING count(DISTINCT customer_id) > 1 LIMIT 1").fetchall()
    if clash:
        raise DataError(f"order {clash[0][0]} belongs to more than one customer", file=str(path), column="order_id")
    tables = CanonicalTables(
        customers=con.sql("SELECT customer_id, any_value(age_group) AS age_group, any_value(postal_area) AS postal_area "
                          "FROM src GROUP BY 1 ORDER BY 1").to_arrow_table(),
        # a product's category path is the one most of its lines carry; level values double as names
        products=con.sql("""
            SELECT product_id, title, brand, size, path[1] AS category_l1, path[2] AS category_l2,
                   path[3] AS category_l3, path[1] AS category_l1_name, path[2] AS category_l2_name,
                   path[3] AS category_l3_name
            FROM (SELECT product_id, any_value(title) AS title, any_value(brand) AS brand, any_value(size) AS size,
                         coalesce(mode([c1, c2, c3]) FILTER (WHERE c1 <> 'uncategorized'),
                                  ['uncategorized', 'uncategorized', 'uncategorized']) AS path
                  FROM src GROUP BY 1)
            ORDER BY 1""").to_arrow_table(),
        orders=con.sql("SELECT oid AS order_id, any_value(customer_id) AS customer_id, min(ts) AS timestamp "
                       "FROM src GROUP BY 1 ORDER BY timestamp, order_id").to_arrow_table(),
        order_lines=con.sql("""SELECT oid AS order_id, product_id, sum(quantity) AS quantity,
                                      sum(price * quantity) / sum(quantity) AS price
                               FROM src GROUP BY ALL ORDER BY 1, 2""").to_arrow_table(),
    )
    return tables, {"source_lines": raw.num_rows}


def _check(con: duckdb.DuckDBPyConnection, name: str) -> None:
    checks = [
        ("customer_id", "customer_id IS NULL OR trim(customer_id) = ''", "empty customer id"),
        ("product_id", "product_id IS NULL OR trim(product_id) = ''", "empty product id"),
        ("timestamp", "try_cast(timestamp AS TIMESTAMP) IS NULL", "unparseable timestamp (use ISO 8601)"),
        ("quantity", "try_cast(quantity AS DOUBLE) IS NULL OR try_cast(quantity AS DOUBLE) <= 0",
         "quantity must be a positive number"),
        ("price", "price IS NOT NULL AND (try_cast(price AS DOUBLE) IS NULL OR try_cast(price AS DOUBLE) < 0)",
         "price must be a non-negative number"),
    ]
    check_rows(con, "raw", checks, name)
