"""Ranking metrics with bootstrap confidence intervals: the one implementation everyone uses.

Every metric is computed from the 1-based rank of the true product in each query's ranked list
(``0`` = the truth is not among the candidates: a miss for every metric).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

METRICS: tuple[str, ...] = ("hr@1", "hr@5", "mrr", "ndcg@5")


def truth_ranks(scores: np.ndarray, labels: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """1-based rank of the positive row of each list under ``scores`` (0 when the list has none).

    Ties are broken by row order inside the list (candidates come most popular first), so a
    constant scorer is the popularity ranking, never a lucky one.
    """
    n_lists = len(offsets) - 1
    ranks = np.zeros(n_lists, dtype=np.int64)
    sizes = np.diff(offsets)
    list_of = np.repeat(np.arange(n_lists), sizes)
    pos = np.flatnonzero(labels > 0)
    if not len(pos):
        return ranks
    # keep the first positive per list
    first = np.unique(list_of[pos], return_index=True)[1]
    pos = pos[first]
    lists = list_of[pos]
    truth_score = np.full(n_lists, np.nan)
    truth_score[lists] = scores[pos]
    truth_row = np.full(n_lists, -1)
    truth_row[lists] = pos
    ts = truth_score[list_of]
    tr = truth_row[list_of]
    row = np.arange(len(scores))
    better = (scores > ts) | ((scores == ts) & (row < tr))
    ranks[lists] = np.bincount(list_of, weights=better.astype(np.float64), minlength=n_lists)[lists].astype(np.int64) + 1
    return ranks


def per_query(ranks: np.ndarray) -> dict[str, np.ndarray]:
    """Per-query metric values from truth ranks (0 = miss)."""
    hit = ranks > 0
    r = np.where(hit, ranks, 1)
    return {
        "hr@1": (hit & (r == 1)).astype(np.float64),
        "hr@5": (hit & (r <= 5)).astype(np.float64),
        "mrr": np.where(hit, 1.0 / r, 0.0),
        "ndcg@5": np.where(hit & (r <= 5), 1.0 / np.log2(r + 1), 0.0),
    }


@dataclass
class MetricCI:
    value: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high}


def bootstrap(values: np.ndarray, n_boot: int = 500, seed: int = 0, alpha: float = 0.05) -> MetricCI:
    """Mean with a percentile bootstrap CI over queries."""
    n = len(values)
    if n == 0:
        return MetricCI(float("nan"), float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    for b in range(n_boot):
        means[b] = values[rng.integers(0, n, n)].mean()
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return MetricCI(float(values.mean()), float(lo), float(hi))


def summarize(ranks: np.ndarray, groups: dict[str, np.ndarray] | None = None, n_boot: int = 300,
              seed: int = 0, alpha: float = 0.05) -> dict[str, dict]:
    """{"all": {metric: {value, low, high}, "n": N}, <group>: {...}} for each boolean group mask.

    The bootstrap resamples queries with the same seed for every method, so methods evaluated
    on the same queries are compared on the same resamples.
    """
    out: dict[str, dict] = {}
    masks = {"all": np.ones(len(ranks), dtype=bool), **(groups or {})}
    for name, mask in masks.items():
        vals = per_query(ranks[mask])
        mat = np.stack([vals[m] for m in METRICS], axis=1)  # [n, M]
        n = len(mat)
        res: dict = {"n": int(n)}
        if n == 0:
            out[name] = res | {m: MetricCI(float("nan"), float("nan"), float("nan")).as_dict() for m in METRICS}
            continue
        rng = np.random.default_rng(seed)
        means = np.empty((n_boot, len(METRICS)))
        for b in range(n_boot):
            means[b] = mat[rng.integers(0, n, n)].mean(0)
        lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2], axis=0)
        for j, m in enumerate(METRICS):
            res[m] = MetricCI(float(mat[:, j].mean()), float(lo[j]), float(hi[j])).as_dict()
        out[name] = res
    return out
