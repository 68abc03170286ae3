"""Customer embeddings C-STAR must beat, computed from the same trajectories (same windows, same ids).

Each is a small class with ``fit(events)`` on the pre-training window and ``transform(events)`` for any
window, so embeddings of two cut-offs live in one space.

* ``BagOfCategories``: TF-IDF of subclass counts, reduced by truncated SVD;
* ``CategoryMean``: item2vec-style — subclass vectors from the SVD of the positive PMI matrix of
  subclasses bought in the same basket (the matrix skip-gram factorises, Levy & Goldberg 2014), and a
  customer is the mean vector of its events;
* ``TreeWassersteinSVD``: the linear Wasserstein embedding — each customer's exact tree-Wasserstein
  vector (L1 distances between them *are* the OT distances), compressed to ``dim`` by truncated SVD.

``rhythm_statistics`` is not an embedding but a reference: 14 hand-made numbers on when and how much a
customer shops, which the evaluation's probes read beside bag of categories.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from voicecart.trajectory.trajectories import N_SPECIAL, EncodedEvents, weekday
from voicecart.trajectory.wasserstein import DEFAULT_EDGE_WEIGHTS


def _owner(events: EncodedEvents) -> np.ndarray:
    return np.repeat(np.arange(len(events)), events.lengths)


def subclass_counts(events: EncodedEvents, n_l3: int) -> sp.csr_matrix:
    """[C, n_l3] number of baskets holding each subclass."""
    m = sp.csr_matrix((np.ones(len(events.l3)), (_owner(events), events.l3)), shape=(len(events), n_l3))
    m.sum_duplicates()
    return m


def _svd(matrix: sp.spmatrix, dim: int, seed: int) -> np.ndarray:
    from sklearn.decomposition import TruncatedSVD

    k = min(dim, min(matrix.shape) - 1)
    out = np.zeros((matrix.shape[0], dim), np.float32)
    out[:, :k] = TruncatedSVD(k, random_state=seed).fit_transform(matrix)
    return out


class BagOfCategories:
    """TF-IDF of subclass counts + truncated SVD, fitted once and applied to any window."""

    def __init__(self, n_l3: int, dim: int = 64, seed: int = 0) -> None:
        self.n_l3, self.dim, self.seed = n_l3, dim, seed

    def fit(self, events: EncodedEvents) -> "BagOfCategories":
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfTransformer

        counts = subclass_counts(events, self.n_l3)
        self.tfidf = TfidfTransformer(sublinear_tf=True).fit(counts)
        self.svd = TruncatedSVD(min(self.dim, self.n_l3 - 1), random_state=self.seed).fit(self.tfidf.transform(counts))
        return self

    def weights(self, events: EncodedEvents) -> sp.csr_matrix:
        """[C, n_l3] the fitted TF-IDF of every subclass, before the SVD (rows L2-normalised)."""
        return self.tfidf.transform(subclass_counts(events, self.n_l3)).tocsr()

    def transform(self, events: EncodedEvents) -> np.ndarray:
        return _pad(self.svd.transform(self.weights(events)), self.dim)


class TreeWassersteinSVD:
    """Linear Wasserstein embedding: exact tree-Wasserstein vectors compressed by truncated SVD."""

    def __init__(self, sizes: tuple[int, int, int], dim: int = 64, seed: int = 0) -> None:
        self.sizes, self.dim, self.seed = sizes, dim, seed

    def fit(self, events: EncodedEvents) -> "TreeWassersteinSVD":
        from sklearn.decomposition import TruncatedSVD

        self.svd = TruncatedSVD(min(self.dim, sum(self.sizes) - 1), random_state=self.seed)
        self.svd.fit(tree_vectors_sparse(events, self.sizes))
        return self

    def transform(self, events: EncodedEvents) -> np.ndarray:
        return _pad(self.svd.transform(tree_vectors_sparse(events, self.sizes)), self.dim)


class CategoryMean:
    """item2vec-style: subclass vectors from basket co-occurrence; a customer is the mean of its events'."""

    def __init__(self, n_l3: int, dim: int = 64, seed: int = 0) -> None:
        self.n_l3, self.dim, self.seed = n_l3, dim, seed

    def fit(self, events: EncodedEvents) -> "CategoryMean":
        self.vectors = category_vectors(events, self.n_l3, self.dim, self.seed)
        return self

    def transform(self, events: EncodedEvents) -> np.ndarray:
        counts = subclass_counts(events, self.n_l3)
        norm = np.asarray(counts.sum(1)).ravel()
        return np.asarray(counts @ self.vectors / np.maximum(norm, 1)[:, None], dtype=np.float32)


def _pad(z: np.ndarray, dim: int) -> np.ndarray:
    out = np.zeros((z.shape[0], dim), np.float32)
    out[:, :z.shape[1]] = z
    return out


def category_vectors(events: EncodedEvents, n_l3: int, dim: int = 64, seed: int = 0) -> np.ndarray:
    """[n_l3, dim] subclass vectors from basket co-occurrence (PPMI + SVD)."""
    basket_key = _owner(events).astype(np.int64) * 100_000 + events.basket
    _, basket = np.unique(basket_key, return_inverse=True)
    b = sp.csr_matrix((np.ones(len(basket)), (basket, events.l3)), shape=(basket.max() + 1, n_l3))
    b.data[:] = 1.0
    co = (b.T @ b).tocoo()
    keep = co.row != co.col
    total = co.data[keep].sum()
    row_sum = np.asarray(sp.csr_matrix((co.data[keep], (co.row[keep], co.col[keep])), shape=co.shape).sum(1)).ravel()
    pmi = np.log(co.data[keep] * total / (row_sum[co.row[keep]] * row_sum[co.col[keep]] + 1e-12) + 1e-12)
    pos = pmi > 0
    ppmi = sp.csr_matrix((pmi[pos], (co.row[keep][pos], co.col[keep][pos])), shape=co.shape)
    return _svd(ppmi, dim, seed)


def tree_vectors_sparse(events: EncodedEvents, sizes: tuple[int, int, int],
                        edge_weights: tuple[float, float, float] = DEFAULT_EDGE_WEIGHTS) -> sp.csr_matrix:
    """[C, n1+n2+n3] exact tree-Wasserstein vectors of every customer (sparse)."""
    owner = _owner(events)
    mass = 1.0 / np.maximum(events.lengths, 1)[owner]
    rows, cols, vals = [], [], []
    offset = 0
    for ids, w, n in zip((events.l1, events.l2, events.l3), edge_weights, sizes):
        known = ids >= N_SPECIAL
        rows.append(owner[known])
        cols.append(ids[known] + offset)
        vals.append(w * mass[known])
        offset += n
    m = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(len(events), offset))
    m.sum_duplicates()
    return m


RHYTHM_STATISTICS = ("share of baskets on Monday", "… Tuesday", "… Wednesday", "… Thursday", "… Friday",
                     "… Saturday", "… Sunday", "log baskets", "log mean basket size (subclasses)",
                     "log(1 + days since the last basket)", "log(1 + days since the first basket)",
                     "log(1 + mean days between baskets)", "log events", "largest basket")


def rhythm_statistics(events: EncodedEvents, as_of_day: float) -> np.ndarray:
    """[C, 14] hand-made shopping-rhythm numbers per customer (:data:`RHYTHM_STATISTICS`; all 0 for a
    customer with no event): a reference for what *when and how much* a customer shops says about a label,
    next to what *what* they buy says (bag of categories)."""
    out = np.zeros((len(events), len(RHYTHM_STATISTICS)), np.float64)
    owner = _owner(events)
    if len(owner) == 0:
        return out.astype(np.float32)
    first = np.ones(len(owner), bool)  # first event of each basket
    first[1:] = (owner[1:] != owner[:-1]) | (events.basket[1:] != events.basket[:-1])
    b_owner, b_day = owner[first], events.day[first]
    b_size = np.diff(np.append(np.flatnonzero(first), len(owner)))
    n = np.bincount(b_owner, minlength=len(events)).astype(np.float64)
    has = n > 0
    out[:, :7] = np.stack([np.bincount(b_owner, weights=weekday(b_day) == d, minlength=len(events))
                           for d in range(7)], 1) / np.maximum(n, 1)[:, None]
    out[has, 7] = np.log(n[has])
    out[has, 8] = np.log(np.bincount(b_owner, weights=b_size, minlength=len(events))[has] / n[has])
    last = np.full(len(events), -np.inf)
    np.maximum.at(last, b_owner, b_day)
    earliest = np.full(len(events), np.inf)
    np.minimum.at(earliest, b_owner, b_day)
    out[has, 9] = np.log1p(as_of_day - last[has])
    out[has, 10] = np.log1p(as_of_day - earliest[has])
    span = np.where(n > 1, (last - earliest) / np.maximum(n - 1, 1), 0.0)
    out[has, 11] = np.log1p(span[has])
    out[has, 12] = np.log(events.lengths[has])
    big = np.zeros(len(events))
    np.maximum.at(big, b_owner, b_size)
    out[:, 13] = big
    return out.astype(np.float32)
