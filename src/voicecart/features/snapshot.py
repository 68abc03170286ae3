"""ONE point-in-time snapshot: everything known at given moments for a set of customers and products.

A :class:`Snapshot` is what the feature SQL (:mod:`voicecart.features.sql`) says about the customers
and products of a set of *queries* — purchased lines, each stamped with the moment it is asked at
(``as_of``): the customer's history before that moment (``pairs``, ``customers``), every product's
statistics at that moment (``products``), and the customer's C-STAR embedding as of then
(``embeddings``). It is the only source of ranker features: training examples and the evaluation
window are built from it, and the served engine reads the same rows materialized into Feast.

    engine = DuckDBEngine("data/tafeng")                  # or BigQueryEngine(...): same SQL
    lines = as_of_day(window_lines(engine, start, end))   # each line asked at the start of its day
    snap = build_snapshot(engine, lines)                  # one SQL pass per table
    snap.save("runs/snapshot")                            # parquet, read back by Snapshot.load
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from voicecart.features.errors import FeatureStoreError
from voicecart.features.offline import OfflineEngine
from voicecart.features.sql import ALL_CUSTOMERS, CUTS, MOMENTS, REQUESTS, product_grid, render, timestamp_literal
from voicecart.schemas.times import epoch_array, naive_utc, utc

TIMESTAMP = pa.timestamp("us", tz="UTC")
TABLES = ("lines", "customers", "pairs", "products", "catalog", "cut_pairs")
SUMMARY = "snapshot.json"


@dataclass(frozen=True)
class Snapshot:
    """Feature rows as of each query's moment (Arrow tables; every ``event_timestamp`` is a moment)."""

    lines: pa.Table
    """The queries: purchased lines (customer_id, order_id, timestamp, product_id, quantity, price) with
    the moment each is asked at (``as_of``)."""
    customers: pa.Table
    """``customer_stats`` per (customer_id, event_timestamp) of the queries."""
    pairs: pa.Table
    """``customer_product`` per (customer_id, event_timestamp, product_id), sorted by the first two."""
    products: pa.Table
    """``product_stats`` per (product_id, event_timestamp) for every moment of the queries (sold products)."""
    catalog: pa.Table
    """The canonical products table (ids, titles, brand, size, category path)."""
    cut_pairs: pa.Table
    """``customer_product`` of EVERY customer at each cut moment (what product vectors are fit on)."""
    embeddings: pa.Table | None = None
    """C-STAR embeddings (customer_id, event_timestamp, embedding): a customer's row as of a moment is
    their latest with ``event_timestamp <= moment``."""
    feedback: pa.Table | None = None
    """The window's implicit-feedback events from the offline store (``features.offline.FEEDBACK_SCHEMA``,
    one row per event_id); their customers' rows as of each event's day are among the snapshot's."""

    @property
    def moments(self) -> np.ndarray:
        """Epoch seconds of every moment the products are known at (sorted)."""
        return np.unique(epoch_array(self.products.column("event_timestamp")))

    def with_embeddings(self, embeddings: pa.Table | None) -> "Snapshot":
        return replace(self, embeddings=None if embeddings is None else _embedding_table(embeddings))

    def embeddings_as_of(self, customer_ids: Sequence[str], moments: np.ndarray) -> np.ndarray | None:
        """[n, E] float32: each (customer, moment)'s latest embedding at or before it (zeros if none);
        None without embeddings. This is the point-in-time join Feast makes for the embedding view."""
        if self.embeddings is None or self.embeddings.num_rows == 0:
            return None
        table = self.embeddings
        ids = np.asarray(table.column("customer_id").to_pylist(), dtype=object)
        at = epoch_array(table.column("event_timestamp"))
        vectors = np.asarray(table.column("embedding").to_pylist(), dtype=np.float32)
        order = np.lexsort((at, ids))
        ids, at, vectors = ids[order], at[order], vectors[order]
        keys = np.asarray(customer_ids, dtype=object)
        lo = np.searchsorted(ids, keys, side="left")
        hi = np.searchsorted(ids, keys, side="right")
        out = np.zeros((len(keys), vectors.shape[1]), dtype=np.float32)
        for i, (a, b) in enumerate(zip(lo, hi)):
            if b > a:
                j = a + int(np.searchsorted(at[a:b], moments[i], side="right")) - 1
                if j >= a:
                    out[i] = vectors[j]
        return out

    # -- persistence (a pipeline artifact) --------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        rows = {}
        optional = tuple(n for n in ("embeddings", "feedback") if getattr(self, n) is not None)
        for name in TABLES + optional:
            table = getattr(self, name)
            pq.write_table(table, folder / f"{name}.parquet", compression="zstd")
            rows[name] = table.num_rows
        (folder / SUMMARY).write_text(json.dumps({"rows": rows, "moments": int(len(self.moments))}, indent=2))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> "Snapshot":
        folder = Path(folder)
        if not (folder / SUMMARY).is_file():
            raise FeatureStoreError(f"{folder} holds no feature snapshot (no {SUMMARY}); run the features step "
                                    "(`voicecart features snapshot`) first")
        tables = {name: pq.read_table(folder / f"{name}.parquet") for name in TABLES}
        for name in ("embeddings", "feedback"):
            path = folder / f"{name}.parquet"
            tables[name] = pq.read_table(path) if path.is_file() else None
        return cls(**tables)


# -- the queries ------------------------------------------------------------------------------------
def window_lines(engine: OfflineEngine, start: datetime, end: datetime) -> pa.Table:
    """Purchased lines in [start, end): one row per (order, product), oldest first."""
    sql = f"""
        SELECT o.customer_id, o.order_id, o.timestamp, l.product_id, SUM(l.quantity) AS quantity,
            SUM(l.quantity * l.price) / NULLIF(SUM(l.quantity), 0) AS price
        FROM orders AS o JOIN order_lines AS l ON l.order_id = o.order_id
        WHERE o.timestamp >= {timestamp_literal(start)} AND o.timestamp < {timestamp_literal(end)}
        GROUP BY o.customer_id, o.order_id, o.timestamp, l.product_id
        ORDER BY o.timestamp, o.customer_id, o.order_id, l.product_id"""
    return engine.query(sql)


def as_of_day(lines: pa.Table) -> pa.Table:
    """Each line asked at the start of its (UTC) day: the online protocol, and how training is built."""
    days = pc.floor_temporal(lines.column("timestamp").cast(TIMESTAMP), unit="day")
    return _set(lines, "as_of", days)


def as_of_fixed(lines: pa.Table, moment: datetime) -> pa.Table:
    """Every line asked at one moment (the frozen protocol: history and statistics frozen at ``moment``)."""
    return _set(lines, "as_of", pa.array([utc(moment)] * lines.num_rows, TIMESTAMP))


def as_of_exact(lines: pa.Table) -> pa.Table:
    """Each line asked at its own order's time (last-order protocol: everything before that order)."""
    return _set(lines, "as_of", lines.column("timestamp").cast(TIMESTAMP))


def _set(table: pa.Table, name: str, column: pa.Array | pa.ChunkedArray) -> pa.Table:
    if name in table.column_names:
        return table.set_column(table.column_names.index(name), name, column)
    return table.append_column(name, column)


def build_snapshot(engine: OfflineEngine, lines: pa.Table, *, cuts: Sequence[datetime] = (),
                   extra_moments: Sequence[datetime] = (),
                   progress: Callable[[str, int], None] | None = None) -> Snapshot:
    """The snapshot of ``lines`` (each with its ``as_of``): their customers as of each moment, every
    product at each moment (plus ``extra_moments``, e.g. the end of the window serving starts from, and
    the ``cuts``), and every customer's history at each of ``cuts`` (where product vectors are fit)."""
    if "as_of" not in lines.column_names:
        raise FeatureStoreError("the query lines carry no as_of moment: stamp them with as_of_day / as_of_fixed")
    t0 = time.perf_counter()
    lines = lines.set_column(lines.column_names.index("as_of"), "as_of", lines.column("as_of").cast(TIMESTAMP))
    requests = pa.table({"customer_id": lines.column("customer_id"), "as_of": _naive(lines.column("as_of"))})
    requests = requests.group_by(["customer_id", "as_of"]).aggregate([])
    moments = sorted({naive_utc(m) for m in requests.column("as_of").to_pylist()}
                     | {naive_utc(m) for m in (*extra_moments, *cuts)})
    if not moments:
        raise FeatureStoreError("no query lines: nothing to build a snapshot for")
    grid = product_grid(moments)
    engine.put(REQUESTS, requests)
    engine.put(MOMENTS, pa.table({"as_of": pa.array([m for m, _ in grid], pa.timestamp("us")),
                                  "wanted": pa.array([w for _, w in grid], pa.bool_())}))

    def run(name: str, sql: str) -> pa.Table:
        table = engine.query(sql)
        if progress:
            progress(name, table.num_rows)
        return table

    pairs = run("pairs", render("customer_product")).sort_by([("customer_id", "ascending"),
                                                               ("event_timestamp", "ascending")])
    customers = run("customers", render("customer_stats"))
    products = run("products", render("product_stats", t0=moments[0]))
    catalog = run("catalog", "SELECT * FROM products ORDER BY product_id")
    cut_moments = sorted({naive_utc(c) for c in cuts})
    engine.put(CUTS, pa.table({"as_of": pa.array(cut_moments, pa.timestamp("us"))}))
    cut_pairs = run("cut pairs", render("customer_product", requests=ALL_CUSTOMERS, moments=CUTS))
    if progress:
        progress("seconds", int(time.perf_counter() - t0))
    return Snapshot(lines=lines, customers=customers, pairs=pairs, products=products, catalog=catalog,
                    cut_pairs=cut_pairs)


def _naive(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Timestamps as naive UTC microseconds (what the canonical tables and the SQL literals use)."""
    return column.cast(TIMESTAMP).cast(pa.timestamp("us")) if column.type.tz else column.cast(pa.timestamp("us"))


def _embedding_table(table: pa.Table) -> pa.Table:
    missing = {"customer_id", "event_timestamp", "embedding"} - set(table.column_names)
    if missing:
        raise FeatureStoreError(f"embeddings table lacks column(s) {', '.join(sorted(missing))}")
    return table.select(["customer_id", "event_timestamp", "embedding"]).set_column(
        1, "event_timestamp", table.column("event_timestamp").cast(TIMESTAMP))


# -- the pipeline's features step ---------------------------------------------------------------------
TRAIN_DAYS = 56
"""The ranker learns from the 8 weeks before the cut-off."""
CUT_EVERY_DAYS = 28
"""Product vectors (and the embeddings they are fit with) are taken every 4 weeks and at the cut-off."""


def training_cuts(test_from: datetime, train_days: int = TRAIN_DAYS, every: int = CUT_EVERY_DAYS) -> list[datetime]:
    """The snapshot's cuts: every ``every`` days from the training start, and the cut-off itself."""
    from datetime import timedelta

    start = utc(test_from) - timedelta(days=train_days)
    return sorted({start + timedelta(days=d) for d in range(0, train_days, every)} | {utc(test_from)})


def snapshot_window(engine: OfflineEngine, out: str | Path, *, test_from: datetime, window_end: datetime,
                    train_days: int = TRAIN_DAYS, embeddings: pa.Table | None = None,
                    progress: Callable[[str, int], None] | None = None) -> dict:
    """The features step: the snapshot of the training weeks before ``test_from`` and the evaluation window
    after it, every line asked at the start of its day (as served), written to ``out``.

    The window's feedback events (the offline store's ``feedback_events``, one row per event_id) join it,
    and their customers are asked like purchases so the trainer finds their rows; ``embeddings`` (C-STAR,
    with their moments) join it too.
    """
    from datetime import timedelta

    start = utc(test_from) - timedelta(days=train_days)
    lines = as_of_day(window_lines(engine, start, window_end))
    if lines.num_rows == 0:
        raise FeatureStoreError(f"no purchases between {start:%Y-%m-%d} and {utc(window_end):%Y-%m-%d}: "
                                "nothing to train or evaluate on")
    feedback = engine.feedback(timestamp_literal(start), timestamp_literal(window_end))
    asked = lines
    if feedback.num_rows:
        extra = as_of_day(feedback.select(["customer_id", "timestamp", "product_id"]))
        asked = pa.concat_tables([lines.select(["customer_id", "as_of"]), extra.select(["customer_id", "as_of"])])
    snap = build_snapshot(engine, lines if asked is lines else _with_requests(lines, asked),
                          cuts=training_cuts(test_from, train_days), extra_moments=[window_end], progress=progress)
    snap = replace(snap.with_embeddings(embeddings), feedback=feedback)
    snap.save(out)
    return {"lines": snap.lines.num_rows, "customer_rows": snap.customers.num_rows, "pairs": snap.pairs.num_rows,
            "product_rows": snap.products.num_rows, "moments": int(len(snap.moments)),
            "cut_pairs": snap.cut_pairs.num_rows, "embeddings": 0 if embeddings is None else embeddings.num_rows,
            "feedback_events": feedback.num_rows}


def _with_requests(lines: pa.Table, asked: pa.Table) -> pa.Table:
    """``lines`` plus placeholder rows asking for the extra (customer, as_of) of ``asked`` (no product:
    they add snapshot rows, never a training list)."""
    have = set(zip(lines.column("customer_id").to_pylist(), lines.column("as_of").to_pylist()))
    extra = [(c, t) for c, t in set(zip(asked.column("customer_id").to_pylist(), asked.column("as_of").to_pylist()))
             if (c, t) not in have]
    if not extra:
        return lines
    pad = {name: pa.nulls(len(extra), lines.schema.field(name).type) for name in lines.column_names}
    pad["customer_id"] = pa.array([c for c, _ in extra], lines.schema.field("customer_id").type)
    pad["as_of"] = pa.array([t for _, t in extra], lines.schema.field("as_of").type)
    pad["timestamp"] = pa.array([t for _, t in extra], pa.timestamp("us", tz="UTC")).cast(lines.schema.field("timestamp").type)
    return pa.concat_tables([lines, pa.table(pad, schema=lines.schema)])


EMBEDDINGS_FILE = "embeddings.parquet"
"""Where the C-STAR step leaves its embeddings (customer_id, event_timestamp, embedding) in its output folder."""


def snapshot_step(dataset_dir: str | Path, embeddings_dir: str | Path | None, out: str | Path, *, test_from: str,
                  window_end: str, feedback_store: str | Path | None = None,
                  progress: Callable[[str, int], None] | None = None) -> dict:
    """The pipeline's features step on the configured offline engine (``features.offline`` settings):
    DuckDB over the prepared window, or BigQuery (the window's canonical tables uploaded first). The
    feedback events come from that offline store (``feedback_store``: another local feature store's folder)."""
    from voicecart.config import load_settings
    from voicecart.features.offline import open_engine
    from voicecart.schemas.times import parse_moment

    settings = load_settings().features
    offline = settings.offline
    engine = open_engine(offline, dataset_dir, feedback_store or settings.store_dir)
    if offline.type != "duckdb":
        from voicecart.data import load_dataset
        from voicecart.features.offline_bigquery import upload_tables

        tables = load_dataset(Path(dataset_dir))
        upload_tables(engine, [(name, tables[name]) for name in ("customers", "products", "orders", "order_lines")])
    emb_path = Path(embeddings_dir) / EMBEDDINGS_FILE if embeddings_dir else None
    embeddings = pq.read_table(emb_path) if emb_path is not None and emb_path.is_file() else None
    summary = snapshot_window(engine, out, test_from=parse_moment(test_from), window_end=parse_moment(window_end),
                              embeddings=embeddings, progress=progress)
    return {**summary, "engine": engine.name}
