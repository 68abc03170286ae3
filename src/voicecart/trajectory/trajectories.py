"""Shopping trajectories: per customer, the time-ordered category events read from the canonical tables.

A *trajectory* is what C-STAR sees of a customer: every distinct subclass of every basket, in time
order, with its whole category path (department > aisle > subclass), the days since the previous
event, whether it opens a basket, and how long before the cut-off it happened. Offline and online use
the same two functions: :func:`load_events` turns canonical tables (or the rows of one request's
history) into :class:`Events`, and :meth:`Events.window` cuts the window the model reads.

Ids: every level has its own vocabulary ``0 = PAD, 1 = UNK, 2 = MASK, 3.. = known codes``. A subclass
unseen in pre-training becomes UNK at level 3 but keeps its known aisle and department, so the model
still uses the parent levels.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

PAD, UNK, MASK = 0, 1, 2
N_SPECIAL = 3
LEVELS = ("category_l1", "category_l2", "category_l3")

# time-gap and recency buckets (days): 0 | <1 | 1 | 2-3 | 4-7 | 8-15 | 16-31 | 32-63 | 64+, plus 'first event'
N_TIME_BUCKETS = 10
FIRST_EVENT_BUCKET = N_TIME_BUCKETS - 1
N_SIZE_BUCKETS = 8  # basket size (distinct subclasses): 1 | 2 | 3-4 | 5-8 | 9-16 | 17-32 | 33-64 | 65+


def time_bucket(days: np.ndarray) -> np.ndarray:
    """Log2 buckets of a non-negative number of days (0 → bucket 0, same day → 1, then doubling)."""
    d = np.maximum(np.asarray(days, dtype=np.float64), 0.0)
    b = np.where(d <= 0, 0, np.where(d < 1, 1, 2 + np.floor(np.log2(np.maximum(d, 1.0)))))
    return np.minimum(b, FIRST_EVENT_BUCKET - 1).astype(np.int64)


@dataclass
class CategoryVocab:
    """Codes of each category level seen in pre-training, and each code's parent (for the tree)."""

    codes: tuple[list[str], list[str], list[str]]
    parent_l2: list[str]
    """parent (l1 code) of each l2 code, aligned with ``codes[1]``."""
    parent_l3: list[str]
    """parent (l2 code) of each l3 code, aligned with ``codes[2]``."""
    _index: list[dict[str, int]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self._index = [{c: i + N_SPECIAL for i, c in enumerate(level)} for level in self.codes]

    @property
    def sizes(self) -> tuple[int, int, int]:
        """Vocabulary size of each level, specials included."""
        return tuple(len(level) + N_SPECIAL for level in self.codes)  # type: ignore[return-value]

    @classmethod
    def from_paths(cls, l1: np.ndarray, l2: np.ndarray, l3: np.ndarray) -> "CategoryVocab":
        """Build from category paths (one row per product or per event)."""
        paths = sorted(set(zip(map(str, l1), map(str, l2), map(str, l3))))
        c1 = sorted({p[0] for p in paths})
        l2_parent = {p[1]: p[0] for p in paths}
        l3_parent = {p[2]: p[1] for p in paths}
        c2, c3 = sorted(l2_parent), sorted(l3_parent)
        return cls((c1, c2, c3), [l2_parent[c] for c in c2], [l3_parent[c] for c in c3])

    def encode(self, level: int, codes: np.ndarray) -> np.ndarray:
        """Ids of codes at one level (0-based level); unknown codes become UNK."""
        index = self._index[level]
        return np.fromiter((index.get(c, UNK) for c in codes), dtype=np.int64, count=len(codes))

    def tree_parents(self) -> tuple[np.ndarray, np.ndarray]:
        """Parent id (in the level above) of every l2 id and every l3 id; specials map to UNK."""
        p2 = np.full(self.sizes[1], UNK, np.int64)
        p2[N_SPECIAL:] = self.encode(0, np.array(self.parent_l2, dtype=object))
        p3 = np.full(self.sizes[2], UNK, np.int64)
        p3[N_SPECIAL:] = self.encode(1, np.array(self.parent_l3, dtype=object))
        return p2, p3

    def to_json(self) -> dict[str, Any]:
        return {"codes": list(self.codes), "parent_l2": self.parent_l2, "parent_l3": self.parent_l3}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "CategoryVocab":
        return cls(tuple(data["codes"]), data["parent_l2"], data["parent_l3"])  # type: ignore[arg-type]

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_json()))

    @classmethod
    def load(cls, path: Path) -> "CategoryVocab":
        return cls.from_json(json.loads(Path(path).read_text()))


@dataclass
class Events:
    """Category events of many customers, flat and grouped by customer (CSR layout).

    Customer ``i``'s events are rows ``offsets[i]:offsets[i+1]``, sorted by time then basket.
    Category columns hold *codes* (strings); :meth:`encode` turns them into ids with a vocabulary.
    """

    customer_ids: np.ndarray  # [C] str
    offsets: np.ndarray  # [C+1] int64
    day: np.ndarray  # [E] float64, days since 1970-01-01 of the basket
    basket: np.ndarray  # [E] int64, basket number within the customer (0, 1, ...)
    l1: np.ndarray  # [E] str
    l2: np.ndarray  # [E] str
    l3: np.ndarray  # [E] str

    def __len__(self) -> int:
        return len(self.customer_ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def select(self, rows: np.ndarray) -> "Events":
        """The events of customers ``rows`` (an index array), in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        starts, ends = self.offsets[rows], self.offsets[rows + 1]
        lengths = ends - starts
        take = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends)]) if len(rows) else np.zeros(0, np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        return Events(self.customer_ids[rows], offsets, self.day[take], self.basket[take],
                      self.l1[take], self.l2[take], self.l3[take])

    def window(self, as_of: datetime | float, *, days: int | None = None, max_events: int | None = None,
               keep_empty: bool = True) -> "Events":
        """Events strictly before ``as_of``, at most ``days`` days before it, the last ``max_events``.

        Customers whose window is empty keep a row with no events (``keep_empty``) so ids stay aligned;
        the model embeds them as "no history".
        """
        cut = as_of if isinstance(as_of, float) else _days(np.datetime64(as_of, "us"))
        keep = self.day < cut
        if days is not None:
            keep &= self.day >= cut - days
        owner = np.repeat(np.arange(len(self)), self.lengths)
        idx = np.flatnonzero(keep)
        if max_events is not None and idx.size:
            # rank from the end within each customer: keep the last max_events
            o = owner[idx]
            last_pos = np.zeros(len(self), np.int64)
            np.maximum.at(last_pos, o, np.arange(idx.size))
            from_end = last_pos[o] - np.arange(idx.size)
            idx = idx[from_end < max_events]
        counts = np.bincount(owner[idx], minlength=len(self))
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        out = Events(self.customer_ids, offsets, self.day[idx], self.basket[idx], self.l1[idx], self.l2[idx],
                     self.l3[idx])
        if not keep_empty:
            out = out.select(np.flatnonzero(counts > 0))
        return out

    def including(self, customer_ids: np.ndarray) -> "Events":
        """These events plus an empty trajectory for every id of ``customer_ids`` not present yet
        (customers with no purchase still get a row, and the "no history" embedding)."""
        known = set(map(str, self.customer_ids))
        missing = np.array([c for c in map(str, customer_ids) if c not in known], dtype=object)
        if not len(missing):
            return self
        offsets = np.concatenate([self.offsets, np.full(len(missing), self.offsets[-1], np.int64)])
        return Events(np.concatenate([self.customer_ids.astype(object), missing]), offsets, self.day, self.basket,
                      self.l1, self.l2, self.l3)

    def encode(self, vocab: CategoryVocab) -> "EncodedEvents":
        return EncodedEvents(self.customer_ids, self.offsets, self.day, self.basket,
                             vocab.encode(0, self.l1), vocab.encode(1, self.l2), vocab.encode(2, self.l3))


@dataclass
class EncodedEvents:
    """:class:`Events` with category ids instead of codes: what batches are cut from."""

    customer_ids: np.ndarray
    offsets: np.ndarray
    day: np.ndarray
    basket: np.ndarray
    l1: np.ndarray
    l2: np.ndarray
    l3: np.ndarray

    def __len__(self) -> int:
        return len(self.customer_ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


def _days(ts: np.ndarray) -> np.ndarray | float:
    return ts.astype("datetime64[us]").astype(np.int64) / 86_400e6


_EVENTS_SQL = """
SELECT o.customer_id, o.timestamp, o.order_id, p.category_l1, p.category_l2, p.category_l3
FROM orders o JOIN order_lines l USING (order_id) JOIN products p USING (product_id)
{where}
GROUP BY ALL
ORDER BY o.customer_id, o.timestamp, o.order_id, p.category_l3
"""


def load_events(source: Any, *, until: datetime | None = None, customers: list[str] | None = None) -> Events:
    """Category events from canonical tables: a DuckDB connection with the canonical views (``connect``),
    or a :class:`~voicecart.data.CanonicalTables`. One event per distinct (basket, subclass).

    ``until`` (exclusive) drops later orders; ``customers`` restricts to those ids (online: one id).
    """
    import duckdb

    from voicecart.data.store import duckdb_connect

    if isinstance(source, duckdb.DuckDBPyConnection):
        con = source
    else:
        con = duckdb_connect()
        for name in ("orders", "order_lines", "products"):
            con.register(name, source[name])
    clauses, params = [], []
    if until is not None:
        clauses.append("o.timestamp < ?")
        params.append(until)
    if customers is not None:
        clauses.append("o.customer_id IN (SELECT unnest(?::VARCHAR[]))")
        params.append(list(customers))
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    table = con.sql(_EVENTS_SQL.format(where=where), params=params or None).to_arrow_table()
    return events_from_rows(table)


def events_from_rows(table: pa.Table) -> Events:
    """Group rows (customer_id, timestamp, order_id, category_l1..l3), sorted by customer then time, into
    :class:`Events`. This is the one place rows become trajectories, offline and online."""
    cust = np.asarray(table.column("customer_id").to_numpy(zero_copy_only=False), dtype=object)
    ts = table.column("timestamp").to_numpy(zero_copy_only=False).astype("datetime64[us]")
    order = np.asarray(table.column("order_id").to_numpy(zero_copy_only=False), dtype=object)
    if len(cust):
        new_cust = np.concatenate([[True], cust[1:] != cust[:-1]])
        if len(set(cust[new_cust])) != int(new_cust.sum()):
            raise ValueError("event rows must be sorted by customer_id (column 'customer_id')")
        new_basket = new_cust | np.concatenate([[True], order[1:] != order[:-1]])
        starts = np.flatnonzero(new_cust)
        basket_cum = np.cumsum(new_basket) - 1
        basket = basket_cum - basket_cum[np.repeat(starts, np.diff(np.append(starts, len(cust))))]
    else:
        starts, basket = np.zeros(0, np.int64), np.zeros(0, np.int64)
    offsets = np.append(starts, len(cust)).astype(np.int64)
    col = {lv: np.asarray(table.column(lv).to_numpy(zero_copy_only=False), dtype=object) for lv in LEVELS}
    return Events(cust[starts] if len(cust) else np.zeros(0, dtype=object), offsets, _days(ts),
                  basket.astype(np.int64), col["category_l1"], col["category_l2"], col["category_l3"])


def first_basket_after(events: Events, start: datetime, end: datetime | None = None) -> dict[str, set[str]]:
    """Subclasses of each customer's first basket in ``[start, end)``: the trajectory-completion target."""
    lo = _days(np.datetime64(start, "us"))
    hi = np.inf if end is None else _days(np.datetime64(end, "us"))
    out: dict[str, set[str]] = {}
    for i, cid in enumerate(events.customer_ids):
        s, e = events.offsets[i], events.offsets[i + 1]
        day = events.day[s:e]
        inside = np.flatnonzero((day >= lo) & (day < hi))
        if inside.size:
            b = events.basket[s + inside[0]]
            out[str(cid)] = set(events.l3[s:e][events.basket[s:e] == b])
    return out


def size_bucket(n: np.ndarray) -> np.ndarray:
    """Log2 buckets of a basket's number of subclasses: 1 | 2 | 3-4 | 5-8 | ... | 65+ (0..7)."""
    n = np.maximum(np.asarray(n, dtype=np.float64), 1.0)
    return np.minimum(np.ceil(np.log2(n)), N_SIZE_BUCKETS - 1).astype(np.int64)


def weekday(day: np.ndarray) -> np.ndarray:
    """Day of the week of a day number (days since 1970-01-01, a Thursday): 0 = Monday .. 6 = Sunday."""
    return ((np.floor(np.asarray(day, dtype=np.float64)).astype(np.int64) + 3) % 7).astype(np.int64)


def batch_arrays(events: EncodedEvents, rows: np.ndarray, as_of_day: float | np.ndarray, max_events: int,
                 rng: np.random.Generator | None = None, crop: float | None = None,
                 ends: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Pad the trajectories of customers ``rows`` into [B, T] arrays the model reads.

    ``crop`` (with ``rng``) keeps a random contiguous span of at least that share of each trajectory:
    the "second window" of the consistency objective. ``ends`` (absolute event indices, exclusive) cuts
    each trajectory there first: the prefix before a basket, for next-basket prediction. Returns int64
    arrays l1, l2, l3, gap (bucket of days since the previous event), boundary (1 where a basket
    starts), recency (bucket of days before ``as_of_day``), pos (index from the end), dow (weekday of the
    basket), size (bucket of the basket's number of subclasses) and bool ``valid``; T >= 1 even if every
    window is empty.
    """
    rows = np.asarray(rows, dtype=np.int64)
    B = len(rows)
    spans = []
    for i, r in enumerate(rows):
        s, e = int(events.offsets[r]), int(events.offsets[r + 1])
        if ends is not None:
            e = min(e, int(ends[i]))
        s = max(s, e - max_events)
        if crop is not None and rng is not None and e - s > 1:
            n = e - s
            keep = int(rng.integers(max(1, int(np.ceil(crop * n))), n + 1))
            s = s + int(rng.integers(0, n - keep + 1))
            e = s + keep
        spans.append((s, e))
    T = max(1, max((e - s for s, e in spans), default=1))
    out = {k: np.zeros((B, T), np.int64) for k in ("l1", "l2", "l3", "gap", "boundary", "recency", "pos", "dow",
                                                    "size")}
    out["valid"] = np.zeros((B, T), bool)
    as_of = np.broadcast_to(np.asarray(as_of_day, dtype=np.float64), (B,))
    for i, (s, e) in enumerate(spans):
        n = e - s
        if n == 0:
            continue
        day, basket = events.day[s:e], events.basket[s:e]
        out["l1"][i, :n], out["l2"][i, :n], out["l3"][i, :n] = events.l1[s:e], events.l2[s:e], events.l3[s:e]
        gap = time_bucket(np.diff(day, prepend=day[0]))
        gap[0] = FIRST_EVENT_BUCKET
        out["gap"][i, :n] = gap
        out["boundary"][i, :n] = np.diff(basket, prepend=-1) != 0
        out["recency"][i, :n] = time_bucket(as_of[i] - day)
        out["pos"][i, :n] = np.arange(n - 1, -1, -1)
        out["dow"][i, :n] = weekday(day)
        # sizes over the whole trajectory, so a basket cut by the window's edge keeps its true size
        r = rows[i]
        whole = events.basket[events.offsets[r]:events.offsets[r + 1]]
        out["size"][i, :n] = size_bucket(np.bincount(whole)[basket])
        out["valid"][i, :n] = True
    return out


def as_day(ts: datetime) -> float:
    """Days since 1970-01-01 (the time axis of :class:`Events`)."""
    return float(_days(np.datetime64(ts, "us")))
