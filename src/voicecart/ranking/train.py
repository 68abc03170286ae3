"""Training examples and the training loop of the ranker.

An example is a *list*: one (customer, day, query) with its candidate products, each row
labelled +1 (positive: bought / kept / the substitute of a swap), -1 (negative: removed, the
answer that was swapped) or 0 (unlabelled). Offline, queries come from purchases: every line
bought in [start, end) becomes "the customer asked for this product's category", with features
computed from the history and catalogue frozen at ``start`` (point in time: nothing from the
example's own period leaks in), exactly as the February test is computed as of February 1.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from voicecart.ranking.catalog import Catalog
from voicecart.ranking.features import CustomerAggregates, feature_matrix
from voicecart.ranking.history import History, Purchases
from voicecart.ranking.model import Ranker, RankerConfig


@dataclass
class QueryLists:
    """Queries with their candidate rows (rows of list i are offsets[i]:offsets[i+1])."""

    customer: np.ndarray  # [L] int64
    day: np.ndarray  # [L] float64
    truth: np.ndarray  # [L] int64 product bought (may be absent from the candidates: a miss)
    category: np.ndarray  # [L] int64
    offsets: np.ndarray  # [L+1] int64
    product: np.ndarray  # [R] int64
    label: np.ndarray  # [R] float32 (+1 / -1 / 0)
    weight: np.ndarray  # [L] float32 list weight (feedback rules)
    has_category_history: np.ndarray  # [L] bool

    def __len__(self) -> int:
        return len(self.customer)

    @property
    def row_list(self) -> np.ndarray:
        return np.repeat(np.arange(len(self)), np.diff(self.offsets))

    def take(self, lists: np.ndarray) -> "QueryLists":
        lists = np.sort(lists)
        sizes = np.diff(self.offsets)[lists]
        rows = _ranges(self.offsets[lists], sizes)
        return QueryLists(self.customer[lists], self.day[lists], self.truth[lists], self.category[lists],
                          np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64), self.product[rows],
                          self.label[rows], self.weight[lists], self.has_category_history[lists])


def _ranges(starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Concatenate arange(s, s+n) for each (s, n) without a Python loop."""
    total = int(sizes.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offs = np.repeat(starts - np.concatenate([[0], np.cumsum(sizes)[:-1]]), sizes)
    return np.arange(total, dtype=np.int64) + offs


def category_queries(purchases: Purchases, catalog: Catalog, history: History, aggregates: CustomerAggregates,
                     start: float, end: float, *, min_candidates: int = 2,
                     weights: np.ndarray | None = None) -> QueryLists:
    """One list per purchase in [start, end) whose category has ``min_candidates``+ sold products.

    Candidates are the category's products sold before the catalogue's ``as_of`` (most popular
    first); a truth new since then stays in the list set as a miss (label row absent).
    """
    lines = purchases.between(start, end)
    sold = [m[catalog.popularity[m] > 0] for m in catalog.cat_members]
    sold_size = np.asarray([len(m) for m in sold], dtype=np.int64)
    sold_off = np.concatenate([[0], np.cumsum(sold_size)])
    sold_flat = np.concatenate(sold) if sold else np.zeros(0, dtype=np.int64)
    cat = catalog.cat_of[lines.product]
    keep = sold_size[cat] >= min_candidates
    cust, day, truth, cat = lines.customer[keep].astype(np.int64), lines.day[keep], lines.product[keep].astype(np.int64), cat[keep]
    sizes = sold_size[cat]
    rows = _ranges(sold_off[cat], sizes)
    product = sold_flat[rows].astype(np.int64)
    label = (product == np.repeat(truth, sizes)).astype(np.float32)
    cat_count, _ = aggregates.category(cust, cat)
    w = np.ones(len(cust), dtype=np.float32) if weights is None else weights[keep].astype(np.float32)
    return QueryLists(cust, day, truth, cat, np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
                      product, label, w, cat_count > 0)


def list_features(queries: QueryLists, catalog: Catalog, history: History, aggregates: CustomerAggregates,
                  chunk_rows: int = 2_000_000, use_embedding: bool = True) -> np.ndarray:
    """Features [R, F] of every candidate row, computed in chunks of whole lists."""
    out = []
    start = 0
    n = len(queries)
    while start < n:
        stop = int(np.searchsorted(queries.offsets, queries.offsets[start] + chunk_rows, side="right")) - 1
        stop = max(stop, start + 1)
        stop = min(stop, n)
        lo, hi = queries.offsets[start], queries.offsets[stop]
        offs = queries.offsets[start:stop + 1] - lo
        rl = np.repeat(np.arange(start, stop), np.diff(queries.offsets[start:stop + 1]))
        out.append(feature_matrix(catalog, history, aggregates, queries.customer[rl], queries.product[lo:hi],
                                  offs, queries.day[rl], None, np.ones(hi - lo, dtype=np.float32),
                                  use_embedding=use_embedding))
        start = stop
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


@dataclass
class TrainingSet:
    """Lists truncated to at most ``max_candidates`` rows (all labelled rows kept), padded on demand."""

    features: np.ndarray  # [R, F]
    label: np.ndarray  # [R]
    offsets: np.ndarray  # [L+1]
    weight: np.ndarray  # [L]

    @classmethod
    def from_lists(cls, queries: QueryLists, features: np.ndarray, max_candidates: int = 48,
                   seed: int = 0) -> "TrainingSet":
        """Keep lists with a labelled row; subsample unlabelled rows of long lists."""
        rng = np.random.default_rng(seed)
        rl = queries.row_list
        labelled = np.bincount(rl, weights=(queries.label != 0).astype(np.float64), minlength=len(queries)) > 0
        # random priority per row: labelled rows first, then random; keep the first max_candidates per list
        prio = np.where(queries.label != 0, -1.0, rng.random(len(rl)))
        order = np.lexsort((prio, rl))
        rank_in_list = np.arange(len(rl)) - queries.offsets[rl[order]]
        keep_rows = order[(rank_in_list < max_candidates) & labelled[rl[order]]]
        keep_rows.sort()
        new_rl = rl[keep_rows]
        sizes = np.bincount(new_rl, minlength=len(queries))[labelled]
        return cls(features[keep_rows], queries.label[keep_rows],
                   np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64), queries.weight[labelled])

    def __len__(self) -> int:
        return len(self.weight)

    def batch(self, lists: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Padded (features [B,N,F], labels [B,N], mask [B,N], weights [B])."""
        sizes = np.diff(self.offsets)[lists]
        n = int(sizes.max())
        b, f = len(lists), self.features.shape[1]
        x = np.zeros((b, n, f), dtype=np.float32)
        y = np.zeros((b, n), dtype=np.float32)
        mask = np.zeros((b, n), dtype=bool)
        rows = _ranges(self.offsets[lists], sizes)
        bi = np.repeat(np.arange(b), sizes)
        ci = np.arange(len(rows)) - np.repeat(np.concatenate([[0], np.cumsum(sizes)[:-1]]), sizes)
        x[bi, ci] = self.features[rows]
        y[bi, ci] = self.label[rows]
        mask[bi, ci] = True
        return (torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(mask),
                torch.from_numpy(self.weight[lists].astype(np.float32)))


def list_loss(scores: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Listwise loss: -log p(positive) for positives, -log(1 - p(negative)) for negatives."""
    scores = scores.masked_fill(~mask, -1e9)
    logp = torch.log_softmax(scores, dim=1)  # [B, N]
    pos = (labels > 0).float()
    neg = (labels < 0).float()
    p = logp.exp().clamp(max=1 - 1e-6)
    per_list = -(pos * logp).sum(1) - (neg * torch.log1p(-p)).sum(1)
    return (weights * per_list).sum() / weights.sum().clamp(min=1e-9)


def train_ranker(examples: TrainingSet, config: RankerConfig | None = None, *, log=print) -> Ranker:
    """Train a ranker on labelled lists; deterministic for a given config.seed."""
    config = config or RankerConfig(n_features=examples.features.shape[1])
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model = Ranker(config)
    model.fit_scaler(examples.features)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    n = len(examples)
    steps = config.epochs * ((n + config.batch_lists - 1) // config.batch_lists)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=max(steps, 1))
    sizes = np.diff(examples.offsets)
    t0 = time.perf_counter()
    for epoch in range(config.epochs):
        # bucket lists by size so padding stays small, shuffle the buckets
        order = np.argsort(sizes + rng.random(n), kind="stable")
        batches = [order[i:i + config.batch_lists] for i in range(0, n, config.batch_lists)]
        rng.shuffle(batches)
        model.train()
        total = 0.0
        for lists in batches:
            x, y, mask, w = examples.batch(lists)
            loss = list_loss(model(x), y, mask, w)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(lists)
        log(f"epoch {epoch + 1}/{config.epochs}: loss {total / max(n, 1):.4f} ({time.perf_counter() - t0:.0f}s)")
    model.eval()
    return model


@torch.no_grad()
def score_rows(model: Ranker, features: np.ndarray, offsets: np.ndarray, batch_lists: int = 2048) -> np.ndarray:
    """Scores [R] of every row of every list."""
    scores = np.zeros(len(features), dtype=np.float32)
    ts = TrainingSet(features, np.zeros(len(features), dtype=np.float32), offsets, np.ones(len(offsets) - 1, dtype=np.float32))
    sizes = np.diff(offsets)
    order = np.argsort(sizes, kind="stable")
    for i in range(0, len(order), batch_lists):
        lists = order[i:i + batch_lists]
        x, _, mask, _ = ts.batch(lists)
        s = model(x).numpy()
        rows = _ranges(offsets[lists], sizes[lists])
        scores[rows] = s[mask.numpy()]
    return scores


def feedback_queries(labels, catalog: Catalog, aggregates: CustomerAggregates,  # noqa: ANN001
                     customer_index: dict[str, int]) -> QueryLists:
    """Lists from logged feedback labels (``voicecart.feedback.Label``), one per request.

    The query is the labelled product's category (the answer's, for a swap), the candidates
    that category's sold products, each labelled row carries its rule's label; the list weight is
    the largest weight of its labels. Labels for unknown customers or products are skipped.
    """
    by_request: dict[str, list] = {}
    for lab in labels:
        if lab.customer_id in customer_index and lab.product_id in catalog.index:
            by_request.setdefault(lab.request_id, []).append(lab)
    cust, day, truth, cats, weights, products, row_labels, sizes = [], [], [], [], [], [], [], []
    for labs in by_request.values():
        anchor = next((lb for lb in labs if lb.source != "swapped_substitute"), labs[0])
        cat = int(catalog.cat_of[catalog.index[anchor.product_id]])
        members = catalog.cat_members[cat]
        members = members[catalog.popularity[members] > 0]
        row_label = np.zeros(len(members), dtype=np.float32)
        for lb in labs:
            hit = np.flatnonzero(members == catalog.index[lb.product_id])
            row_label[hit] = lb.label
        if not row_label.any():
            continue
        pos = np.flatnonzero(row_label > 0)
        cust.append(customer_index[anchor.customer_id])
        day.append(anchor.timestamp.timestamp() / 86_400.0)
        truth.append(int(members[pos[0]]) if len(pos) else -1)
        cats.append(cat)
        weights.append(max(lb.weight for lb in labs))
        products.append(members)
        row_labels.append(row_label)
        sizes.append(len(members))
    customer = np.asarray(cust, dtype=np.int64)
    category = np.asarray(cats, dtype=np.int64)
    cat_count, _ = aggregates.category(customer, category)
    return QueryLists(customer, np.asarray(day, dtype=np.float64), np.asarray(truth, dtype=np.int64), category,
                      np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
                      np.concatenate(products).astype(np.int64) if products else np.zeros(0, dtype=np.int64),
                      np.concatenate(row_labels) if row_labels else np.zeros(0, dtype=np.float32),
                      np.asarray(weights, dtype=np.float32), cat_count > 0)
