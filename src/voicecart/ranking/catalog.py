"""The catalogue as precomputed arrays: text index, category index and product stats as of a moment.

``Catalog.candidates`` turns a parsed mention into candidate products on the request path:
BM25 (bm25s) over title, brand and category names with plural folding and one-edit spelling
correction, plus every product of a category whose name matches; or, for a category code (Ta-Feng
has codes, not names), the products of that category. No pandas, no per-request allocation beyond
the candidate arrays.
"""

from __future__ import annotations

import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from voicecart.ranking.history import Purchases
from voicecart.ranking.parse import normalize
from voicecart.schemas import ParsedUtterance

_STOP = {"a", "an", "the", "of", "and", "or", "for", "with", "in", "on", "to", "my", "some", "by", "from", "x"}


def stem(word: str) -> str:
    """Fold plurals so "tomatoes", "tomato" and "berries"/"berry" meet."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("oes", "ches", "shes", "sses", "xes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def tokenize(text: str | None) -> list[str]:
    if not text:
        return []
    return [stem(w) for w in re.split(r"[\s\-/]+", normalize(text)) if w and w not in _STOP]


def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1:] for i in range(len(word))}


@dataclass
class Candidates:
    """Candidate products for one mention (parallel arrays, best retrieval first)."""

    product: np.ndarray  # [n] int64 catalogue index
    text_score: np.ndarray  # [n] float32 in [0, 1] (1 = best text match)
    category_match: np.ndarray  # [n] float32 1 when retrieved through a category
    category: str | None = None  # the category code the query resolved to, if any

    def __len__(self) -> int:
        return len(self.product)

    @classmethod
    def empty(cls) -> "Candidates":
        z = np.zeros(0, dtype=np.float32)
        return cls(np.zeros(0, dtype=np.int64), z, z)


@dataclass
class Catalog:
    """Products with their stats as of ``as_of`` (days since epoch), and the indices to find them."""

    product_ids: np.ndarray  # [P] object
    titles: list[str | None]
    category_codes: np.ndarray  # [C] object, level-3 codes
    cat_of: np.ndarray  # [P] int64 level-3 category index
    cat_members: list[np.ndarray]  # [C] products of each category, most popular first
    as_of: float
    popularity: np.ndarray  # [P] float32 orders containing the product before as_of
    popularity_recent: np.ndarray  # [P] float32 same, last `recent_days`
    popularity_decayed: np.ndarray  # [P] float32 orders weighted 0.5 ** (age / half_life_days)
    buyers: np.ndarray  # [P] float32 distinct customers
    first_day: np.ndarray  # [P] float64 first sale day (inf = never sold)
    rel_price: np.ndarray  # [P] float32 log price minus category mean log price
    factors: np.ndarray  # [P, D] float32 unit-norm collaborative product vectors
    embedding_items: np.ndarray | None = None  # [P, E] product vectors in the customer-embedding space
    recent_days: float = 28.0
    index: dict[str, int] = field(default_factory=dict)
    _prefix: dict[str, np.ndarray] = field(default_factory=dict)
    _bm25: object | None = None
    _vocab_fix: dict[str, str] = field(default_factory=dict)
    _cat_tokens: dict[str, np.ndarray] = field(default_factory=dict)

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def build(cls, purchases: Purchases, as_of: float, *, recent_days: float = 28.0, n_factors: int = 32,
              seed: int = 0, half_life_days: float = 30.0) -> "Catalog":
        """Stats from purchases strictly before ``as_of``; text and category indices from products."""
        past = purchases.before(as_of)
        n_p = len(purchases.product_ids)
        prods = purchases.products
        pop = np.bincount(past.product, minlength=n_p).astype(np.float32)
        recent = past.day >= as_of - recent_days
        pop_recent = np.bincount(past.product[recent], minlength=n_p).astype(np.float32)
        decay = np.power(0.5, (as_of - past.day) / half_life_days)
        pop_decayed = np.bincount(past.product, weights=decay, minlength=n_p).astype(np.float32)
        pair = np.unique(past.customer.astype(np.int64) * n_p + past.product)
        buyers = np.bincount((pair % n_p).astype(np.int64), minlength=n_p).astype(np.float32)
        first = np.full(n_p, np.inf)
        np.minimum.at(first, past.product, past.day)

        codes, cat_of = np.unique(np.asarray(prods["category_l3"], dtype=object).astype(str), return_inverse=True)
        cat_of = cat_of.astype(np.int64)
        # price: mean log unit price per product, relative to its category
        ok = np.isfinite(past.price) & (past.price > 0)
        logp = np.zeros(n_p)
        cnt = np.bincount(past.product[ok], minlength=n_p)
        np.add.at(logp, past.product[ok], np.log(past.price[ok]))
        logp = np.where(cnt > 0, logp / np.maximum(cnt, 1), np.nan)
        cat_sum = np.bincount(cat_of[cnt > 0], weights=logp[cnt > 0], minlength=len(codes))
        cat_n = np.bincount(cat_of[cnt > 0], minlength=len(codes))
        cat_mean = np.where(cat_n > 0, cat_sum / np.maximum(cat_n, 1), 0.0)
        rel_price = np.nan_to_num(logp - cat_mean[cat_of], nan=0.0).astype(np.float32)

        factors = _factors(past, len(purchases.customer_ids), n_p, n_factors, seed)
        order = np.lexsort((-pop, cat_of))
        bounds = np.searchsorted(cat_of[order], np.arange(len(codes) + 1))
        members = [order[bounds[c]:bounds[c + 1]] for c in range(len(codes))]
        titles = list(prods.get("title") or [None] * n_p)
        cat = cls(product_ids=purchases.product_ids, titles=titles, category_codes=codes, cat_of=cat_of,
                  cat_members=members, as_of=as_of, popularity=pop, popularity_recent=pop_recent,
                  popularity_decayed=pop_decayed,
                  buyers=buyers, first_day=first, rel_price=rel_price, factors=factors,
                  recent_days=recent_days)
        cat._index_text(prods)
        return cat

    def _index_text(self, prods: dict[str, list]) -> None:
        self.index = {str(p): i for i, p in enumerate(self.product_ids)}
        for level in ("category_l1", "category_l2"):
            codes = np.asarray(prods[level], dtype=object).astype(str)
            for code in np.unique(codes):
                self._prefix[code] = np.flatnonzero(codes == code)
        n_p = len(self.product_ids)
        fields = ("title", "brand", "category_l3_name", "category_l2_name", "category_l1_name")
        docs = [tokenize(" ".join(str(prods[f][i]) for f in fields if prods.get(f) and prods[f][i]))
                for i in range(n_p)]
        if not any(docs):
            return  # codes only (Ta-Feng): candidates come from category codes
        import bm25s

        retriever = bm25s.BM25()
        retriever.index([d or ["<empty>"] for d in docs], show_progress=False)
        self._bm25 = retriever
        vocab = retriever.vocab_dict
        fix: dict[str, str] = {}
        df = {w: 0 for w in vocab}
        for d in docs:
            for w in set(d):
                df[w] += 1
        for w in sorted(vocab, key=lambda t: -df.get(t, 0)):
            if len(w) >= 4 and w.isalpha():
                for d in _deletes(w) | {w}:
                    fix.setdefault(d, w)
        self._vocab_fix = fix
        # category names -> member products (for "category match")
        for lvl in ("category_l3_name", "category_l2_name"):
            names = prods.get(lvl)
            if not names:
                continue
            for name in set(n for n in names if n):
                key = " ".join(tokenize(name))
                members = np.flatnonzero(np.asarray([n == name for n in names]))
                if key and key not in self._cat_tokens:
                    self._cat_tokens[key] = members[np.argsort(-self.popularity[members], kind="stable")]

    # -- persistence --------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as f:
            pickle.dump(self, f, protocol=pickle.HIGHEST_PROTOCOL)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Catalog":
        """Load a catalogue written by :meth:`save` (a pickle: load only artefacts you produced)."""
        with Path(path).open("rb") as f:
            obj = pickle.load(f)  # noqa: S301 - own artefact
        if not isinstance(obj, cls):
            raise ValueError(f"{path} does not hold a voicecart Catalog")
        return obj

    # -- request path -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.product_ids)

    def category_index(self, code: str) -> int | None:
        pos = int(np.searchsorted(self.category_codes, code))
        if pos < len(self.category_codes) and self.category_codes[pos] == code:
            return pos
        return None

    def category_products(self, code: str, *, sold_only: bool = True) -> np.ndarray:
        """Products of a category code (level 3 exact, or a level-1/2 prefix), most popular first."""
        c = self.category_index(code)
        if c is not None:
            members = self.cat_members[c]
        elif code in self._prefix:
            members = self._prefix[code]
            members = members[np.argsort(-self.popularity[members], kind="stable")]
        else:
            return np.zeros(0, dtype=np.int64)
        if sold_only:
            members = members[self.popularity[members] > 0]
        return members.astype(np.int64)

    def correct(self, token: str) -> str:
        """One-edit spelling correction against the catalogue vocabulary."""
        if self._bm25 is None or token in self._bm25.vocab_dict or len(token) < 4:
            return token
        if token in self._vocab_fix:
            return self._vocab_fix[token]
        for d in _deletes(token):
            if d in self._vocab_fix:
                return self._vocab_fix[d]
        return token

    def candidates(self, query: ParsedUtterance | str | None, k: int = 100, *, sold_only: bool = True) -> Candidates:
        """Candidate products for a parsed utterance (or a raw mention / category code)."""
        if isinstance(query, ParsedUtterance):
            code, mention = query.category, query.mention
        else:
            mention = query
            code = query if query and query.isdigit() else None
        if code:
            members = self.category_products(code, sold_only=sold_only)[:k]
            ones = np.ones(len(members), dtype=np.float32)
            return Candidates(members, np.zeros(len(members), dtype=np.float32), ones, code)
        tokens = [self.correct(t) for t in tokenize(mention)]
        if not tokens or self._bm25 is None:
            return Candidates.empty()
        known = [t for t in tokens if t in self._bm25.vocab_dict]
        scores = self._bm25.get_scores(known) if known else np.zeros(len(self), dtype=np.float32)
        hits = np.flatnonzero(scores > 0)
        if len(hits) > k:
            hits = hits[np.argpartition(-scores[hits], k - 1)[:k]]
        hits = hits[np.argsort(-scores[hits], kind="stable")]
        text = scores[hits] / scores[hits[0]] if len(hits) else np.zeros(0)
        cat_hit = self._cat_tokens.get(" ".join(tokens))
        in_cat = np.zeros(len(hits), dtype=np.float32)
        if cat_hit is not None:
            in_cat = np.isin(hits, cat_hit).astype(np.float32)
            extra = cat_hit[~np.isin(cat_hit, hits)][: max(k - len(hits), 0)]
            hits = np.concatenate([hits, extra])
            text = np.concatenate([text, np.zeros(len(extra))])
            in_cat = np.concatenate([in_cat, np.ones(len(extra), dtype=np.float32)])
        if sold_only and self.popularity.sum() > 0 and len(hits):
            keep = self.popularity[hits] > 0
            if keep.any():
                hits, text, in_cat = hits[keep], text[keep], in_cat[keep]
        return Candidates(hits.astype(np.int64), text.astype(np.float32), in_cat.astype(np.float32))


def _factors(past: Purchases, n_u: int, n_p: int, dim: int, seed: int) -> np.ndarray:
    """Unit-norm product vectors from a truncated SVD of the customer × product matrix."""
    from scipy.sparse import csr_matrix
    from sklearn.decomposition import TruncatedSVD

    out = np.zeros((n_p, dim), dtype=np.float32)
    if len(past) == 0:
        return out
    m = csr_matrix((np.ones(len(past), dtype=np.float32), (past.customer, past.product)), shape=(n_u, n_p))
    m.sum_duplicates()
    m.data = np.log1p(m.data)
    k = min(dim, min(m.shape) - 1)
    if k < 1:
        return out
    svd = TruncatedSVD(n_components=k, random_state=seed, algorithm="randomized", n_iter=4)
    svd.fit(m)
    vec = svd.components_.T.astype(np.float32)  # [P, k]
    norm = np.linalg.norm(vec, axis=1, keepdims=True)
    out[:, :k] = vec / np.maximum(norm, 1e-9)
    return out
