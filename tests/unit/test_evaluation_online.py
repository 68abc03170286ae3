"""The online protocol scores each query with what was known at the start of its day, no later."""

from __future__ import annotations

from tests.toy import toy_dataset, toy_snapshot
from voicecart.evaluation.metrics import truth_ranks
from voicecart.evaluation.resolution import evaluation_window
from voicecart.ranking import Catalog
from voicecart.schemas.times import DAY_S

PRODUCTS = [{"product_id": p, "category_l1": "10", "category_l2": "1001", "category_l3": "100101"}
            for p in ("A", "B", "C")]


def _hr1(tmp_path, extra: list[tuple[str, str, float, float | None]]) -> tuple[dict[str, float], int]:
    train = [(f"u{i}", "A", 10.0 + i % 5, 1.0) for i in range(6)] + [(f"v{i}", "B", 12.0, 1.0) for i in range(3)] \
        + [("w0", "C", 11.0, 1.0)]
    folder = toy_dataset(tmp_path / "shop", PRODUCTS, train + extra)
    snap = toy_snapshot(folder, 20.0, 50.0)
    w = evaluation_window(snap, Catalog.from_table(snap.catalog), 20 * DAY_S, 50 * DAY_S, log=lambda _: None)
    q = w.queries
    return {name: float((truth_ranks(s, q.label, q.offsets) == 1).mean()) for name, s in w.baselines.items()}, len(q)


def test_a_purchase_earlier_in_the_test_period_is_known_the_next_day(tmp_path):
    # the customer first buys C on day 30, and again on day 31: only the second is a hit, and only online
    hr1, n = _hr1(tmp_path, [("x", "C", 30.0, 1.0), ("x", "C", 31.0, 1.0)])
    assert n == 2
    assert hr1["most_bought_else_popularity"] == 0.5  # day 31 sees day 30's purchase
    assert hr1["popularity"] == 0.0  # A is still the most popular product


def test_the_same_day_is_never_seen(tmp_path):
    hr1, _ = _hr1(tmp_path, [("x", "C", 30.0, 1.0), ("y", "C", 30.0, 1.0)])
    assert hr1["most_bought_else_popularity"] == 0.0
    assert hr1["recent_popularity"] == 0.0


def test_recent_popularity_follows_the_test_period_trend(tmp_path):
    # B overtakes A in the week before day 40; recent popularity sees it, all-time popularity does not
    trend = [(f"t{i}", "B", 34.0 + i % 5, 1.0) for i in range(12)] + [("z", "B", 40.0, 1.0)]
    hr1, n = _hr1(tmp_path, trend)
    assert n == 13
    assert hr1["recent_popularity"] > hr1["popularity"]


def test_the_frozen_protocol_knows_nothing_after_the_cut(tmp_path):
    train = [(f"u{i}", "A", 10.0, 1.0) for i in range(3)] + [("v0", "B", 12.0, 1.0), ("w0", "C", 11.0, 1.0),
                                                              ("x", "C", 30.0, 1.0), ("x", "C", 31.0, 1.0)]
    folder = toy_dataset(tmp_path / "frozen", PRODUCTS, train)
    snap = toy_snapshot(folder, 20.0, 50.0, frozen_at=20.0)
    w = evaluation_window(snap, Catalog.from_table(snap.catalog), 20 * DAY_S, 50 * DAY_S, log=lambda _: None)
    q = w.queries
    assert len(q) == 2 and (truth_ranks(w.baselines["most_bought_else_popularity"], q.label, q.offsets) == 1).sum() == 0
