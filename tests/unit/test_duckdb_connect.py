"""Every DuckDB connection of the library is capped and spills to a private folder of the system's
temporary directory (DuckDB's default, 80% of memory, let one feature query take 20 GB of a 24 GB machine)."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import duckdb
import pytest

from voicecart.data.errors import DataError
from voicecart.data.store import duckdb_connect, duckdb_memory_limit, duckdb_spill_dir


def _setting(con, name: str) -> str:  # noqa: ANN001
    return con.execute(f"SELECT current_setting('{name}')").fetchall()[0][0]


def _bytes(text: str) -> float:
    value, unit = text.split()
    return float(value) * {"MiB": 2**20, "GiB": 2**30}[unit]


def test_the_default_cap_is_a_quarter_of_what_duckdb_sees(monkeypatch):
    monkeypatch.delenv("VOICECART_DUCKDB_MEMORY_LIMIT", raising=False)
    assert duckdb_memory_limit() == "25%"
    plain = duckdb.connect()  # DuckDB's own default: 80% of the (cgroup-aware) memory
    ours = duckdb_connect()
    assert _bytes(_setting(ours, "memory_limit")) == pytest.approx(_bytes(_setting(plain, "memory_limit")) * 25 / 80,
                                                                   rel=0.02)
    plain.close()
    ours.close()


def test_the_cap_is_set_by_environment_and_a_query_over_it_spills_to_a_private_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("VOICECART_DUCKDB_MEMORY_LIMIT", "64MB")
    monkeypatch.chdir(tmp_path)  # DuckDB's own default would spill into ./.tmp
    con = duckdb_connect()
    assert _setting(con, "memory_limit") == "61.0 MiB"
    spill = Path(_setting(con, "temp_directory"))
    assert spill.parent == Path(tempfile.gettempdir()) and stat.S_IMODE(spill.stat().st_mode) == 0o700
    con.execute("SET enable_progress_bar = false")
    n = con.execute("SELECT count(*) FROM (SELECT range AS k, random() AS v FROM range(8000000) ORDER BY v)").fetchall()
    assert n == [(8_000_000,)]
    con.close()
    assert not any(f.name.startswith(f"duckdb_temp_{os.getpid()}_") for f in spill.iterdir())  # its files gone
    assert not (tmp_path / ".tmp").exists()


def test_a_bad_cap_names_the_variable(monkeypatch):
    monkeypatch.setenv("VOICECART_DUCKDB_MEMORY_LIMIT", "lots")
    with pytest.raises(DataError, match="VOICECART_DUCKDB_MEMORY_LIMIT='lots'"):
        duckdb_connect()


def test_a_spill_folder_that_is_not_this_users_private_one_is_never_used(monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / f"voicecart-duckdb-{os.getuid()}").symlink_to(target)  # planted before us
    spill = duckdb_spill_dir()
    assert spill.parent == tmp_path and not spill.is_symlink() and spill.name != f"voicecart-duckdb-{os.getuid()}"
    assert stat.S_IMODE(spill.stat().st_mode) == 0o700
