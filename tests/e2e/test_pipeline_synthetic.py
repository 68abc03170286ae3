"""Evaluation on update with a model that really wins: synthetic customers with planted preferences.

The pipeline's own steps (the library calls its components make), in process: the first ranker
must beat the strongest baseline, a worse one must lose to it, and the champion scored against
itself must not be promoted (no win without a margin and an interval above zero).
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

WINDOW = dict(window_start="2020-01-01", window_end="2020-05-01")
CUT = "2020-03-01"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from voicecart.data.prepare import prepare
    from voicecart.data.synthetic import SyntheticConfig
    from voicecart.data.window import prepare_window

    tmp = tmp_path_factory.mktemp("synthetic")
    prepare("synthetic", tmp / "full", synthetic_config=SyntheticConfig(n_customers=1500, mean_orders=14, seed=0))
    prepare_window("prepared", tmp / "full", tmp / "window", test_from=CUT, **WINDOW)
    return tmp / "window"


@pytest.fixture(scope="module")
def snapshot(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from voicecart.features.snapshot import snapshot_step

    out = tmp_path_factory.mktemp("snapshot") / "snapshot"
    snapshot_step(data, None, out, test_from=CUT, window_end=WINDOW["window_end"])
    return out


def _challenger(snapshot: Path, out: Path, **train) -> Path:  # noqa: ANN003
    from voicecart.export.model import export_model
    from voicecart.ranking.train import train_step

    train_step(snapshot, out / "model", test_from=CUT, log=lambda _: None, **train)
    export_model(out / "model", snapshot, out / "bundle", test_from=CUT, held_out=16, mar=False, **WINDOW)
    return out / "bundle"


def test_winner_is_promoted_loser_refused_and_the_champion_does_not_beat_itself(snapshot: Path, tmp_path: Path) -> None:
    from voicecart.promotion import evaluate_update, register_challenger
    from voicecart.registry import Registry

    registry = str(tmp_path / "registry")
    end = WINDOW["window_end"]
    good = _challenger(snapshot, tmp_path / "good", epochs=4)
    first = evaluate_update(snapshot, good, registry, test_from=CUT, window_end=end, decision_path=tmp_path / "first.json")
    assert first["promote"], first["report"]
    assert "over baseline:" in first["summary"]
    reg = Registry(registry)
    reg.promote(register_challenger(good, tmp_path / "first.json", registry), first["summary"])

    bad = _challenger(snapshot, tmp_path / "bad", epochs=1, hidden="2", lr=0.00001)
    second = evaluate_update(snapshot, bad, registry, test_from=CUT, window_end=end, decision_path=tmp_path / "second.json")
    assert not second["promote"] and "KEEP champion v0001" in second["summary"]
    assert second["metrics"]["champion_hr@1"] == pytest.approx(first["metrics"]["challenger_hr@1"], abs=1e-9)
    assert register_challenger(bad, tmp_path / "second.json", registry) == "v0002"
    assert reg.champion() == "v0001" and reg.metadata("v0002").extra["gate"] == "refused"

    itself = evaluate_update(snapshot, good, registry, test_from=CUT, window_end=end)
    assert not itself["promote"] and itself["metrics"]["difference"] == 0.0
