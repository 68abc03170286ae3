"""Personal features per candidate: THE one feature code, used offline (training, evaluation) and
online (serving). Both read the same snapshot rows — the customer's (customer, product) history,
order statistics and embedding as of a moment, and every product's statistics at that moment — and
go through :func:`feature_matrix`. Offline, :class:`History` holds many snapshot rows (one per
(customer, moment) of the queries); online it holds the ONE profile row the engine read, built by
the same constructor, so the two cannot drift (a test builds both and compares them).

Rows are (history row, candidate) pairs grouped into lists (one list = one request); features that
compare a candidate to the others of its list ("share of the list's popularity") use list offsets.
Times are epoch seconds (``voicecart.schemas.times``); durations are days.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from voicecart.ranking.catalog import Candidates, Catalog, ProductStats
from voicecart.schemas import CustomerProfile
from voicecart.schemas.times import DAY_S

FEATURE_NAMES: tuple[str, ...] = (
    "log_count",  # log1p(orders of this customer containing the product)
    "bought",  # 1 if ever bought
    "recency",  # exp(-days since last purchase / 30), 0 if never
    "log_days_since",  # log1p(days since last purchase), log1p(365) if never
    "share_in_category",  # product count / customer's count in the product's category
    "log_category_count",  # log1p(customer's orders in the category)
    "has_category_history",
    "due_ratio",  # days since last purchase / customer's usual interval for it (clipped)
    "purchase_rate",  # product count / customer's order count
    "count_vs_list_max",  # product count / max count over the list
    "log_popularity",
    "popularity_share",  # popularity / list popularity
    "popularity_rank",  # rank in list by popularity / list size (0 = most popular)
    "log_popularity_recent",
    "recent_share",  # recent popularity / list recent popularity
    "trend",  # recent_share - popularity_share
    "decayed_share",  # time-decayed popularity (half-life 30 days) / list total
    "log_buyers",
    "buyer_share",  # buyers / list buyers
    "rel_price",  # log price vs category mean
    "price_vs_customer",  # rel_price - customer's mean rel_price over history
    "price_vs_customer_category",  # rel_price - customer's mean rel_price in the category
    "text_score",
    "category_match",
    "collab",  # cosine(customer history vector, product vector)
    "collab_vs_list",  # collab - list mean collab
    "log_list_size",
    "log_product_age",  # log1p(days since first sale)
    "log_order_count",
    "log_days_since_last_order",
    "embedding_score",  # customer embedding . product embedding (0 without an embedding)
    "has_embedding",
    # taste that transfers across categories (voicecart.ranking.taste; 0 where brand / size are unknown)
    "private_label",  # 1 if the product is the store's own brand
    "private_match",  # (private ? 1 : -1) * (2 * customer's private-label share - 1)
    "rel_size",  # product's size as a z-score among its category's sizes
    "size_vs_customer",  # rel_size - customer's mean rel_size over history (0 without sized history)
    "size_distance",  # |size_vs_customer|
    "price_distance",  # |price_vs_customer|
)
N_FEATURES = len(FEATURE_NAMES)
_NEVER_DAYS = 365.0


@dataclass
class History:
    """Snapshot rows of customers as of moments: row ``u`` is one (customer, moment).

    ``pair_key = row * n_products + product`` (sorted) with ``pair_count`` (orders containing the
    product) and ``pair_last`` (epoch seconds of the last one); per row the order statistics and,
    when known, the C-STAR embedding.
    """

    n_products: int
    pair_key: np.ndarray  # [K] int64 sorted
    pair_count: np.ndarray  # [K] float32
    pair_last: np.ndarray  # [K] float64 epoch s
    order_count: np.ndarray  # [U] float32
    mean_interval: np.ndarray  # [U] float32 days between orders (nan when < 2 orders)
    last_order: np.ndarray  # [U] float64 epoch s (nan when none)
    embedding: np.ndarray | None = None  # [U, E] float32

    @classmethod
    def from_pairs(cls, n_products: int, row: np.ndarray, product: np.ndarray, count: np.ndarray, last: np.ndarray,
                   order_count: np.ndarray, mean_interval: np.ndarray, last_order: np.ndarray,
                   embedding: np.ndarray | None = None) -> "History":
        """THE constructor: both the offline rows and the one online row come through here."""
        key = row.astype(np.int64) * n_products + product.astype(np.int64)
        order = np.argsort(key, kind="stable")
        return cls(n_products, key[order], np.asarray(count, np.float32)[order],
                   np.asarray(last, np.float64)[order], np.asarray(order_count, np.float32),
                   np.asarray(mean_interval, np.float32), np.asarray(last_order, np.float64), embedding)

    @classmethod
    def from_snapshot(cls, customer_ids: list[str], customers: pa.Table, pairs: pa.Table, catalog: Catalog,
                      embedding: np.ndarray | None = None) -> "History":
        """Rows = ``customer_ids`` as of ONE moment: their ``customer_stats`` and ``customer_product`` rows of
        that moment (a customer without any, new then, gets an empty row). Products unknown to the catalogue
        are dropped."""
        lookup = {c: i for i, c in enumerate(customer_ids)}
        n = len(customer_ids)
        stats_row = np.asarray([lookup.get(c, -1) for c in customers.column("customer_id").to_pylist()], dtype=np.int64)
        has = stats_row >= 0

        def per_row(column: str, fill: float) -> np.ndarray:
            out = np.full(n, fill)
            values = np.asarray([np.nan if v is None else v for v in customers.column(column).to_pylist()], np.float64)
            out[stats_row[has]] = values[has]
            return out

        pair_rows = np.asarray([lookup.get(c, -1) for c in pairs.column("customer_id").to_pylist()], dtype=np.int64)
        prod = np.asarray([catalog.index.get(p, -1) for p in pairs.column("product_id").to_pylist()], dtype=np.int64)
        keep = (pair_rows >= 0) & (prod >= 0)
        return cls.from_pairs(
            len(catalog), pair_rows[keep], prod[keep],
            pairs.column("purchase_count").to_numpy(zero_copy_only=False)[keep],
            pairs.column("last_purchase_ts").to_numpy(zero_copy_only=False)[keep],
            per_row("order_count", 0.0), per_row("mean_days_between_orders", np.nan), per_row("last_order_ts", np.nan),
            embedding)

    @classmethod
    def from_profile(cls, profile: CustomerProfile | None, catalog: Catalog) -> "History":
        """A one-row history (row 0) from the online profile row; no profile is an empty history."""
        if profile is None:
            empty = np.zeros(0)
            return cls.from_pairs(len(catalog), empty, empty, empty, empty, np.zeros(1), np.full(1, np.nan),
                                  np.full(1, np.nan))
        prod = np.asarray([catalog.index.get(p, -1) for p in profile.product_ids], dtype=np.int64)
        keep = prod >= 0
        mean_int, last_order = profile.mean_days_between_orders, profile.last_order_ts
        emb = None if profile.embedding is None else np.asarray([profile.embedding], dtype=np.float32)
        return cls.from_pairs(len(catalog), np.zeros(int(keep.sum())), prod[keep],
                              np.asarray(profile.product_counts, np.float64)[keep] if keep.size else np.zeros(0),
                              np.asarray(profile.product_last_ts, np.float64)[keep] if keep.size else np.zeros(0),
                              np.asarray([profile.order_count]), np.asarray([np.nan if mean_int is None else mean_int]),
                              np.asarray([np.nan if last_order is None else last_order]), emb)

    def lookup(self, row: np.ndarray, product: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(count, last purchase) per (row, product); (0, -inf) where never bought."""
        key = row.astype(np.int64) * self.n_products + product.astype(np.int64)
        if not len(self.pair_key):
            return np.zeros(len(key), np.float32), np.full(len(key), -np.inf)
        pos = np.minimum(np.searchsorted(self.pair_key, key), len(self.pair_key) - 1)
        found = self.pair_key[pos] == key
        return (np.where(found, self.pair_count[pos], 0).astype(np.float32),
                np.where(found, self.pair_last[pos], -np.inf))

    def rows(self) -> np.ndarray:
        """[K] the row of each pair."""
        return self.pair_key // self.n_products

    def products(self) -> np.ndarray:
        return self.pair_key % self.n_products


def _fill_nan(x: np.ndarray, value: float = 0.0) -> np.ndarray:
    """``x`` with NaN replaced (np.nan_to_num without its inf handling, which these columns never need and
    whose Python-level wrapper costs more than the arithmetic on a request's ~100 rows)."""
    return np.where(np.isnan(x), value, x)


def _segment_sum(x: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per-row sum over the row's list (offsets [L+1], rows contiguous per list)."""
    if len(offsets) == 2:  # one list (every served request): one sum, broadcast
        return np.full(len(x), x.sum())
    sums = np.add.reduceat(x, offsets[:-1]) if len(x) else np.zeros(0)
    return np.repeat(sums, np.diff(offsets))


def _segment_max(x: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    if len(offsets) == 2:
        return np.full(len(x), x.max() if len(x) else 0.0)
    maxs = np.maximum.reduceat(x, offsets[:-1]) if len(x) else np.zeros(0)
    return np.repeat(maxs, np.diff(offsets))


class CustomerAggregates:
    """Per-row sums the features need (category counts, price level, collaborative vector)."""

    def __init__(self, history: History, catalog: Catalog) -> None:
        row, prod = history.rows(), history.products()
        w = history.pair_count.astype(np.float64)
        n_u = len(history.order_count)
        rel = catalog.stats.rel_price
        self.total = np.bincount(row, weights=w, minlength=n_u)
        self.price_mean = np.bincount(row, weights=w * rel[prod], minlength=n_u) / np.maximum(self.total, 1e-9)
        n_c = len(catalog.category_codes)
        self.n_c = n_c
        self._dense: tuple[np.ndarray, np.ndarray] | None = None
        if n_u == 1:  # one customer (every served request): per-category sums by category index, no np.unique
            cat = catalog.cat_of[prod]
            count = np.bincount(cat, weights=w, minlength=n_c)
            self._dense = (count, np.bincount(cat, weights=w * rel[prod], minlength=n_c) / np.maximum(count, 1e-9))
        else:
            self.uc_key, inv = np.unique(row * n_c + catalog.cat_of[prod], return_inverse=True)
            self.uc_count = np.bincount(inv, weights=w)
            self.uc_price = np.bincount(inv, weights=w * rel[prod]) / np.maximum(self.uc_count, 1e-9)
        self.private_share, self.size_mean = self._taste(catalog, row, prod, w, n_u)
        self.vector = None
        if catalog.vectors is not None:
            factors = catalog.vectors.factors
            vec = np.zeros((n_u, factors.shape[1]), dtype=np.float64)
            if len(row):  # rows are sorted (pair keys are): one sum per row's run, not np.add.at's scatter
                starts = np.flatnonzero(np.concatenate(([True], row[1:] != row[:-1])))
                vec[row[starts]] = np.add.reduceat(w[:, None] * factors[prod], starts, axis=0)
            self.vector = (vec / np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), 1e-9)).astype(np.float32)

    @staticmethod
    def _taste(catalog: Catalog, row: np.ndarray, prod: np.ndarray, w: np.ndarray,
               n_u: int) -> tuple[np.ndarray, np.ndarray]:
        """Per row: share of private-label purchases and mean relative size (NaN where nothing is known)."""
        taste = catalog.taste
        if taste is None:
            return np.full(n_u, np.nan), np.full(n_u, np.nan)

        def weighted_mean(values: np.ndarray) -> np.ndarray:
            known = np.isfinite(values)
            total = np.bincount(row, weights=w * known, minlength=n_u)
            s = np.bincount(row, weights=w * _fill_nan(values), minlength=n_u)
            return np.where(total > 0, s / np.maximum(total, 1e-9), np.nan)

        return weighted_mean(taste.private[prod].astype(np.float64)), weighted_mean(taste.rel_size[prod].astype(np.float64))

    def category(self, row: np.ndarray, cat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(orders in the category, mean price level there) per (row, category)."""
        if self._dense is not None:
            count, price = self._dense
            return count[cat], price[cat]
        key = row.astype(np.int64) * self.n_c + cat
        if not len(self.uc_key):
            return np.zeros(len(key)), np.zeros(len(key))
        pos = np.minimum(np.searchsorted(self.uc_key, key), len(self.uc_key) - 1)
        found = self.uc_key[pos] == key
        return np.where(found, self.uc_count[pos], 0.0), np.where(found, self.uc_price[pos], 0.0)


def _rank_in_lists(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Rank of each row by ``values`` within its list (0 = largest; ties share the better rank, i.e. the
    rank is the number of rows of the list with a strictly larger value)."""
    n = len(values)
    if n == 0:
        return np.zeros(0)
    if len(offsets) == 2:  # one list: the number of strictly larger values, by binary search
        neg = -values
        return np.searchsorted(np.sort(neg), neg, side="left").astype(np.float64)
    row_list = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    order = np.lexsort((-values, row_list))
    vals, lists = values[order], row_list[order]
    new_group = np.concatenate(([True], (lists[1:] != lists[:-1]) | (vals[1:] != vals[:-1])))
    group_start = np.maximum.accumulate(np.where(new_group, np.arange(n), 0))
    rank = np.empty(n)
    rank[order] = group_start - offsets[lists]
    return rank


def _taste_columns(catalog: Catalog, aggregates: CustomerAggregates, row: np.ndarray,
                   product: np.ndarray) -> tuple[np.ndarray, ...]:
    """(private_label, rel_size, private_match, size_vs_customer) per candidate row; 0 where unknown."""
    n = len(product)
    if catalog.taste is None:
        return (np.zeros(n),) * 4
    private = catalog.taste.private[product].astype(np.float64)
    size = catalog.taste.rel_size[product].astype(np.float64)
    share, size_mean = aggregates.private_share[row], aggregates.size_mean[row]
    match = np.where(np.isfinite(private) & np.isfinite(share), (2 * private - 1) * (2 * share - 1), 0.0)
    size_vs = np.where(np.isfinite(size) & np.isfinite(size_mean), size - size_mean, 0.0)
    return _fill_nan(private), _fill_nan(size), match, size_vs


def feature_matrix(catalog: Catalog, history: History, aggregates: CustomerAggregates, row: np.ndarray,
                   product: np.ndarray, offsets: np.ndarray, now: np.ndarray, text_score: np.ndarray | None = None,
                   category_match: np.ndarray | None = None, use_embedding: bool = True) -> np.ndarray:
    """Features [R, F] float32 of candidate rows (history row[r], product[r]) at moment now[r] (epoch s),
    with the catalogue's stats of that moment; lists by offsets."""
    n = len(product)
    stats: ProductStats = catalog.stats
    count, last = history.lookup(row, product)
    days = np.where(count > 0, np.maximum(now - last, 0.0) / DAY_S, _NEVER_DAYS)
    cat = catalog.cat_of[product]
    cat_count, cat_price = aggregates.category(row, cat)
    order_count = history.order_count[row].astype(np.float64)
    interval = _fill_nan(history.mean_interval[row].astype(np.float64), 30.0)
    usual = np.maximum(interval * np.maximum(order_count, 1.0) / np.maximum(count, 1.0), 1.0)
    pop = stats.popularity[product].astype(np.float64)
    pop_r = stats.popularity_recent[product].astype(np.float64)
    decayed = stats.popularity_decayed[product].astype(np.float64)
    buyers = stats.buyers[product].astype(np.float64)
    size = np.diff(offsets)
    list_size = np.repeat(size, size).astype(np.float64)
    pop_share = pop / np.maximum(_segment_sum(pop, offsets), 1e-9)
    rec_share = pop_r / np.maximum(_segment_sum(pop_r, offsets), 1e-9)
    collab = np.zeros(n)
    if aggregates.vector is not None:
        collab = np.einsum("rd,rd->r", aggregates.vector[row], catalog.vectors.factors[product]).astype(np.float64)
    collab_mean = _segment_sum(collab, offsets) / np.maximum(list_size, 1)
    has_hist = aggregates.total[row] > 0
    rel = stats.rel_price[product].astype(np.float64)
    last_order = history.last_order[row]
    since_order = np.where(np.isnan(last_order), _NEVER_DAYS,
                           np.maximum(now - _fill_nan(last_order), 0.0) / DAY_S)
    emb_score, has_emb = np.zeros(n), np.zeros(n)
    items = None if catalog.vectors is None else catalog.vectors.items
    if use_embedding and history.embedding is not None and items is not None:
        emb_score = np.einsum("rd,rd->r", history.embedding[row], items[product])
        has_emb[:] = 1.0
    private, rel_size, private_match, size_vs = _taste_columns(catalog, aggregates, row, product)
    price_vs = np.where(has_hist, rel - aggregates.price_mean[row], 0.0)
    age = np.where(np.isfinite(stats.first_sale[product]), (now - stats.first_sale[product]) / DAY_S, 0.0)
    cols = [
        np.log1p(count),
        (count > 0),
        np.where(count > 0, np.exp(-days / 30.0), 0.0),
        np.log1p(days),
        np.where(cat_count > 0, count / np.maximum(cat_count, 1e-9), 0.0),
        np.log1p(cat_count),
        cat_count > 0,
        np.where(count > 0, np.minimum(days / usual, 10.0), 0.0),
        count / np.maximum(order_count, 1.0),
        count / np.maximum(_segment_max(count.astype(np.float64), offsets), 1.0),
        np.log1p(pop),
        pop_share,
        _rank_in_lists(pop, offsets) / np.maximum(list_size, 1),
        np.log1p(pop_r),
        rec_share,
        rec_share - pop_share,
        decayed / np.maximum(_segment_sum(decayed, offsets), 1e-9),
        np.log1p(buyers),
        buyers / np.maximum(_segment_sum(buyers, offsets), 1e-9),
        rel,
        price_vs,
        np.where(cat_count > 0, rel - cat_price, 0.0),
        np.zeros(n) if text_score is None else text_score,
        np.zeros(n) if category_match is None else category_match,
        collab,
        collab - collab_mean,
        np.log1p(list_size),
        np.log1p(np.clip(age, 0.0, _NEVER_DAYS)),
        np.log1p(order_count),
        np.log1p(since_order),
        emb_score,
        has_emb,
        private,
        private_match,
        rel_size,
        size_vs,
        np.abs(size_vs),
        np.abs(price_vs),
    ]
    assert len(cols) == N_FEATURES
    out = np.empty((n, N_FEATURES), dtype=np.float32)
    for j, c in enumerate(cols):
        out[:, j] = c  # cast on assignment: no float32 copy of each column before a stack
    return out


def candidate_features(profile: CustomerProfile | None, candidates: Candidates, catalog: Catalog, now: float,
                       embedding: bool = True) -> np.ndarray:
    """Features [n, F] float32 of one request's candidates (the online path) at ``now`` (epoch s).

    ``profile`` None (unknown customer, store down) gives the non-personal features only;
    ``embedding=False`` ignores the profile's embedding even when present.
    """
    history = History.from_profile(profile, catalog)
    n = len(candidates)
    return feature_matrix(catalog, history, CustomerAggregates(history, catalog), np.zeros(n, dtype=np.int64),
                          candidates.product, np.asarray([0, n]), np.full(n, float(now)), candidates.text_score,
                          candidates.category_match, use_embedding=embedding)


Featurizer = Callable[[CustomerProfile | None, Candidates, Catalog, float], dict[str, np.ndarray]]
"""(profile, candidates, catalog, now) -> the ranker's input tensors by name (batch first)."""


def featurizer(input_name: str, batched: bool) -> Featurizer:
    """The served ranker's input tensors from one request's candidates: ``{input_name: [n, F]}``, or ``[1, n, F]``
    when the exported model takes a batch of lists (``batched``)."""

    def featurize(profile: CustomerProfile | None, cands: Candidates, catalog: Catalog,
                  now: float) -> dict[str, np.ndarray]:
        x = candidate_features(profile, cands, catalog, now)
        return {input_name: x[None] if batched else x}

    return featurize
