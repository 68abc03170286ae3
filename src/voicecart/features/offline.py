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


def backend(config: "DuckDBOffline | BigQueryOffline"):  # noqa: ANN201 - the backend module
    """The module of a typed offline config (its ``type:`` picks it)."""
    import importlib

    return importlib.import_module(f"voicecart.features.offline_{config.type}")


def open_engine(config: "DuckDBOffline | BigQueryOffline", dataset: str | Path | None = None) -> OfflineEngine:
    """The engine of a typed offline config; ``dataset`` is the prepared folder a local engine reads."""
    return backend(config).engine(config, dataset)


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
