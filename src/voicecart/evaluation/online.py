"""The resolution benchmark as the platform runs it: a frozen model, features as of the request day.

`voicecart.evaluation.resolution` freezes history and catalogue statistics at ``test_from`` (the
issue's protocol). In production the model is frozen at its training cut, but the online store
keeps moving: purchases reach the customer's profile through Feast pushes and product popularity
is recomputed daily (the 7/30/90-day features). This module evaluates exactly that: the same
queries and the same candidates (products sold before ``test_from``; new products stay misses),
every method — baselines included — scored with what was known at the start of the query's day.
The ranker is trained on the months before ``test_from`` with examples featurized as of weekly
cuts, so its training matches how it is served.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from voicecart.evaluation.resolution import ResolutionReport, Snapshot, summarize_methods, train_on_cuts
from voicecart.ranking.baselines import most_bought_scores, popularity_scores, random_scores
from voicecart.ranking.catalog import Catalog
from voicecart.ranking.features import CustomerAggregates
from voicecart.ranking.history import History, Purchases
from voicecart.ranking.model import Ranker, RankerConfig
from voicecart.ranking.train import QueryLists, category_queries, list_features, score_rows

RECENT_DAYS = 7.0
"""Window of the "recent popularity" signal (the feature store's 7-day popularity)."""


def snapshot(purchases: Purchases, as_of: float, recent_days: float = RECENT_DAYS) -> Snapshot:
    catalog = Catalog.build(purchases, as_of, recent_days=recent_days)
    history = History.from_purchases(purchases, as_of)
    return Snapshot(as_of, catalog, history, CustomerAggregates(history, catalog))


def recent_popularity_scores(q: QueryLists, catalog: Catalog) -> np.ndarray:
    """Popularity over the last ``recent_days``, all-time popularity breaking ties."""
    pop = catalog.popularity[q.product].astype(np.float64)
    return catalog.popularity_recent[q.product].astype(np.float64) * (pop.max() + 1.0) + pop


def most_bought_else_recent_scores(q: QueryLists, catalog: Catalog, history: History) -> np.ndarray:
    count, _ = history.lookup(q.customer[q.row_list], q.product)
    fallback = recent_popularity_scores(q, catalog)
    return count.astype(np.float64) * (fallback.max() + 1.0) + fallback


def train_weekly(purchases: Purchases, test_from: float, *, days: int = 56, step_days: int = 7,
                 config: RankerConfig | None = None, max_candidates: int = 48,
                 log: Callable[[str], None] = print) -> Ranker:
    """Ranker trained on the ``days`` before ``test_from``, examples featurized as of weekly cuts."""
    cuts = [test_from - step_days * k for k in range(days // step_days, 0, -1)]
    return train_on_cuts(purchases, cuts, test_from, snapshot, config=config or RankerConfig(drop_features=[]),
                         max_candidates=max_candidates, log=log)


@dataclass
class OnlineWindow:
    """The test queries with every candidate row featurized as of its query's day, and the baselines."""

    queries: QueryLists
    features: np.ndarray  # [R, F] float32
    baselines: dict[str, np.ndarray]  # name -> [R] scores
    has_history: np.ndarray  # [L] bool: the customer bought in the category before the query's day
    frozen: Snapshot  # the catalogue at test_from (candidates come from it)


def online_window(purchases: Purchases, test_from: float, test_end: float | None = None, *,
                  use_embedding: bool = False, log: Callable[[str], None] = print) -> OnlineWindow:
    """Queries of [test_from, test_end) — candidates as of ``test_from`` — scored as of each query's day."""
    test_end = float(purchases.day.max()) + 1 if test_end is None else test_end
    frozen = snapshot(purchases, test_from)
    q = category_queries(purchases, frozen.catalog, frozen.history, frozen.aggregates, test_from, test_end)
    names = ["popularity", "recent_popularity", "most_bought_else_popularity", "most_bought_else_recent_popularity"]
    baselines = {"random": random_scores(q)} | {name: np.zeros(len(q.product)) for name in names}
    features: np.ndarray | None = None
    has_history = np.zeros(len(q), dtype=bool)
    day_of = np.floor(q.day)
    for day in np.unique(day_of):
        lists = np.flatnonzero(day_of == day)
        qd = q.take(lists)
        rows = np.concatenate([np.arange(q.offsets[i], q.offsets[i + 1]) for i in lists])
        snap = snapshot(purchases, float(day))
        cat_count, _ = snap.aggregates.category(qd.customer, qd.category)
        has_history[lists] = cat_count > 0
        baselines["popularity"][rows] = popularity_scores(qd, snap.catalog)
        baselines["recent_popularity"][rows] = recent_popularity_scores(qd, snap.catalog)
        baselines["most_bought_else_popularity"][rows] = most_bought_scores(qd, snap.catalog, snap.history)
        baselines["most_bought_else_recent_popularity"][rows] = most_bought_else_recent_scores(
            qd, snap.catalog, snap.history)
        feats = list_features(qd, snap.catalog, snap.history, snap.aggregates, use_embedding=use_embedding)
        if features is None:
            features = np.zeros((len(q.product), feats.shape[1]), dtype=np.float32)
        features[rows] = feats
        log(f"day {day:.0f}: {len(lists)} queries")
    if features is None:
        features = np.zeros((0, 0), dtype=np.float32)
    return OnlineWindow(q, features, baselines, has_history, frozen)


def evaluate_resolution_online(purchases: Purchases, test_from: float, test_end: float | None = None, *,
                               ranker: Ranker | None = None, train: bool = True,
                               config: RankerConfig | None = None, n_boot: int = 300,
                               log: Callable[[str], None] = print) -> ResolutionReport:
    """Every baseline and the ranker on the issue's queries, each scored as of its query's day."""
    t0 = time.perf_counter()
    if ranker is None and train:
        ranker = train_weekly(purchases, test_from, config=config, log=log)
    train_s = time.perf_counter() - t0
    window = online_window(purchases, test_from, test_end,
                           use_embedding=bool(ranker is not None and ranker.config.use_embedding), log=log)
    q = window.queries
    scores = dict(window.baselines)
    if ranker is not None:
        scores["ranker"] = score_rows(ranker, window.features, q.offsets)
    return summarize_methods(scores, q, window.has_history, n_boot=n_boot, log=log,
                             protocol="online: frozen model, features as of each query's day",
                             recent_days=RECENT_DAYS, test_from_day=test_from, train_seconds=train_s, started=t0)


__all__ = ["OnlineWindow", "evaluate_resolution_online", "online_window", "snapshot", "train_weekly"]
