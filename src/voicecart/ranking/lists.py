"""Labelled candidate lists from a feature snapshot: the examples the ranker trains and is evaluated on.

A list is one query — "this customer, at this moment, asks for this category" — with its candidate
products, each row labelled +1 (bought / kept / the substitute of a swap), -1 (removed, the answer that
was swapped away) or 0. Purchase lists come from the snapshot's lines (every purchased line is a query
for its product's category); feedback lists from logged events (``voicecart.feedback`` rules). Every
list is featurized from the snapshot rows of its own moment — the customer's history and the product
statistics as of then — exactly as the served engine featurizes a request from the online row.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from voicecart.ranking.catalog import Catalog, ProductStats, ProductVectors
from voicecart.ranking.features import N_FEATURES, CustomerAggregates, History, feature_matrix
from voicecart.schemas.times import epoch_array


@dataclass
class QueryLists:
    """Queries with their candidate rows (rows of list i are offsets[i]:offsets[i+1])."""

    row: np.ndarray  # [L] int64 history row of the list's (customer, moment) within its moment
    moment: np.ndarray  # [L] float64 epoch seconds the list is asked at
    truth: np.ndarray  # [L] int64 the wanted product (-1 for a list of negatives only)
    category: np.ndarray  # [L] int64
    offsets: np.ndarray  # [L+1] int64
    product: np.ndarray  # [R] int64
    label: np.ndarray  # [R] float32 (+1 / -1 / 0)
    weight: np.ndarray  # [L] float32 list weight (feedback rules)
    has_category_history: np.ndarray  # [L] bool
    customer_id: np.ndarray  # [L] object

    def __len__(self) -> int:
        return len(self.row)

    @property
    def row_list(self) -> np.ndarray:
        return np.repeat(np.arange(len(self)), np.diff(self.offsets))

    def take(self, lists: np.ndarray) -> "QueryLists":
        lists = np.sort(lists)
        sizes = np.diff(self.offsets)[lists]
        rows = ranges(self.offsets[lists], sizes)
        return QueryLists(self.row[lists], self.moment[lists], self.truth[lists], self.category[lists],
                          np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64), self.product[rows],
                          self.label[rows], self.weight[lists], self.has_category_history[lists],
                          self.customer_id[lists])

    @classmethod
    def concat(cls, parts: Sequence["QueryLists"]) -> "QueryLists":
        if not parts:
            return cls.empty()
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                     ("row", "moment", "truth", "category")), concat_offsets([p.offsets for p in parts]),
                   *(np.concatenate([getattr(p, f) for p in parts]) for f in
                     ("product", "label", "weight", "has_category_history", "customer_id")))

    @classmethod
    def empty(cls) -> "QueryLists":
        z = np.zeros(0, dtype=np.int64)
        return cls(z, np.zeros(0), z, z, np.zeros(1, dtype=np.int64), z, np.zeros(0, np.float32),
                   np.zeros(0, np.float32), np.zeros(0, bool), np.zeros(0, dtype=object))


def ranges(starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Concatenate arange(s, s+n) for each (s, n) without a Python loop."""
    total = int(sizes.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offs = np.repeat(starts - np.concatenate([[0], np.cumsum(sizes)[:-1]]), sizes)
    return np.arange(total, dtype=np.int64) + offs


def concat_offsets(offsets: Sequence[np.ndarray]) -> np.ndarray:
    out, base = [np.zeros(1, dtype=np.int64)], 0
    for o in offsets:
        out.append(o[1:] + base)
        base += int(o[-1])
    return np.concatenate(out)


@dataclass
class Moment:
    """What is known at one moment: the catalogue with that moment's stats (and the product vectors in
    force), and the history rows of the customers asking then."""

    moment: float
    catalog: Catalog
    history: History
    aggregates: CustomerAggregates
    row_of: dict[str, int]  # customer_id -> history row


class SnapshotIndex:
    """A snapshot split by moment: hands out :class:`Moment` views and each moment's query lines."""

    def __init__(self, snapshot, catalog: Catalog, vectors: dict[float, ProductVectors] | None = None,  # noqa: ANN001
                 use_embedding: bool = False) -> None:
        self.snapshot = snapshot
        self.catalog = catalog
        self.stats = ProductStats.per_moment(snapshot.products, catalog.index, len(catalog))
        self.vectors = dict(sorted((vectors or {}).items()))
        self.use_embedding = use_embedding
        self._customers = _split(snapshot.customers)
        self._pairs = _split(snapshot.pairs)
        self._lines = _split(snapshot.lines, "as_of")

    @property
    def moments(self) -> list[float]:
        """Moments with query lines, oldest first."""
        return sorted(self._lines)

    def lines(self, moment: float) -> pa.Table:
        return self._lines.get(moment, self.snapshot.lines.slice(0, 0))

    def stats_at(self, moment: float) -> ProductStats:
        if moment not in self.stats:
            return ProductStats.empty(len(self.catalog), moment)
        return self.stats[moment]

    def vectors_at(self, moment: float) -> ProductVectors | None:
        """The product vectors of the latest cut at or before ``moment`` (the model's, at serving)."""
        found = None
        for cut, vectors in self.vectors.items():
            if cut <= moment:
                found = vectors
        return found

    def at(self, moment: float) -> Moment:
        catalog = self.catalog.at(self.stats_at(moment)).with_vectors(self.vectors_at(moment))
        customers = self._customers.get(moment, self.snapshot.customers.slice(0, 0))
        pairs = self._pairs.get(moment, self.snapshot.pairs.slice(0, 0))
        # every customer asking at this moment has a row, new customers (no stats yet) included
        ids = sorted(set(self.lines(moment).column("customer_id").to_pylist())
                     | set(customers.column("customer_id").to_pylist()))
        embedding = None
        if self.use_embedding:
            embedding = self.snapshot.embeddings_as_of(ids, np.full(len(ids), moment))
        history = History.from_snapshot(ids, customers, pairs, catalog, embedding)
        return Moment(moment, catalog, history, CustomerAggregates(history, catalog), {c: i for i, c in enumerate(ids)})


def _split(table: pa.Table, column: str = "event_timestamp") -> dict[float, pa.Table]:
    """Rows grouped by moment (epoch seconds)."""
    if table.num_rows == 0:
        return {}
    at = epoch_array(table.column(column))
    order = np.argsort(at, kind="stable")
    table, at = table.take(pa.array(order)), at[order]
    cuts = np.flatnonzero(np.diff(at)) + 1
    bounds = np.concatenate([[0], cuts, [len(at)]])
    return {float(at[lo]): table.slice(lo, hi - lo) for lo, hi in zip(bounds[:-1], bounds[1:])}


def purchase_lists(view: Moment, lines: pa.Table, members: list[np.ndarray], *, min_candidates: int = 2,
                   weight: float = 1.0) -> QueryLists:
    """One list per purchased line whose category has ``min_candidates``+ candidates in ``members``
    (each level-3 category's candidate products, most popular first); the bought product is the
    positive, or a miss (no labelled row) when it is not among the candidates."""
    catalog = view.catalog
    prod = np.asarray([catalog.index.get(p, -1) for p in lines.column("product_id").to_pylist()], dtype=np.int64)
    ids = np.asarray(lines.column("customer_id").to_pylist(), dtype=object)
    row = np.asarray([view.row_of.get(c, -1) for c in ids], dtype=np.int64)
    sizes_all = np.asarray([len(m) for m in members], dtype=np.int64)
    keep = (prod >= 0) & (row >= 0)
    cat = np.where(keep, catalog.cat_of[np.maximum(prod, 0)], 0)
    keep &= sizes_all[cat] >= min_candidates
    prod, row, cat, ids = prod[keep], row[keep], cat[keep], ids[keep]
    starts = np.concatenate([[0], np.cumsum(sizes_all)])
    flat = np.concatenate(members) if members else np.zeros(0, dtype=np.int64)
    sizes = sizes_all[cat]
    product = flat[ranges(starts[cat], sizes)].astype(np.int64)
    label = (product == np.repeat(prod, sizes)).astype(np.float32)
    cat_count, _ = view.aggregates.category(row, cat)
    return QueryLists(row, np.full(len(row), view.moment), prod, cat.astype(np.int64),
                      np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64), product, label,
                      np.full(len(row), weight, dtype=np.float32), cat_count > 0, ids)


def feedback_lists(view: Moment, labels: Sequence, members: list[np.ndarray]) -> tuple[QueryLists, dict[str, int]]:  # noqa: ANN001
    """Lists from logged feedback labels (``voicecart.feedback.Label``) of one moment, one per request.

    The query is the answered product's category; the candidates that category's ``members``; each
    labelled row carries its rule's label, and the list its largest rule weight. Labels naming a
    customer without history here or a product outside the catalogue are counted by reason and skipped.
    """
    catalog = view.catalog
    skipped: dict[str, int] = {}
    by_request: dict[str, list] = {}
    for lab in labels:
        reason = ("unknown_product" if lab.product_id not in catalog.index else
                  "unknown_customer" if lab.customer_id not in view.row_of else None)
        if reason:
            skipped[reason] = skipped.get(reason, 0) + 1
            continue
        by_request.setdefault(lab.request_id, []).append(lab)
    parts = []
    for labs in by_request.values():
        anchor = next((lb for lb in labs if lb.source != "swapped_substitute"), labs[0])
        cat = int(catalog.cat_of[catalog.index[anchor.product_id]])
        cands = members[cat]
        row_label = np.zeros(len(cands), dtype=np.float32)
        for lb in labs:
            row_label[cands == catalog.index[lb.product_id]] = lb.label
        if not row_label.any():
            skipped["not_a_candidate"] = skipped.get("not_a_candidate", 0) + len(labs)
            continue
        pos = np.flatnonzero(row_label > 0)
        parts.append((view.row_of[anchor.customer_id], int(cands[pos[0]]) if len(pos) else -1, cat,
                      max(lb.weight for lb in labs), cands, row_label, anchor.customer_id))
    if not parts:
        return QueryLists.empty(), skipped
    row = np.asarray([p[0] for p in parts], dtype=np.int64)
    cat = np.asarray([p[2] for p in parts], dtype=np.int64)
    cat_count, _ = view.aggregates.category(row, cat)
    return QueryLists(row, np.full(len(parts), view.moment), np.asarray([p[1] for p in parts], dtype=np.int64), cat,
                      np.concatenate([[0], np.cumsum([len(p[4]) for p in parts])]).astype(np.int64),
                      np.concatenate([p[4] for p in parts]).astype(np.int64), np.concatenate([p[5] for p in parts]),
                      np.asarray([p[3] for p in parts], dtype=np.float32), cat_count > 0,
                      np.asarray([p[6] for p in parts], dtype=object)), skipped


def list_features(view: Moment, queries: QueryLists, *, use_embedding: bool = True,
                  chunk_rows: int = 2_000_000) -> np.ndarray:
    """Features [R, F] of every candidate row of one moment's lists, in chunks of whole lists."""
    out, start, n = [], 0, len(queries)
    while start < n:
        stop = int(np.searchsorted(queries.offsets, queries.offsets[start] + chunk_rows, side="right")) - 1
        stop = min(max(stop, start + 1), n)
        lo, hi = queries.offsets[start], queries.offsets[stop]
        rl = np.repeat(np.arange(start, stop), np.diff(queries.offsets[start:stop + 1]))
        out.append(feature_matrix(view.catalog, view.history, view.aggregates, queries.row[rl], queries.product[lo:hi],
                                  queries.offsets[start:stop + 1] - lo, queries.moment[rl], None,
                                  np.ones(hi - lo, dtype=np.float32), use_embedding=use_embedding))
        start = stop
    return np.concatenate(out) if out else np.zeros((0, N_FEATURES), np.float32)


def walk(index: SnapshotIndex, start: float, end: float, *, candidates_at: float | None = None
         ) -> Iterator[tuple[Moment, QueryLists]]:
    """Each moment in [start, end) with its purchase lists; candidates are the categories' products sold
    before the list's own moment, or before ``candidates_at`` for every list (the frozen candidate set)."""
    frozen = None if candidates_at is None else index.catalog.at(index.stats_at(candidates_at)).sold_members()
    for moment in index.moments:
        if not start <= moment < end:
            continue
        view = index.at(moment)
        members = frozen if frozen is not None else view.catalog.sold_members()
        yield view, purchase_lists(view, index.lines(moment), members)
