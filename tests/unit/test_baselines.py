"""Baselines score the same candidate rows from the same snapshot rows: each picks what its rule says."""

import numpy as np
import pytest

from tests.toy import toy_dataset, toy_snapshot
from voicecart.evaluation import truth_ranks
from voicecart.evaluation.resolution import evaluation_window
from voicecart.ranking import Catalog
from voicecart.schemas.times import DAY_S

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
def window(tmp_path_factory: pytest.TempPathFactory):
    folder = toy_dataset(tmp_path_factory.mktemp("shop"), PRODUCTS, HISTORY + TEST)
    snap = toy_snapshot(folder, 10.0, 20.0, frozen_at=10.0, cuts=(10.0,))
    return snap, evaluation_window(snap, Catalog.from_table(snap.catalog), 10 * DAY_S, 20 * DAY_S, tifu=True,
                                   log=lambda _: None)


def answer(window, name: str) -> list[str]:
    snap, w = window
    q, scores = w.queries, w.baselines[name]
    ids = sorted(snap.catalog.column("product_id").to_pylist())
    return [ids[q.product[q.offsets[i] + int(np.argmax(scores[q.offsets[i]:q.offsets[i + 1]]))]] for i in range(len(q))]


def test_popularity_answers_the_most_popular(window):
    assert answer(window, "popularity") == ["a", "a", "a"]


def test_most_bought_answers_the_customers_favourite_else_popular(window):
    assert answer(window, "most_bought_else_popularity") == ["c", "a", "a"]


def test_tifu_knn_borrows_from_similar_customers(window):
    from voicecart.ranking import SnapshotIndex
    from voicecart.ranking.baselines import tifu_knn_scores
    from voicecart.ranking.lists import walk

    snap, w = window
    index = SnapshotIndex(snap, Catalog.from_table(snap.catalog))
    (view, lists), = walk(index, 10 * DAY_S, 20 * DAY_S, candidates_at=10 * DAY_S)
    w.baselines["tifu_k2"] = tifu_knn_scores(lists, view, snap.cut_pairs, k=2)
    assert answer(window, "tifu_k2") == ["c", "b", "a"]  # dave's neighbours (bob, carol) buy "b"
    assert answer(window, "tifu_knn") == ["c", "a", "a"]  # with every customer as a neighbour, "a" wins


def test_random_ranks_are_uniform():
    from voicecart.ranking.baselines import random_scores

    rng = np.random.default_rng(0)
    offsets = np.arange(0, 10 * 5000 + 1, 10)
    labels = np.zeros(50_000, dtype=np.float32)
    labels[offsets[:-1] + rng.integers(0, 10, 5000)] = 1

    class Q:
        product = np.zeros(50_000)

    ranks = truth_ranks(random_scores(Q()), labels, offsets)
    assert (ranks == 1).mean() == pytest.approx(0.1, abs=0.015)
