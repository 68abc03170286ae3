"""The Resolver composes parse -> candidates -> features -> rank and never raises."""

import numpy as np

from voicecart.ranking import Catalog, History, Purchases, Ranker, RankerConfig, Resolver

PRODUCTS = [dict(product_id="m1", title="Whole Milk", category_l1="1", category_l2="11", category_l3="111",
                 category_l3_name="milk"),
            dict(product_id="m2", title="Oat Milk", category_l1="1", category_l2="11", category_l3="111",
                 category_l3_name="milk"),
            dict(product_id="b1", title="Rye Bread", category_l1="2", category_l2="22", category_l3="222",
                 category_l3_name="bread")]
LINES = [("c1", "m1", 1.0, 2.0), ("c2", "m1", 1.0, 2.0), ("c3", "m2", 2.0, 3.0), ("c3", "m2", 3.0, 3.0)]


def engine(scorer=None, ranker=True):
    purchases = Purchases.from_rows(PRODUCTS, LINES)
    catalog = Catalog.build(purchases, 5.0, n_factors=2)
    history = History.from_purchases(purchases, 5.0)
    model = Ranker(RankerConfig()) if ranker else None
    return Resolver(catalog, model, scorer=scorer), history, purchases


def test_personal_answer_uses_the_scorer_and_profile():
    res_engine, history, purchases = engine(scorer=lambda f: f[:, 0])  # score = log purchase count
    profile = history.profile(2, purchases.customer_ids[2], purchases.product_ids)
    res = res_engine.resolve("add two milks please", profile, now=5 * 86_400.0)
    assert res.parsed.quantity == 2 and res.answer.id == "m2" and res.personalized
    assert {p.id for p in res.products} == {"m1", "m2"} and res.fallbacks == []


def test_cold_start_is_popularity_and_says_so():
    res_engine, _, _ = engine(ranker=False)
    res = res_engine.resolve("add milk", None)
    assert res.answer.id == "m1" and not res.personalized
    assert set(res.fallbacks) == {"no_profile", "no_ranker"}


def test_failing_scorer_falls_back_to_popularity():
    def broken(_):
        raise RuntimeError("predictor down")

    res_engine, history, purchases = engine(scorer=broken)
    profile = history.profile(2, purchases.customer_ids[2], purchases.product_ids)
    res = res_engine.resolve("add milk", profile, now=5 * 86_400.0)
    assert res.answer.id == "m1" and not res.personalized and "ranker_failed" in res.fallbacks


def test_bad_inputs_are_typed_results():
    res_engine, _, _ = engine()
    for bad in ["", "x" * 5000, b"\xff\xfe", "tell me a joke", "add 999999", "add qqqqzzzz"]:
        res = res_engine.resolve(bad, None)
        assert res.answer is None and res.fallbacks
    assert np.isfinite([p.score for p in res_engine.resolve("bread", None).products]).all()
