"""Task metrics and heads: Recall/NDCG by hand, bootstrap intervals, frequency baseline, neighbours, probe."""

import numpy as np
import pytest

from voicecart.trajectory.tasks import (blend, bootstrap, completion_scores, fit_completion_head,
                                        frequency_popularity_scores, neighbour_scores, profiling, ranking_metrics)


def test_recall_and_ndcg_by_hand():
    scores = np.array([[0.0, 0.0, 0.0, 5, 4, 3, 2, 1]])
    recall, ndcg = ranking_metrics(scores, [np.array([3, 7, 1])], k=2)  # id 1 is UNK: a miss that counts
    assert recall[0] == pytest.approx(1 / 3)
    assert ndcg[0] == pytest.approx(1.0 / (1.0 + 1 / np.log2(3)))


def test_bootstrap_interval_brackets_the_mean():
    x = np.random.default_rng(0).random(500)
    est = bootstrap(x)
    assert est.low < est.value < est.high and est.value == pytest.approx(x.mean())
    assert bootstrap(np.ones(50)).as_dict() == {"value": 1.0, "ci95": [1.0, 1.0]}


def test_frequency_first_then_popularity():
    counts = np.zeros((1, 7))
    counts[0, 5] = 2
    pop = np.array([0, 0, 0, 10, 1, 0, 3.0])
    order = np.argsort(-frequency_popularity_scores(counts, pop)[0])
    assert list(order[:3]) == [5, 3, 6]


def test_neighbours_bring_what_similar_customers_buy():
    pool = np.array([[1.0, 0], [0.9, 0.1], [0, 1.0]])
    counts = np.array([[0, 0, 0, 4, 0], [0, 0, 0, 2, 2], [0, 0, 0, 0, 0]], dtype=np.float32)
    counts[2, 4] = 5
    got = neighbour_scores(np.array([[1.0, 0.05]]), pool, counts, k=2)
    assert got[0, 3] > got[0, 4] > 0
    excluded = neighbour_scores(pool[:1], pool, counts, k=1, exclude_self=np.array([0]))
    assert excluded[0, 3] == pytest.approx(0.5)  # its nearest other customer: half 3, half 4
    base = np.zeros((1, 5))
    assert np.argmax(blend(base, got, 1.0)[0]) == 3


def test_completion_head_learns_to_favour_repeat_purchases():
    rng = np.random.default_rng(0)
    R, n = 400, 20
    counts = rng.poisson(0.5, (R, n)).astype(np.float32)
    counts[:, :3] = 0
    last = np.where(counts > 0, rng.uniform(1, 30, (R, n)), np.inf).astype(np.float32)
    favourite = rng.integers(3, n, R)
    counts[np.arange(R), favourite] += 6
    last[np.arange(R), favourite] = 2.0
    targets = [np.array([f]) for f in favourite]
    pop = rng.uniform(1, 100, n)  # popularity points elsewhere
    head = fit_completion_head(counts, last, targets, pop, epochs=3)
    recall, _ = ranking_metrics(completion_scores(head, counts, last, pop), targets, k=1)
    assert recall.mean() > 0.9
    assert head.personal.weight[0, 0] > 0


def test_linear_probe_finds_a_separable_label():
    rng = np.random.default_rng(1)
    labels = np.array(["a", "b", "c"] * 100, dtype=object)
    emb = rng.normal(size=(300, 8)).astype(np.float32)
    emb[:, :4] += np.array([0, 4, 8] * 100)[:, None]
    res = profiling(emb, labels)
    assert res["accuracy"]["value"] > 0.9 and res["nmi"]["value"] > 0.5
    assert res["majority"] < 0.5


def test_probe_predicts_every_customer_once_and_pairs_two_embeddings():
    from voicecart.trajectory.tasks import macro_f1, paired_statistic

    rng = np.random.default_rng(2)
    labels = np.array(["a", "b"] * 150, dtype=object)
    signal = np.array([0, 1] * 150)[:, None] * 1.5
    good = (rng.normal(size=(300, 4)) + signal).astype(np.float32)
    noise = rng.normal(size=(300, 4)).astype(np.float32)
    g, n = profiling(good, labels), profiling(noise, labels)
    assert g["customers"] == 300 and g["folds"] == 5 and len(g["_pred"]) == 300
    assert g["accuracy"]["value"] > 0.7 and abs(n["accuracy"]["value"] - 0.5) < 0.1
    diff = paired_statistic(macro_f1, g["_y"], g["_pred"], n["_pred"])
    assert diff.low > 0 and diff.value == pytest.approx(macro_f1(g["_y"], g["_pred"]) - macro_f1(g["_y"], n["_pred"]))
    same = paired_statistic(macro_f1, g["_y"], g["_pred"], g["_pred"])
    assert same.value == 0 and same.low == 0 == same.high


def _events(baskets_per_customer):
    """EncodedEvents from [[(day, [l3, ...]), ...], ...] (one list of baskets per customer)."""
    from voicecart.trajectory.trajectories import EncodedEvents

    day, basket, l3, offsets = [], [], [], [0]
    for baskets in baskets_per_customer:
        for b, (d, subclasses) in enumerate(baskets):
            day += [float(d)] * len(subclasses)
            basket += [b] * len(subclasses)
            l3 += list(subclasses)
        offsets.append(len(l3))
    l3 = np.array(l3, np.int64)
    return EncodedEvents(np.array([f"c{i}" for i in range(len(baskets_per_customer))], dtype=object),
                         np.array(offsets, np.int64), np.array(day, np.float64), np.array(basket, np.int64),
                         np.full(len(l3), 3, np.int64), np.full(len(l3), 3, np.int64), l3)


def test_rhythm_statistics_by_hand():
    from voicecart.trajectory.baselines import RHYTHM_STATISTICS, rhythm_statistics

    # day 0 = 1970-01-01, a Thursday; day 4 a Monday. Customer 0: baskets of 3 and 1 subclasses on days 4, 11
    ev = _events([[(4, [3, 4, 5]), (11, [3])], [], [(20, [6])]])
    r = rhythm_statistics(ev, as_of_day=21.0)
    assert r.shape == (3, len(RHYTHM_STATISTICS))
    assert r[0, 0] == 1.0 and r[0, 1:7].sum() == 0  # both baskets on a Monday
    assert r[0, 7] == pytest.approx(np.log(2)) and r[0, 8] == pytest.approx(np.log(2.0))  # mean size (3+1)/2
    assert r[0, 9] == pytest.approx(np.log1p(10)) and r[0, 10] == pytest.approx(np.log1p(17))
    assert r[0, 11] == pytest.approx(np.log1p(7)) and r[0, 12] == pytest.approx(np.log(4)) and r[0, 13] == 3
    assert not r[1].any()  # no events: all zero, no NaN
    assert r[2, 11] == 0 and r[2, 7] == 0 and np.isfinite(r).all()


def test_label_ceiling_reads_what_each_reference_carries():
    import scipy.sparse as sp

    from voicecart.trajectory.baselines import rhythm_statistics, subclass_counts
    from voicecart.trajectory.tasks import label_ceiling

    rng = np.random.default_rng(0)
    customers, by_size, by_aisle = [], [], []
    for i in range(400):
        big, low = i % 2 == 1, (i // 2) % 2 == 1  # two independent labels: basket size, and which half of the tree
        pool = np.arange(3, 21) if low else np.arange(21, 39)
        customers.append([(7 * b + int(rng.integers(0, 7)), rng.choice(pool, 8 if big else 2, replace=False))
                          for b in range(3)])
        by_size.append("big" if big else "small")
        by_aisle.append("low" if low else "high")
    ev = _events(customers)
    refs = {"tfidf": sp.csr_matrix(subclass_counts(ev, 40), dtype=np.float64), "rhythm": rhythm_statistics(ev, 30.0)}
    size, aisle = label_ceiling(refs, np.array(by_size, dtype=object)), label_ceiling(refs, np.array(by_aisle, dtype=object))
    assert size["rhythm"]["accuracy"]["value"] > 0.95 and size["rhythm"]["features"] == 14
    assert aisle["tfidf"]["accuracy"]["value"] > 0.95  # sparse input works
    assert aisle["rhythm"]["accuracy"]["value"] < 0.65  # rhythm numbers know nothing of what was bought
    assert aisle["rhythm"]["macro_f1"]["ci95"][0] <= aisle["rhythm"]["macro_f1"]["value"]
