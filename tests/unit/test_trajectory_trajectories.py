"""Trajectories from canonical tables: ordering, baskets, windows, UNK fallback, padding into batches."""

from datetime import datetime

import numpy as np
import pyarrow as pa
import pytest

from voicecart.trajectory.trajectories import (FIRST_EVENT_BUCKET, MASK, UNK, CategoryVocab, as_day, batch_arrays,
                                               events_from_rows, first_basket_after, size_bucket, time_bucket,
                                               weekday)


def rows(records):
    cols = ["customer_id", "timestamp", "order_id", "category_l1", "category_l2", "category_l3"]
    return pa.table({c: [r[i] for r in records] for i, c in enumerate(cols)})


D = datetime


@pytest.fixture
def events():
    return events_from_rows(rows([
        ("a", D(2001, 1, 1), "o1", "10", "1001", "100101"),
        ("a", D(2001, 1, 1), "o1", "10", "1002", "100201"),
        ("a", D(2001, 1, 9), "o2", "20", "2001", "200101"),
        ("a", D(2001, 1, 30), "o3", "10", "1001", "100101"),
        ("b", D(2001, 1, 5), "o4", "20", "2001", "200102"),  # one event
    ]))


def test_events_are_grouped_per_customer_with_basket_numbers(events):
    assert list(events.customer_ids) == ["a", "b"]
    assert list(events.offsets) == [0, 4, 5]
    assert list(events.basket) == [0, 0, 1, 2, 0]


def test_rows_not_sorted_by_customer_are_rejected():
    with pytest.raises(ValueError, match="customer_id"):
        events_from_rows(rows([("a", D(2001, 1, 1), "o1", "1", "11", "111"),
                               ("b", D(2001, 1, 1), "o2", "1", "11", "111"),
                               ("a", D(2001, 1, 2), "o3", "1", "11", "111")]))


def test_window_keeps_events_before_the_cut_off_and_the_last_n(events):
    w = events.window(D(2001, 1, 10))
    assert list(w.lengths) == [3, 1]
    w = events.window(D(2001, 1, 31), max_events=2)
    assert list(w.l3[:2]) == ["200101", "100101"]
    w = events.window(D(2001, 1, 31), days=10)
    assert list(w.lengths) == [1, 0]  # b's window is empty but b keeps its row
    assert list(events.window(D(2001, 1, 31), days=10, keep_empty=False).customer_ids) == ["a"]


def test_unseen_subclass_falls_back_to_its_known_parents(events):
    vocab = CategoryVocab.from_paths(events.l1[:4], events.l2[:4], events.l3[:4])  # b's subclass unseen
    enc = events.encode(vocab)
    assert enc.l3[4] == UNK
    assert enc.l2[4] == enc.l2[2] != UNK  # same aisle as a's third event
    assert enc.l1[4] == enc.l1[2] != UNK
    restored = CategoryVocab.from_json(vocab.to_json())
    assert restored.sizes == vocab.sizes and restored.encode(2, np.array(["100101"]))[0] > MASK


def test_time_buckets_grow_logarithmically():
    assert list(time_bucket(np.array([0, 0.5, 1, 3, 7, 8, 1000]))) == [0, 1, 2, 3, 4, 5, FIRST_EVENT_BUCKET - 1]


def test_batch_marks_basket_starts_gaps_and_padding(events):
    vocab = CategoryVocab.from_paths(events.l1, events.l2, events.l3)
    enc = events.window(D(2001, 2, 1)).encode(vocab)
    b = batch_arrays(enc, np.array([0, 1]), as_day(D(2001, 2, 1)), max_events=8)
    assert b["l1"].shape == (2, 4)
    assert list(b["boundary"][0]) == [1, 0, 1, 1]
    assert b["gap"][0, 0] == FIRST_EVENT_BUCKET and b["gap"][0, 1] == 0  # same basket: no gap
    assert b["gap"][0, 2] == time_bucket(np.array([8.0]))[0]
    assert list(b["pos"][0]) == [3, 2, 1, 0]
    assert list(b["valid"][1]) == [True, False, False, False]


def test_empty_batch_rows_still_have_one_padded_slot(events):
    vocab = CategoryVocab.from_paths(events.l1, events.l2, events.l3)
    enc = events.window(D(2000, 1, 1)).encode(vocab)  # nobody has history yet
    b = batch_arrays(enc, np.array([0, 1]), as_day(D(2000, 1, 1)), max_events=8)
    assert b["valid"].shape == (2, 1) and not b["valid"].any()


def test_crop_keeps_a_contiguous_share(events):
    vocab = CategoryVocab.from_paths(events.l1, events.l2, events.l3)
    enc = events.window(D(2001, 2, 1)).encode(vocab)
    rng = np.random.default_rng(0)
    for _ in range(20):
        b = batch_arrays(enc, np.array([0]), as_day(D(2001, 2, 1)), max_events=8, rng=rng, crop=0.5)
        n = int(b["valid"].sum())
        assert 2 <= n <= 4
        assert list(b["pos"][0, :n]) == list(range(n - 1, -1, -1))


def test_first_basket_after_is_the_completion_target(events):
    t = first_basket_after(events, D(2001, 1, 2))
    assert t == {"a": {"200101"}, "b": {"200102"}}


def test_customers_without_purchases_get_an_empty_trajectory(events):
    everyone = events.including(np.array(["b", "c", "a", "d"]))
    assert list(everyone.customer_ids) == ["a", "b", "c", "d"]
    assert list(everyone.lengths) == [4, 1, 0, 0]
    assert events.including(np.array(["a"])) is events


def test_weekday_and_basket_size_of_each_event(events):
    assert weekday(np.array([as_day(D(2001, 1, 1)), as_day(D(2001, 1, 7))])).tolist() == [0, 6]  # Mon, Sun
    assert size_bucket(np.array([1, 2, 3, 4, 5, 8, 9, 1000])).tolist() == [0, 1, 2, 2, 3, 3, 4, 7]
    vocab = CategoryVocab.from_paths(events.l1, events.l2, events.l3)
    b = batch_arrays(events.encode(vocab), np.array([0]), as_day(D(2001, 2, 1)), max_events=8)
    assert b["dow"][0].tolist() == [0, 0, 1, 1]  # Jan 1 and Jan 30 2001 are Mondays, Jan 9 a Tuesday
    assert b["size"][0].tolist() == [1, 1, 0, 0]  # the first basket holds two subclasses


def test_a_window_cut_by_its_edge_keeps_the_true_basket_size(events):
    vocab = CategoryVocab.from_paths(events.l1, events.l2, events.l3)
    enc = events.encode(vocab)
    b = batch_arrays(enc, np.array([0]), as_day(D(2001, 2, 1)), max_events=3)  # drops the first event
    assert b["l3"][0, 0] == enc.l3[1] and b["size"][0, 0] == 1


def test_ends_cut_each_trajectory_before_a_given_event(events):
    vocab = CategoryVocab.from_paths(events.l1, events.l2, events.l3)
    enc = events.encode(vocab)
    b = batch_arrays(enc, np.array([0, 1]), np.array([as_day(D(2001, 1, 9)), 0.0]), max_events=8,
                     ends=np.array([2, 5]))
    assert b["valid"].sum(1).tolist() == [2, 1]
    assert b["recency"][0, :2].tolist() == [time_bucket(np.array([8.0]))[0]] * 2
