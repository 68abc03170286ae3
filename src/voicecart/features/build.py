"""The offline feature tables the Feast views read: the snapshot SQL at one moment, for every customer.

``build_features(data_dir, out_dir)`` writes one parquet file per table into ``out_dir`` (the Feast
file sources read them), plus ``features.json`` saying what was written and as of when. They are the
feature SQL of :mod:`voicecart.features.sql` with every customer as a request: the online profile
(``customer_profile``), the product statistics (``product_features`` = ``product_stats``) and the
category shares (``customer_features``) — the very rows a training snapshot holds for its queries.
Each file is written to a temporary name and renamed, so a failed build leaves the old tables whole.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from voicecart.features.errors import FeatureStoreError
from voicecart.features.offline import normalize
from voicecart.features.sql import ALL_CUSTOMERS, MOMENTS, product_grid, render
from voicecart.schemas.times import naive_utc

FEATURE_TABLES: tuple[str, ...] = ("customer_profile", "customer_features", "product_features")
"""Tables :func:`build_features` writes by default (``customer_product`` on request)."""
QUERY_OF = {"product_features": "product_stats"}
"""Feast table name -> the feature query that fills it (the others share their query's name)."""
EMBEDDINGS_FILE = "customer_embedding.parquet"
"""Where C-STAR writes embeddings, inside the offline folder: see :func:`write_embeddings`."""
EMBEDDING_SCHEMA = pa.schema([
    pa.field("customer_id", pa.string(), nullable=False),
    pa.field("event_timestamp", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("embedding", pa.list_(pa.float32())),
])
SUMMARY_FILE = "features.json"
EVENT_TIMESTAMP = pa.timestamp("us", tz="UTC")


@dataclass
class BuildSummary:
    """What :func:`build_features` wrote."""

    out_dir: Path
    as_of: list[datetime]
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def to_json(self) -> dict:
        return {"as_of": [t.isoformat() for t in self.as_of], "rows": self.rows, "seconds": round(self.seconds, 3)}


def feature_table(con: duckdb.DuckDBPyConnection, name: str, as_of: datetime | Sequence[datetime]) -> pa.Table:
    """One feature table for every customer (or product) at one or several ``as_of`` moments.

    ``con`` must expose the canonical tables (``voicecart.data.connect``). Only orders strictly
    before each ``as_of`` are used; rows carry ``event_timestamp = as_of``.
    """
    moments = [as_of] if isinstance(as_of, datetime) else list(as_of)
    if not moments:
        raise FeatureStoreError("feature_table needs at least one as_of moment")
    query = QUERY_OF.get(name, name)
    if query == "product_stats":
        grid = product_grid(moments)
        con.register(MOMENTS, pa.table({"as_of": pa.array([m for m, _ in grid], pa.timestamp("us")),
                                        "wanted": pa.array([w for _, w in grid], pa.bool_())}))
        sql = render(query, t0=min(naive_utc(m) for m in moments))
    else:
        con.register(MOMENTS, pa.table({"as_of": pa.array([naive_utc(m) for m in moments], pa.timestamp("us")),
                                        "wanted": pa.array([True] * len(moments))}))
        sql = render(query, requests=ALL_CUSTOMERS)
    return normalize(con.sql(sql).to_arrow_table())


def profiles_as_of(con: duckdb.DuckDBPyConnection, as_of: datetime | Sequence[datetime]) -> pa.Table:
    """The customer profile rows (one per customer with history before ``as_of``), as Arrow.

    Columns match :class:`voicecart.schemas.CustomerProfile` (``event_timestamp`` is its ``as_of``).
    """
    return feature_table(con, "customer_profile", as_of)


def default_as_of(con: duckdb.DuckDBPyConnection) -> datetime:
    """Midnight after the last order: every order counts."""
    last = con.execute("SELECT MAX(timestamp) FROM orders").fetchall()[0][0]
    if last is None:
        raise FeatureStoreError("the dataset has no orders; nothing to build features from")
    return datetime(last.year, last.month, last.day) + timedelta(days=1)


def snapshot_times(con: duckdb.DuckDBPyConnection, as_of: datetime, every_days: int) -> list[datetime]:
    """Moments ``as_of, as_of - every_days, ...`` back to the first order (oldest first)."""
    if every_days < 1:
        raise FeatureStoreError(f"snapshot interval must be at least 1 day (got {every_days})")
    first = con.execute("SELECT MIN(timestamp) FROM orders").fetchall()[0][0]
    moments, t = [], as_of
    while first is not None and t > first:
        moments.append(t)
        t -= timedelta(days=every_days)
    return sorted(moments) or [as_of]


def materialized(data_dir: str | Path, as_of: datetime | None = None) -> tuple[pa.Table, pa.Table]:
    """(customer_profile, product_stats) of every customer and product at ``as_of`` (default: after the last
    order): what a materialization puts online, computed in memory."""
    from voicecart.data import connect

    con = connect(Path(data_dir))
    try:
        as_of = naive_utc(as_of) if as_of is not None else default_as_of(con)
        return profiles_as_of(con, as_of), feature_table(con, "product_features", as_of)
    finally:
        con.close()


def _write_atomic(table: pa.Table, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        pq.write_table(table, tmp, compression="zstd")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def build_features(data_dir: Path | str, out_dir: Path | str, as_of: datetime | None = None, *,
                   snapshot_every_days: int | None = None, tables: Sequence[str] = FEATURE_TABLES,
                   progress: Callable[[str, int], None] | None = None) -> BuildSummary:
    """Compute the feature tables of a prepared dataset and write them as parquet into ``out_dir``.

    ``as_of`` defaults to midnight after the last order. With ``snapshot_every_days`` each table
    holds one snapshot every N days up to ``as_of``; otherwise one snapshot at ``as_of``.
    ``progress(table, rows)`` is called after each table. Also writes an empty embeddings file if
    none exists yet, so the embedding view can be applied.
    """
    from voicecart.data import connect

    start = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    con = connect(Path(data_dir))
    try:
        as_of = naive_utc(as_of) if as_of is not None else default_as_of(con)
        moments = snapshot_times(con, as_of, snapshot_every_days) if snapshot_every_days else [as_of]
        summary = BuildSummary(out_dir=out, as_of=moments)
        for name in tables:
            table = feature_table(con, name, moments)
            _write_atomic(table, out / f"{name}.parquet")
            summary.rows[name] = table.num_rows
            if progress:
                progress(name, table.num_rows)
    finally:
        con.close()
    if not (out / EMBEDDINGS_FILE).exists():
        _write_atomic(EMBEDDING_SCHEMA.empty_table(), out / EMBEDDINGS_FILE)
    summary.seconds = time.perf_counter() - start
    (out / SUMMARY_FILE).write_text(json.dumps(summary.to_json(), indent=2))
    return summary


def write_embeddings(out_dir: Path | str, customer_ids: Sequence[str], embeddings, as_of: datetime) -> Path:
    """Write C-STAR embeddings where the ``customer_embedding`` feature view reads them.

    ``embeddings`` is anything shaped ``(len(customer_ids), dim)`` (numpy array, list of lists);
    stored as ``list<float32>``. Replaces the file atomically; returns its path.
    """
    import numpy as np

    matrix = np.asarray(embeddings, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[0] != len(customer_ids):
        raise FeatureStoreError(f"embeddings must be shaped (n_customers, dim) = ({len(customer_ids)}, dim); "
                                f"got {matrix.shape}")
    dim = matrix.shape[1]
    values = pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1), pa.float32()), dim).cast(
        pa.list_(pa.float32()))
    table = pa.table({
        "customer_id": pa.array(list(customer_ids), pa.string()),
        "event_timestamp": pa.array([naive_utc(as_of)] * len(customer_ids), pa.timestamp("us")).cast(EVENT_TIMESTAMP),
        "embedding": values,
    }, schema=EMBEDDING_SCHEMA)
    return write_embedding_table(out_dir, table)


def write_embedding_table(out_dir: Path | str, table: pa.Table) -> Path:
    """Write an embeddings table (customer_id, event_timestamp, embedding) for the embedding view."""
    path = Path(out_dir) / EMBEDDINGS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(table.select(EMBEDDING_SCHEMA.names).cast(EMBEDDING_SCHEMA), path)
    return path
