"""Every acknowledged feedback event reaches the offline store at least once, and is read there once."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pytest

from voicecart.features.offline import FEEDBACK_TABLE, feedback_sql
from voicecart.features.offline_duckdb import ParquetFeedbackSink
from voicecart.features.sql import timestamp_literal
from voicecart.schemas import FeedbackEvent
from voicecart.serving.feedback import FeedbackIntake, FeedbackLog

T0 = datetime(2026, 11, 30, 12, tzinfo=timezone.utc)


def event(i: int, kind: str = "kept") -> FeedbackEvent:
    return FeedbackEvent(event_id=f"e{i}", request_id=f"r{i}", customer_id=f"c{i % 3}", product_id="p1", kind=kind,
                         timestamp=T0 + timedelta(minutes=i))


def offline_rows(folder) -> pa.Table:
    import duckdb

    con = duckdb.connect()
    files = sorted(folder.glob("*.parquet"))
    con.execute(f"CREATE VIEW {FEEDBACK_TABLE} AS SELECT * FROM read_parquet({[str(f) for f in files]})")
    return con.sql(feedback_sql(timestamp_literal(T0 - timedelta(days=1)), timestamp_literal(T0 + timedelta(days=1)))
                   ).to_arrow_table()


def test_acknowledged_events_reach_the_offline_table(tmp_path):
    intake = FeedbackIntake(FeedbackLog(tmp_path / "wal.sqlite"), push=None, offline=ParquetFeedbackSink(tmp_path / "fb"))
    for i in range(5):
        intake.receive(event(i))
    assert intake.log.counts()["offline_pending"] == 5
    assert intake.flush_offline() == 5 and intake.log.counts()["offline_pending"] == 0
    rows = offline_rows(tmp_path / "fb")
    assert sorted(rows.column("event_id").to_pylist()) == [f"e{i}" for i in range(5)]
    assert rows.schema.field("timestamp").type == pa.timestamp("us")  # naive UTC, as the canonical tables


def test_a_write_that_was_never_marked_is_written_again_and_read_once(tmp_path):
    """A crash between the offline write and its mark (kill -9): the replay writes again, readers dedupe."""
    log = FeedbackLog(tmp_path / "wal.sqlite")
    sink = ParquetFeedbackSink(tmp_path / "fb")
    intake = FeedbackIntake(log, push=None, offline=sink)
    for i in range(5):
        intake.receive(event(i))
    sink.write(log.unwritten())  # written, then "killed" before mark_written
    for i in range(5, 7):
        intake.receive(event(i))
    assert FeedbackIntake(log, push=None, offline=sink).flush_offline() == 7  # the restarted process replays
    raw = pa.concat_tables([pa.parquet.read_table(f) for f in sorted((tmp_path / "fb").glob("*.parquet"))])
    assert raw.num_rows == 12
    assert sorted(offline_rows(tmp_path / "fb").column("event_id").to_pylist()) == sorted(f"e{i}" for i in range(7))


def test_an_unreachable_offline_store_keeps_the_events_for_later(tmp_path):
    class Down:
        def write(self, rows):  # noqa: ANN001, ANN201
            raise ConnectionError("warehouse unreachable")

    log = FeedbackLog(tmp_path / "wal.sqlite")
    appended = FeedbackIntake(log, push=None, offline=Down()).receive(event(1))
    assert not appended.duplicate  # still acknowledged: the WAL holds it
    assert FeedbackIntake(log, push=None, offline=Down()).flush_offline() == 0
    assert log.counts()["offline_pending"] == 1
    assert FeedbackIntake(log, push=None, offline=ParquetFeedbackSink(tmp_path / "fb")).flush_offline() == 1


def test_arm_and_model_version_are_kept_with_the_event(tmp_path):
    log = FeedbackLog(tmp_path / "wal.sqlite")
    ev = event(1).model_copy(update={"arm": "canary", "model_version": "v0002"})
    FeedbackIntake(log, push=None).receive(ev)
    (row,) = log.unwritten().to_pylist()
    assert (row["arm"], row["model_version"]) == ("canary", "v0002")
    assert log.events()[0].arm == "canary"


@pytest.mark.parametrize("bad", [{"arm": "blue"}, {"model_version": "v 2"}])
def test_arm_and_version_are_validated(bad):
    with pytest.raises(ValueError):
        FeedbackEvent.model_validate({**event(1).model_dump(), **bad})
