"""Feedback in the offline store trains the ranker: the features step reads the window's events once each,
the train step turns them into lists by the rules, counts what it skipped and why, and trains the
no-feedback ablation beside the main model."""

from __future__ import annotations

from datetime import timedelta

import pyarrow as pa

from tests.toy import day, toy_dataset
from voicecart.features.offline import FEEDBACK_SCHEMA
from voicecart.features.offline_duckdb import ParquetFeedbackSink, feedback_dir

PRODUCTS = [dict(product_id=p, category_l1="1", category_l2="11", category_l3="111") for p in ("a", "b", "c")]
LINES = [(f"u{i}", p, float(d), 1.0) for i in range(12) for d, p in ((1 + i % 5, "a"), (10 + i % 7, "b"),
                                                                       (20 + i % 9, "c"), (35 + i % 4, "a"))]


def feedback_rows(rows: list[tuple]) -> pa.Table:
    cols = {n: [] for n in FEEDBACK_SCHEMA.names}
    for event_id, customer, product, kind, sub, d, flags in rows:
        for n, v in zip(("event_id", "request_id", "customer_id", "product_id", "kind", "substitute_id", "timestamp",
                         "received_at", "flags", "arm", "model_version"),
                        (event_id, f"r-{event_id}", customer, product, kind, sub, day(d), day(d) + timedelta(seconds=1),
                         flags, "champion", "v0001")):
            cols[n].append(v)
    return pa.table(cols, schema=FEEDBACK_SCHEMA)


def test_the_window_feedback_trains_lists_and_the_ablation(tmp_path, monkeypatch):
    from voicecart.features.snapshot import Snapshot, snapshot_step
    from voicecart.ranking.train import ABLATIONS, TrainedRanker, train_step

    data = toy_dataset(tmp_path / "shop", PRODUCTS, LINES)
    store = tmp_path / "store"
    sink = ParquetFeedbackSink(feedback_dir(store))
    events = [("e1", "u1", "a", "removed", None, 30.2, ""), ("e2", "u2", "b", "swapped", "c", 31.5, ""),
              ("e3", "u3", "a", "kept", None, 32.0, ""),
              ("e4", "nobody", "a", "kept", None, 32.0, "unknown_customer"),  # as the intake flags it
              ("e5", "u4", "zzz", "kept", None, 33.0, ""),  # a product the catalogue lacks, unflagged
              ("e6", "u5", "a", "kept", None, 80.0, "")]  # after the window
    sink.write(feedback_rows(events))
    sink.write(feedback_rows(events[:2]))  # a replayed batch: read once
    monkeypatch.setenv("VOICECART_FEATURES__STORE_DIR", str(store))
    summary = snapshot_step(data, None, tmp_path / "snap", test_from=day(40).date().isoformat(),
                            window_end=day(50).date().isoformat())
    assert summary["feedback_events"] == 5  # e1..e5 once each; e6 is outside the window
    assert set(Snapshot.load(tmp_path / "snap").feedback.column("event_id").to_pylist()) == {"e1", "e2", "e3", "e4", "e5"}
    out = train_step(tmp_path / "snap", tmp_path / "model", test_from=day(40).date().isoformat(), epochs=1,
                     train_days=38, log=lambda _: None)
    assert out["feedback_lists"] == 3  # e1, e2 (answer -1, substitute +1), e3
    info = TrainedRanker.load(tmp_path / "model").info
    assert info["feedback_skipped"] == {"unknown_customer": 1, "unknown_product": 1}
    assert (tmp_path / "model" / ABLATIONS / "no_feedback" / "ranker.pt").is_file()
    assert TrainedRanker.load(tmp_path / "model" / ABLATIONS / "no_feedback").info["feedback_lists"] == 0


def test_an_empty_feedback_table_is_usable_as_is() -> None:
    """A window with no events yet (a first run) trains: filtering zero rows keeps a boolean mask."""
    import pyarrow as pa

    from voicecart.features.offline import FEEDBACK_SCHEMA
    from voicecart.ranking.train import usable_feedback

    empty = FEEDBACK_SCHEMA.empty_table()
    kept, refused = usable_feedback(empty)
    assert kept.num_rows == 0 and refused == {} and kept.schema == empty.schema
