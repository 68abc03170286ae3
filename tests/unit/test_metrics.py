"""Ranking metrics: ranks from scores, HR/MRR/NDCG, bootstrap CIs, groups."""

import numpy as np
import pytest

from voicecart.evaluation import per_query, summarize, truth_ranks


def test_truth_ranks_with_ties_broken_by_list_order():
    scores = np.array([0.1, 0.9, 0.5, 1.0, 1.0, 0.2, 0.3])
    labels = np.array([0, 0, 1, 0, 1, 0, 0], dtype=np.float32)
    offsets = np.array([0, 3, 5, 7])
    assert truth_ranks(scores, labels, offsets).tolist() == [2, 2, 0]  # list 3 has no truth: a miss


def test_per_query_values():
    v = per_query(np.array([1, 2, 6, 0]))
    assert v["hr@1"].tolist() == [1, 0, 0, 0]
    assert v["hr@5"].tolist() == [1, 1, 0, 0]
    assert v["mrr"].tolist() == pytest.approx([1, 0.5, 1 / 6, 0])
    assert v["ndcg@5"].tolist() == pytest.approx([1, 1 / np.log2(3), 0, 0])


def test_summary_and_groups_and_ci_contains_value():
    rng = np.random.default_rng(0)
    ranks = rng.integers(0, 10, 2000)
    group = rng.random(2000) < 0.3
    s = summarize(ranks, {"g": group, "not_g": ~group}, n_boot=200)
    assert s["all"]["n"] == 2000 and s["g"]["n"] + s["not_g"]["n"] == 2000
    for name in ("all", "g", "not_g"):
        for m in ("hr@1", "hr@5", "mrr", "ndcg@5"):
            assert s[name][m]["low"] <= s[name][m]["value"] <= s[name][m]["high"]
    assert s["all"]["hr@1"]["value"] == pytest.approx((ranks == 1).mean())
    # CI width shrinks like 1/sqrt(n)
    small = summarize(ranks[:200], n_boot=200)["all"]["hr@1"]
    assert small["high"] - small["low"] > s["all"]["hr@1"]["high"] - s["all"]["hr@1"]["low"]


def test_empty_group_is_nan_not_an_error():
    s = summarize(np.array([1, 2]), {"none": np.array([False, False])}, n_boot=10)
    assert s["none"]["n"] == 0 and np.isnan(s["none"]["hr@1"]["value"])
