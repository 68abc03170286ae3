"""A rule-based baseline as a real, servable bundle: a tiny module scoring the rule from the feature vector.

The baselines of the gate (``voicecart.ranking.baselines``, ``voicecart.evaluation.resolution``) rank
a list by a key — the customer's purchase count of the product, then recent popularity, then
popularity — read from purchases. The same counts are in the ranker's feature vector as
``log1p`` columns, and ``log1p`` keeps order, so a module comparing those columns ranks exactly
like the rule. It is exported through :func:`voicecart.export.build_bundle` (ONNX, TorchScript,
Triton; checked against torch), so serving loads it like any model. The demo serves it when the
gate refused the first challenger and no champion exists yet.

Shapes: features [B, N, F] → key columns [B, N, K] → pairwise "beats" [B, N, N] → scores [B, N]
(score = −number of candidates of the list whose key is larger: 0 for the top answer; equal keys
tie, and ties go to the first row as in the gate's ranking). Zero rows (padding) beat nobody.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from torch import nn

from voicecart.ranking.features import FEATURE_NAMES

RULES: dict[str, tuple[str, ...]] = {
    "popularity": ("log_popularity",),
    "recent_popularity": ("log_popularity_recent", "log_popularity"),
    "most_bought_else_popularity": ("log_count", "log_popularity"),
    "most_bought_else_recent_popularity": ("log_count", "log_popularity_recent", "log_popularity"),
}
"""Baseline name (as the gate's table names it, without ``baseline:``) → its key, most significant first."""


class BaselineRanker(nn.Module):
    """Ranks candidates by one baseline's key, lexicographically, from the raw feature vector."""

    def __init__(self, rule: str, feature_names: tuple[str, ...] | list[str] = FEATURE_NAMES) -> None:
        super().__init__()
        if rule not in RULES:
            raise ValueError(f"no exportable baseline {rule!r}; exportable: {', '.join(RULES)}")
        self.rule = rule
        self.register_buffer("columns", torch.tensor([list(feature_names).index(c) for c in RULES[rule]]))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        key = features.index_select(-1, self.columns)  # [B, N, K]
        a, b = key.unsqueeze(2), key.unsqueeze(1)  # row i vs row j: [B, N, 1, K], [B, 1, N, K]
        beats = b[..., -1] > a[..., -1]  # [B, N, N]: j beats i on the least significant column
        for k in range(key.shape[-1] - 2, -1, -1):
            beats = (b[..., k] > a[..., k]) | ((b[..., k] == a[..., k]) & beats)
        return -beats.to(features.dtype).sum(-1)  # [B, N]


def exportable(name: str) -> bool:
    """``baseline:<rule>`` (or ``<rule>``) can be exported from the feature vector."""
    return name.removeprefix("baseline:") in RULES


def _examples(n_features: int, feature_names: tuple[str, ...] | list[str], seed: int = 0) -> list[dict[str, np.ndarray]]:
    """Requests with integer counts and popularities (ties included), the way the features hold them."""
    rng = np.random.default_rng(seed)
    out = []
    for size in (2, 7, 30, 100):
        x = rng.random((1, size, n_features), dtype=np.float32)
        for name in ("log_count", "log_popularity", "log_popularity_recent"):
            x[0, :, list(feature_names).index(name)] = np.log1p(rng.integers(0, 4 if name == "log_count" else 50, size))
        out.append({"features": x})
    return out


def build_baseline_bundle(rule: str, catalog_from: Path, out: Path, *, data_window=None,  # noqa: ANN001
                          feature_names: tuple[str, ...] | list[str] = FEATURE_NAMES, name: str = "voicecart") -> Path:
    """Export baseline ``rule`` as a bundle in ``out``, serving from the catalogue file ``catalog_from``.

    ``catalog_from`` is a ``catalog.pkl`` (``Catalog.save``), e.g. the challenger bundle's
    ``model/catalog.pkl``: the baseline answers from the same catalogue snapshot.
    """
    from voicecart.export.bundle import build_bundle
    from voicecart.registry import feature_schema_hash
    from voicecart.schemas import ModelMetadata

    rule = rule.removeprefix("baseline:")
    module = BaselineRanker(rule, feature_names).eval()
    example, *held_out = _examples(len(feature_names), feature_names)

    def save_weights(directory: Path) -> None:
        shutil.copyfile(catalog_from, directory / "catalog.pkl")
        (directory / "baseline.txt").write_text(f"{rule}: ranks by {', then '.join(RULES[rule])}\n")

    metadata = ModelMetadata(
        name=name, version=f"baseline-{rule}", created_at=datetime.now(timezone.utc), data_window=data_window,
        feature_names=list(feature_names), feature_schema_hash=feature_schema_hash(list(feature_names)),
        extra={"baseline": rule, "key": ",".join(RULES[rule])})
    return build_bundle(module, example, Path(out), metadata, save_weights=save_weights, mar=False, held_out=held_out)
