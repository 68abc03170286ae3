"""Reading logged feedback events and deriving implicit events from purchase data.

The serving intake writes :class:`~voicecart.schemas.FeedbackEvent` rows to a parquet file
(or a folder of them) or a SQLite table ``feedback_events`` with exactly the schema's columns.
Bad rows are reported by row number and skipped, never silently coerced.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import timezone
from pathlib import Path

from pydantic import ValidationError

from voicecart.schemas import FeedbackEvent

COLUMNS = tuple(FeedbackEvent.model_fields)
OPTIONAL = tuple(name for name, f in FeedbackEvent.model_fields.items() if not f.is_required())


class FeedbackLogError(ValueError):
    """A feedback log that cannot be read (missing file, missing columns)."""


@dataclass
class ReadResult:
    events: list[FeedbackEvent]
    rejected: list[str]  # "file:row: reason"
    flagged: dict[str, int] = field(default_factory=dict)
    """Events the serving intake flagged (unknown_product, unknown_customer, ...): flag -> count."""


def read_events(path: str | Path) -> ReadResult:
    """Read a parquet file/folder or SQLite database of feedback events."""
    path = Path(path)
    if not path.exists():
        raise FeedbackLogError(f"feedback log {path} does not exist")
    if path.is_dir():
        files = sorted(path.glob("*.parquet"))
        results = [read_events(f) for f in files]
        flagged: dict[str, int] = {}
        for r in results:
            for k, v in r.flagged.items():
                flagged[k] = flagged.get(k, 0) + v
        return ReadResult([e for r in results for e in r.events], [x for r in results for x in r.rejected], flagged)
    if path.suffix in (".db", ".sqlite", ".sqlite3"):
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        have = {row[1] for row in con.execute("PRAGMA table_info(feedback_events)")}
        columns = [c for c in COLUMNS if c in have or c not in OPTIONAL]  # a log from before arm/model_version
        try:
            cur = con.execute(f"SELECT {', '.join(columns)} FROM feedback_events")
        except sqlite3.Error as exc:
            raise FeedbackLogError(f"{path}: cannot read table feedback_events ({exc})") from None
        rows = [dict(zip(columns, r)) for r in cur.fetchall()]
        flagged = _flag_counts(con)
        con.close()
    else:
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception as exc:  # noqa: BLE001
            raise FeedbackLogError(f"{path}: not a readable parquet file ({exc})") from None
        return read_table(table, path.name)
    return _validated(rows, path.name, flagged)


def read_table(table, name: str = "feedback table") -> ReadResult:  # noqa: ANN001 - pyarrow.Table
    """Events from an Arrow table of the offline store's feedback (``features.offline.FEEDBACK_SCHEMA``, or
    the schema's own columns); naive timestamps there are UTC. Its ``flags`` column is counted."""
    missing = [c for c in COLUMNS if c not in table.column_names and c not in OPTIONAL]
    if missing:
        raise FeedbackLogError(f"{name}: missing column(s) {', '.join(missing)}")
    rows = table.to_pylist()
    for row in rows:
        ts = row.get("timestamp")
        if hasattr(ts, "tzinfo") and ts.tzinfo is None:
            row["timestamp"] = ts.replace(tzinfo=timezone.utc)
    flagged: dict[str, int] = {}
    for row in rows:
        for flag in filter(None, (row.get("flags") or "").split(",")):
            flagged[flag] = flagged.get(flag, 0) + 1
    return _validated(rows, name, flagged)


def _validated(rows: list[dict], name: str, flagged: dict[str, int]) -> ReadResult:
    events, rejected = [], []
    for i, row in enumerate(rows):
        try:
            events.append(FeedbackEvent.model_validate({k: row.get(k) for k in COLUMNS if row.get(k) is not None
                                                        or k not in OPTIONAL}))
        except ValidationError as exc:
            field = ".".join(str(p) for p in exc.errors()[0]["loc"])
            rejected.append(f"{name}:{i}: {field}: {exc.errors()[0]['msg']}")
    return ReadResult(events, rejected, flagged)


def _flag_counts(con: sqlite3.Connection) -> dict[str, int]:
    if "flags" not in {row[1] for row in con.execute("PRAGMA table_info(feedback_events)")}:
        return {}
    counts: dict[str, int] = {}
    for (flags,) in con.execute("SELECT flags FROM feedback_events WHERE flags != ''"):
        for flag in flags.split(","):
            counts[flag] = counts.get(flag, 0) + 1
    return counts


def write_events(events: list[FeedbackEvent], path: str | Path) -> Path:
    """Write events as parquet (the format :func:`read_events` reads); used by tests and tools."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist([e.model_dump() for e in events]), path)
    return path


def derive_purchase_events(lines) -> list[FeedbackEvent]:  # noqa: ANN001 - pyarrow.Table
    """Implicit ``bought`` events from purchased lines (customer_id, timestamp, product_id; e.g. a snapshot's
    ``lines`` or ``voicecart.features.snapshot.window_lines``): the offline labels.

    Every purchased line is an answer the customer would have kept and bought; the request id ties it to
    its (customer, day, product) query.
    """
    out = []
    for row in lines.select(["customer_id", "timestamp", "product_id"]).to_pylist():
        ts = row["timestamp"] if row["timestamp"].tzinfo else row["timestamp"].replace(tzinfo=timezone.utc)
        rid = f"{row['customer_id']}-{ts:%Y%m%d}-{row['product_id']}"
        out.append(FeedbackEvent(event_id=f"bought-{rid}", request_id=rid, customer_id=row["customer_id"],
                                 product_id=row["product_id"], kind="bought", timestamp=ts))
    return out
