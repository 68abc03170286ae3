"""C-STAR's profiling on few labelled households (Complete Journey): repeated stratified cross-validation with
corrected intervals, paired comparisons on the same folds, and the household labels read from customers."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa

from voicecart.trajectory.evaluate import LABELS, SOURCE_DEFAULTS, customer_labels
from voicecart.trajectory.tasks import (accuracy, cv_estimate, label_ceiling, repeated_probe_predictions,
                                        repeated_profiling)


def _planted(n: int = 400, signal: float = 2.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 8))
    x[:, 0] += signal * y
    return x.astype(np.float32), np.where(y == 1, "kids", "no kids").astype(object)


def test_every_household_is_predicted_once_per_repeat_by_a_probe_that_never_saw_it():
    x, labels = _planted()
    y = np.unique(labels.astype(str), return_inverse=True)[1]
    pred, fold, majority = repeated_probe_predictions(x, y, repeats=4, folds=5)
    assert pred.shape == fold.shape == majority.shape == (4, 400)
    for r in range(4):
        assert sorted(np.bincount(fold[r])) == [80, 80, 80, 80, 80]
        for k in range(5):  # stratified: each fold keeps the label shares
            assert abs(y[fold[r] == k].mean() - y.mean()) < 0.02
    assert not (fold[0] == fold[1]).all()  # each repeat shuffles its own folds


def test_a_planted_label_is_found_and_its_interval_clears_the_majority_share():
    x, labels = _planted(signal=2.0)
    res = repeated_profiling(x, labels, repeats=5)
    lo, hi = res["accuracy"]["ci95"]
    assert res["repeats"] == 5 and res["classes"] == 2 and lo <= res["accuracy"]["value"] <= hi
    assert lo > res["majority"] + 0.2
    noise, _ = _planted(seed=1, signal=0.0)
    res = repeated_profiling(noise, labels, repeats=5)
    lo, hi = res["accuracy"]["ci95"]
    assert lo < max(res["majority"], 0.5) + 0.03  # nothing to find: the interval reaches chance


def test_the_corrected_interval_is_wider_than_the_naive_one_and_paired_differences_use_the_same_folds():
    x, labels = _planted(signal=1.0)
    y = np.unique(labels.astype(str), return_inverse=True)[1]
    pred, fold, _ = repeated_probe_predictions(x, y, repeats=5)
    est = cv_estimate(accuracy, y, pred, fold)
    scores = np.array([accuracy(y[fold[r] == k], pred[r, fold[r] == k]) for r in range(5) for k in range(5)])
    naive = 2.064 * scores.std(ddof=1) / np.sqrt(len(scores))  # t(24) 97.5%
    assert np.isclose(est.value, scores.mean()) and (est.high - est.low) / 2 > 2 * naive
    same = cv_estimate(accuracy, y, pred, fold, pred)
    assert (same.value, same.low, same.high) == (0.0, 0.0, 0.0)
    weaker, _, _ = repeated_probe_predictions(x[:, 1:], y, repeats=5)  # the planted column removed
    gain = cv_estimate(accuracy, y, pred, fold, weaker)
    assert gain.low > 0


def test_reference_probes_use_the_repeated_folds_too():
    x, labels = _planted()
    refs = label_ceiling({"planted": x}, labels, repeats=3)
    assert refs["planted"]["features"] == 8 and refs["planted"]["accuracy"]["value"] > 0.75


def test_household_labels_come_from_the_customers_table():
    con = duckdb.connect()
    con.register("customers", pa.table({
        "customer_id": ["1", "2", "3", "4"], "kids_count": ["0", "2", "3+", None],
        "income_band": ["Under 15K", "50-74K", "250K+", None], "household_size": ["1", "4", "5+", None]}))
    got = customer_labels(con, ["4", "3", "2", "1", "9"], ("has_kids", "income_band", "household_size"))
    assert list(got["has_kids"]) == [None, "kids", "kids", "no kids", None]
    assert list(got["income_band"]) == [None, "75K+", "35-74K", "under 35K", None]
    assert list(got["household_size"]) == [None, "5+", "4", "1", None]
    assert SOURCE_DEFAULTS["completejourney"]["labels"] == ("has_kids", "household_size", "income_band")
    assert set(SOURCE_DEFAULTS["completejourney"]["labels"]) <= set(LABELS)
