"""Instacart 2017 → canonical tables.

Two layouts are read from one folder: the Kaggle release (``products``, ``aisles``, ``departments``,
``orders``, ``order_products__prior`` / ``__train``) and the one-file sample
(``order_lines_sample.csv`` beside ``products``/``aisles``/``departments``). Orders carry no dates:
each user's orders are dated by accumulating ``days_since_prior_order`` from an arbitrary start,
at ``order_hour_of_day``. Instacart has two category levels, so the path is
department > aisle > aisle (the subclass repeats the aisle).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from voicecart.data.errors import DataError
from voicecart.data.sources import read_csv_table, require_columns
from voicecart.data.store import CanonicalTables, duckdb_connect

START = "2017-01-01"
_ORDER_COLS = ["order_id", "user_id", "order_number", "order_hour_of_day", "days_since_prior_order"]


def _csv(folder: Path, stem: str, required: list[str], strings: list[str]):  # noqa: ANN202
    for name in (f"{stem}.csv", f"{stem}.csv.zip"):
        path = folder / name
        if path.exists():
            table = read_csv_table(path, string_columns=strings)
            require_columns(table, required, str(path))
            return table, str(path)
    raise DataError(f"missing {stem}.csv in the Instacart folder", file=str(folder / f"{stem}.csv"))


def load(path: Path) -> tuple[CanonicalTables, dict]:
    folder = Path(path)
    if not folder.is_dir():
        raise DataError("the Instacart source must be a folder holding the CSV files", file=str(folder))
    con = duckdb_connect()
    products, _ = _csv(folder, "products", ["product_id", "product_name", "aisle_id", "department_id"],
                           ["product_id", "aisle_id", "department_id"])
    aisles, _ = _csv(folder, "aisles", ["aisle_id", "aisle"], ["aisle_id"])
    departments, _ = _csv(folder, "departments", ["department_id", "department"], ["department_id"])
    con.register("products_raw", products)
    con.register("aisles", aisles)
    con.register("departments", departments)

    if (folder / "order_lines_sample.csv").exists():
        lines, lfile = _csv(folder, "order_lines_sample", _ORDER_COLS + ["product_id"],
                            ["order_id", "user_id", "product_id"])
        con.register("lines_raw", lines)
        con.execute(f"CREATE VIEW orders_raw AS SELECT DISTINCT {', '.join(_ORDER_COLS)} FROM lines_raw")
        con.execute("CREATE VIEW op_raw AS SELECT order_id, product_id, _row FROM lines_raw")
        ofile = lfile
    else:
        orders, ofile = _csv(folder, "orders", _ORDER_COLS, ["order_id", "user_id"])
        con.register("orders_raw", orders)
        parts = []
        for stem in ("order_products__prior", "order_products__train"):
            if (folder / f"{stem}.csv").exists() or (folder / f"{stem}.csv.zip").exists():
                t, lfile = _csv(folder, stem, ["order_id", "product_id"], ["order_id", "product_id"])
                con.register(stem, t)
                parts.append(f"SELECT order_id, product_id, _row FROM {stem}")
        if not parts:
            raise DataError("missing order_products__prior.csv / order_products__train.csv", file=str(folder))
        con.execute(f"CREATE VIEW op_raw AS {' UNION ALL '.join(parts)}")

    _check(con, ofile)
    tables = CanonicalTables(
        customers=con.sql("SELECT DISTINCT user_id AS customer_id, NULL AS age_group, NULL AS postal_area "
                          "FROM orders_raw ORDER BY 1").to_arrow_table(),
        products=con.sql("""
            SELECT p.product_id, p.product_name AS title, NULL AS brand, NULL AS size,
                   'd' || p.department_id AS category_l1, 'a' || p.aisle_id AS category_l2,
                   'a' || p.aisle_id AS category_l3, d.department AS category_l1_name,
                   a.aisle AS category_l2_name, a.aisle AS category_l3_name
            FROM products_raw p LEFT JOIN aisles a USING (aisle_id) LEFT JOIN departments d USING (department_id)
            ORDER BY p.product_id""").to_arrow_table(),
        orders=con.sql(f"""
            SELECT order_id, user_id AS customer_id,
                   TIMESTAMP '{START}' + to_days(CAST(sum(coalesce(days_since_prior_order, 0)) OVER (
                        PARTITION BY user_id ORDER BY order_number) AS INTEGER))
                   + to_hours(CAST(order_hour_of_day AS INTEGER)) AS timestamp
            FROM orders_raw ORDER BY customer_id, timestamp""").to_arrow_table(),
        order_lines=con.sql("SELECT order_id, product_id, count(*)::DOUBLE AS quantity, NULL::DOUBLE AS price "
                            "FROM op_raw GROUP BY ALL ORDER BY order_id, product_id").to_arrow_table(),
    )
    stats = {"source_lines": con.execute("SELECT count(*) FROM op_raw").fetchall()[0][0]}
    unknown = con.execute("SELECT min(_row), count(*) FROM op_raw ANTI JOIN products_raw USING (product_id)").fetchall()[0]
    if unknown[1]:
        raise DataError(f"{unknown[1]} order line(s) reference products not in products.csv",
                        file=lfile, column="product_id", rows=[unknown[0]])
    return tables, stats


def _check(con: duckdb.DuckDBPyConnection, file: str) -> None:
    bad = con.execute("""SELECT count(*) FROM orders_raw WHERE try_cast(days_since_prior_order AS DOUBLE) < 0
                         OR try_cast(order_number AS INTEGER) IS NULL""").fetchall()[0][0]
    if bad:
        raise DataError(f"{bad} order(s) with a negative days_since_prior_order or no order_number", file=file,
                        column="days_since_prior_order")
