"""The online protocol scores each query with what was known at the start of its day, no later."""

from __future__ import annotations


from voicecart.evaluation.online import evaluate_resolution_online
from voicecart.ranking.history import Purchases

PRODUCTS = [{"product_id": p, "category_l1": "10", "category_l2": "1001", "category_l3": "100101"}
            for p in ("A", "B", "C")]


def _purchases(extra: list[tuple[str, str, float, float | None]]) -> Purchases:
    train = [(f"u{i}", "A", 10.0 + i % 5, 1.0) for i in range(6)] + [(f"v{i}", "B", 12.0, 1.0) for i in range(3)] \
        + [("w0", "C", 11.0, 1.0)]
    return Purchases.from_rows(PRODUCTS, train + extra)


def _hr1(report, method: str) -> float:
    return report.methods[method]["all"]["hr@1"]["value"]


def test_a_purchase_earlier_in_the_test_period_is_known_the_next_day():
    # the customer first buys C on day 30, and again on day 31: only the second is a hit, and only online
    report = evaluate_resolution_online(_purchases([("x", "C", 30.0, 1.0), ("x", "C", 31.0, 1.0)]), 20.0,
                                        train=False, n_boot=20, log=lambda _: None)
    assert report.info["queries"] == 2
    assert _hr1(report, "most_bought_else_popularity") == 0.5  # day 31 sees day 30's purchase
    assert _hr1(report, "popularity") == 0.0  # A is still the most popular product


def test_the_same_day_is_never_seen():
    report = evaluate_resolution_online(_purchases([("x", "C", 30.0, 1.0), ("y", "C", 30.0, 1.0)]), 20.0,
                                        train=False, n_boot=20, log=lambda _: None)
    assert _hr1(report, "most_bought_else_popularity") == 0.0
    assert _hr1(report, "recent_popularity") == 0.0


def test_recent_popularity_follows_the_test_period_trend():
    # B overtakes A in the week before day 40; recent popularity sees it, all-time popularity does not
    trend = [(f"t{i}", "B", 34.0 + i % 5, 1.0) for i in range(12)] + [("z", "B", 40.0, 1.0)]
    report = evaluate_resolution_online(_purchases(trend), 20.0, train=False, n_boot=20, log=lambda _: None)
    last = report.info["queries"]
    assert last == 13
    assert _hr1(report, "recent_popularity") > _hr1(report, "popularity")
