"""The resolution benchmark: every baseline and the ranker, same queries, same snapshot rows, same metrics.

Protocol (docs/evaluation.md): every purchase in [test_from, test_end) whose category has 2+ products
sold before ``test_from`` is a query "this customer asks for this category"; candidates are those
products (a truth new in the test period stays a miss for every method). What each method knows is the
snapshot's rows of the query's moment: ``online`` (the default, as served) stamps each query at the start
of its day — a frozen model, with the profile and product statistics the online store holds that day;
``time`` freezes everything at ``test_from``. The ranker is trained by :func:`voicecart.ranking.train_ranker`
on the weeks before ``test_from`` from the same snapshot.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

import numpy as np

from voicecart.evaluation.metrics import summarize, truth_ranks
from voicecart.ranking import Catalog, QueryLists, RankerConfig, SnapshotIndex, TrainedRanker, score_rows, train_ranker
from voicecart.ranking.baselines import baseline_scores, tifu_knn_scores
from voicecart.ranking.lists import list_features, walk
from voicecart.features.snapshot import TRAIN_DAYS
from voicecart.schemas.times import DAY_S, epoch_s, utc

@dataclass
class Window:
    """The test lists with every candidate row featurized as of its list's moment, and the baselines."""

    queries: QueryLists
    features: np.ndarray  # [R, F] float32
    baselines: dict[str, np.ndarray] = field(default_factory=dict)  # name -> [R] scores

    @property
    def has_history(self) -> np.ndarray:
        return self.queries.has_category_history


def evaluation_window(snapshot, model: TrainedRanker | Catalog, test_from: float, test_end: float, *,  # noqa: ANN001
                      use_embedding: bool = False, baselines: bool = True, tifu: bool = False,
                      frozen_candidates: bool = True, log: Callable[[str], None] = print) -> Window:
    """Lists of [test_from, test_end) from ``snapshot``, candidates as of ``test_from`` (or of each list's own
    moment), scored with the product vectors of ``model`` (a trained ranker's catalogue, or a bare one)."""
    catalog = model.catalog if isinstance(model, TrainedRanker) else model
    vectors = None if catalog.vectors is None else {-np.inf: catalog.vectors}
    index = SnapshotIndex(snapshot, Catalog.from_table(snapshot.catalog) if catalog.vectors is None else catalog,
                          vectors, use_embedding=use_embedding)
    if frozen_candidates and test_from not in index.stats:
        raise ValueError("the snapshot holds no product statistics at the cut-off the candidates are frozen at: "
                         "build it with the cut-off among its moments (cuts or extra_moments)")
    parts, feats, scores = [], [], []
    for view, lists in walk(index, test_from, test_end, candidates_at=test_from if frozen_candidates else None):
        if not len(lists):
            continue
        parts.append(lists)
        feats.append(list_features(view, lists, use_embedding=use_embedding))
        if baselines:
            s = baseline_scores(lists, view)
            if tifu:
                s["tifu_knn"] = tifu_knn_scores(lists, view, _cut(snapshot, view.moment))
            scores.append(s)
    log(f"evaluation window: {sum(len(p) for p in parts):,} queries over {len(parts)} moments")
    queries = QueryLists.concat(parts)
    features = np.concatenate(feats) if feats else np.zeros((0, 0), np.float32)
    names = scores[0].keys() if scores else ()
    return Window(queries, features, {n: np.concatenate([s[n] for s in scores]) for n in names})


def _cut(snapshot, moment: float):  # noqa: ANN001, ANN202
    """Every customer's rows at the latest cut at or before ``moment`` (what TIFU-KNN's neighbours come from)."""
    from voicecart.schemas.times import epoch_array

    at = epoch_array(snapshot.cut_pairs.column("event_timestamp"))
    before = at[at <= moment]
    return snapshot.cut_pairs.filter(np.asarray(at == (before.max() if len(before) else -np.inf)))


@dataclass
class ResolutionReport:
    methods: dict[str, dict] = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"info": self.info, "methods": self.methods}


def evaluate_resolution(snapshot, test_from: datetime, test_end: datetime, *, config: RankerConfig | None = None,  # noqa: ANN001
                        model: TrainedRanker | None = None, train_days: int = TRAIN_DAYS, feedback=(),  # noqa: ANN001
                        tifu: bool = False, n_boot: int = 300, protocol: str = "online",
                        log: Callable[[str], None] = print) -> ResolutionReport:
    """Every baseline and the ranker (trained here unless ``model`` is given) on the test window."""
    t0 = time.perf_counter()
    start, end = epoch_s(test_from), epoch_s(test_end)
    config = config or RankerConfig()
    if model is None:
        model = train_ranker(snapshot, start=start - train_days * DAY_S, end=start, config=config,
                             feedback=feedback, log=log)
    train_s = time.perf_counter() - t0
    window = evaluation_window(snapshot, model, start, end, use_embedding=model.ranker.config.use_embedding,
                               tifu=tifu, log=log)
    q = window.queries
    scores = dict(window.baselines)
    scores["ranker"] = score_rows(model.ranker, window.features, q.offsets)
    return summarize_methods(scores, q, window.has_history, n_boot=n_boot, log=log, started=t0,
                             protocol=protocol, test_from=utc(test_from).isoformat(),
                             test_end=utc(test_end).isoformat(), train_seconds=round(train_s, 1),
                             training=model.info)


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
                   **info, "total_seconds": round(time.perf_counter() - started, 1)}
    return report


PROTOCOLS = ("online", "time", "last-order")


def protocol_snapshot(engine, protocol: str, test_from: datetime, test_end: datetime, *,  # noqa: ANN001
                      train_days: int = TRAIN_DAYS):
    """The snapshot a protocol evaluates on: training lines as of their day, test lines as of their day
    (``online``) or all at ``test_from`` (``time``: history and statistics frozen there)."""
    import pyarrow as pa

    from voicecart.features.snapshot import (as_of_day, as_of_fixed, build_snapshot, training_cuts, window_lines)
    from datetime import timedelta

    start = utc(test_from) - timedelta(days=train_days)
    train = as_of_day(window_lines(engine, start, test_from))
    test = window_lines(engine, test_from, test_end)
    test = as_of_day(test) if protocol == "online" else as_of_fixed(test, test_from)
    return build_snapshot(engine, pa.concat_tables([train, test]), cuts=training_cuts(test_from, train_days),
                          extra_moments=[test_end])


def evaluate_protocol(engine, protocol: str, test_from: datetime | None, test_end: datetime | None, *,  # noqa: ANN001
                      config: RankerConfig | None = None, tifu: bool = False, n_boot: int = 300,
                      log: Callable[[str], None] = print) -> ResolutionReport:
    """``online`` / ``time`` on [test_from, test_end), or ``last-order`` (each customer's last order is the test,
    their one before it trains: Instacart's per-user dates)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    if protocol == "last-order":
        return evaluate_last_order(engine, config=config, tifu=tifu, n_boot=n_boot, log=log)
    if test_from is None or test_end is None:
        raise ValueError(f"the {protocol} protocol needs test_from and test_end")
    snapshot = protocol_snapshot(engine, protocol, test_from, test_end)
    return evaluate_resolution(snapshot, test_from, test_end, config=config, tifu=tifu, n_boot=n_boot,
                               protocol=protocol, log=log)


def evaluate_last_order(engine, *, config: RankerConfig | None = None, tifu: bool = False, n_boot: int = 300,  # noqa: ANN001
                        log: Callable[[str], None] = print) -> ResolutionReport:
    """Leave-last-order-out: each customer's last order is asked as of its own time (candidates = its
    category's products sold before then), the order before it trains the ranker the same way."""
    import pyarrow as pa

    from voicecart.features.snapshot import as_of_exact, build_snapshot

    t0 = time.perf_counter()
    ranked = engine.query("""
        SELECT o.customer_id, o.order_id, o.timestamp, l.product_id, SUM(l.quantity) AS quantity,
            SUM(l.quantity * l.price) / NULLIF(SUM(l.quantity), 0) AS price,
            DENSE_RANK() OVER (PARTITION BY o.customer_id ORDER BY o.timestamp DESC, o.order_id DESC) AS back
        FROM orders AS o JOIN order_lines AS l ON l.order_id = o.order_id
        GROUP BY o.customer_id, o.order_id, o.timestamp, l.product_id""")
    back = ranked.column("back").to_numpy()
    lines = ranked.drop_columns(["back"])
    test = build_snapshot(engine, as_of_exact(lines.filter(pa.array(back == 1))))
    train = build_snapshot(engine, as_of_exact(lines.filter(pa.array(back == 2))))
    config = config or RankerConfig()
    model = train_ranker(train, start=-np.inf, end=np.inf, config=config, log=log)
    window = evaluation_window(test, model, -np.inf, np.inf, use_embedding=config.use_embedding, tifu=False,
                               frozen_candidates=False, log=log)
    scores = dict(window.baselines) | {"ranker": score_rows(model.ranker, window.features, window.queries.offsets)}
    del tifu  # TIFU needs every customer's history at one moment; last orders are asked at their own times
    return summarize_methods(scores, window.queries, window.has_history, n_boot=n_boot, log=log, started=t0,
                             protocol="last-order", training=model.info)
