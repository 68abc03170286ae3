"""No train/serve skew: features built offline from purchases equal those built online from a profile."""

import numpy as np
import pytest

from voicecart.ranking import FEATURE_NAMES, Catalog, Candidates, History, Purchases, candidate_features
from voicecart.ranking.features import CustomerAggregates
from voicecart.ranking.train import category_queries, list_features

rng = np.random.default_rng(7)
PRODUCTS = [dict(product_id=f"p{i:02d}", category_l1="1", category_l2=f"1{i % 2}", category_l3=f"1{i % 2}{i % 3}")
            for i in range(12)]
LINES = [(f"c{int(c)}", f"p{int(p):02d}", float(d), float(pr))
         for c, p, d, pr in zip(rng.integers(0, 8, 300), rng.integers(0, 12, 300), rng.integers(0, 60, 300),
                                rng.uniform(1, 9, 300))]
LINES = list({(c, p, d): (c, p, d, pr) for c, p, d, pr in LINES}.values())
CUT, END = 40.0, 60.0


@pytest.fixture(scope="module")
def world():
    purchases = Purchases.from_rows(PRODUCTS, LINES)
    catalog = Catalog.build(purchases, CUT, n_factors=3)
    history = History.from_purchases(purchases, CUT)
    return purchases, catalog, history, CustomerAggregates(history, catalog)


def test_offline_and_online_features_are_equal(world):
    purchases, catalog, history, agg = world
    queries = category_queries(purchases, catalog, history, agg, CUT, END)
    assert len(queries) > 20
    offline = list_features(queries, catalog, history, agg)
    for i in range(len(queries)):
        lo, hi = queries.offsets[i], queries.offsets[i + 1]
        u = int(queries.customer[i])
        profile = history.profile(u, purchases.customer_ids[u], purchases.product_ids)
        cands = Candidates(queries.product[lo:hi], np.zeros(hi - lo, np.float32), np.ones(hi - lo, np.float32))
        online = candidate_features(profile, cands, catalog, queries.day[i] * 86_400.0)
        np.testing.assert_allclose(online, offline[lo:hi], rtol=1e-5, atol=1e-5,
                                   err_msg=f"list {i}: {FEATURE_NAMES}")


def test_features_use_only_the_past(world):
    purchases, catalog, history, _ = world
    future = [(c, p, d, pr) for c, p, d, pr in LINES if d >= CUT]
    assert future
    c, p = future[0][0], future[0][1]
    u = list(purchases.customer_ids).index(c)
    prods, counts, last = history.customer_items(u)
    assert (last < CUT).all()
    past_count = sum(1 for cc, pp, d, _ in LINES if cc == c and pp == p and d < CUT)
    got = counts[prods == catalog.index[p]]
    assert (got.sum() if len(got) else 0) == past_count


def test_cold_start_profile_gives_non_personal_features(world):
    _, catalog, _, _ = world
    cands = catalog.candidates(catalog.category_codes[0], 10)
    f = candidate_features(None, cands, catalog, CUT * 86_400.0)
    assert f.shape == (len(cands), len(FEATURE_NAMES))
    assert f.dtype == np.float32
    assert (f[:, FEATURE_NAMES.index("bought")] == 0).all()
    assert np.isfinite(f).all()


def test_embedding_switch(world):
    purchases, catalog, history, _ = world
    catalog.embedding_items = rng.normal(size=(len(catalog), 4)).astype(np.float32)
    try:
        profile = history.profile(0, purchases.customer_ids[0], purchases.product_ids)
        profile = profile.model_copy(update={"embedding": [0.5, -1.0, 0.25, 2.0]})
        cands = catalog.candidates(catalog.category_codes[0], 10)
        with_emb = candidate_features(profile, cands, catalog, CUT * 86_400.0, embedding=True)
        without = candidate_features(profile, cands, catalog, CUT * 86_400.0, embedding=False)
        j = FEATURE_NAMES.index("embedding_score")
        expected = catalog.embedding_items[cands.product] @ np.asarray(profile.embedding, dtype=np.float32)
        np.testing.assert_allclose(with_emb[:, j], expected, rtol=1e-5)
        assert (without[:, j] == 0).all() and (without[:, FEATURE_NAMES.index("has_embedding")] == 0).all()
        others = [k for k, n in enumerate(FEATURE_NAMES) if n not in ("embedding_score", "has_embedding")]
        np.testing.assert_array_equal(with_emb[:, others], without[:, others])
    finally:
        catalog.embedding_items = None


def test_profile_products_unknown_to_the_catalogue_are_ignored(world):
    purchases, catalog, history, _ = world
    profile = history.profile(1, purchases.customer_ids[1], purchases.product_ids)
    noisy = profile.model_copy(update={"product_ids": profile.product_ids + ["not-a-product"],
                                       "product_counts": profile.product_counts + [5.0],
                                       "product_last_ts": profile.product_last_ts + [0.0]})
    cands = catalog.candidates(catalog.category_codes[1], 10)
    np.testing.assert_array_equal(candidate_features(profile, cands, catalog, CUT * 86_400.0),
                                  candidate_features(noisy, cands, catalog, CUT * 86_400.0))
