"""The baselines the ranker must beat, scoring the same candidate rows from the same snapshot rows.

Each baseline returns a score per candidate row of a :class:`~voicecart.ranking.lists.QueryLists`
built at one :class:`~voicecart.ranking.lists.Moment` (higher is better; ties fall back to the list
order, i.e. popularity). Every baseline sees what the ranker sees at that moment: the customer's
history and the product statistics as of then.
"""

from __future__ import annotations

import numpy as np

from voicecart.ranking.lists import Moment, QueryLists


def random_scores(queries: QueryLists, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(len(queries.product))


def popularity_scores(queries: QueryLists, view: Moment) -> np.ndarray:
    """Orders holding the product before the moment."""
    return view.catalog.stats.popularity[queries.product].astype(np.float64)


def recent_popularity_scores(queries: QueryLists, view: Moment) -> np.ndarray:
    """Popularity over the recent window (``features.sql.RECENT_DAYS``), all-time popularity breaking ties."""
    stats = view.catalog.stats
    pop = stats.popularity[queries.product].astype(np.float64)
    return stats.popularity_recent[queries.product].astype(np.float64) * (pop.max(initial=0) + 1.0) + pop


def most_bought_scores(queries: QueryLists, view: Moment, fallback: np.ndarray | None = None) -> np.ndarray:
    """The customer's most-bought product in the category, falling back to ``fallback`` (popularity)."""
    count, _ = view.history.lookup(queries.row[queries.row_list], queries.product)
    fallback = popularity_scores(queries, view) if fallback is None else fallback
    return count.astype(np.float64) * (fallback.max(initial=0) + 1.0) + fallback


def baseline_scores(queries: QueryLists, view: Moment, seed: int = 0) -> dict[str, np.ndarray]:
    """Every baseline on one moment's lists."""
    recent = recent_popularity_scores(queries, view)
    return {
        "random": random_scores(queries, seed),
        "popularity": popularity_scores(queries, view),
        "recent_popularity": recent,
        "most_bought_else_popularity": most_bought_scores(queries, view),
        "most_bought_else_recent_popularity": most_bought_scores(queries, view, recent),
    }


def tifu_knn_scores(queries: QueryLists, view: Moment, cut_pairs, *, k: int = 300, alpha: float = 0.7,  # noqa: ANN001
                    chunk: int = 1000) -> np.ndarray:
    """TIFU-KNN-style: the customer's time-decayed purchase frequencies blended with their k nearest
    customers', from every customer's ``customer_product`` rows at the moment (``decayed_count``:
    orders halved every ``features.sql.DECAY_HALF_LIFE_DAYS``), popularity breaking ties.

    score(u, p) = alpha * r_u[p] / |r_u| + (1 - alpha) * mean over the k most cosine-similar
    customers of r_v[p] / |r_v|.
    """
    from scipy.sparse import csr_matrix, diags

    catalog = view.catalog
    ids = cut_pairs.column("customer_id").to_pylist()
    customers = sorted(set(ids) | set(queries.customer_id.tolist()))
    index = {c: i for i, c in enumerate(customers)}
    prod = np.asarray([catalog.index.get(p, -1) for p in cut_pairs.column("product_id").to_pylist()], dtype=np.int64)
    row = np.asarray([index[c] for c in ids], dtype=np.int64)
    keep = prod >= 0
    w = cut_pairs.column("decayed_count").to_numpy(zero_copy_only=False)[keep].astype(np.float32)
    n_u, n_p = len(customers), len(catalog)
    x = csr_matrix((w, (row[keep], prod[keep])), shape=(n_u, n_p))
    norm = np.sqrt(np.asarray(x.multiply(x).sum(1)).ravel())
    xn = (diags(1.0 / np.maximum(norm, 1e-9)) @ x).tocsr()
    xt = xn.T.tocsr()
    pop = popularity_scores(queries, view)
    rows_cust = np.asarray([index[c] for c in queries.customer_id[queries.row_list]], dtype=np.int64)
    out = np.zeros(len(queries.product))
    custs = np.unique(rows_cust)
    order = np.argsort(rows_cust, kind="stable")
    sorted_c = rows_cust[order]
    kk = max(min(k, n_u - 1), 1)
    for i in range(0, len(custs), chunk):
        block = custs[i:i + chunk]
        sim = (xn[block] @ xt).toarray()  # [b, U]
        sim[np.arange(len(block)), block] = 0.0
        nbr = np.argpartition(-sim, kk - 1, axis=1)[:, :kk]
        ones = csr_matrix((np.ones(nbr.size, dtype=np.float32) / kk, (np.repeat(np.arange(len(block)), kk), nbr.ravel())),
                          shape=(len(block), n_u))
        pred = (alpha * xn[block] + (1 - alpha) * (ones @ xn)).tocsr()
        lo, hi = np.searchsorted(sorted_c, block[0]), np.searchsorted(sorted_c, block[-1], side="right")
        rows = order[lo:hi]
        out[rows] = np.asarray(pred[np.searchsorted(block, rows_cust[rows]), queries.product[rows]]).ravel()
    return out * (pop.max(initial=0) + 1.0) * 1e3 + pop
