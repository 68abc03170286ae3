"""The feedback intake writes to the one BigQuery feedback table (the emulator, real client): events reach it,
an unreachable warehouse keeps them in the WAL while the intake still acknowledges, a restarted warehouse
catches up, and two replicas and a replay after a crash leave every event once for the reader."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.bigquery_emulator import PROJECT, Emulator, missing_reason
from voicecart.features.offline_bigquery import BigQueryEngine, BigQueryFeedbackSink
from voicecart.features.sql import timestamp_literal
from voicecart.schemas import FeedbackEvent
from voicecart.serving.feedback import FeedbackIntake, FeedbackLog

pytestmark = [pytest.mark.integration, pytest.mark.slow]

T0 = datetime(2026, 11, 30, 12, tzinfo=timezone.utc)


def event(i: int) -> FeedbackEvent:
    return FeedbackEvent(event_id=f"e{i}", request_id=f"r{i}", customer_id=f"c{i % 3}", product_id="p1",
                         kind="kept", timestamp=T0 + timedelta(minutes=i))


def read_ids(engine: BigQueryEngine) -> list[str]:
    return sorted(engine.feedback(timestamp_literal(T0 - timedelta(days=1)), timestamp_literal(T0 + timedelta(days=1)))
                  .column("event_id").to_pylist())


def test_a_stopped_warehouse_keeps_events_in_the_wal_and_a_restarted_one_catches_up(tmp_path: Path) -> None:
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    emulator = Emulator(PROJECT, data_dir=tmp_path / "bq").start()
    try:
        client = emulator.client()
        client.create_dataset("features")
        engine = BigQueryEngine(client, PROJECT, "features")
        log = FeedbackLog(tmp_path / "wal.sqlite")
        intake = FeedbackIntake(log, push=None, offline=BigQueryFeedbackSink(engine, deadline_s=3))
        for i in range(4):
            intake.receive(event(i))
        assert intake.flush_offline() == 4 and read_ids(engine) == [f"e{i}" for i in range(4)]

        port = emulator.port
        emulator.stop()  # the warehouse goes away: the intake still acknowledges, the WAL keeps the events
        for i in range(4, 7):
            assert not intake.receive(event(i)).duplicate
        assert intake.flush_offline() == 0 and log.counts()["offline_pending"] == 3

        emulator = Emulator(PROJECT, data_dir=tmp_path / "bq", port=port).start()  # the same store, restarted
        assert intake.flush_offline() == 3 and log.counts()["offline_pending"] == 0
        assert read_ids(engine) == [f"e{i}" for i in range(7)]

        # a second replica writes to the same table; a replay after kill -9 (written, never marked) adds no copy
        other = FeedbackLog(tmp_path / "wal-2.sqlite")
        replica = FeedbackIntake(other, push=None, offline=BigQueryFeedbackSink(engine, deadline_s=3))
        for i in range(7, 9):
            replica.receive(event(i))
        BigQueryFeedbackSink(engine, deadline_s=3).write(other.unwritten())
        assert FeedbackIntake(other, push=None, offline=BigQueryFeedbackSink(engine, deadline_s=3)).flush_offline() == 2
        assert read_ids(engine) == sorted(f"e{i}" for i in range(9))
    finally:
        emulator.close()
