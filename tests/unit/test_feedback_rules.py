"""Implicit feedback: labelling rules, the logged-event reader, events derived from purchases."""

import sqlite3
from datetime import datetime, timezone

import pytest

from voicecart.feedback import (RULES, FeedbackLogError, derive_purchase_events, labels_from_event,
                                labels_from_events, read_events, write_events)
from voicecart.schemas import FeedbackEvent

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def ev(kind, product="p1", sub=None, ts=T0, rid="r1", eid=None, customer="c1"):
    return FeedbackEvent(event_id=eid or f"{rid}-{kind}-{product}", request_id=rid, customer_id=customer,
                         product_id=product, kind=kind, substitute_id=sub, timestamp=ts)


@pytest.mark.parametrize(("kind", "label"), [("bought", 1), ("kept", 1), ("removed", -1), ("reasked", -1)])
def test_single_product_rules(kind, label):
    (lab,) = labels_from_event(ev(kind))
    assert lab.label == label and lab.weight == RULES[kind][1] and lab.product_id == "p1"


def test_swap_is_negative_for_the_answer_and_positive_for_the_substitute():
    labs = labels_from_event(ev("swapped", sub="p9"))
    assert {(lab.product_id, lab.label) for lab in labs} == {("p1", -1), ("p9", 1)}


def test_later_event_wins_for_the_same_answer():
    later = T0.replace(hour=5)
    labs = labels_from_events([ev("removed", ts=later, eid="b"), ev("kept", eid="a")])
    assert [(lab.product_id, lab.source) for lab in labs] == [("p1", "removed")]


def test_parquet_round_trip_and_bad_rows_reported(tmp_path):
    events = [ev("kept"), ev("swapped", sub="p2", rid="r2")]
    path = write_events(events, tmp_path / "events.parquet")
    got = read_events(path)
    assert got.events == events and got.rejected == []


def test_sqlite_log_with_a_bad_row(tmp_path):
    db = tmp_path / "feedback.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE feedback_events (event_id, request_id, customer_id, product_id, kind, substitute_id, timestamp)")
    con.execute("INSERT INTO feedback_events VALUES ('e1','r1','c1','p1','kept',NULL,'2026-01-01T00:00:00Z')")
    con.execute("INSERT INTO feedback_events VALUES ('e2','r1','c1','p1','exploded',NULL,'2026-01-01T00:00:00Z')")
    con.commit()
    con.close()
    got = read_events(db)
    assert [e.event_id for e in got.events] == ["e1"]
    assert len(got.rejected) == 1 and "feedback.db:1: kind" in got.rejected[0]


def test_missing_log_is_a_clear_error(tmp_path):
    with pytest.raises(FeedbackLogError, match="does not exist"):
        read_events(tmp_path / "nope.parquet")
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    with pytest.raises(FeedbackLogError, match="junk.parquet"):
        read_events(tmp_path / "junk.parquet")


def test_purchases_become_bought_events(tmp_path):
    from tests.toy import day, toy_dataset
    from voicecart.features.offline_duckdb import DuckDBEngine
    from voicecart.features.snapshot import window_lines

    products = [dict(product_id="p1", category_l1="1", category_l2="11", category_l3="111")]
    folder = toy_dataset(tmp_path / "shop", products, [("c1", "p1", 1.0, 2.0), ("c1", "p1", 5.0, 2.0),
                                                       ("c2", "p1", 9.0, None)])
    events = derive_purchase_events(window_lines(DuckDBEngine(folder), day(0), day(6)))
    assert [(e.customer_id, e.kind) for e in events] == [("c1", "bought"), ("c1", "bought")]
    assert len({e.event_id for e in events}) == 2


def test_logged_events_become_training_lists(tmp_path):
    from tests.toy import toy_dataset, toy_snapshot
    from voicecart.ranking import Catalog, SnapshotIndex
    from voicecart.ranking.lists import feedback_lists, list_features
    from voicecart.ranking.train import TrainingSet
    from voicecart.schemas.times import DAY_S

    products = [dict(product_id=p, category_l1="1", category_l2="11", category_l3="111") for p in ("p1", "p2", "p3")]
    lines = [("c1", "p1", 1.0, 2.0), ("c2", "p2", 1.0, 2.0), ("c2", "p3", 2.0, 1.0), ("c1", "p2", 5.0, 1.0),
             ("c2", "p1", 5.0, 1.0)]
    snap = toy_snapshot(toy_dataset(tmp_path / "shop", products, lines), 5.0, 6.0)
    view = SnapshotIndex(snap, Catalog.from_table(snap.catalog)).at(5 * DAY_S)
    labels = labels_from_events([ev("swapped", customer="c1", product="p1", sub="p3", rid="r1"),
                                 ev("removed", customer="c2", product="p2", rid="r2"),
                                 ev("kept", customer="c1", product="unknown-product", rid="r3"),
                                 ev("kept", customer="stranger", product="p1", rid="r4")])
    q, skipped = feedback_lists(view, labels, view.catalog.sold_members())
    assert len(q) == 2 and skipped == {"unknown_product": 1, "unknown_customer": 1}
    got = {(str(q.customer_id[i]), view.catalog.product_ids[q.product[r]], float(q.label[r]))
           for i in range(len(q)) for r in range(q.offsets[i], q.offsets[i + 1]) if q.label[r] != 0}
    assert got == {("c1", "p1", -1.0), ("c1", "p3", 1.0), ("c2", "p2", -1.0)}
    ts = TrainingSet.from_lists(q, list_features(view, q))
    assert len(ts) == 2 and (ts.label < 0).sum() == 2
