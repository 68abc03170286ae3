"""The local offline engine: DuckDB over a prepared dataset folder (one view per canonical table)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from voicecart.features.offline import FEEDBACK_SCHEMA, FEEDBACK_TABLE, feedback_sql, normalize


class DuckDBEngine:
    """Feature SQL on DuckDB, as written (no transpiling). ``feedback`` is the folder of the offline feedback
    table (``ParquetFeedbackSink``); it is readable as ``feedback_events``, empty when it holds nothing."""

    name = "duckdb"

    def __init__(self, dataset: str | Path, feedback: str | Path | None = None) -> None:
        from voicecart.data import connect

        self.dataset = Path(dataset)
        self.con = connect(self.dataset)
        files = sorted(Path(feedback).glob("*.parquet")) if feedback is not None else []
        if files:
            paths = ", ".join("'" + f.as_posix().replace("'", "''") + "'" for f in files)
            self.con.execute(f"CREATE VIEW {FEEDBACK_TABLE} AS SELECT * FROM read_parquet([{paths}], union_by_name = true)")
        else:
            self.con.register(FEEDBACK_TABLE, FEEDBACK_SCHEMA.empty_table())

    def query(self, sql: str) -> pa.Table:
        return normalize(self.con.sql(sql).to_arrow_table())

    def put(self, name: str, table: pa.Table) -> None:
        self.con.register(name, table)

    def feedback(self, start: str, end: str) -> pa.Table:
        return self.query(feedback_sql(start, end))

    def close(self) -> None:
        self.con.close()


def feast_config(config) -> dict:  # noqa: ANN001 - config.DuckDBOffline
    """Feast reads the snapshot's parquet tables with its ``file`` store (the SQL itself runs on DuckDB)."""
    return {"type": "file"}


PROVIDER = "local"


def feast_tables(config, store_dir: Path):  # noqa: ANN001, ANN201 - definitions.FileTables
    from voicecart.features.definitions import FileTables

    return FileTables(Path(store_dir) / "offline")


def engine(config, dataset: str | Path | None, store_dir: Path | None = None) -> DuckDBEngine:  # noqa: ANN001
    if dataset is None:
        from voicecart.features.errors import FeatureStoreError

        raise FeatureStoreError("the duckdb offline engine reads a prepared dataset folder: pass one")
    return DuckDBEngine(dataset, feedback_dir(store_dir) if store_dir is not None else None)


def feedback_dir(store_dir: Path) -> Path:
    """The local offline feedback table: one folder of parquet files under the store's offline tables."""
    return Path(store_dir) / "offline" / FEEDBACK_TABLE


class ParquetFeedbackSink:
    """Feedback events as parquet files in one folder. A batch's file is named by its events' ids, so a
    replay of the same batch rewrites the same file; rows repeated across batches are dropped at read."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def write(self, rows: pa.Table) -> int:
        import hashlib
        import os

        import pyarrow.parquet as pq

        if rows.num_rows == 0:
            return 0
        self.folder.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256("\n".join(sorted(rows.column("event_id").to_pylist())).encode()).hexdigest()[:20]
        path = self.folder / f"part-{digest}.parquet"
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            pq.write_table(rows.cast(FEEDBACK_SCHEMA), tmp)
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)
        return rows.num_rows


def feedback_sink(config, store_dir: Path) -> ParquetFeedbackSink:  # noqa: ANN001
    return ParquetFeedbackSink(feedback_dir(store_dir))
