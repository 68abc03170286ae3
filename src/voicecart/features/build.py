"""Run the feature SQL on DuckDB and write the offline feature tables as parquet.

``build_features(data_dir, out_dir)`` writes one parquet file per feature table into ``out_dir``
(the Feast file sources read them), plus ``features.json`` saying what was written and as of
when. Each file is written to a temporary name and renamed, so a failed build leaves the old
tables whole. ``profiles_as_of(con, as_of)`` is the same profile SQL for training snapshots.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from voicecart.features.errors import FeatureStoreError
from voicecart.features.sql import render

FEATURE_TABLES: tuple[str, ...] = ("customer_profile", "customer_features", "product_features")
"""Tables :func:`build_features` writes by default (``customer_product`` on request)."""
EMBEDDINGS_FILE = "customer_embedding.parquet"
"""Where C-STAR writes embeddings, inside the offline folder: see :func:`write_embeddings`."""
EMBEDDING_SCHEMA = pa.schema([
    pa.field("customer_id", pa.string(), nullable=False),
    pa.field("event_timestamp", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("embedding", pa.list_(pa.float32())),
])
SUMMARY_FILE = "features.json"


@dataclass
class BuildSummary:
    """What :func:`build_features` wrote."""

    out_dir: Path
    as_of: list[datetime]
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def to_json(self) -> dict:
        return {"as_of": [t.isoformat() for t in self.as_of], "rows": self.rows, "seconds": round(self.seconds, 3)}


EVENT_TIMESTAMP = pa.timestamp("us", tz="UTC")


def _table(con: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    """Run one query; ``event_timestamp`` becomes tz-aware UTC (what Feast's file store expects)."""
    table = con.sql(sql).to_arrow_table()
    i = table.schema.get_field_index("event_timestamp")
    return table.set_column(i, pa.field("event_timestamp", EVENT_TIMESTAMP, nullable=False),
                            table.column(i).cast(EVENT_TIMESTAMP))


def feature_table(con: duckdb.DuckDBPyConnection, name: str, as_of: datetime | Sequence[datetime]) -> pa.Table:
    """One feature table at one or several ``as_of`` moments (rows stamped ``event_timestamp = as_of``).

    ``con`` must expose the canonical tables (``voicecart.data.connect``). Only orders strictly
    before each ``as_of`` are used.
    """
    moments = [as_of] if isinstance(as_of, datetime) else list(as_of)
    if not moments:
        raise FeatureStoreError("feature_table needs at least one as_of moment")
    parts = [_table(con, render(name, t)) for t in moments]
    return parts[0] if len(parts) == 1 else pa.concat_tables(parts)


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


def _naive_utc(t: datetime) -> datetime:
    return t.astimezone(timezone.utc).replace(tzinfo=None) if t.tzinfo else t


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
    holds one snapshot every N days up to ``as_of`` (what point-in-time training joins need);
    otherwise one snapshot at ``as_of``. ``progress(table, rows)`` is called after each table.
    Also writes an empty embeddings file if none exists yet, so the embedding view can be applied.
    """
    from voicecart.data import connect

    start = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    con = connect(Path(data_dir))
    try:
        as_of = _naive_utc(as_of) if as_of is not None else default_as_of(con)
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
        "event_timestamp": pa.array([_naive_utc(as_of)] * len(customer_ids), pa.timestamp("us")).cast(EVENT_TIMESTAMP),
        "embedding": values,
    }, schema=EMBEDDING_SCHEMA)
    path = Path(out_dir) / EMBEDDINGS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(table, path)
    return path
