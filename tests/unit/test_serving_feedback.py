"""Feedback intake: validated, idempotent by event_id, durable before the 2xx, replayed when unpushed."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from voicecart.features.errors import FeatureStoreUnavailable
from voicecart.schemas import CustomerProfile, FeedbackEvent
from voicecart.serving.feedback import Appended, FeedbackIntake, FeedbackLog, outside_window
from voicecart.serving.profiles import StaticProfiles, feedback_push, profile_updates

T = datetime(2024, 5, 1, 12, tzinfo=timezone.utc)


def event(event_id: str = "e1", kind: str = "bought", product: str = "P1", **kw) -> FeedbackEvent:
    return FeedbackEvent(event_id=event_id, request_id="r1", customer_id="c1", product_id=product, kind=kind,
                         timestamp=T, **kw)


def test_append_is_idempotent_by_event_id_and_survives_reopening(tmp_path):
    log = FeedbackLog(tmp_path / "fb.sqlite")
    assert not log.append(event("e1")).duplicate
    assert log.append(event("e1")).duplicate
    assert not log.append(event("e2", "removed")).duplicate
    log.close()
    again = FeedbackLog(tmp_path / "fb.sqlite")
    assert [e.event_id for e in again.events()] == ["e1", "e2"]
    assert again.counts() == {"total": 2, "unpushed": 2, "offline_pending": 2}


def test_the_training_side_reads_the_serving_log(tmp_path):
    from voicecart.feedback.log import read_events

    log = FeedbackLog(tmp_path / "fb.sqlite")
    log.append(event("e1"))
    log.append(event("e2", "swapped", "P2", substitute_id="P3"))
    result = read_events(tmp_path / "fb.sqlite")
    assert result.rejected == [] and result.events == log.events()
    assert result.events[1].substitute_id == "P3" and result.events[0].timestamp == T


def test_log_is_in_wal_mode_with_full_sync(tmp_path):
    log = FeedbackLog(tmp_path / "fb.sqlite")
    assert log._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert log._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL: fsync at every commit


class FlakyStore(StaticProfiles):
    def __init__(self) -> None:
        super().__init__([])
        self.down = True

    def push(self, profiles):
        if self.down:
            raise FeatureStoreUnavailable("redis down")
        return super().push(profiles)


def test_failed_pushes_stay_unpushed_and_are_replayed_by_the_next_intake(tmp_path):
    store = FlakyStore()
    intake = FeedbackIntake(FeedbackLog(tmp_path / "fb.sqlite"), feedback_push(store))
    intake.receive(event("e1"))
    assert intake.flush() == 0 and intake.log.counts()["unpushed"] == 1
    store.down = False
    restarted = FeedbackIntake(FeedbackLog(tmp_path / "fb.sqlite"), feedback_push(store))
    restarted.start()  # replays on start
    restarted.stop()
    assert restarted.log.counts()["unpushed"] == 0
    assert store.get("c1").product_ids == ["P1"]


def test_bought_kept_and_swapped_move_the_profile_others_do_not():
    base = CustomerProfile(customer_id="c1", product_ids=["P9"], product_counts=[1.0], product_last_ts=[0.0])
    store = StaticProfiles([base])
    rows = profile_updates([event("a", "bought", "P1"), event("b", "removed", "P2"), event("c", "reasked", "P3"),
                            event("d", "swapped", "P4", substitute_id="P5"), event("e", "kept", "P1")], store)
    (row,) = rows
    counts = dict(zip(row.product_ids, row.product_counts))
    assert counts == {"P1": 2.0, "P5": 1.0, "P9": 1.0}


@pytest.mark.parametrize("payload, field", [
    ({"event_id": "e", "request_id": "r", "customer_id": "c", "product_id": "p", "kind": "liked",
      "timestamp": "2024-01-01T00:00:00Z"}, "kind"),
    ({"event_id": "e", "request_id": "r", "customer_id": "c", "product_id": "p", "kind": "bought"}, "timestamp"),
    ({"event_id": "", "request_id": "r", "customer_id": "c", "product_id": "p", "kind": "bought",
      "timestamp": "2024-01-01T00:00:00Z"}, "event_id"),
])
def test_invalid_events_name_the_field(payload, field):
    with pytest.raises(ValidationError) as info:
        FeedbackEvent.model_validate(payload)
    assert field in str(info.value)


def test_the_same_event_id_with_another_body_is_a_conflict_naming_the_fields(tmp_path):
    log = FeedbackLog(tmp_path / "fb.sqlite")
    assert log.append(event("e1")) == Appended("e1", duplicate=False)
    same_instant = event("e1").model_copy(update={"timestamp": T.astimezone(timezone(timedelta(hours=2)))})
    assert log.append(same_instant) == Appended("e1", duplicate=True)
    clash = log.append(event("e1", "removed", "P9"))
    assert not clash.duplicate and clash.conflict == ("product_id", "kind")
    assert [(e.kind, e.product_id) for e in log.events()] == [("bought", "P1")]  # the logged body is kept


def test_flags_are_stored_and_counted_by_the_training_reader(tmp_path):
    from voicecart.feedback.log import read_events

    log = FeedbackLog(tmp_path / "fb.sqlite")
    log.append(event("e1"), ("unknown_product",))
    log.append(event("e2"), ("unknown_product", "unknown_customer"))
    log.append(event("e3"))
    assert log.flags() == {"e1": "unknown_product", "e2": "unknown_product,unknown_customer", "e3": ""}
    result = read_events(tmp_path / "fb.sqlite")
    assert len(result.events) == 3 and result.flagged == {"unknown_product": 2, "unknown_customer": 1}


def test_a_log_written_before_flags_existed_gets_the_column(tmp_path):
    import sqlite3

    db = tmp_path / "old.sqlite"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE feedback_events (event_id TEXT PRIMARY KEY, request_id TEXT NOT NULL, "
                    "customer_id TEXT NOT NULL, product_id TEXT NOT NULL, kind TEXT NOT NULL, substitute_id TEXT, "
                    "timestamp TEXT NOT NULL, received_at TEXT NOT NULL, pushed_at TEXT)")
    log = FeedbackLog(db)
    log.append(event("e1"), ("unknown_customer",))
    assert log.flags() == {"e1": "unknown_customer"}


@pytest.mark.parametrize("timestamp, ok", [
    (T, True), (T - timedelta(days=29), True), (T + timedelta(seconds=299), True),
    (T - timedelta(days=31), False), (T + timedelta(hours=1), False),
    (datetime(1970, 1, 1, tzinfo=timezone.utc), False), (datetime(9999, 12, 31, tzinfo=timezone.utc), False),
])
def test_timestamps_outside_the_window_around_receipt_are_refused(timestamp, ok):
    why = outside_window(timestamp, T, max_age_s=30 * 86_400, max_ahead_s=300)
    assert (why is None) is ok
    if not ok:
        assert why.startswith("timestamp: ") and "window" in why


BASE = {"event_id": "e", "request_id": "r", "customer_id": "c", "product_id": "p", "kind": "bought",
        "timestamp": "2024-01-01T00:00:00Z"}


@pytest.mark.parametrize("change, field", [
    ({"timestamp": 1704067200}, "timestamp"),  # an integer epoch
    ({"timestamp": "2024-01-01"}, "timestamp"),  # a date without a time
    ({"timestamp": "2024-01-01T00:00:00"}, "timestamp"),  # a local time without an offset
    ({"event_id": "e\x00"}, "event_id"),
    ({"customer_id": "c\x1b[31m"}, "customer_id"),
    ({"product_id": "p\n"}, "product_id"),
    ({"request_id": "r\x85"}, "request_id"),
    ({"kind": "swapped", "substitute_id": ""}, "substitute_id"),
    ({"kind": "swapped"}, "substitute_id"),
])
def test_junk_that_used_to_reach_the_labels_is_refused_naming_the_field(change, field):
    with pytest.raises(ValidationError) as info:
        FeedbackEvent.model_validate({**BASE, **change})
    assert field in str(info.value)


def test_the_feedback_schema_states_the_rules_it_is_checked_with():
    from jsonschema import Draft202012Validator

    schema = FeedbackEvent.model_json_schema()
    validator = Draft202012Validator(schema)
    for change, _ in [({"event_id": "e\x00"}, 0), ({"kind": "swapped"}, 0), ({"timestamp": "2024-01-01"}, 0),
                      ({"kind": "swapped", "substitute_id": ""}, 0), ({"product_id": "p\n"}, 0)]:
        assert not validator.is_valid({**BASE, **change}), change
    assert validator.is_valid(BASE)
    assert validator.is_valid({**BASE, "kind": "swapped", "substitute_id": "p2"})
