"""Feedback intake: validated events appended durably (SQLite WAL, fsync'd) before the 2xx, then pushed to
the online store AND written to the offline store (the feedback table training reads: a parquet folder
locally, BigQuery at scale); each at least once, marked per event, replayed on restart or when the store
is back. Readers of the offline table keep one row per ``event_id``, so a replay adds no duplicate.

The log is also the next training window's source of implicit labels (kept/removed/swapped/...).
An ``event_id`` is an idempotency key: the same body again is a duplicate (acknowledged, not
stored twice); a different body under a logged id is a conflict (refused, the stored row wins).
Each row carries ``flags`` (comma-separated: ``unknown_product``, ``unknown_customer``,
``customer_unchecked``) that ``voicecart.feedback.read_events`` counts for training.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from typing import Any
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from voicecart.schemas import FeedbackEvent

log = logging.getLogger("voicecart.serving.feedback")

FeedbackPush = Callable[[Sequence[FeedbackEvent]], None]
"""Sends events to the online store (Feast push); raises when the store is unreachable."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback_events (
    event_id      TEXT PRIMARY KEY,
    request_id    TEXT NOT NULL,
    customer_id   TEXT NOT NULL,
    product_id    TEXT NOT NULL,
    kind          TEXT NOT NULL,
    substitute_id TEXT,
    timestamp     TEXT NOT NULL,
    received_at   TEXT NOT NULL,
    pushed_at     TEXT,
    flags         TEXT NOT NULL DEFAULT '',
    arm           TEXT,
    model_version TEXT,
    offline_at    TEXT
);
CREATE INDEX IF NOT EXISTS feedback_unpushed ON feedback_events (pushed_at) WHERE pushed_at IS NULL;
"""
_ADDED = {"flags": "TEXT NOT NULL DEFAULT ''", "arm": "TEXT", "model_version": "TEXT", "offline_at": "TEXT"}
"""Columns added since the first logs: a log written before them gets them on open."""
EVENT_COLUMNS = tuple(FeedbackEvent.model_fields)
"""The table holds exactly the FeedbackEvent columns (what ``voicecart.feedback.read_events`` reads),
plus when it arrived and when it reached the online store."""
_SELECT = f"SELECT {', '.join(EVENT_COLUMNS)} FROM feedback_events"


def _event(row: tuple) -> FeedbackEvent:
    return FeedbackEvent.model_validate(dict(zip(EVENT_COLUMNS, row)))


def outside_window(timestamp: datetime, received: datetime, max_age_s: float, max_ahead_s: float) -> str | None:
    """Why ``timestamp`` cannot be a label for an event received at ``received`` (None when it can)."""
    oldest, latest = received - timedelta(seconds=max_age_s), received + timedelta(seconds=max_ahead_s)
    if oldest <= timestamp <= latest:
        return None
    return (f"timestamp: {timestamp.isoformat()} is outside the accepted window "
            f"[{oldest.isoformat(timespec='seconds')}, {latest.isoformat(timespec='seconds')}]")


@dataclass(frozen=True)
class Appended:
    event_id: str
    duplicate: bool
    conflict: tuple[str, ...] = ()
    """For an event_id already logged with a different body: the fields that differ."""


def _naive_utc(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment.astimezone(timezone.utc).replace(tzinfo=None) if moment.tzinfo else moment


def _stored(value: object) -> object:
    return value.isoformat() if isinstance(value, datetime) else value


def _differs(field: str, logged: object, new: object) -> bool:
    if field == "timestamp" and logged is not None and new is not None:
        return datetime.fromisoformat(str(logged)) != new  # the same instant, written with another offset, is equal
    return logged != _stored(new)


class FeedbackLog:
    """An append-only, idempotent (by event_id) event log in one SQLite file in WAL mode.

    ``synchronous=FULL`` makes every commit fsync the WAL, so an event is on disk when
    :meth:`append` returns: a kill -9 after the 2xx loses nothing.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=5000")  # several worker processes may share one log
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(feedback_events)")}
        for name, decl in _ADDED.items():
            if name not in columns:
                self._db.execute(f"ALTER TABLE feedback_events ADD COLUMN {name} {decl}")
        self._db.execute("CREATE INDEX IF NOT EXISTS feedback_offline ON feedback_events (offline_at) "
                         "WHERE offline_at IS NULL")

    def append(self, event: FeedbackEvent, flags: tuple[str, ...] = ()) -> Appended:
        now = datetime.now(timezone.utc).isoformat()
        values = [_stored(getattr(event, c)) for c in EVENT_COLUMNS]
        with self._lock:
            cur = self._db.execute(
                f"INSERT OR IGNORE INTO feedback_events ({', '.join(EVENT_COLUMNS)}, received_at, flags) "
                f"VALUES ({', '.join('?' * (len(EVENT_COLUMNS) + 2))})", (*values, now, ",".join(flags)))
            if cur.rowcount:
                return Appended(event.event_id, duplicate=False)
            logged = self._db.execute(f"{_SELECT} WHERE event_id = ?", (event.event_id,)).fetchone()
        differ = tuple(c for c, old in zip(EVENT_COLUMNS, logged) if _differs(c, old, getattr(event, c)))
        return Appended(event.event_id, duplicate=not differ, conflict=differ)

    def flags(self) -> dict[str, str]:
        """event_id -> its flags (for tests and operators)."""
        with self._lock:
            return dict(self._db.execute("SELECT event_id, flags FROM feedback_events").fetchall())

    def unpushed(self, limit: int = 1000) -> list[FeedbackEvent]:
        with self._lock:
            rows = self._db.execute(f"{_SELECT} WHERE pushed_at IS NULL ORDER BY rowid LIMIT ?", (limit,)).fetchall()
        return [_event(r) for r in rows]

    def mark_pushed(self, event_ids: Sequence[str]) -> None:
        now = datetime.now(timezone.utc).isoformat()
        with self._lock:
            self._db.executemany(
                "UPDATE feedback_events SET pushed_at = ? WHERE event_id = ?", [(now, e) for e in event_ids]
            )

    def unwritten(self, limit: int = 5000):  # noqa: ANN201 - pyarrow.Table of features.offline.FEEDBACK_SCHEMA
        """Events not yet in the offline store, oldest first, as the offline table's rows."""
        import pyarrow as pa

        from voicecart.features.offline import FEEDBACK_SCHEMA

        names = FEEDBACK_SCHEMA.names
        with self._lock:
            rows = self._db.execute(f"SELECT {', '.join(names)} FROM feedback_events WHERE offline_at IS NULL "
                                    "ORDER BY rowid LIMIT ?", (limit,)).fetchall()
        cols = {n: [r[i] for r in rows] for i, n in enumerate(names)}
        for n in ("timestamp", "received_at"):
            cols[n] = [_naive_utc(v) for v in cols[n]]
        return pa.table(cols, schema=FEEDBACK_SCHEMA)

    def mark_written(self, event_ids: Sequence[str]) -> None:
        now = datetime.now(timezone.utc).isoformat()
        with self._lock:
            self._db.executemany("UPDATE feedback_events SET offline_at = ? WHERE event_id = ?",
                                 [(now, e) for e in event_ids])

    def events(self) -> list[FeedbackEvent]:
        """Every logged event in arrival order (the training window reads this)."""
        with self._lock:
            rows = self._db.execute(f"{_SELECT} ORDER BY rowid").fetchall()
        return [_event(r) for r in rows]

    def counts(self) -> dict[str, int]:
        with self._lock:
            total, pending, offline = self._db.execute(
                "SELECT count(*), count(*) FILTER (WHERE pushed_at IS NULL), count(*) FILTER (WHERE offline_at IS NULL) "
                "FROM feedback_events").fetchone()
        return {"total": total, "unpushed": pending, "offline_pending": offline}

    def close(self) -> None:
        with self._lock:
            self._db.close()


class FeedbackIntake:
    """Append first (durable), push later: a background flusher pushes what is unpushed.

    ``push_interval_s`` batches pushes; on start, anything left unpushed by a previous process
    (crash between the 2xx and the push, or store down) is pushed again.
    """

    def __init__(self, log_: FeedbackLog, push: FeedbackPush | None, push_interval_s: float = 0.05,
                 offline: Any = None) -> None:
        self.log = log_
        self._push = push
        self._offline = offline  # features.offline.FeedbackSink: the table training reads
        self._interval = push_interval_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def receive(self, event: FeedbackEvent, flags: tuple[str, ...] = ()) -> Appended:
        appended = self.log.append(event, flags)
        if not appended.duplicate and not appended.conflict:
            self._wake.set()
        return appended

    def flush(self) -> int:
        """Push every unpushed event online and write every unwritten one offline, once; returns how many were
        pushed online (a store that is down keeps its events for the next flush or restart)."""
        self.flush_offline()
        if self._push is None:
            return 0
        pushed = 0
        while batch := self.log.unpushed():
            try:
                self._push(batch)
            except Exception as exc:  # the store is down: keep them for the next flush / restart
                log.warning("feedback push failed, %d events kept for replay: %s", len(batch), type(exc).__name__)
                return pushed
            self.log.mark_pushed([e.event_id for e in batch])
            pushed += len(batch)
        return pushed

    @property
    def offline_name(self) -> str:
        """Where events go offline, for the banner."""
        if self._offline is None:
            return "none"
        return str(getattr(self._offline, "folder", None) or getattr(getattr(self._offline, "engine", None), "qualified", "?"))

    def flush_offline(self) -> int:
        """Write every event not yet in the offline store; how many were written (0 when it is unreachable)."""
        if self._offline is None:
            return 0
        written = 0
        while (batch := self.log.unwritten()).num_rows:
            try:
                self._offline.write(batch)
            except Exception as exc:  # unreachable: the WAL keeps them, the next flush catches up
                log.warning("feedback offline write failed, %d events kept: %s", batch.num_rows, type(exc).__name__)
                return written
            self.log.mark_written(batch.column("event_id").to_pylist())
            written += batch.num_rows
        return written

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="feedback-push", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        replayed = self.flush()  # replay what a previous process left unpushed
        if replayed:
            log.info("replayed %d feedback events left unpushed", replayed)
        while not self._stop.is_set():
            self._wake.wait(timeout=max(self._interval, 1.0))
            self._wake.clear()
            if self._stop.wait(self._interval):
                break
            self.flush()
