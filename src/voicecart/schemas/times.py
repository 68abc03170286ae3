"""Time, in one place. From the canonical tables onward a moment is a UTC ``datetime`` at the edges
(tables, settings, the API) and epoch seconds (``float``, UTC) in arrays and feature rows; this module
is the only one that converts between them. Naive datetimes are UTC (as canonical timestamps are).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np

DAY_S = 86_400.0
"""Seconds in a day: features count days as ``seconds / DAY_S``."""


def utc(moment: datetime) -> datetime:
    """The same moment, timezone-aware in UTC (naive means UTC)."""
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def naive_utc(moment: datetime) -> datetime:
    """The same moment as a naive UTC datetime (the canonical tables' ``timestamp``)."""
    return utc(moment).replace(tzinfo=None)


def epoch_s(moment: datetime | np.datetime64 | float) -> float:
    """Epoch seconds of a moment (a float passes through: it already is one)."""
    if isinstance(moment, datetime):
        return utc(moment).timestamp()
    if isinstance(moment, np.datetime64):
        return float(moment.astype("datetime64[us]").astype(np.int64)) / 1e6
    return float(moment)


def from_epoch(seconds: float) -> datetime:
    """The UTC datetime of epoch seconds."""
    return datetime.fromtimestamp(float(seconds), tz=timezone.utc)


def epoch_array(values) -> np.ndarray:  # noqa: ANN001 - Arrow/numpy timestamps
    """Epoch seconds (float64) of an Arrow or numpy timestamp array."""
    if hasattr(values, "to_numpy"):
        values = values.to_numpy(zero_copy_only=False)
    return np.asarray(values).astype("datetime64[us]").astype(np.int64) / 1e6


def parse_moment(text: str) -> datetime:
    """``2001-02-01`` or an ISO datetime, as an aware UTC datetime; ValueError names the text."""
    try:
        return utc(datetime.fromisoformat(text))
    except ValueError:
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD) or ISO datetime") from None


def midnight(moment: datetime) -> datetime:
    """The start of the moment's UTC day (aware)."""
    m = utc(moment)
    return m.replace(hour=0, minute=0, second=0, microsecond=0)


def days_between(start: datetime, end: datetime) -> list[datetime]:
    """The midnights ``start, start + 1 day, ...`` before ``end`` (both aware UTC)."""
    out, day = [], midnight(start)
    end = utc(end)
    while day < end:
        out.append(day)
        day += timedelta(days=1)
    return out
