"""The local offline engine: DuckDB over a prepared dataset folder (one view per canonical table)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from voicecart.features.offline import normalize


class DuckDBEngine:
    """Feature SQL on DuckDB, as written (no transpiling)."""

    name = "duckdb"

    def __init__(self, dataset: str | Path) -> None:
        from voicecart.data import connect

        self.dataset = Path(dataset)
        self.con = connect(self.dataset)

    def query(self, sql: str) -> pa.Table:
        return normalize(self.con.sql(sql).to_arrow_table())

    def put(self, name: str, table: pa.Table) -> None:
        self.con.register(name, table)

    def close(self) -> None:
        self.con.close()


def feast_config(config) -> dict:  # noqa: ANN001 - config.DuckDBOffline
    """Feast reads the snapshot's parquet tables with its ``file`` store (the SQL itself runs on DuckDB)."""
    return {"type": "file"}


PROVIDER = "local"


def feast_tables(config, store_dir: Path):  # noqa: ANN001, ANN201 - definitions.FileTables
    from voicecart.features.definitions import FileTables

    return FileTables(Path(store_dir) / "offline")


def engine(config, dataset: str | Path | None) -> DuckDBEngine:  # noqa: ANN001
    if dataset is None:
        from voicecart.features.errors import FeatureStoreError

        raise FeatureStoreError("the duckdb offline engine reads a prepared dataset folder: pass one")
    return DuckDBEngine(dataset)
