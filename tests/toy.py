"""Small hand-written shops for unit tests: rows in, a prepared canonical dataset and its snapshot out.

Lines are ``(customer_id, product_id, day, unit price)`` with ``day`` in days since the epoch; each
(customer, day) is one order. Everything downstream is the real code path: the canonical tables, the
feature SQL on DuckDB, the snapshot, the catalogue with its statistics at a moment.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa

from voicecart.data import CanonicalTables, write_dataset
from voicecart.features.offline_duckdb import DuckDBEngine
from voicecart.features.snapshot import Snapshot, as_of_day, as_of_fixed, build_snapshot, window_lines
from voicecart.ranking import Catalog, ProductStats
from voicecart.schemas.canonical import arrow_schema
from voicecart.schemas.times import DAY_S

EPOCH = datetime(1970, 1, 1)


def day(d: float) -> datetime:
    """Naive UTC datetime of epoch day ``d``."""
    return EPOCH + timedelta(days=d)


def toy_dataset(folder: Path, products: list[dict], lines: list[tuple], customers: list[dict] | None = None) -> Path:
    def table(name: str, rows: list[dict]) -> pa.Table:
        return pa.Table.from_pylist(rows, schema=arrow_schema(name))

    orders = {}
    for c, _, d, _ in lines:
        orders.setdefault((c, d), f"o{len(orders)}")
    ids = sorted({c for c, *_ in lines} | {c["customer_id"] for c in customers or []})
    tables = CanonicalTables(
        customers=table("customers", customers or [{"customer_id": c} for c in ids]),
        products=table("products", products),
        orders=table("orders", [{"order_id": o, "customer_id": c, "timestamp": day(d)} for (c, d), o in orders.items()]),
        order_lines=table("order_lines", [{"order_id": orders[(c, d)], "product_id": p, "quantity": 1.0, "price": pr}
                                          for c, p, d, pr in lines]),
    )
    write_dataset(tables, Path(folder), source="toy")
    return Path(folder)


def toy_snapshot(folder: Path, start: float, end: float, *, frozen_at: float | None = None,
                 cuts: tuple[float, ...] = (), extra: tuple[float, ...] = ()) -> Snapshot:
    """The snapshot of the lines of days [start, end): each asked at its day (or all at ``frozen_at``)."""
    engine = DuckDBEngine(folder)
    lines = window_lines(engine, day(start), day(end))
    lines = as_of_day(lines) if frozen_at is None else as_of_fixed(lines, day(frozen_at))
    return build_snapshot(engine, lines, cuts=[day(c) for c in cuts], extra_moments=[day(e) for e in (start, *extra)])


def toy_catalog(folder: Path, as_of: float) -> Catalog:
    """The catalogue with every product's statistics at epoch day ``as_of``."""
    from voicecart.data import connect
    from voicecart.features.build import feature_table

    con = connect(folder)
    catalog = Catalog.from_table(con.sql("SELECT * FROM products").to_arrow_table())
    rows = feature_table(con, "product_features", day(as_of))
    return catalog.at(ProductStats.from_rows(rows, catalog.index, len(catalog), as_of * DAY_S))


def utc_day(d: float) -> datetime:
    return day(d).replace(tzinfo=timezone.utc)
