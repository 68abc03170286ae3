"""Baselines score the same candidate rows: each picks what its rule says."""

import numpy as np
import pytest

from voicecart.evaluation import truth_ranks
from voicecart.evaluation.resolution import Snapshot
from voicecart.ranking import Purchases
from voicecart.ranking.baselines import most_bought_scores, popularity_scores, random_scores, tifu_knn_scores
from voicecart.ranking.train import category_queries

PRODUCTS = [dict(product_id=p, category_l1="1", category_l2="11", category_l3="111") for p in ("a", "b", "c")]
PRODUCTS += [dict(product_id=p, category_l1="2", category_l2="22", category_l3="222") for p in ("x", "y")]
# "a" is the most popular; alice loves "c"; bob and carol both buy "x" with "b"; dave buys "x" too
HISTORY = [("u1", "a", 1.0, 1.0), ("u2", "a", 1.0, 1.0), ("u3", "a", 2.0, 1.0), ("u4", "a", 2.0, 1.0),
           ("alice", "c", 1.0, 1.0), ("alice", "c", 3.0, 1.0), ("alice", "a", 2.0, 1.0),
           ("bob", "x", 1.0, 1.0), ("bob", "b", 1.0, 1.0), ("bob", "b", 4.0, 1.0),
           ("carol", "x", 2.0, 1.0), ("carol", "b", 2.0, 1.0), ("carol", "b", 5.0, 1.0),
           ("dave", "x", 3.0, 1.0), ("dave", "y", 4.0, 1.0)]
TEST = [("alice", "c", 11.0, 1.0), ("dave", "b", 12.0, 1.0), ("u1", "a", 12.0, 1.0)]


@pytest.fixture(scope="module")
def world():
    purchases = Purchases.from_rows(PRODUCTS, HISTORY + TEST)
    snap = Snapshot.build(purchases, 10.0)
    q = category_queries(purchases, snap.catalog, snap.history, snap.aggregates, 10.0, 20.0)
    return purchases, snap, q


def answer(q, scores, snap):
    first = [q.offsets[i] + int(np.argmax(scores[q.offsets[i]:q.offsets[i + 1]])) for i in range(len(q))]
    return [snap.catalog.product_ids[q.product[r]] for r in first]


def test_popularity_answers_the_most_popular(world):
    _, snap, q = world
    assert answer(q, popularity_scores(q, snap.catalog), snap) == ["a", "a", "a"]


def test_most_bought_answers_the_customers_favourite_else_popular(world):
    _, snap, q = world
    assert answer(q, most_bought_scores(q, snap.catalog, snap.history), snap) == ["c", "a", "a"]


def test_tifu_knn_borrows_from_similar_customers(world):
    purchases, snap, q = world
    s = tifu_knn_scores(q, snap.catalog, purchases, 10.0, k=2)
    assert answer(q, s, snap) == ["c", "b", "a"]  # dave's neighbours (bob, carol) buy "b"


def test_random_ranks_are_uniform():
    rng = np.random.default_rng(0)
    offsets = np.arange(0, 10 * 5000 + 1, 10)
    labels = np.zeros(50_000, dtype=np.float32)
    labels[offsets[:-1] + rng.integers(0, 10, 5000)] = 1

    class Q:
        product = np.zeros(50_000)

    ranks = truth_ranks(random_scores(Q()), labels, offsets)
    assert (ranks == 1).mean() == pytest.approx(0.1, abs=0.015)
