"""No train/serve skew: features of a list built offline from the snapshot equal those built online from
the ONE profile row the feature SQL serves for the same customer and moment."""

import functools

import numpy as np
import pytest

from tests.toy import day, toy_dataset, toy_snapshot
from voicecart.data import connect
from voicecart.features.build import profiles_as_of
from voicecart.ranking import FEATURE_NAMES, Candidates, Catalog, ProductVectors, SnapshotIndex, candidate_features
from voicecart.ranking.lists import list_features, walk
from voicecart.ranking.train import fit_cut_vectors
from voicecart.schemas import CustomerProfile
from voicecart.schemas.times import DAY_S

rng = np.random.default_rng(7)
PRODUCTS = [dict(product_id=f"p{i:02d}", category_l1="1", category_l2=f"1{i % 2}", category_l3=f"1{i % 2}{i % 3}",
                 brand=(None, "Private", "National")[i % 3 if i < 9 else (i + 1) % 3],
                 size=(None, "12 OZ", "1 LB", "24 OZ", "2 LB")[i % 5])
            for i in range(12)]  # brand tier and size (some unknown): the taste features are compared too
LINES = [(f"c{int(c)}", f"p{int(p):02d}", float(d), float(pr))
         for c, p, d, pr in zip(rng.integers(0, 8, 300), rng.integers(0, 12, 300), rng.integers(0, 60, 300),
                                rng.uniform(1, 9, 300))]
LINES = list({(c, p, d): (c, p, d, pr) for c, p, d, pr in LINES}.values())
CUT, END = 40.0, 60.0
TASTE = ("private_match", "size_vs_customer", "size_distance")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    folder = toy_dataset(tmp_path_factory.mktemp("shop"), PRODUCTS, LINES)
    snap = toy_snapshot(folder, CUT, END, cuts=(CUT,))
    catalog = Catalog.from_table(snap.catalog)
    vectors = fit_cut_vectors(snap, catalog, use_embedding=False)
    assert list(vectors) == [CUT * DAY_S]
    return folder, snap, SnapshotIndex(snap, catalog, vectors)


@functools.lru_cache(maxsize=None)
def profiles_at(folder, moment: float) -> dict[str, dict]:
    return {r["customer_id"]: r for r in profiles_as_of(connect(folder), day(moment / DAY_S)).to_pylist()}


def profile_at(folder, customer: str, moment: float) -> CustomerProfile | None:
    """The online row the feature SQL materializes for this customer at this moment."""
    row = profiles_at(folder, moment).get(customer)
    if row is None:
        return None
    return CustomerProfile(**{k: v for k, v in row.items() if k in CustomerProfile.model_fields and v is not None})


def test_offline_and_online_features_are_equal(world):
    folder, _, index = world
    compared, taste_seen = 0, False
    for view, lists in walk(index, CUT * DAY_S, END * DAY_S):
        offline = list_features(view, lists)
        for i in range(len(lists)):
            lo, hi = lists.offsets[i], lists.offsets[i + 1]
            profile = profile_at(folder, lists.customer_id[i], view.moment)
            cands = Candidates(lists.product[lo:hi], np.zeros(hi - lo, np.float32), np.ones(hi - lo, np.float32))
            online = candidate_features(profile, cands, view.catalog, view.moment)
            np.testing.assert_allclose(online, offline[lo:hi], rtol=1e-6, atol=1e-6,
                                       err_msg=f"list {i} at day {view.moment / DAY_S}: {FEATURE_NAMES}")
            compared += 1
            taste_seen |= bool(np.any(offline[lo:hi, [FEATURE_NAMES.index(n) for n in TASTE]] != 0))
    assert compared > 20
    assert taste_seen, "no list exercised the brand / size features"


def test_features_use_only_the_past(world):
    _, snap, index = world
    for view, lists in walk(index, CUT * DAY_S, END * DAY_S):
        assert (view.history.pair_last < view.moment).all()
        for i in range(len(lists)):
            c = lists.customer_id[i]
            count, _ = view.history.lookup(lists.row[i:i + 1], lists.truth[i:i + 1])
            past = sum(1 for cc, pp, d, _ in LINES if cc == c and pp == PRODUCTS[lists.truth[i]]["product_id"]
                       and d * DAY_S < view.moment)
            assert count[0] == past


def test_cold_start_profile_gives_non_personal_features(world):
    _, _, index = world
    view = index.at(index.moments[0])
    cands = view.catalog.candidates(view.catalog.category_codes[0], 10)
    f = candidate_features(None, cands, view.catalog, view.moment)
    assert f.shape == (len(cands), len(FEATURE_NAMES))
    assert f.dtype == np.float32
    assert (f[:, FEATURE_NAMES.index("bought")] == 0).all()
    assert np.isfinite(f).all()


def test_embedding_switch(world):
    folder, _, index = world
    view = index.at(index.moments[0])
    items = rng.normal(size=(len(view.catalog), 4)).astype(np.float32)
    catalog = view.catalog.with_vectors(ProductVectors(view.catalog.vectors.factors, items))
    customer = next(iter(view.row_of))
    profile = profile_at(folder, customer, view.moment).model_copy(update={"embedding": [0.5, -1.0, 0.25, 2.0]})
    cands = catalog.candidates(catalog.category_codes[0], 10)
    with_emb = candidate_features(profile, cands, catalog, view.moment, embedding=True)
    without = candidate_features(profile, cands, catalog, view.moment, embedding=False)
    j = FEATURE_NAMES.index("embedding_score")
    np.testing.assert_allclose(with_emb[:, j], items[cands.product] @ np.asarray(profile.embedding, np.float32),
                               rtol=1e-5)
    assert (without[:, j] == 0).all() and (without[:, FEATURE_NAMES.index("has_embedding")] == 0).all()
    others = [k for k, n in enumerate(FEATURE_NAMES) if n not in ("embedding_score", "has_embedding")]
    np.testing.assert_array_equal(with_emb[:, others], without[:, others])


def test_profile_products_unknown_to_the_catalogue_are_ignored(world):
    folder, _, index = world
    view = index.at(index.moments[0])
    profile = profile_at(folder, next(iter(view.row_of)), view.moment)
    noisy = profile.model_copy(update={"product_ids": profile.product_ids + ["not-a-product"],
                                       "product_counts": profile.product_counts + [5.0],
                                       "product_last_ts": profile.product_last_ts + [0.0]})
    cands = view.catalog.candidates(view.catalog.category_codes[1], 10)
    np.testing.assert_array_equal(candidate_features(profile, cands, view.catalog, view.moment),
                                  candidate_features(noisy, cands, view.catalog, view.moment))


def test_one_list_fast_paths_equal_the_many_list_code():
    """A served request is one list; its shortcuts (one sum, one max, rank by binary search) must give what the
    training path's per-list code gives for the same rows."""
    from voicecart.ranking.features import _rank_in_lists, _segment_max, _segment_sum

    values = np.asarray([3.0, 1.0, 3.0, 0.0, 7.0, 1.0])
    other = np.asarray([5.0, 5.0])
    one, many = np.asarray([0, 6]), np.asarray([0, 2, 8])
    both = np.concatenate([other, values])
    np.testing.assert_array_equal(_rank_in_lists(values, one), _rank_in_lists(both, many)[2:])
    np.testing.assert_array_equal(_rank_in_lists(values, one), [1, 3, 1, 5, 0, 3])  # ties share the better rank
    np.testing.assert_allclose(_segment_sum(values, one), _segment_sum(both, many)[2:])
    np.testing.assert_array_equal(_segment_max(values, one), _segment_max(both, many)[2:])
    assert len(_segment_max(np.zeros(0), np.asarray([0, 0]))) == 0


def test_one_customer_category_sums_equal_the_many_customer_code():
    """A served request's aggregates (one history row: sums by category index) give what the training path's
    keyed sums give for the same customer among others."""
    from types import SimpleNamespace

    from voicecart.ranking.features import CustomerAggregates, History

    n_products, n_c = 8, 4
    catalog = SimpleNamespace(stats=SimpleNamespace(rel_price=np.linspace(0.5, 2.0, n_products)), category_codes=list(range(n_c)),
                              cat_of=np.asarray([0, 0, 1, 1, 2, 2, 3, 3]), taste=None, vectors=None)
    prods, counts, last = np.asarray([1, 2, 3, 6]), np.asarray([2.0, 1.0, 4.0, 1.0]), np.asarray([5.0, 6.0, 7.0, 8.0])
    one = History.from_pairs(n_products, np.zeros(4), prods, counts, last, np.ones(1), np.full(1, 3.0), np.full(1, 9.0))
    other_p = np.asarray([0, 2, 7])
    many = History.from_pairs(n_products, np.concatenate([np.zeros(3), np.ones(4)]), np.concatenate([other_p, prods]),
                              np.concatenate([np.ones(3), counts]), np.concatenate([np.ones(3), last]),
                              np.ones(2), np.full(2, 3.0), np.full(2, 9.0))
    cats = np.arange(n_c)
    got = CustomerAggregates(one, catalog).category(np.zeros(n_c, np.int64), cats)
    want = CustomerAggregates(many, catalog).category(np.ones(n_c, np.int64), cats)
    np.testing.assert_allclose(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1])
    assert got[0][2] == 0.0 and got[1][2] == 0.0, "a category never bought: no orders, no price level"
