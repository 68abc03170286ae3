"""The resolution benchmark on a time split: every baseline and the ranker, same queries, same metrics.

Protocol (docs/evaluation.md): history and catalogue frozen at ``test_from``; every purchase in
[test_from, test_end) whose category has 2+ products sold before ``test_from`` is a query
"this customer asks for this category"; candidates = those products; a truth new in the test
period stays as a miss for every method. The ranker trains on the months before ``test_from``,
each month's examples featurized as of that month's first day (point in time, no leakage).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable

import numpy as np

from voicecart.evaluation.metrics import summarize, truth_ranks
from voicecart.ranking.baselines import most_bought_scores, popularity_scores, random_scores, tifu_knn_scores
from voicecart.ranking.catalog import Catalog
from voicecart.ranking.features import CustomerAggregates
from voicecart.ranking.history import History, Purchases, to_day
from voicecart.ranking.model import Ranker, RankerConfig
from voicecart.ranking.train import QueryLists, TrainingSet, category_queries, list_features, score_rows, train_ranker


@dataclass
class Snapshot:
    """Everything known as of one cut: catalogue, history, customer aggregates."""

    as_of: float
    catalog: Catalog
    history: History
    aggregates: CustomerAggregates

    @classmethod
    def build(cls, purchases: Purchases, as_of: float) -> "Snapshot":
        catalog = Catalog.build(purchases, as_of)
        history = History.from_purchases(purchases, as_of)
        return cls(as_of, catalog, history, CustomerAggregates(history, catalog))


def month_starts(first: float, test_from: float, months: int) -> list[float]:
    """Up to ``months`` first-of-month cuts before ``test_from`` (later than ``first`` + 28 days)."""
    d = datetime.fromtimestamp(test_from * 86_400, tz=timezone.utc)
    cuts = []
    for _ in range(months):
        d = (d.replace(day=1) - timedelta(days=1)).replace(day=1)
        if to_day(d) < first + 28:
            break
        cuts.append(to_day(d))
    return sorted(cuts)


@dataclass
class ResolutionReport:
    methods: dict[str, dict] = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"info": self.info, "methods": self.methods}


def train_on_months(purchases: Purchases, test_from: float, *, months: int = 2, config: RankerConfig | None = None,
                    max_candidates: int = 48, max_lists_per_month: int | None = None, window_days: float | None = None,
                    log: Callable[[str], None] = print) -> Ranker:
    """Ranker trained on the ``months`` months before ``test_from``, each as of its first day.

    With ``window_days``, cuts are every ``window_days`` instead (``months`` * 30 days back).
    """
    config = config or RankerConfig()
    if window_days:
        n = int(months * 30 // window_days)
        cuts = [test_from - window_days * k for k in range(n, 0, -1)]
    else:
        cuts = month_starts(float(purchases.day.min()), test_from, months)
    return train_on_cuts(purchases, cuts, test_from, Snapshot.build, config=config, max_candidates=max_candidates,
                         max_lists_per_cut=max_lists_per_month, log=log)


def train_on_cuts(purchases: Purchases, cuts: list[float], test_from: float,
                  snapshot: Callable[[Purchases, float], Snapshot], *, config: RankerConfig,
                  max_candidates: int = 48, max_lists_per_cut: int | None = None,
                  log: Callable[[str], None] = print) -> Ranker:
    """Ranker trained on the purchases between consecutive cuts (the last up to ``test_from``),
    each period featurized by ``snapshot(purchases, cut)``: point in time, no leakage."""
    parts = []
    for i, cut in enumerate(cuts):
        end = cuts[i + 1] if i + 1 < len(cuts) else test_from
        snap = snapshot(purchases, cut)
        q = category_queries(purchases, snap.catalog, snap.history, snap.aggregates, cut, end)
        if max_lists_per_cut and len(q) > max_lists_per_cut:
            q = q.take(np.random.default_rng(config.seed + i).choice(len(q), max_lists_per_cut, replace=False))
        feats = list_features(q, snap.catalog, snap.history, snap.aggregates, use_embedding=config.use_embedding)
        parts.append(TrainingSet.from_lists(q, feats, max_candidates=max_candidates, seed=config.seed + i))
        log(f"examples as of day {cut:.0f}: {len(parts[-1])} lists")
    ts = TrainingSet(np.concatenate([p.features for p in parts]), np.concatenate([p.label for p in parts]),
                     _concat_offsets([p.offsets for p in parts]), np.concatenate([p.weight for p in parts]))
    return train_ranker(ts, config, log=log)


def _concat_offsets(offsets: list[np.ndarray]) -> np.ndarray:
    out, base = [np.zeros(1, dtype=np.int64)], 0
    for o in offsets:
        out.append(o[1:] + base)
        base += int(o[-1])
    return np.concatenate(out)


def evaluate_resolution(purchases: Purchases, test_from: float, test_end: float | None = None, *,
                        ranker: Ranker | None = None, train: bool = True, months: int = 2,
                        config: RankerConfig | None = None, n_boot: int = 300, tifu: bool = True,
                        log: Callable[[str], None] = print) -> ResolutionReport:
    """Run every baseline (and the ranker) on the category-query protocol; metrics with CIs."""
    t0 = time.perf_counter()
    test_end = float(purchases.day.max()) + 1 if test_end is None else test_end
    if ranker is None and train:
        ranker = train_on_months(purchases, test_from, months=months, config=config, log=log)
    train_s = time.perf_counter() - t0
    snap = Snapshot.build(purchases, test_from)
    q = category_queries(purchases, snap.catalog, snap.history, snap.aggregates, test_from, test_end)
    scores = frozen_scores(q, snap, purchases if tifu else None, ranker)
    return summarize_methods(scores, q, q.has_category_history, n_boot=n_boot, log=log, test_from_day=test_from,
                             test_end_day=test_end, train_seconds=train_s, started=t0)


def frozen_scores(q: QueryLists, snap: Snapshot, tifu_purchases: Purchases | None,
                  ranker: Ranker | None) -> dict[str, np.ndarray]:
    """Every baseline (TIFU-KNN when given its purchases) and the ranker, all as of ``snap``."""
    scores: dict[str, np.ndarray] = {
        "random": random_scores(q),
        "popularity": popularity_scores(q, snap.catalog),
        "most_bought_else_popularity": most_bought_scores(q, snap.catalog, snap.history),
    }
    if tifu_purchases is not None:
        scores["tifu_knn"] = tifu_knn_scores(q, snap.catalog, tifu_purchases, snap.as_of)
    if ranker is not None:
        feats = list_features(q, snap.catalog, snap.history, snap.aggregates, use_embedding=ranker.config.use_embedding)
        scores["ranker"] = score_rows(ranker, feats, q.offsets)
    return scores


def summarize_methods(scores: dict[str, np.ndarray], q: QueryLists, has_history: np.ndarray, *, n_boot: int,
                      log: Callable[[str], None], started: float, **info: object) -> ResolutionReport:
    """Metrics with CIs for each method, overall and split by category history, plus run info."""
    groups = {"with_category_history": has_history, "without_category_history": ~has_history}
    report = ResolutionReport()
    for name, s in scores.items():
        report.methods[name] = summarize(truth_ranks(s, q.label, q.offsets), groups, n_boot=n_boot)
        log(f"{name}: HR@1 {report.methods[name]['all']['hr@1']['value']:.4f}")
    empty = len(q) == 0
    report.info = {"queries": len(q), "candidate_rows": int(len(q.product)),
                   "median_candidates": 0.0 if empty else float(np.median(np.diff(q.offsets))),
                   "truth_in_candidates": 0.0 if empty else float(
                       (np.bincount(q.row_list, weights=q.label, minlength=len(q)) > 0).mean()),
                   **info, "total_seconds": time.perf_counter() - started}
    return report


def _last_order_lists(purchases: Purchases, *, use_embedding: bool = False):  # noqa: ANN202
    """History = all but each customer's last order; queries = the last orders' lines."""
    history_part, target = purchases.last_order_split()
    as_of = float(purchases.day.max()) + 1.0
    snap = Snapshot.build(history_part, as_of)
    q = category_queries(target, snap.catalog, snap.history, snap.aggregates, -np.inf, np.inf)
    return history_part, snap, q


def evaluate_last_order(purchases: Purchases, *, ranker: Ranker | None = None, train: bool = True,
                        config: RankerConfig | None = None, n_boot: int = 300, tifu: bool = True,
                        max_candidates: int = 48, log: Callable[[str], None] = print) -> ResolutionReport:
    """Leave-last-order-out (Instacart has per-user dates only): query = the product's category
    (aisle), candidates = that category's products bought in the history; the ranker trains on
    each customer's second-to-last order the same way."""
    t0 = time.perf_counter()
    history_part, snap, q = _last_order_lists(purchases)
    if ranker is None and train:
        config = config or RankerConfig()
        _, tsnap, tq = _last_order_lists(history_part)
        feats = list_features(tq, tsnap.catalog, tsnap.history, tsnap.aggregates, use_embedding=config.use_embedding)
        ranker = train_ranker(TrainingSet.from_lists(tq, feats, max_candidates=max_candidates, seed=config.seed),
                              config, log=log)
    train_s = time.perf_counter() - t0
    scores = frozen_scores(q, snap, history_part if tifu else None, ranker)
    return summarize_methods(scores, q, q.has_category_history, n_boot=n_boot, log=log, split="last-order",
                             train_seconds=train_s, started=t0)
