"""Write and read a prepared dataset: one parquet file per canonical table plus ``manifest.json``.

Writes go to a temporary sibling folder that is renamed into place at the end, so a failed run
leaves nothing half-written and a re-run replaces the old folder whole.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from voicecart.data.errors import DataError
from voicecart.schemas.canonical import CANONICAL_TABLES, SCHEMA_VERSION, Manifest, TableEntry, arrow_schema

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class CanonicalTables:
    """The four canonical tables in memory (Arrow), as every adapter returns them."""

    customers: pa.Table
    products: pa.Table
    orders: pa.Table
    order_lines: pa.Table

    def __getitem__(self, name: str) -> pa.Table:
        return getattr(self, name)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def conform(name: str, table: pa.Table) -> pa.Table:
    """Select and cast a table to its canonical schema (column order, types, nullability). A nullable
    column the adapter does not know (e.g. household labels on Ta-Feng) is written as nulls."""
    schema = arrow_schema(name)
    for f in schema:
        if f.nullable and f.name not in table.column_names:
            table = table.append_column(f.name, pa.nulls(table.num_rows, f.type))
    missing = [f.name for f in schema if f.name not in table.column_names]
    if missing:
        raise DataError(f"table {name} lacks canonical column(s) {', '.join(missing)}", column=missing[0])
    return table.select(schema.names).cast(schema)


MEMORY_LIMIT = "25%"
"""How much memory one DuckDB connection may hold before it spills to disk: a share of what DuckDB sees
as the machine's memory (a container's cgroup limit where there is one)."""


def duckdb_memory_limit() -> str:
    """``VOICECART_DUCKDB_MEMORY_LIMIT`` (DuckDB's syntax: ``4GB``, ``512MB``, ``40%``) or :data:`MEMORY_LIMIT`.
    DuckDB's own default is 80%: one feature query on the Instacart sample's 543 moments then held 20 GB of a
    24 GB machine and the kernel killed whatever else ran; capped at 3 GB the same query finished as fast
    (59 s against 66 s), spilling to disk (docs/features.md)."""
    return os.environ.get("VOICECART_DUCKDB_MEMORY_LIMIT") or MEMORY_LIMIT


def duckdb_spill_dir() -> Path:
    """This user's spill folder in the system's temporary directory (DuckDB's default is ``.tmp`` in the
    working directory), made private (0700). DuckDB prefixes its files per process and cleans up those of
    dead processes in a folder it shares, so every process of the user shares this one. A path that is not
    this user's own folder (another user's, a link) is never used: a fresh private folder is made instead."""
    uid = os.getuid() if hasattr(os, "getuid") else 0
    path = Path(tempfile.gettempdir()) / f"voicecart-duckdb-{uid}"
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        info = path.lstat()
        if stat.S_ISDIR(info.st_mode) and not stat.S_ISLNK(info.st_mode) and info.st_uid == uid \
                and not info.st_mode & 0o077:
            return path
    except OSError:
        pass
    return Path(tempfile.mkdtemp(prefix="voicecart-duckdb-"))


def duckdb_connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with a memory cap (:func:`duckdb_memory_limit`) that spills to
    :func:`duckdb_spill_dir`. Every DuckDB connection of the library is made here."""
    limit = duckdb_memory_limit()
    try:
        return duckdb.connect(config={"memory_limit": limit, "temp_directory": str(duckdb_spill_dir())})
    except (duckdb.InvalidInputException, duckdb.ParserException) as exc:
        raise DataError(f"VOICECART_DUCKDB_MEMORY_LIMIT={limit!r} is not a DuckDB memory limit such as 4GB or 25% "
                        f"({exc})") from None


def validate_references(tables: CanonicalTables, source_file: str | None = None) -> None:
    """Every order line's product is in the catalogue and every order's customer is known."""
    con = duckdb_connect()
    con.register("lines", tables.order_lines)
    con.register("products", tables.products)
    con.register("orders", tables.orders)
    con.register("customers", tables.customers)
    bad = con.sql(
        "SELECT l.product_id FROM lines l ANTI JOIN products p USING (product_id) LIMIT 5"
    ).fetchall()
    if bad:
        raise DataError(
            f"order lines reference product(s) not in the catalogue: {', '.join(r[0] for r in bad)}",
            file=source_file, column="product_id")
    bad = con.sql("SELECT o.customer_id FROM orders o ANTI JOIN customers c USING (customer_id) LIMIT 5").fetchall()
    if bad:
        raise DataError(f"orders reference unknown customer(s): {', '.join(r[0] for r in bad)}",
                        file=source_file, column="customer_id")
    bad = con.sql("SELECT l.order_id FROM lines l ANTI JOIN orders o USING (order_id) LIMIT 5").fetchall()
    if bad:
        raise DataError(f"order lines reference unknown order(s): {', '.join(r[0] for r in bad)}",
                        file=source_file, column="order_id")


def write_dataset(tables: CanonicalTables, out: Path, *, source: str, source_path: str | None = None,
                  stats: dict[str, int | float | str] | None = None,
                  extras: dict[str, pa.Table] | None = None) -> Manifest:
    """Write the canonical tables atomically into ``out`` and return the manifest.

    ``extras`` are written beside them as ``<name>.parquet`` (e.g. the synthetic set's planted truth).
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    tmp.chmod(0o755)
    try:
        entries = {}
        for name in CANONICAL_TABLES:
            table = conform(name, tables[name])
            path = tmp / f"{name}.parquet"
            pq.write_table(table, path, compression="zstd")
            entries[name] = TableEntry(file=path.name, rows=table.num_rows, sha256=_sha256(path))
        for name, table in (extras or {}).items():
            pq.write_table(table, tmp / f"{name}.parquet", compression="zstd")
        manifest = Manifest(schema_version=SCHEMA_VERSION, source=source, source_path=source_path,
                            created_at=datetime.now(timezone.utc), tables=entries, stats=stats or {})
        (tmp / MANIFEST).write_text(manifest.model_dump_json(indent=2))
        if out.exists():
            backup = out.with_name(f".{out.name}.old")
            shutil.rmtree(backup, ignore_errors=True)
            out.rename(backup)
            tmp.rename(out)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            tmp.rename(out)
        return manifest
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_manifest(folder: Path) -> Manifest:
    path = Path(folder) / MANIFEST
    if not path.exists():
        raise DataError(f"{folder} is not a prepared dataset: {MANIFEST} is missing "
                        "(run `voicecart data prepare` first)", file=str(path))
    manifest = Manifest.model_validate(json.loads(path.read_text()))
    if manifest.schema_version.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
        raise DataError(f"dataset schema version {manifest.schema_version} is incompatible with "
                        f"{SCHEMA_VERSION}; prepare it again", file=str(path))
    return manifest


def load_dataset(folder: Path) -> CanonicalTables:
    """Read a prepared dataset back into Arrow tables."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    return CanonicalTables(**{name: pq.read_table(folder / manifest.tables[name].file,
                                                  schema=arrow_schema(name))
                              for name in CANONICAL_TABLES})


def connect(folder: Path) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with one view per canonical table of a prepared dataset (columns a dataset of
    an older minor schema version lacks read as nulls)."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    con = duckdb_connect()
    for name in CANONICAL_TABLES:
        file = folder / manifest.tables[name].file
        path = file.as_posix().replace("'", "''")
        present = set(pq.read_schema(file).names)
        absent = "".join(f", NULL::{_SQL_TYPES[str(f.type)]} AS {f.name}" for f in arrow_schema(name)
                         if f.name not in present)
        con.execute(f"CREATE VIEW {name} AS SELECT *{absent} FROM read_parquet('{path}')")
    return con


_SQL_TYPES = {"string": "VARCHAR", "double": "DOUBLE", "timestamp[us]": "TIMESTAMP"}
