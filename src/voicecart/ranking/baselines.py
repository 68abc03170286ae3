"""The baselines the ranker must beat, scoring the same candidate rows through the same metrics.

Each baseline returns a score per candidate row of a :class:`~voicecart.ranking.train.QueryLists`
(higher is better; ties fall back to the list order, i.e. popularity).
"""

from __future__ import annotations

import numpy as np

from voicecart.ranking.catalog import Catalog
from voicecart.ranking.history import History, Purchases


def random_scores(queries, seed: int = 0) -> np.ndarray:  # noqa: ANN001
    return np.random.default_rng(seed).random(len(queries.product))


def popularity_scores(queries, catalog: Catalog) -> np.ndarray:  # noqa: ANN001
    """Popularity in the category (orders before the catalogue's as_of)."""
    return catalog.popularity[queries.product].astype(np.float64)


def most_bought_scores(queries, catalog: Catalog, history: History) -> np.ndarray:  # noqa: ANN001
    """The customer's most-bought product in the category, falling back to popularity."""
    count, _ = history.lookup(queries.customer[queries.row_list], queries.product)
    pop = catalog.popularity[queries.product].astype(np.float64)
    return count.astype(np.float64) * (pop.max() + 1.0) + pop


def tifu_knn_scores(queries, catalog: Catalog, purchases: Purchases, as_of: float, *,  # noqa: ANN001
                    k: int = 300, alpha: float = 0.7, half_life_days: float = 30.0,
                    chunk: int = 1000) -> np.ndarray:
    """TIFU-KNN-style: time-decayed personal frequency blended with its k nearest customers'.

    r_u = decayed purchase frequencies (one unit per order, halved every ``half_life_days``);
    score(u, p) = alpha * r_u[p] / |r_u| + (1 - alpha) * mean over the k most cosine-similar
    customers of r_v[p] / |r_v|, popularity breaking ties.
    """
    from scipy.sparse import csr_matrix, diags

    past = purchases.before(as_of)
    n_u, n_p = len(purchases.customer_ids), len(purchases.product_ids)
    w = np.power(0.5, (as_of - past.day) / half_life_days).astype(np.float32)
    x = csr_matrix((w, (past.customer, past.product)), shape=(n_u, n_p))
    x.sum_duplicates()
    norm = np.sqrt(np.asarray(x.multiply(x).sum(1)).ravel())
    xn = (diags(1.0 / np.maximum(norm, 1e-9)) @ x).tocsr()
    xt = xn.T.tocsr()
    pop = catalog.popularity[queries.product].astype(np.float64)
    rows_cust = queries.customer[queries.row_list]
    out = np.zeros(len(queries.product))
    custs = np.unique(queries.customer)
    order = np.argsort(rows_cust, kind="stable")
    sorted_c = rows_cust[order]
    for i in range(0, len(custs), chunk):
        block = custs[i:i + chunk]
        sim = (xn[block] @ xt).toarray()  # [b, U]
        sim[np.arange(len(block)), block] = 0.0
        kk = min(k, n_u - 1)
        nbr = np.argpartition(-sim, kk - 1, axis=1)[:, :kk]
        wts = np.take_along_axis(sim, nbr, axis=1)
        ones = csr_matrix((np.ones(nbr.size, dtype=np.float32) / kk, (np.repeat(np.arange(len(block)), kk), nbr.ravel())),
                          shape=(len(block), n_u))
        nb_mean = ones @ xn  # [b, P] sparse
        pred = (alpha * xn[block] + (1 - alpha) * nb_mean).tocsr()
        del wts
        lo, hi = np.searchsorted(sorted_c, block[0]), np.searchsorted(sorted_c, block[-1], side="right")
        rows = order[lo:hi]
        local = np.searchsorted(block, rows_cust[rows])
        out[rows] = np.asarray(pred[local, queries.product[rows]]).ravel()
    return out * (pop.max() + 1.0) * 1e3 + pop
