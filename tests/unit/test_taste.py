"""Taste across categories: package sizes parsed, brand tier and size compared within a category, and the
candidate features built on them — neutral (0) where a catalogue has neither brand nor size (Ta-Feng)."""

import numpy as np
import pyarrow as pa
import pytest

from voicecart.ranking import FEATURE_NAMES, Candidates, Catalog, candidate_features
from voicecart.ranking.taste import ProductTaste, parse_size
from voicecart.schemas import CustomerProfile

TASTE = ("private_label", "private_match", "rel_size", "size_vs_customer", "size_distance")


@pytest.mark.parametrize("text, parsed", [
    ("16 OZ", ("oz", 16.0)), ("1 LB", ("oz", 16.0)), ("12 PK/12 OZ", ("oz", 144.0)), ("1/2 GAL", ("oz", 64.0)),
    ("3/3 OZ", ("oz", 9.0)), ("13 1/2 OZ", ("oz", 13.5)), ("200 CT", ("count", 200.0)), ("1 DZ", ("count", 12.0)),
    ("P    18 OZ", ("oz", 18.0)), ("CTN", None), ("6 IN", None), ("970632  PK", None), (None, None), ("", None),
])
def test_package_sizes_parse_to_ounces_or_counts(text, parsed):
    got = parse_size(text)
    if parsed is None:
        assert got is None
    else:
        assert got[0] == parsed[0] and got[1] == pytest.approx(parsed[1])


def _catalog(brands, sizes, categories) -> Catalog:
    n = len(brands)
    return Catalog.from_table(pa.table({
        "product_id": [f"p{i}" for i in range(n)], "title": [f"thing {i}" for i in range(n)],
        "brand": brands, "size": sizes, "category_l1": ["a"] * n, "category_l2": ["a > b"] * n,
        "category_l3": categories}))


def test_size_is_relative_to_its_category_and_kind_of_amount():
    taste = ProductTaste.from_columns(
        ["Private", "National", None, "Acme", "National", "National"],
        ["8 OZ", "32 OZ", "16 OZ", "64 OZ", "10 CT", None], np.asarray([0, 0, 0, 1, 1, 1]))
    np.testing.assert_array_equal(taste.private[:2], [1.0, 0.0])
    assert np.isnan(taste.private[2]) and taste.private[3] == 0.0  # a named brand is a national one
    assert taste.rel_size[0] < taste.rel_size[2] < taste.rel_size[1]
    assert taste.rel_size[[0, 1, 2]].mean() == pytest.approx(0.0, abs=1e-6)
    # alone in its (category, kind): no spread to compare with; unknown size: unknown
    assert np.isnan(taste.rel_size[3]) and np.isnan(taste.rel_size[4]) and np.isnan(taste.rel_size[5])


def test_a_private_label_household_prefers_private_label_and_its_usual_size_in_a_new_category():
    # category x: the household's history (private label, big packs); category y: never bought there
    catalog = _catalog(["Private", "National", "Private", "National", "Private", "National"],
                       ["64 OZ", "8 OZ", "16 OZ", "16 OZ", "64 OZ", "64 OZ"], ["x", "x", "y", "y", "y", "y"])
    profile = CustomerProfile(customer_id="c", order_count=3, product_ids=["p0"], product_counts=[3.0],
                              product_last_ts=[0.0])
    cands = Candidates(np.asarray([2, 3, 4, 5]), np.zeros(4, np.float32), np.ones(4, np.float32))
    f = candidate_features(profile, cands, catalog, now=86400.0)
    col = {n: f[:, FEATURE_NAMES.index(n)] for n in FEATURE_NAMES}
    np.testing.assert_array_equal(col["private_label"], [1, 0, 1, 0])
    np.testing.assert_array_equal(col["private_match"], [1, -1, 1, -1])
    assert col["size_distance"][2] < col["size_distance"][0]  # 64 OZ is nearer its usual big size than 16 OZ
    assert (col["has_category_history"] == 0).all()


def test_taste_features_are_neutral_without_brand_or_size():
    catalog = _catalog([None] * 4, [None] * 4, ["x", "x", "y", "y"])
    assert not catalog.taste.known
    profile = CustomerProfile(customer_id="c", order_count=2, product_ids=["p0", "p1"], product_counts=[2.0, 1.0],
                              product_last_ts=[0.0, 0.0])
    cands = Candidates(np.asarray([2, 3]), np.zeros(2, np.float32), np.ones(2, np.float32))
    for p in (profile, None):
        f = candidate_features(p, cands, catalog, now=86400.0)
        assert (f[:, [FEATURE_NAMES.index(n) for n in TASTE]] == 0).all()
        assert np.isfinite(f).all()


def test_a_catalogue_pickled_before_taste_existed_scores_neutrally():
    catalog = _catalog(["Private", "National"], ["8 OZ", "16 OZ"], ["x", "x"])
    old = catalog.at(catalog.stats)
    old.taste = None  # what a catalogue saved by an older bundle holds
    cands = Candidates(np.asarray([0, 1]), np.zeros(2, np.float32), np.ones(2, np.float32))
    f = candidate_features(None, cands, old, now=86400.0)
    assert (f[:, [FEATURE_NAMES.index(n) for n in TASTE]] == 0).all()
