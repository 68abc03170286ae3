"""Synthetic data for the replay with a planted brand switch in the middle of the replayed days."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from voicecart.data.synthetic import SyntheticConfig


@dataclass(frozen=True)
class PlantedWorld:
    dataset: Path
    config: SyntheticConfig
    start: str
    """The first replayed day (ISO date)."""
    switch_day: int
    """Days after the data's start from which the switchers prefer their new brand."""


def planted_world(folder: Path, *, customers: int, replay_days: int, switch_after: int, seed: int = 0,
                  gate_days: int = 3, share: float = 0.2) -> PlantedWorld:
    """A prepared synthetic dataset long enough for the replay's history, with ``share`` of the customers
    switching brand in some categories ``switch_after`` days into the replay (written once per folder)."""
    from voicecart.data.prepare import prepare
    from voicecart.simulate.replay import HISTORY_DAYS

    offset = HISTORY_DAYS + gate_days + 14  # two weeks of warm-up before the training history starts
    cfg = SyntheticConfig(n_customers=customers, mean_orders=(offset + replay_days) / 7.0 + 2,
                          start=datetime(2020, 1, 1), switch_day=offset + switch_after, switch_share=share, seed=seed,
                          numeric_codes=True)
    if not (folder / "manifest.json").is_file():
        prepare("synthetic", folder, synthetic_config=cfg)
    return PlantedWorld(folder.resolve(), cfg, f"{cfg.start + timedelta(days=offset):%Y-%m-%d}", offset + switch_after)
