"""Every DuckDB connection of the library is capped and spills to the system's temporary folder
(DuckDB's default, 80% of memory, let one feature query take 20 GB of a 24 GB machine)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from voicecart.data.store import MEMORY_SHARE, duckdb_connect, duckdb_memory_limit


def _setting(con, name: str) -> str:  # noqa: ANN001
    return con.execute(f"SELECT current_setting('{name}')").fetchall()[0][0]


def test_the_default_cap_is_a_share_of_physical_memory(monkeypatch):
    monkeypatch.delenv("VOICECART_DUCKDB_MEMORY_LIMIT", raising=False)
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert duckdb_memory_limit() == f"{int(total * MEMORY_SHARE) >> 20}MB"
    con = duckdb_connect()
    value, unit = _setting(con, "memory_limit").split()
    assert unit == "GiB" and abs(float(value) * 2**30 - total * MEMORY_SHARE) < 0.05 * total
    con.close()


def test_the_cap_is_set_by_environment_and_a_query_over_it_spills_and_cleans_up(monkeypatch, tmp_path):
    monkeypatch.setenv("VOICECART_DUCKDB_MEMORY_LIMIT", "64MB")
    monkeypatch.chdir(tmp_path)  # DuckDB's own default would spill into ./.tmp
    con = duckdb_connect()
    assert _setting(con, "memory_limit") == "61.0 MiB"
    spill = Path(_setting(con, "temp_directory"))
    assert spill.parent == Path(tempfile.gettempdir()) and str(os.getpid()) in spill.name
    con.execute("SET enable_progress_bar = false")
    n = con.execute("SELECT count(*) FROM (SELECT range AS k, random() AS v FROM range(8000000) ORDER BY v)").fetchall()
    assert n == [(8_000_000,)]
    con.close()
    assert not spill.exists() and not (tmp_path / ".tmp").exists()
