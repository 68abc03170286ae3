"""The offline SQL engine behind the feature snapshot: one small interface, one module per backend.

=============  ==========================================  ===========================================
``type``       module                                      runs the feature SQL on
=============  ==========================================  ===========================================
``duckdb``     :mod:`voicecart.features.offline_duckdb`    a prepared dataset folder (parquet), locally
``bigquery``   :mod:`voicecart.features.offline_bigquery`  a BigQuery dataset, the same SQL transpiled
=============  ==========================================  ===========================================

Both take the feature SQL in DuckDB's dialect and hand back Arrow tables with the same types
(timestamps tz-aware UTC, numbers float64 or int64), so a snapshot is the same whichever ran it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import pyarrow as pa

if TYPE_CHECKING:
    from voicecart.config import BigQueryOffline, DuckDBOffline


class OfflineEngine(Protocol):
    """Runs feature SQL over the canonical tables."""

    name: str

    def query(self, sql: str) -> pa.Table:
        """Run one query written in DuckDB's dialect; the result as Arrow (see :func:`normalize`)."""
        ...

    def put(self, name: str, table: pa.Table) -> None:
        """Make a small table (the snapshot's requests or moments) readable by later queries as ``name``."""
        ...

    def feedback(self, start: str, end: str) -> pa.Table:
        """The feedback events of [start, end) (SQL timestamp literals), one row per event: :func:`feedback_sql`
        over the offline feedback table (empty when no event has reached it yet)."""
        ...


def backend(config: "DuckDBOffline | BigQueryOffline"):  # noqa: ANN201 - the backend module
    """The module of a typed offline config (its ``type:`` picks it)."""
    import importlib

    return importlib.import_module(f"voicecart.features.offline_{config.type}")


def open_engine(config: "DuckDBOffline | BigQueryOffline", dataset: str | Path | None = None,
                store_dir: str | Path | None = None) -> OfflineEngine:
    """The engine of a typed offline config; ``dataset`` is the prepared folder a local engine reads, and
    ``store_dir`` the feature store whose offline feedback table it reads too."""
    return backend(config).engine(config, dataset, Path(store_dir) if store_dir is not None else None)


def normalize(table: pa.Table) -> pa.Table:
    """One set of types whatever the engine: timestamps ``timestamp[us, UTC]``, decimals float64."""
    fields = []
    for field in table.schema:
        t = field.type
        if pa.types.is_timestamp(t):
            t = pa.timestamp("us", tz="UTC")
        elif pa.types.is_decimal(t):
            t = pa.float64()
        elif pa.types.is_list(t) and pa.types.is_decimal(t.value_type):
            t = pa.list_(pa.float64())
        fields.append(pa.field(field.name, t))
    schema = pa.schema(fields)
    if schema.equals(table.schema):
        return table
    columns = []
    for field, column in zip(schema, table.columns):
        if pa.types.is_timestamp(field.type) and column.type.tz is None:
            column = column.cast(pa.timestamp("us")).cast(field.type)  # naive means UTC
        columns.append(column.cast(field.type))
    return pa.Table.from_arrays(columns, schema=schema)


# -- implicit feedback in the offline store -----------------------------------------------------------
FEEDBACK_TABLE = "feedback_events"
"""The offline table (a parquet folder locally, a BigQuery table at scale) every acknowledged event reaches."""
FEEDBACK_SCHEMA = pa.schema([
    pa.field("event_id", pa.string(), nullable=False),
    pa.field("request_id", pa.string(), nullable=False),
    pa.field("customer_id", pa.string(), nullable=False),
    pa.field("product_id", pa.string(), nullable=False),
    pa.field("kind", pa.string(), nullable=False),
    pa.field("substitute_id", pa.string()),
    pa.field("timestamp", pa.timestamp("us"), nullable=False),  # naive UTC, as the canonical tables
    pa.field("received_at", pa.timestamp("us"), nullable=False),
    pa.field("flags", pa.string()),
    pa.field("arm", pa.string()),
    pa.field("model_version", pa.string()),
])


class FeedbackSink(Protocol):
    """Appends feedback events to the offline store, at least once; readers keep one row per ``event_id``."""

    def write(self, rows: pa.Table) -> int:
        """Write ``rows`` (:data:`FEEDBACK_SCHEMA`); the number written. Raises when the store is unreachable."""
        ...


def feedback_sink(config: "DuckDBOffline | BigQueryOffline", store_dir: str | Path) -> FeedbackSink:
    """Where the intake writes events offline: the configured offline backend's feedback table."""
    return backend(config).feedback_sink(config, Path(store_dir))


def feedback_sql(start: str, end: str) -> str:
    """The window's feedback events (timestamps as SQL literals), one row per ``event_id`` (its first copy):
    a replayed or doubly delivered event counts once. The same SQL on DuckDB and BigQuery."""
    columns = ", ".join(FEEDBACK_SCHEMA.names)
    return f"""
        SELECT {columns} FROM (
            SELECT {columns}, ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY received_at NULLS FIRST) AS copy
            FROM {FEEDBACK_TABLE}
            WHERE timestamp >= {start} AND timestamp < {end}
        ) AS f
        WHERE copy = 1"""
