"""The customer tasks C-STAR embeddings are judged on, each a small head on frozen embeddings.

* profiling: a linear probe (logistic regression) predicting a customer label, accuracy and macro-F1,
  and k-means clusters scored by NMI against the label;
* trajectory completion: the subclasses of the customer's next basket, Recall@10 and NDCG@10, from a
  small scorer over personal purchase statistics and popularity, blended with what the customer's
  nearest neighbours in embedding space buy (the blend weight chosen on the training month).

Every metric comes with a 95% bootstrap interval over customers; differences between two methods are
bootstrapped on the same resamples (paired). With few labelled customers (Complete Journey: 801
households) the probes run repeated stratified cross-validation instead, and the interval is the
corrected repeated k-fold t interval (Nadeau & Bengio 2003; Bouckaert & Frank 2004) over the R x K
test folds, which accounts for the folds sharing training customers.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from voicecart.trajectory.trajectories import N_SPECIAL, EncodedEvents


# --------------------------------------------------------------------------------------------- intervals

@dataclass
class Estimate:
    value: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return {"value": round(self.value, 4), "ci95": [round(self.low, 4), round(self.high, 4)]}


def bootstrap(per_customer: np.ndarray, n: int = 1000, seed: int = 0) -> Estimate:
    """Mean of a per-customer metric with a 95% percentile bootstrap interval."""
    x = np.asarray(per_customer, dtype=np.float64)
    idx = np.random.default_rng(seed).integers(0, len(x), (n, len(x)))
    means = x[idx].mean(1)
    return Estimate(float(x.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5)))


def bootstrap_statistic(stat, arrays: tuple[np.ndarray, ...], n: int = 300, seed: int = 0) -> Estimate:
    """Any statistic of row-aligned arrays (e.g. macro-F1, NMI), bootstrapped over rows."""
    rng = np.random.default_rng(seed)
    m = len(arrays[0])
    vals = [stat(*(a[idx] for a in arrays)) for idx in (rng.integers(0, m, m) for _ in range(n))]
    return Estimate(float(stat(*arrays)), float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5)))


# --------------------------------------------------------------------------------------------- profiling

def profiling(embeddings: np.ndarray, labels: np.ndarray, *, seed: int = 0, folds: int = 5) -> dict[str, object]:
    """Linear probe (accuracy, macro-F1) and k-means NMI for one label.

    The probe's predictions are cross-fitted: ``folds`` stratified folds, each customer predicted by the
    probe trained on the other folds, so every customer is a test customer once and two embeddings are
    compared on all customers (paired), not on a 20% sample."""
    from sklearn.cluster import KMeans
    from sklearn.preprocessing import StandardScaler

    labels = np.asarray(labels, dtype=object).astype(str)
    classes, y = np.unique(labels, return_inverse=True)
    pred, majority = probe_predictions(embeddings, y, seed=seed, folds=folds)
    clusters = KMeans(len(classes), n_init=3, random_state=seed).fit_predict(
        StandardScaler().fit_transform(embeddings))
    return {
        "classes": len(classes), "customers": int(len(y)), "folds": folds,
        "majority": round(float((y == majority).mean()), 4),
        "accuracy": bootstrap(pred == y, seed=seed).as_dict(),
        "macro_f1": bootstrap_statistic(macro_f1, (y, pred), seed=seed).as_dict(),
        "nmi": bootstrap_statistic(nmi, (y, clusters), n=100, seed=seed).as_dict(),
        "_y": y, "_pred": pred, "_clusters": clusters,
    }


def repeated_profiling(embeddings: np.ndarray, labels: np.ndarray, *, repeats: int, seed: int = 0,
                       folds: int = 5) -> dict[str, object]:
    """:func:`profiling` with ``repeats`` repetitions of the stratified folds (each its own shuffle):
    accuracy and macro-F1 as the mean over the R x K test folds with the corrected repeated-CV interval;
    k-means NMI as in :func:`profiling`. ``_pred`` and ``_fold`` are [R, N] for paired comparisons."""
    from sklearn.cluster import KMeans
    from sklearn.preprocessing import StandardScaler

    labels = np.asarray(labels, dtype=object).astype(str)
    classes, y = np.unique(labels, return_inverse=True)
    pred, fold, majority = repeated_probe_predictions(embeddings, y, repeats=repeats, seed=seed, folds=folds)
    clusters = KMeans(len(classes), n_init=3, random_state=seed).fit_predict(
        StandardScaler().fit_transform(embeddings))
    return {
        "classes": len(classes), "customers": int(len(y)), "folds": folds, "repeats": repeats,
        "majority": round(float(cv_estimate(accuracy, y, majority, fold).value), 4),
        "accuracy": cv_estimate(accuracy, y, pred, fold).as_dict(),
        "macro_f1": cv_estimate(macro_f1, y, pred, fold).as_dict(),
        "nmi": bootstrap_statistic(nmi, (y, clusters), n=100, seed=seed).as_dict(),
        "_y": y, "_pred": pred, "_fold": fold, "_clusters": clusters,
    }


def repeated_probe_predictions(features, y: np.ndarray, *, repeats: int, seed: int = 0, folds: int = 5
                               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """[R, N] cross-fitted probe predictions, the test fold of each customer, and the training folds'
    majority class, for ``repeats`` shuffles of the stratified folds (seeds ``seed``, ``seed + 1``, ...)."""
    out = [probe_predictions(features, y, seed=seed + r, folds=folds, with_folds=True) for r in range(repeats)]
    return tuple(np.stack([o[i] for o in out]) for i in (0, 2, 1))  # type: ignore[return-value]


def accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    return float((y == pred).mean())


def cv_estimate(stat, y: np.ndarray, pred: np.ndarray, fold: np.ndarray, other: np.ndarray | None = None
                ) -> Estimate:
    """Mean over the R x K test folds of ``stat(y, pred)`` (minus ``stat(y, other)`` when given: paired, the
    same folds) with the corrected repeated k-fold t interval: variance (1/(RK) + n_test/n_train) s^2."""
    from scipy.stats import t as student

    scores = []
    for r in range(pred.shape[0]):
        for k in np.unique(fold[r]):
            test = fold[r] == k
            value = stat(y[test], pred[r, test])
            scores.append(value - stat(y[test], other[r, test]) if other is not None else value)
    scores = np.asarray(scores)
    n_test = len(y) / len(np.unique(fold[0]))
    corrected = (1.0 / len(scores) + n_test / (len(y) - n_test)) * scores.var(ddof=1) if len(scores) > 1 else 0.0
    half = student.ppf(0.975, max(len(scores) - 1, 1)) * np.sqrt(corrected)
    return Estimate(float(scores.mean()), float(scores.mean() - half), float(scores.mean() + half))


def probe_predictions(features, y: np.ndarray, *, seed: int = 0, folds: int = 5, with_folds: bool = False):  # noqa: ANN201
    """Cross-fitted predictions of the linear probe (and of the training folds' majority class; with
    ``with_folds``, also each customer's test fold).

    ``features``: dense (standardised first) or scipy-sparse (already normalised, e.g. TF-IDF rows)."""
    import scipy.sparse as sp
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pred = np.zeros(len(y), np.int64)
    majority = np.zeros(len(y), np.int64)
    fold = np.zeros(len(y), np.int64)
    splits = StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)
    with one_blas_thread():  # L-BFGS on a small problem: more BLAS threads only cost (5x slower on a busy machine)
        for k, (tr, te) in enumerate(splits):
            probe = LogisticRegression(max_iter=300, C=0.5)
            if not sp.issparse(features):
                probe = make_pipeline(StandardScaler(), probe)
            probe.fit(features[tr], y[tr])
            pred[te] = probe.predict(features[te])
            majority[te] = np.bincount(y[tr]).argmax()
            fold[te] = k
    return (pred, majority, fold) if with_folds else (pred, majority)


@functools.cache
def _threadpools():  # noqa: ANN202 - scanning the loaded libraries takes ~0.1 s: once per process
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def one_blas_thread():  # noqa: ANN201
    """A context in which BLAS runs on one thread."""
    return _threadpools().limit(limits=1, user_api="blas")


def label_ceiling(references: dict[str, object], labels: np.ndarray, *, seed: int = 0, folds: int = 5,
                  repeats: int = 1) -> dict[str, dict[str, object]]:
    """How much of a label the purchase history itself carries: the same probe on reference features that
    are not embeddings (every subclass's TF-IDF without compression, shopping-rhythm statistics, both).
    An embedding cannot be expected to beat the best of these by much. ``repeats`` > 1: repeated
    cross-validation with corrected intervals, as :func:`repeated_profiling`."""
    y = np.unique(np.asarray(labels, dtype=object).astype(str), return_inverse=True)[1]
    out = {}
    for name, features in references.items():
        if repeats > 1:
            pred, fold, _ = repeated_probe_predictions(features, y, repeats=repeats, seed=seed, folds=folds)
            out[name] = {"accuracy": cv_estimate(accuracy, y, pred, fold).as_dict(),
                         "macro_f1": cv_estimate(macro_f1, y, pred, fold).as_dict(), "features": int(features.shape[1])}
            continue
        pred, _ = probe_predictions(features, y, seed=seed, folds=folds)
        out[name] = {"accuracy": bootstrap(pred == y, seed=seed).as_dict(),
                     "macro_f1": bootstrap_statistic(macro_f1, (y, pred), seed=seed).as_dict(),
                     "features": int(features.shape[1])}
    return out


def macro_f1(y: np.ndarray, pred: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y, pred, average="macro", zero_division=0))


def nmi(y: np.ndarray, clusters: np.ndarray) -> float:
    from sklearn.metrics import normalized_mutual_info_score

    return float(normalized_mutual_info_score(y, clusters))


def paired_statistic(stat, y: np.ndarray, a: np.ndarray, b: np.ndarray, n: int = 300, seed: int = 0) -> Estimate:
    """stat(y, a) - stat(y, b) with a bootstrap interval over the same resampled rows (paired)."""
    return bootstrap_statistic(lambda y_, a_, b_: stat(y_, a_) - stat(y_, b_), (y, a, b), n=n, seed=seed)


# --------------------------------------------------------------------------------------------- completion

def history_matrices(events: EncodedEvents, rows: np.ndarray, as_of_day: float, n_l3: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """[R, n_l3] basket counts and days since the last basket with each subclass (inf if never)."""
    counts = np.zeros((len(rows), n_l3), np.float32)
    last = np.full((len(rows), n_l3), np.inf, np.float32)
    for i, r in enumerate(rows):
        s, e = events.offsets[r], events.offsets[r + 1]
        l3, day = events.l3[s:e], events.day[s:e]
        np.add.at(counts[i], l3, 1.0)
        np.minimum.at(last[i], l3, (as_of_day - day).astype(np.float32))
    counts[:, :N_SPECIAL] = 0
    last[:, :N_SPECIAL] = np.inf
    return counts, last


def ranking_metrics(scores: np.ndarray, targets: list[np.ndarray], k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Per-customer Recall@k and NDCG@k; targets are arrays of subclass ids (UNK ids count as misses)."""
    top = np.argsort(-scores, axis=1)[:, :k]
    recall, ndcg = np.zeros(len(targets)), np.zeros(len(targets))
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    for i, t in enumerate(targets):
        hit = np.isin(top[i], t)
        recall[i] = hit.sum() / max(len(t), 1)
        ndcg[i] = (hit * discounts).sum() / discounts[:min(len(t), k)].sum()
    return recall, ndcg


def _features(counts: np.ndarray, last: np.ndarray) -> torch.Tensor:
    """[R, n_l3, F] personal features of each (customer, subclass)."""
    c = torch.from_numpy(counts)
    d = torch.from_numpy(np.where(np.isinf(last), 1e4, last))
    share = c / c.sum(1, keepdim=True).clamp(min=1.0)
    return torch.stack([torch.log1p(c), (c > 0).float(), share, torch.exp(-d / 7), torch.exp(-d / 30),
                        torch.exp(-d / 7) * torch.log1p(c)], dim=-1)


def popularity_prior(popularity: np.ndarray) -> torch.Tensor:
    """Standardised log popularity of each subclass as of a cut-off (specials get -inf later)."""
    prior = np.log1p(np.asarray(popularity, dtype=np.float64))
    prior = (prior - prior[N_SPECIAL:].mean()) / (prior[N_SPECIAL:].std() + 1e-6)
    return torch.from_numpy(prior.astype(np.float32))


class CompletionHead(torch.nn.Module):
    """score(customer, subclass) = personal features · w + a · popularity prior.

    Starts as "personal frequency first, popularity after". The prior is the popularity *as of the
    cut-off*, not learned per subclass: a per-subclass bias (or a learned map from the embedding onto
    subclasses) memorises the training month's seasonal shifts — January holds Chinese New Year — and
    lost recall in February when we tried it. The embedding enters through :func:`neighbour_scores`.
    """

    def __init__(self, n_features: int = 6) -> None:
        super().__init__()
        self.personal = torch.nn.Linear(n_features, 1)
        with torch.no_grad():
            self.personal.weight.zero_()
            self.personal.weight[0, 0] = 4.0  # log1p(count)
            self.personal.bias.zero_()
        self.prior_scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, feats: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        return self.personal(feats).squeeze(-1) + self.prior_scale * prior  # [R, n_l3]


def fit_completion_head(counts: np.ndarray, last: np.ndarray, targets: list[np.ndarray], popularity: np.ndarray,
                        *, epochs: int = 2, seed: int = 0, lr: float = 0.01) -> CompletionHead:
    """Train the head to put the next basket's subclasses on top (softmax over subclasses, multi-target)."""
    torch.manual_seed(seed)
    head = CompletionHead()
    feats = _features(counts, last)
    prior = popularity_prior(popularity)
    target = torch.zeros(counts.shape)
    for i, t in enumerate(targets):
        target[i, t[t >= N_SPECIAL]] = 1.0
    keep = target.sum(1) > 0
    target = target / target.sum(1, keepdim=True).clamp(min=1.0)
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    idx_all = torch.nonzero(keep).squeeze(1)
    for _ in range(epochs):
        for batch in idx_all[torch.randperm(len(idx_all), generator=gen)].split(256):
            logits = head(feats[batch], prior)
            logits[:, :N_SPECIAL] = -1e9
            loss = -(target[batch] * F.log_softmax(logits, dim=1)).sum(1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    head.eval()
    return head


@torch.no_grad()
def completion_scores(head: CompletionHead, counts: np.ndarray, last: np.ndarray, popularity: np.ndarray
                      ) -> np.ndarray:
    """[R, n_l3] scores, with the popularity as of this cut-off."""
    scores = head(_features(counts, last), popularity_prior(popularity)).numpy()
    scores[:, :N_SPECIAL] = -np.inf
    return scores


def popularity_scores(counts_all: np.ndarray, n_rows: int) -> np.ndarray:
    pop = counts_all.astype(np.float64).copy()
    pop[:N_SPECIAL] = -np.inf
    return np.broadcast_to(pop, (n_rows, len(pop)))


def frequency_popularity_scores(counts: np.ndarray, pop: np.ndarray) -> np.ndarray:
    """Personal basket count first, popularity breaks ties (the issue's 'personal frequency + popularity')."""
    p = pop.astype(np.float64)
    tie = p / (p[N_SPECIAL:].max() + 1.0)
    s = counts + tie[None, :]
    s[:, :N_SPECIAL] = -np.inf
    return s


def neighbour_scores(query: np.ndarray, pool: np.ndarray, pool_counts: np.ndarray, k: int = 50,
                     exclude_self: np.ndarray | None = None) -> np.ndarray:
    """[R, n_l3] what the ``k`` nearest customers in embedding space (cosine) bought, as a share of their
    baskets: the embedding used as a similarity, the way the structural objective shapes it."""
    q = query / (np.linalg.norm(query, axis=1, keepdims=True) + 1e-9)
    p = pool / (np.linalg.norm(pool, axis=1, keepdims=True) + 1e-9)
    share = pool_counts / np.maximum(pool_counts.sum(1, keepdims=True), 1.0)
    out = np.zeros((len(q), pool_counts.shape[1]), np.float32)
    for s in range(0, len(q), 2048):
        sim = q[s:s + 2048] @ p.T  # [r, P]
        if exclude_self is not None:
            sim[np.arange(sim.shape[0]), exclude_self[s:s + 2048]] = -np.inf
        top = np.argpartition(-sim, k, axis=1)[:, :k]
        out[s:s + 2048] = share[top].mean(1)
    return out


def blend(base: np.ndarray, neighbours: np.ndarray, alpha: float) -> np.ndarray:
    """Base scores plus ``alpha`` x log neighbour share (a smoothed, customer-specific popularity)."""
    return base + alpha * np.log(neighbours + 1e-4)
