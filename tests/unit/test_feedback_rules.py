"""Implicit feedback: labelling rules, the logged-event reader, events derived from purchases."""

import sqlite3
from datetime import datetime, timezone

import pytest

from voicecart.feedback import (RULES, FeedbackLogError, derive_purchase_events, labels_from_event,
                                labels_from_events, read_events, write_events)
from voicecart.ranking import Purchases
from voicecart.schemas import FeedbackEvent

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def ev(kind, product="p1", sub=None, ts=T0, rid="r1", eid=None):
    return FeedbackEvent(event_id=eid or f"{rid}-{kind}-{product}", request_id=rid, customer_id="c1",
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


def test_purchases_become_bought_events():
    products = [dict(product_id="p1", category_l1="1", category_l2="11", category_l3="111")]
    purchases = Purchases.from_rows(products, [("c1", "p1", 1.0, 2.0), ("c1", "p1", 5.0, 2.0), ("c2", "p1", 9.0, None)])
    events = derive_purchase_events(purchases, 0.0, 6.0)
    assert [(e.customer_id, e.kind) for e in events] == [("c1", "bought"), ("c1", "bought")]
    assert len({e.event_id for e in events}) == 2


def test_logged_events_become_training_lists():
    from voicecart.evaluation.resolution import Snapshot
    from voicecart.ranking.train import TrainingSet, feedback_queries, list_features

    products = [dict(product_id=p, category_l1="1", category_l2="11", category_l3="111") for p in ("p1", "p2", "p3")]
    purchases = Purchases.from_rows(products, [("c1", "p1", 1.0, 2.0), ("c2", "p2", 1.0, 2.0), ("c2", "p3", 2.0, 1.0)])
    snap = Snapshot.build(purchases, 5.0)
    labels = labels_from_events([ev("swapped", product="p1", sub="p3", rid="r1"), ev("removed", product="p2", rid="r2"),
                                 ev("kept", product="unknown-product", rid="r3")])
    q = feedback_queries(labels, snap.catalog, snap.aggregates, {c: i for i, c in enumerate(purchases.customer_ids)})
    assert len(q) == 2  # the unknown product is skipped
    got = {(int(i), snap.catalog.product_ids[q.product[r]], float(q.label[r]))
           for i in range(len(q)) for r in range(q.offsets[i], q.offsets[i + 1]) if q.label[r] != 0}
    assert got == {(0, "p1", -1.0), (0, "p3", 1.0), (1, "p2", -1.0)}
    ts = TrainingSet.from_lists(q, list_features(q, snap.catalog, snap.history, snap.aggregates))
    assert len(ts) == 2 and (ts.label < 0).sum() == 2
