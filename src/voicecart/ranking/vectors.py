"""Product vectors fit on a snapshot's (customer, product) rows at a cut: the ranker's learned parameters.

* ``factors``: a truncated SVD of the customer x product matrix (log1p of orders holding the product),
  unit-norm per product; a customer's vector is the count-weighted sum of their products' factors, so
  ``collab`` reads "customers who buy what you buy buy this".
* ``items``: each product's buyer centroid in the C-STAR embedding space (unit-norm mean of its buyers'
  unit embeddings); a customer's embedding dotted with it reads "customers like you buy this one".

Both are fit as of a cut from the snapshot's ``cut_pairs`` (every customer's history at that moment),
so a training example never sees the vectors of its own future, and the bundle carries the vectors
of its training cut.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from voicecart.ranking.catalog import Catalog, ProductVectors

N_FACTORS = 32


def _matrix(pairs: pa.Table, catalog: Catalog) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    customers = pairs.column("customer_id").to_pylist()
    ids = sorted(set(customers))
    index = {c: i for i, c in enumerate(ids)}
    row = np.asarray([index[c] for c in customers], dtype=np.int64)
    prod = np.asarray([catalog.index.get(p, -1) for p in pairs.column("product_id").to_pylist()], dtype=np.int64)
    count = pairs.column("purchase_count").to_numpy(zero_copy_only=False).astype(np.float32)
    keep = prod >= 0
    return row[keep], prod[keep], count[keep], ids


def fit_vectors(pairs: pa.Table, catalog: Catalog, *, embeddings: dict[str, np.ndarray] | None = None,
                dim: int = N_FACTORS, seed: int = 0) -> ProductVectors:
    """Vectors from every customer's ``customer_product`` rows at one cut (``embeddings``: customer -> vector)."""
    from scipy.sparse import csr_matrix
    from sklearn.decomposition import TruncatedSVD

    n_p = len(catalog)
    row, prod, count, ids = _matrix(pairs, catalog)
    factors = np.zeros((n_p, dim), dtype=np.float32)
    if len(row):
        m = csr_matrix((np.log1p(count), (row, prod)), shape=(len(ids), n_p))
        k = min(dim, min(m.shape) - 1)
        if k >= 1:
            svd = TruncatedSVD(n_components=k, random_state=seed, algorithm="randomized", n_iter=4)
            svd.fit(m)
            vec = svd.components_.T.astype(np.float32)  # [P, k]
            factors[:, :k] = vec / np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), 1e-9)
    items = None
    if embeddings:
        dim_e = len(next(iter(embeddings.values())))
        emb = np.zeros((len(ids), dim_e), dtype=np.float32)
        has = np.zeros(len(ids), dtype=bool)
        for i, c in enumerate(ids):
            if c in embeddings:
                emb[i], has[i] = embeddings[c], True
        unit = emb / (np.linalg.norm(emb, axis=1, keepdims=True) + 1e-9)
        sums = np.zeros((n_p, dim_e), dtype=np.float64)
        keep = has[row]
        np.add.at(sums, prod[keep], unit[row[keep]])
        items = (sums / (np.linalg.norm(sums, axis=1, keepdims=True) + 1e-9)).astype(np.float32)
    return ProductVectors(factors=factors, items=items)
