"""Opening source files: plain CSV, a zip holding one CSV, or a file inside a downloaded wheel."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv

from voicecart.data.errors import DataError


def read_csv_table(path: Path, *, member: str | None = None, string_columns: list[str] | None = None,
                   encoding: str = "utf8") -> pa.Table:
    """Read a CSV (optionally the one CSV inside a zip) into Arrow, all named columns as strings.

    A ``_row`` column holds the 1-based line number in the file (header = line 1) so errors can
    point at the row.
    """
    path = Path(path)
    if not path.exists():
        raise DataError("source file does not exist", file=str(path))
    try:
        raw = _read_bytes(path, member)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise DataError(f"cannot read the archive, it is truncated or corrupt ({exc})", file=str(path)) from None
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    read_opts = pacsv.ReadOptions(encoding=encoding, block_size=1 << 24)
    conv = pacsv.ConvertOptions(column_types={c: pa.string() for c in (string_columns or [])},
                                strings_can_be_null=False)
    try:
        table = pacsv.read_csv(io.BytesIO(raw), read_options=read_opts, convert_options=conv)
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise DataError(f"cannot parse the CSV: {exc}", file=str(path)) from None
    return table.append_column("_row", pa.array(range(2, table.num_rows + 2), pa.int64()))


def _read_bytes(path: Path, member: str | None) -> bytes:
    if path.suffix == ".zip" or path.suffix == ".whl":
        with zipfile.ZipFile(path) as zf:
            if member is None:
                csvs = [n for n in zf.namelist() if n.lower().endswith(".csv")]
                if len(csvs) != 1:
                    raise DataError(f"expected exactly one CSV inside the archive, found {csvs}", file=str(path))
                member = csvs[0]
            data = zf.read(member)
            if member.endswith(".zip"):  # a zip inside a wheel
                inner = path.name + "!" + member
                try:
                    return _read_bytes_from_zip_bytes(data)
                except zipfile.BadZipFile as exc:
                    raise DataError(f"corrupt inner archive ({exc})", file=inner) from None
            return data
    return path.read_bytes()


def _read_bytes_from_zip_bytes(data: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        csvs = [n for n in zf.namelist() if n.lower().endswith(".csv")]
        return zf.read(csvs[0])


def require_columns(table: pa.Table, columns: list[str], file: str) -> None:
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise DataError(f"missing required column(s) {', '.join(missing)}; found {', '.join(table.column_names)}",
                        file=file, column=missing[0])


def fetch_wheel(package: str, version: str, cache_dir: Path) -> Path:
    """Download one wheel (no dependencies, never installed) into ``cache_dir`` and return its path."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    stem = package.replace("-", "_")
    found = sorted(cache_dir.glob(f"{stem}-{version}-*.whl"))
    if found:
        return found[0]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q",
           "-d", str(cache_dir), f"{package}=={version}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(cache_dir.glob(f"{stem}-{version}-*.whl"))
    if proc.returncode != 0 or not found:
        raise DataError(f"could not download {package}=={version} from the package index: "
                        f"{proc.stderr.strip()[-400:]}; pass --path to a local copy instead")
    return found[0]


def check_rows(con: duckdb.DuckDBPyConnection, table: str, checks: list[tuple[str, str, str]], file: str) -> None:
    """Raise a :class:`DataError` for the first failing check: (column, SQL predicate of a bad row, message),
    naming the file, the first bad rows (``_row``) and the column."""
    for column, predicate, message in checks:
        rows = [r[0] for r in con.sql(f"SELECT _row FROM {table} WHERE {predicate} ORDER BY _row LIMIT 5").fetchall()]
        if rows:
            raise DataError(message, file=file, column=column, rows=rows)
