"""Personal features per candidate: THE one feature code, used offline (training, evaluation)
and online (serving). Both paths go through :func:`feature_matrix`; only the way the
:class:`~voicecart.ranking.history.History` is built differs (from purchases vs from one profile
row), and a test pins that the two agree.

Rows are (customer, candidate) pairs grouped into lists (one list = one request); features that
compare a candidate to the others of its list ("share of the list's popularity") use the list
offsets.
"""

from __future__ import annotations

import numpy as np

from voicecart.ranking.catalog import Candidates, Catalog
from voicecart.ranking.history import History, to_day
from voicecart.schemas import CustomerProfile

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
)
N_FEATURES = len(FEATURE_NAMES)
_NEVER_DAYS = 365.0


def _segment_sum(x: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per-row sum over the row's list (offsets [L+1], rows contiguous per list)."""
    sums = np.add.reduceat(x, offsets[:-1]) if len(x) else np.zeros(0)
    return np.repeat(sums, np.diff(offsets))


def _segment_max(x: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    maxs = np.maximum.reduceat(x, offsets[:-1]) if len(x) else np.zeros(0)
    return np.repeat(maxs, np.diff(offsets))


class CustomerAggregates:
    """Customer-level sums the features need, computed once per History (offline: all customers)."""

    def __init__(self, history: History, catalog: Catalog) -> None:
        n_p = history.n_products
        cust = (history.pair_key // n_p).astype(np.int64)
        prod = (history.pair_key % n_p).astype(np.int64)
        w = history.pair_count.astype(np.float64)
        n_u = len(history.order_count)
        self.total = np.bincount(cust, weights=w, minlength=n_u)
        self.price_mean = np.bincount(cust, weights=w * catalog.rel_price[prod], minlength=n_u) / np.maximum(self.total, 1e-9)
        n_c = len(catalog.category_codes)
        uc = cust * n_c + catalog.cat_of[prod]
        self.uc_key, inv = np.unique(uc, return_inverse=True)
        self.uc_count = np.bincount(inv, weights=w)
        self.uc_price = np.bincount(inv, weights=w * catalog.rel_price[prod]) / np.maximum(self.uc_count, 1e-9)
        self.n_c = n_c
        vec = np.zeros((n_u, catalog.factors.shape[1]), dtype=np.float64)
        np.add.at(vec, cust, w[:, None] * catalog.factors[prod])
        norm = np.linalg.norm(vec, axis=1, keepdims=True)
        self.vector = (vec / np.maximum(norm, 1e-9)).astype(np.float32)

    def category(self, customer: np.ndarray, cat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        key = customer.astype(np.int64) * self.n_c + cat
        pos = np.searchsorted(self.uc_key, key)
        pos_c = np.minimum(pos, max(len(self.uc_key) - 1, 0))
        if not len(self.uc_key):
            return np.zeros(len(key)), np.zeros(len(key))
        found = self.uc_key[pos_c] == key
        return np.where(found, self.uc_count[pos_c], 0.0), np.where(found, self.uc_price[pos_c], 0.0)


def feature_matrix(catalog: Catalog, history: History, aggregates: CustomerAggregates,
                   customer: np.ndarray, product: np.ndarray, offsets: np.ndarray, now: np.ndarray,
                   text_score: np.ndarray | None = None, category_match: np.ndarray | None = None,
                   use_embedding: bool = True) -> np.ndarray:
    """Features [R, F] float32 for rows (customer[r], product[r]) at day now[r]; lists by offsets."""
    n = len(product)
    count, last = history.lookup(customer, product)
    days = np.where(count > 0, np.maximum(now - last, 0.0), _NEVER_DAYS)
    cat = catalog.cat_of[product]
    cat_count, cat_price = aggregates.category(customer, cat)
    order_count = history.order_count[customer].astype(np.float64)
    interval = np.nan_to_num(history.mean_interval[customer].astype(np.float64), nan=30.0)
    usual = np.maximum(interval * np.maximum(order_count, 1.0) / np.maximum(count, 1.0), 1.0)
    pop = catalog.popularity[product].astype(np.float64)
    pop_r = catalog.popularity_recent[product].astype(np.float64)
    buyers = catalog.buyers[product].astype(np.float64)
    size = np.diff(offsets)
    list_size = np.repeat(size, size).astype(np.float64)
    pop_share = pop / np.maximum(_segment_sum(pop, offsets), 1e-9)
    rec_share = pop_r / np.maximum(_segment_sum(pop_r, offsets), 1e-9)
    # rank by popularity within each list (0 = most popular), ties share the better rank
    rank = np.zeros(n)
    for lo, hi in zip(offsets[:-1], offsets[1:]):
        if hi - lo > 1:
            seg = pop[lo:hi]
            rank[lo:hi] = (seg[None, :] > seg[:, None]).sum(1) if hi - lo <= 64 else \
                np.searchsorted(np.sort(-seg), -seg, side="left")
    collab = np.einsum("rd,rd->r", aggregates.vector[customer], catalog.factors[product]).astype(np.float64)
    collab_mean = _segment_sum(collab, offsets) / np.maximum(list_size, 1)
    has_hist = aggregates.total[customer] > 0
    rel = catalog.rel_price[product].astype(np.float64)
    last_order = history.last_order[customer]
    since_order = np.where(np.isnan(last_order), _NEVER_DAYS, np.maximum(now - np.nan_to_num(last_order), 0.0))
    emb_score = np.zeros(n)
    has_emb = np.zeros(n)
    if use_embedding and history.embedding is not None and catalog.embedding_items is not None:
        emb_score = np.einsum("rd,rd->r", history.embedding[customer], catalog.embedding_items[product])
        has_emb[:] = 1.0
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
        rank / np.maximum(list_size, 1),
        np.log1p(pop_r),
        rec_share,
        rec_share - pop_share,
        catalog.popularity_decayed[product] / np.maximum(_segment_sum(catalog.popularity_decayed[product].astype(np.float64), offsets), 1e-9),
        np.log1p(buyers),
        buyers / np.maximum(_segment_sum(buyers, offsets), 1e-9),
        rel,
        np.where(has_hist, rel - aggregates.price_mean[customer], 0.0),
        np.where(cat_count > 0, rel - cat_price, 0.0),
        np.zeros(n) if text_score is None else text_score,
        np.zeros(n) if category_match is None else category_match,
        collab,
        collab - collab_mean,
        np.log1p(list_size),
        np.log1p(np.clip(now - catalog.first_day[product], 0.0, _NEVER_DAYS)),
        np.log1p(order_count),
        np.log1p(since_order),
        emb_score,
        has_emb,
    ]
    out = np.stack([np.asarray(c, dtype=np.float32) for c in cols], axis=1)
    assert out.shape[1] == N_FEATURES
    return out


def candidate_features(profile: CustomerProfile | None, candidates: Candidates, catalog: Catalog,
                       now: float | object, embedding: bool = True) -> np.ndarray:
    """Features [n, F] float32 of one request's candidates (the online path).

    ``profile`` None (unknown customer, store down) gives the non-personal features only.
    ``now`` is epoch seconds or a datetime. ``embedding=False`` ignores the profile's customer
    embedding even when present (the "with vs without embedding" switch).
    """
    now_day = to_day(now) if not isinstance(now, (int, float)) else float(now) / 86_400.0
    history = History.from_profile(profile, catalog.index, len(catalog))
    aggregates = CustomerAggregates(history, catalog)
    n = len(candidates)
    return feature_matrix(catalog, history, aggregates, np.zeros(n, dtype=np.int64), candidates.product,
                          np.asarray([0, n]), np.full(n, now_day), candidates.text_score,
                          candidates.category_match, use_embedding=embedding)
