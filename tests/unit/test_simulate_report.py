"""The replay's report: weekly HR@1 per arm, the paired difference on shared requests, the brand-switch follow."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from voicecart.data.synthetic import SUBCLASS_CODE_BASE, SyntheticConfig, preferred_product, preferred_product_on, \
    product_id, switches
from voicecart.simulate.report import follow_days, paired, weekly_hr1


def _answers(rows: list[tuple[str, str, str, bool]]) -> pa.Table:
    return pa.Table.from_pylist([{"arm": a, "cycle": c, "request_id": r, "hit": h} for a, c, r, h in rows])


def test_weekly_hr1_is_the_share_of_hits_per_arm_and_cycle() -> None:
    table = _answers([("a", "w1", "r1", True), ("a", "w1", "r2", False), ("a", "w2", "r3", True),
                      ("b", "w1", "r1", False)])
    assert weekly_hr1(table) == {"a": {"w1": (0.5, 2), "w2": (1.0, 1)}, "b": {"w1": (0.0, 1)}}


def test_the_paired_difference_counts_only_requests_both_arms_answered() -> None:
    rows = [("a", "w1", f"r{i}", True) for i in range(50)] + [("b", "w1", f"r{i}", i % 2 == 0) for i in range(50)]
    rows.append(("a", "w1", "only-a", False))
    result = paired(_answers(rows), "a", "b", n_boot=200)
    assert result.n == 50 and abs(result.difference - 0.5) < 1e-9 and 0 < result.low <= 0.5 <= result.high
    assert "above zero" in result.line()
    assert paired(_answers(rows), "a", "c") is None
    same = paired(_answers([(arm, "w1", f"r{i}", i % 3 == 0) for arm in "ab" for i in range(30)]), "a", "b")
    assert same.difference == 0 and "includes zero" in same.line()


def test_follow_days_is_the_first_day_from_which_the_new_brand_is_answered() -> None:
    cfg = SyntheticConfig(n_customers=300, switch_day=10, switch_share=0.5, switch_subclass_share=0.5,
                          numeric_codes=True)
    c, s = np.meshgrid(np.arange(300), np.arange(cfg.n_subclasses), indexing="ij")
    moved = switches(cfg, c, s)
    pairs = list(zip(c[moved].tolist(), s[moved].tolist()))[:40]
    rows = []
    for day in range(10, 16):
        for c, s in pairs:
            old = int(preferred_product(cfg, np.array([c]), np.array([s]))[0])
            new = int(preferred_product_on(cfg, np.array([c]), np.array([s]), day)[0])
            for arm, follows_from in (("late", 13), ("never", 99)):
                slot = new if day >= follows_from else old
                rows.append({"arm": arm, "day": f"2020-01-{1 + day:02d}", "customer_id": f"C{c:07d}",
                             "subclass": str(SUBCLASS_CODE_BASE + s),
                             "product_id": product_id(np.array([s]), np.array([slot]))[0].as_py()})
    result = follow_days(pa.Table.from_pylist(rows), cfg, 10, "2020-01-11")
    assert result["late"]["days"] == 3 and result["never"]["days"] is None
    assert result["late"]["requests"] == 6 * len(pairs)
    # before the switch day nothing counts, even an answer with the new brand
    early = [{**r, "day": "2020-01-05"} for r in rows if r["arm"] == "late"]
    assert follow_days(pa.Table.from_pylist(early), cfg, 10, "2020-01-05")["late"]["requests"] == 0
    # revealed: only requests after the customer's first new-brand purchase there count
    c0, s0 = pairs[0]
    revealed = follow_days(pa.Table.from_pylist(rows), cfg, 10, "2020-01-11", first_new={(c0, s0): 12})
    assert revealed["late"]["revealed"] == 3 and revealed["late"]["revealed_new_share"] == 1.0  # days 13, 14, 15
    assert revealed["never"]["revealed"] == 3 and revealed["never"]["revealed_new_share"] == 0.0
    assert "revealed" not in result["late"]


def test_first_new_purchase_reads_the_switchers_new_brand_from_the_data(tmp_path) -> None:
    from voicecart.data.prepare import prepare
    from voicecart.simulate.report import first_new_purchase

    cfg = SyntheticConfig(n_customers=60, mean_orders=12, switch_day=40, numeric_codes=True)
    prepare("synthetic", tmp_path / "d", synthetic_config=cfg)
    first = first_new_purchase(tmp_path / "d", cfg, 40)
    assert first, "no switcher bought its new brand after the switch"
    for (c, s), d in first.items():
        assert d >= 40 and switches(cfg, np.array([c]), np.array([s]))[0]


def _lines(folder) -> pa.Table:  # noqa: ANN001
    import pyarrow.parquet as pq

    orders = pq.read_table(folder / "orders.parquet", columns=["order_id", "customer_id", "timestamp"])
    lines = pq.read_table(folder / "order_lines.parquet", columns=["order_id", "product_id"])
    products = pq.read_table(folder / "products.parquet", columns=["product_id", "category_l3"])
    return lines.join(orders, "order_id").join(products, "product_id")


def test_follow_or_stay_pays_the_last_product_only_where_the_customers_really_switched(tmp_path) -> None:
    from datetime import timedelta

    from voicecart.data.prepare import prepare
    from voicecart.simulate.report import follow_or_stay, follow_or_stay_table

    # loyal customers who switch: after the switch every deviation is the new brand, bought again
    loyal = SyntheticConfig(n_customers=200, mean_orders=16, loyalty=1.0, switch_day=40, switch_share=0.5,
                            switch_subclass_share=0.5, numeric_codes=True)
    prepare("synthetic", tmp_path / "loyal", synthetic_config=loyal)
    since = f"{loyal.start + timedelta(days=40):%Y-%m-%d}"
    rows = {r.last_bought: r for r in follow_or_stay(tmp_path / "loyal", since)}
    deviations = [r for k, r in rows.items() if k != "same"]
    assert deviations and sum(r.requests for r in deviations) >= 20
    assert all(r.last_hit == 1.0 and r.most_bought_hit == 0.0 for r in deviations)
    assert rows["same"].most_bought_hit < 1.0  # a switcher's first request after the switch, old brand last
    # no switch, loyalty 0.85: a deviation is noise, and the most-bought product is the better answer
    noisy = SyntheticConfig(n_customers=200, mean_orders=16, numeric_codes=True)
    prepare("synthetic", tmp_path / "noisy", synthetic_config=noisy)
    once = next(r for r in follow_or_stay(tmp_path / "noisy", since) if r.last_bought == "1")
    assert once.requests >= 50 and once.most_bought_hit > 2 * once.last_hit
    assert "bought once" in follow_or_stay_table([once])

    # served answers: an arm that always answers the customer's last product there is counted as following
    lines = _lines(tmp_path / "loyal").to_pylist()
    day = {r["order_id"]: r["timestamp"].date() for r in lines}
    asks = sorted({(r["customer_id"], r["category_l3"], day[r["order_id"]]) for r in lines
                   if day[r["order_id"]] >= loyal.start.date() + timedelta(days=40)})
    history: dict[tuple[str, str], list] = {}
    for r in sorted(lines, key=lambda r: r["timestamp"]):
        history.setdefault((r["customer_id"], r["category_l3"]), []).append((day[r["order_id"]], r["product_id"]))
    answers = []
    for c, s, d in asks:
        before = [p for t, p in history[(c, s)] if t < d]
        if before:
            answers.append({"arm": "follows", "customer_id": c, "subclass": s, "day": d.isoformat(),
                            "cycle": d.isoformat(), "product_id": before[-1]})  # a one-day cycle: history = days before
    served = {r.last_bought: r for r in follow_or_stay(tmp_path / "loyal", since, pa.Table.from_pylist(answers),
                                                        arm="follows")}
    assert served.keys() == rows.keys()
    assert all(r.answered_last == 1.0 and r.answered_most_bought == 0.0 for k, r in served.items() if k != "same")


def _write_world(folder, purchases: list[tuple[str, str, int]]) -> None:  # noqa: ANN001
    """A prepared dataset by hand: (customer, product, day of January 2021); products P1, P2 in category X,
    Q1 in category Y."""
    from datetime import datetime

    from voicecart.data.store import CanonicalTables, write_dataset

    orders = [{"order_id": f"{c}-{d}", "customer_id": c, "timestamp": datetime(2021, 1, d, 10)}
              for c, d in sorted({(c, d) for c, _, d in purchases})]
    lines = [{"order_id": f"{c}-{d}", "product_id": p, "quantity": 1.0} for c, p, d in purchases]
    products = [{"product_id": p, "category_l1": "D", "category_l2": "A", "category_l3": cat}
                for p, cat in (("P1", "X"), ("P2", "X"), ("Q1", "Y"))]
    customers = [{"customer_id": c} for c in sorted({c for c, _, _ in purchases})]
    write_dataset(CanonicalTables(pa.Table.from_pylist(customers), pa.Table.from_pylist(products),
                                  pa.Table.from_pylist(orders), pa.Table.from_pylist(lines)), folder, source="test")


def test_follow_or_stay_counts_a_hand_built_world_exactly(tmp_path) -> None:
    from voicecart.simulate.report import follow_or_stay

    purchases = [
        ("A", "P1", 1), ("A", "P1", 2), ("A", "P2", 3), ("A", "P2", 4),  # day 4: last P2 once, most P1 -> "1"
        ("B", "P1", 2), ("B", "P1", 3), ("B", "P1", 4),  # day 4: same
        ("C", "P1", 3), ("C", "P2", 3), ("C", "P1", 4),  # day 4: a tie (once each, same day) -> P1 by id: same
        ("E", "P1", 3), ("E", "P1", 4),  # day 4: one earlier purchase only -> not a request
        ("E", "Q1", 2), ("E", "Q1", 2), ("E", "Q1", 4),  # Y: twice on day 2 is one purchase-day -> not a request
        *[("D", "P1", d) for d in (1, 2, 3, 4)], *[("D", "P2", d) for d in (5, 6, 7, 8)],
    ]  # D: day 4 same, 5 same (buys P2: a miss), 6 "1", 7 "2", 8 "3+"
    _write_world(tmp_path / "w", purchases)
    rows = {r.last_bought: r for r in follow_or_stay(tmp_path / "w", "2021-01-04")}
    assert {k: r.requests for k, r in rows.items()} == {"same": 4, "1": 2, "2": 1, "3+": 1}
    assert rows["same"].most_bought_hit == 0.75 == rows["same"].last_hit  # B, C, D day 4 yes; D day 5 no
    for k in ("1", "2", "3+"):
        assert rows[k].last_hit == 1.0 and rows[k].most_bought_hit == 0.0

    # two arms answering the same requests, one always the last product, one always the most-bought; an
    # unanswered request counts in neither; with answers, history ends where the request's cycle begins
    def answer(c: str, d: int, product: str | None, arm: str, cycle: int) -> dict:
        return {"arm": arm, "customer_id": c, "subclass": "X", "day": f"2021-01-{d:02d}",
                "cycle": f"2021-01-{cycle:02d}", "product_id": product}

    asks = [("A", 4, "P2", "P1"), ("B", 4, "P1", "P1"), ("C", 4, "P1", "P1"), ("D", 4, "P1", "P1"),
            ("D", 5, "P1", "P1"), ("D", 6, "P2", "P1"), ("D", 7, "P2", "P1"), ("D", 8, "P2", "P1")]
    answers = [answer(c, d, last, "follows", d) for c, d, last, _ in asks]
    answers += [answer(c, d, None if c == "A" else most, "stays", d) for c, d, _, most in asks]
    table = pa.Table.from_pylist(answers)
    follows = {r.last_bought: r for r in follow_or_stay(tmp_path / "w", "2021-01-04", table, arm="follows")}
    stays = {r.last_bought: r for r in follow_or_stay(tmp_path / "w", "2021-01-04", table, arm="stays")}
    assert all(follows[k].answered_last == 1.0 for k in ("1", "2", "3+"))
    assert all(stays[k].answered_most_bought == 1.0 and stays[k].answered_last == 0.0 for k in ("1", "2", "3+"))
    assert follows["1"].requests == 2 and stays["1"].requests == 1  # A's unanswered request is left out
    # D's days 6-8 asked in one cycle from day 6: the cut holds days 1-5 only (P1 x4, P2 once) -> all "1"
    weekly = pa.Table.from_pylist([answer(c, d, last, "follows", 6 if d >= 6 else d) for c, d, last, _ in asks])
    cut = {r.last_bought: r.requests for r in follow_or_stay(tmp_path / "w", "2021-01-04", weekly, arm="follows")}
    assert cut == {"same": 4, "1": 4}
    with pytest.raises(ValueError, match="level must be one of"):
        follow_or_stay(tmp_path / "w", "2021-01-04", level="brand")
