"""Candidate retrieval: BM25 over names with plural/spelling tolerance, category match, category codes."""

import numpy as np
import pytest

from tests.toy import toy_catalog, toy_dataset
from voicecart.ranking import Catalog, parse

PRODUCTS = [
    dict(product_id="p1", title="Whole Milk Gallon", brand="Dairyland", category_l1="10", category_l2="1001",
         category_l3="100101", category_l1_name="dairy", category_l2_name="milk", category_l3_name="whole milk"),
    dict(product_id="p2", title="Skim Milk Half Gallon", brand="Dairyland", category_l1="10", category_l2="1001",
         category_l3="100101", category_l1_name="dairy", category_l2_name="milk", category_l3_name="whole milk"),
    dict(product_id="p3", title="Organic Strawberries", brand="Berryco", category_l1="20", category_l2="2001",
         category_l3="200101", category_l1_name="produce", category_l2_name="fruit", category_l3_name="berries"),
    dict(product_id="p4", title="Blueberries Pint", brand="Berryco", category_l1="20", category_l2="2001",
         category_l3="200101", category_l1_name="produce", category_l2_name="fruit", category_l3_name="berries"),
    dict(product_id="p5", title="Roma Tomatoes", brand=None, category_l1="20", category_l2="2002",
         category_l3="200201", category_l1_name="produce", category_l2_name="vegetables",
         category_l3_name="tomatoes"),
    dict(product_id="p6", title="Sourdough Bread", brand="Bakehouse", category_l1="30", category_l2="3001",
         category_l3="300101", category_l1_name="bakery", category_l2_name="bread", category_l3_name="bread"),
]
LINES = [("c1", "p1", 1.0, 3.5), ("c1", "p1", 5.0, 3.5), ("c2", "p2", 2.0, 2.0), ("c2", "p3", 2.0, 4.0),
         ("c3", "p4", 3.0, 5.0), ("c3", "p1", 3.0, 3.5), ("c1", "p5", 6.0, 1.0)]


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory):
    return toy_dataset(tmp_path_factory.mktemp("shop"), PRODUCTS, LINES)


@pytest.fixture
def catalog(shop):
    return lambda as_of=10.0: toy_catalog(shop, as_of)


def ids(cat: Catalog, cands) -> list[str]:
    return [cat.product_ids[i] for i in cands.product]


def test_text_query_finds_products_by_title(catalog):
    cat = catalog()
    found = ids(cat, cat.candidates(parse("add two gallons of milk"), 10))
    assert found[:2] == ["p1", "p2"] or set(found[:2]) == {"p1", "p2"}
    assert "p6" not in found


def test_plural_and_singular_meet(catalog):
    cat = catalog()
    assert "p5" in ids(cat, cat.candidates("tomato", 10))
    assert "p5" in ids(cat, cat.candidates("tomatoes", 10))
    assert "p3" in ids(cat, cat.candidates("strawberry", 10))


def test_one_typo_is_tolerated(catalog):
    cat = catalog()
    assert "p6" in ids(cat, cat.candidates("sourdugh bread", 10))
    assert "p4" in ids(cat, cat.candidates("bluberries", 10))


def test_category_name_match_adds_the_category(catalog):
    cat = catalog()
    cands = cat.candidates("berries", 10)
    assert set(ids(cat, cands)) >= {"p3", "p4"}
    assert cands.category_match.max() == 1.0


def test_category_code_gives_sold_members_most_popular_first(catalog):
    cat = catalog()
    cands = cat.candidates(parse("add 100101"), 10)
    assert ids(cat, cands) == ["p1", "p2"]
    assert cands.category == "100101"
    assert ids(cat, cat.candidates("10", 10))[0] == "p1"  # a level-1 prefix


def test_unknown_category_and_gibberish_give_no_candidates(catalog):
    cat = catalog()
    assert len(cat.candidates(parse("add 999999"), 10)) == 0
    assert len(cat.candidates("zzzzqqq", 10)) == 0
    assert len(cat.candidates("", 10)) == 0
    assert len(cat.candidates(None, 10)) == 0


def test_stats_are_as_of_the_cut(catalog):
    early = catalog(as_of=2.5)
    assert early.stats.popularity[early.index["p1"]] == 1  # only the day-1 order is before 2.5
    assert early.stats.popularity[early.index["p4"]] == 0
    assert "p4" not in ids(early, early.candidates(parse("add 200101"), 10))  # never sold yet


def test_k_caps_the_list(catalog, tmp_path):
    cat = catalog()
    assert len(cat.candidates("milk", 1)) == 1
    path = cat.save(tmp_path / "catalog.pkl")
    again = Catalog.load(path)
    assert ids(again, again.candidates("milk", 5)) == ids(cat, cat.candidates("milk", 5))
    assert np.array_equal(again.stats.popularity, cat.stats.popularity)


@pytest.mark.parametrize("tokens", [["milk"], ["milk", "gallon"], ["milk", "milk"], ["berry", "organic", "pint"],
                                    ["zzz"], ["bread", "zzz", "whole"]])
def test_text_scores_are_bm25s_own_scores(catalog, tokens):
    """The request path sums bm25s's precomputed postings itself (no np.add.at): the same scores as the
    library's get_scores, token by token in query order."""
    cat = catalog()
    bm25 = cat._bm25
    known = [t for t in tokens if t in bm25.vocab_dict]
    expected = bm25.get_scores(known) if known else np.zeros(len(cat), dtype=np.float32)
    np.testing.assert_array_equal(cat._text_scores(tokens), expected)
