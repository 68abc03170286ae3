"""The pipeline's first step: the canonical tables of a data window, a deterministic customer sample."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicecart.data import DataError, connect
from voicecart.data.prepare import prepare
from voicecart.data.synthetic import SyntheticConfig
from voicecart.data.window import prepare_window


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("syn") / "full"
    prepare("synthetic", out, synthetic_config=SyntheticConfig(n_customers=200, mean_orders=10, seed=1))
    return out


def _span(folder: Path) -> tuple:
    return connect(folder).execute("SELECT min(timestamp), max(timestamp), count(DISTINCT customer_id) "
                                   "FROM orders").fetchall()[0]


def test_window_keeps_only_its_orders_and_their_lines(source: Path, tmp_path: Path) -> None:
    stats = prepare_window("prepared", source, tmp_path / "w", window_start="2020-01-15", window_end="2020-02-15",
                           test_from="2020-02-01")
    first, last, customers = _span(tmp_path / "w")
    assert str(first) >= "2020-01-15" and str(last) < "2020-02-15"
    assert stats["customers"] == customers and stats["orders"] > 0
    con = connect(tmp_path / "w")
    assert con.execute("SELECT count(*) FROM order_lines WHERE order_id NOT IN (SELECT order_id FROM orders)"
                       ).fetchall()[0][0] == 0


def test_customer_sample_is_deterministic_by_seed(source: Path, tmp_path: Path) -> None:
    ids = []
    for i, seed in enumerate((0, 0, 1)):
        prepare_window("prepared", source, tmp_path / f"s{i}", window_start="2020-01-01", window_end="2020-06-01",
                       max_customers=50, seed=seed)
        ids.append({r[0] for r in connect(tmp_path / f"s{i}").execute("SELECT customer_id FROM customers").fetchall()})
    assert len(ids[0]) == 50 and ids[0] == ids[1] and ids[0] != ids[2]


def test_empty_or_backwards_windows_are_refused(source: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no orders between 2030-01-01 and 2030-02-01"):
        prepare_window("prepared", source, tmp_path / "x", window_start="2030-01-01", window_end="2030-02-01")
    with pytest.raises(DataError, match="ends .* before it starts"):
        prepare_window("prepared", source, tmp_path / "x", window_start="2020-03-01", window_end="2020-01-01")
    with pytest.raises(DataError, match="no orders before 2019-01-01 .* nothing to train on"):
        prepare_window("prepared", source, tmp_path / "x", window_start="2020-01-01", window_end="2020-06-01",
                       test_from="2019-01-01")
    with pytest.raises(DataError, match="needs the prepared dataset folder"):
        prepare_window("prepared", None, tmp_path / "x", window_start="2020-01-01", window_end="2020-06-01")
    assert not (tmp_path / "x").exists()
