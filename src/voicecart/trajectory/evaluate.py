"""`voicecart evaluate cstar`: pre-train C-STAR and its ablations on a time split, embed with it and the
baselines, and score every embedding on the customer tasks by the same code.

Time split at ``test_from`` (Ta-Feng: 2001-02-01; Complete Journey: 2017-11-01, see :data:`SOURCE_DEFAULTS`). Everything unsupervised — pre-training, the baselines'
SVDs — sees only events before it. Profiling probes read embeddings as of ``test_from``. Trajectory
completion trains its head — and picks how much the embedding neighbours count — one month earlier
(history and embeddings as of ``test_from - head_days``, target: the first basket in that month) and is
tested on the first basket on or after ``test_from``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from voicecart.trajectory.baselines import (BagOfCategories, CategoryMean, TreeWassersteinSVD, rhythm_statistics,
                                            subclass_counts)
from voicecart.trajectory.embed import embed_events
from voicecart.trajectory.model import CStar, CStarConfig
from voicecart.trajectory.pretrain import (CHECKPOINT, TrainConfig, plot_losses, pretrain, save_checkpoint,
                                           to_tensors)
from voicecart.trajectory.tasks import (accuracy, blend, bootstrap, completion_scores, cv_estimate,
                                        fit_completion_head, frequency_popularity_scores, history_matrices,
                                        label_ceiling, macro_f1, neighbour_scores, nmi, paired_statistic,
                                        popularity_scores, profiling, ranking_metrics, repeated_profiling)
from voicecart.trajectory.trajectories import (N_SPECIAL, CategoryVocab, Events, as_day, batch_arrays,
                                               first_basket_after)

Progress = Callable[[str, int, int], None]

LABELS = {
    "age_group": "age_group",
    "postal_area": "postal_area",
    "has_kids": "CASE WHEN kids_count IS NULL THEN NULL WHEN kids_count = '0' THEN 'no kids' ELSE 'kids' END",
    "household_size": "household_size",
    "income_band": "CASE WHEN income_band IS NULL THEN NULL WHEN income_band IN ('Under 15K', '15-24K', '25-34K') "
                   "THEN 'under 35K' WHEN income_band IN ('35-49K', '50-74K') THEN '35-74K' ELSE '75K+' END",
}
"""Profiling labels: a customers column, or SQL over them. Complete Journey's 12 income bands become three
(212 / 364 / 225 of the 801 households); kids are "has any" (288 / 513); household size keeps its five values."""

SOURCE_DEFAULTS: dict[str, dict] = {
    "tafeng": {"test_from": datetime(2001, 2, 1), "labels": ("age_group", "postal_area"), "cv_repeats": 1,
               "pretrain_history": None},
    "completejourney": {"test_from": datetime(2017, 11, 1), "labels": ("has_kids", "household_size", "income_band"),
                        "cv_repeats": 10, "pretrain_history": 4096},
}
"""Per dataset: the time split, the labels purchases plausibly carry, how often the probes' stratified folds
are repeated (once on Ta-Feng's ~28,000 labelled customers; ten times on Complete Journey's 801), and how much
history pre-training draws from (Complete Journey: the whole year, see ``EvaluationConfig.pretrain_history``)."""
ALPHAS = (0.0, 0.1, 0.2, 0.4, 0.8)
BETAS = (0.0, 0.25, 0.5, 1.0, 2.0)


@dataclass
class EvaluationConfig:
    test_from: datetime = datetime(2001, 2, 1)
    head_days: int = 31
    model: dict = field(default_factory=dict)  # CStarConfig overrides (dim, n_layers, ...)
    train: TrainConfig = field(default_factory=TrainConfig)
    ablation_epochs: int | None = None  # epochs for coarse-only / fine-only (default: same as full)
    ablations: bool = True
    labels: tuple[str, ...] = ("age_group", "postal_area")  # names of LABELS (or customers columns)
    cv_repeats: int = 1  # > 1: repeated stratified cross-validation with corrected intervals for the probes
    pretrain_history: int | None = None
    """Events of each customer's history pre-training draws its two windows from (None: the embedding window,
    the last ``max_events``). Longer, the random prefix and its next basket come from the whole history and the
    two windows of one customer lie months apart, so agreeing on them asks for what stays the same about a
    household — with 2,469 households (Complete Journey) also many more distinct pre-training examples."""
    seed: int = 0
    holdout: float = 0.2  # share of customers kept out of pre-training; the blend weights are chosen on them
    rolling: bool = True  # choose the blend weights with twins pre-trained only before the head month
    img_dir: Path | None = None  # where the 2-D map and loss curves go
    image_suffix: str = ""  # cstar_map{suffix}.png, cstar_loss{suffix}.png (Ta-Feng: none; Complete Journey: "_cj")
    map_title: str = "C-STAR customer embeddings (t-SNE), Ta-Feng Nov–Jan"


def paired_difference(a: np.ndarray, b: np.ndarray, seed: int = 0) -> dict[str, object]:
    """Mean of a - b over the same customers, with its 95% bootstrap interval."""
    return bootstrap(np.asarray(a, float) - np.asarray(b, float), seed=seed).as_dict()


def encoder_setup(events: Events, cut: datetime, overrides: dict, history: int | None = None
                  ) -> tuple[Events, CategoryVocab, CStarConfig]:
    """The window before ``cut`` (at most ``max_events`` per customer), its category vocabulary (of the last
    ``history`` events when pre-training reads that many), and the model config with ``overrides`` and that
    vocabulary's sizes."""
    base = CStarConfig(1, 1, 1, **overrides)
    window = events.window(cut, max_events=base.max_events)
    seen = events.window(cut, max_events=history) if history else window
    vocab = CategoryVocab.from_paths(seen.l1, seen.l2, seen.l3)
    return window, vocab, replace(base, n_l1=vocab.sizes[0], n_l2=vocab.sizes[1], n_l3=vocab.sizes[2])


def pretraining_holdout(n_customers: int, share: float, seed: int) -> np.ndarray:
    """[C] bool: the customers kept out of pre-training (``EvaluationConfig.holdout``)."""
    return np.random.default_rng(seed).random(n_customers) < share


def customer_labels(con, customer_ids, labels: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Each label (:data:`LABELS`, or a ``customers`` column) for ``customer_ids`` (object arrays, None where
    unknown)."""
    table = con.sql(f"SELECT customer_id, {', '.join(f'{LABELS.get(lab, lab)} AS {lab}' for lab in labels)} "
                    "FROM customers").to_arrow_table()
    ids = table.column("customer_id").to_pylist()
    out = {}
    for lab in labels:
        of = dict(zip(ids, table.column(lab).to_pylist()))
        out[lab] = np.array([of.get(c) for c in customer_ids], dtype=object)
    return out


def evaluate_cstar(con, cfg: EvaluationConfig, *, run_dir: Path | None = None,
                   progress: Progress | None = None) -> dict[str, object]:
    """Run the whole evaluation on a DuckDB connection with the canonical views; returns the report."""
    from voicecart.trajectory.trajectories import load_events

    say = progress or (lambda *_: None)
    t0 = time.perf_counter()
    if cfg.img_dir is not None:
        Path(cfg.img_dir).mkdir(parents=True, exist_ok=True)
    events = load_events(con)
    cut, head_cut = cfg.test_from, cfg.test_from - timedelta(days=cfg.head_days)
    window, vocab, model_cfg = encoder_setup(events, cut, cfg.model, cfg.pretrain_history)
    sizes = vocab.sizes
    enc_test = window.encode(vocab)
    # customers the encoders never train on: the completion blend weights are chosen on their head-month
    # baskets, so a head that memorised the pre-training window's baskets cannot pick its own weight
    holdout = pretraining_holdout(len(window), cfg.holdout, cfg.seed)
    history = cfg.pretrain_history or model_cfg.max_events
    enc_pretrain = events.window(cut, max_events=history).select(np.flatnonzero(~holdout)).encode(vocab)
    head_window = events.window(head_cut, max_events=model_cfg.max_events)
    enc_head_pretrain = events.window(head_cut, max_events=history).select(np.flatnonzero(~holdout)).encode(vocab)
    enc_head = head_window.encode(vocab)
    day_test, day_head = as_day(cut), as_day(head_cut)
    report: dict[str, object] = {"test_from": cut.date().isoformat(), "head_from": head_cut.date().isoformat(),
                                 "customers": len(events), "vocab_sizes": list(sizes),
                                 "pretrain_history": cfg.pretrain_history, "cv_repeats": cfg.cv_repeats,
                                 "model": model_cfg.to_dict(), "train": vars(cfg.train).copy()}

    # ---- encoders: full C-STAR, its ablations, and the same encoder without pre-training
    variants = {"cstar": model_cfg}
    if cfg.ablations:
        variants["coarse_only"] = replace(model_cfg, fine=False)
        variants["fine_only"] = replace(model_cfg, coarse=False)
        variants["graph_fine"] = replace(model_cfg, fine_encoder="graph")
    embeddings: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    pretraining: dict[str, object] = {}
    models: dict[str, CStar] = {}
    head_models: dict[str, CStar] = {}  # the encoders used on the head month (default: the same)
    for name, mcfg in variants.items():
        train = cfg.train if name == "cstar" or cfg.ablation_epochs is None else \
            replace(cfg.train, epochs=cfg.ablation_epochs)
        out = run_dir / name if run_dir is not None else None
        result = pretrain(enc_pretrain, vocab, day_test, mcfg, train, out,
                          on_step=lambda s, n, _r, name=name: say(f"pre-train {name}", s, n))
        models[name] = result.model
        pretraining[name] = {"seconds": round(result.seconds, 1), "trajectories_per_s": round(result.trajectories_per_s, 1),
                             "final_loss": {k: round(v, 4) for k, v in result.history[-1].items()} if result.history else None,
                             "parameters": result.model.num_parameters()}
        if name == "cstar" and cfg.img_dir is not None and result.history:
            plot_losses(result.history, Path(cfg.img_dir) / f"cstar_loss{cfg.image_suffix}.png")
        if cfg.rolling:
            # rolling origin: the completion weights are chosen on the head month with a twin that has
            # seen only what came before it, as the real model has seen only what came before the test
            # month. Tuned with the real model instead, the head month's baskets (seen in pre-training,
            # and January is Chinese New Year) make the next-basket head look better than it transfers.
            twin = pretrain(enc_head_pretrain, vocab, day_head, mcfg, train,
                            run_dir / f"{name}_before_head" if run_dir is not None else None,
                            on_step=lambda s, n, _r, name=name: say(f"pre-train {name} (head-month twin)", s, n))
            head_models[name] = twin.model
    torch.manual_seed(cfg.seed)
    models["no_pretraining"] = CStar(model_cfg).eval()
    if run_dir is not None:  # kept like the pre-trained runs, for the item-resolution comparison
        (run_dir / "no_pretraining").mkdir(parents=True, exist_ok=True)
        save_checkpoint(run_dir / "no_pretraining" / CHECKPOINT, models["no_pretraining"], vocab, None, cfg.train,
                        {"epoch": 0, "batch": 0, "step": 0}, [])
    report["pretraining"] = pretraining
    for name in models:
        head_models.setdefault(name, models[name])
    for name, model in models.items():
        say(f"embed {name}", 0, 1)
        embeddings[name] = (embed_events(head_models[name], enc_head, day_head),
                            embed_events(model, enc_test, day_test))

    # ---- baselines, fitted on the pre-training window, applied to both cut-offs
    dim = model_cfg.dim
    bag = BagOfCategories(sizes[2], dim, cfg.seed)
    for name, baseline in (("bag_of_categories", bag), ("category_mean", CategoryMean(sizes[2], dim, cfg.seed)),
                           ("tree_wasserstein_svd", TreeWassersteinSVD(sizes, dim, cfg.seed))):
        say(f"baseline {name}", 0, 1)
        baseline.fit(enc_test)
        embeddings[name] = (baseline.transform(enc_head), baseline.transform(enc_test))

    # ---- profiling: linear probe + k-means on embeddings as of test_from, customers with history
    label_values = customer_labels(con, enc_test.customer_ids, cfg.labels)
    has_history = enc_test.lengths > 0
    references = label_references(bag, enc_test, day_test)
    profiling_report: dict[str, dict[str, object]] = {}
    for lab in cfg.labels:
        values = label_values[lab]
        rows = np.flatnonzero(has_history & np.array([v is not None for v in values]))
        profiling_report[lab] = {}
        preds: dict[str, np.ndarray] = {}
        clusters: dict[str, np.ndarray] = {}
        y = None
        fold = None
        for name, (_, emb) in embeddings.items():
            say(f"profiling {lab} {name}", 0, 1)
            res = repeated_profiling(emb[rows], values[rows], repeats=cfg.cv_repeats, seed=cfg.seed) \
                if cfg.cv_repeats > 1 else profiling(emb[rows], values[rows], seed=cfg.seed)
            y, preds[name], clusters[name], fold = res.pop("_y"), res.pop("_pred"), res.pop("_clusters"), res.pop("_fold", None)
            profiling_report[lab][name] = res
        for other, key in (("no_pretraining", "pretraining_gain"), ("bag_of_categories", "gain_over_bag_of_categories")):
            if fold is not None:  # the same repeated folds for both embeddings (same seeds, same customers)
                gain = {"accuracy": cv_estimate(accuracy, y, preds["cstar"], fold, preds[other]).as_dict(),
                        "macro_f1": cv_estimate(macro_f1, y, preds["cstar"], fold, preds[other]).as_dict()}
            else:
                gain = {"accuracy": paired_difference(preds["cstar"] == y, preds[other] == y, cfg.seed),
                        "macro_f1": paired_statistic(macro_f1, y, preds["cstar"], preds[other], seed=cfg.seed).as_dict()}
            gain["nmi"] = paired_statistic(nmi, y, clusters["cstar"], clusters[other], n=100, seed=cfg.seed).as_dict()
            profiling_report[lab][key] = gain
        say(f"profiling {lab} references", 0, 1)
        profiling_report[lab]["references"] = label_ceiling({k: v[rows] for k, v in references.items()}, values[rows],
                                                            seed=cfg.seed, repeats=cfg.cv_repeats)
    report["profiling"] = profiling_report

    # ---- trajectory completion: first basket after the cut-off
    report["completion"] = completion_task(events, vocab, enc_head, enc_test, day_head, day_test,
                                           head_cut, cut, embeddings, cfg.seed, say, models=models,
                                           head_models=head_models, tune_on=holdout)
    report["completion"]["rolling_origin"] = cfg.rolling
    report["masked_hit_rate"] = masked_hit_rate(models, events, vocab, cut, model_cfg.max_events, cfg.seed)
    if cfg.img_dir is not None:
        lab = cfg.labels[0]
        plot_map(embeddings["cstar"][1][has_history], label_values[lab][has_history],
                 Path(cfg.img_dir) / f"cstar_map{cfg.image_suffix}.png", cfg.seed, title=cfg.map_title, legend=lab)
    report["seconds"] = round(time.perf_counter() - t0, 1)
    return report


REFERENCE_NAMES = {
    "tfidf_all_subclasses": "TF-IDF of every subclass, uncompressed",
    "rhythm_statistics": "shopping-rhythm statistics (weekdays, baskets, sizes, gaps)",
    "bag_and_rhythm": "bag of categories + rhythm statistics",
}


def label_references(bag: BagOfCategories, enc, as_of_day: float) -> dict[str, object]:
    """Features that are not embeddings, to read how much a label is written in the purchases at all:
    the fitted bag of categories uncompressed (its TF-IDF of every subclass, sparse), the hand-made rhythm
    numbers, and the bag-of-categories embedding with them."""
    rhythm_stats = rhythm_statistics(enc, as_of_day)
    return {"tfidf_all_subclasses": bag.weights(enc), "rhythm_statistics": rhythm_stats,
            "bag_and_rhythm": np.hstack([bag.transform(enc), rhythm_stats])}


def completion_task(events: Events, vocab: CategoryVocab, enc_head, enc_test, day_head: float, day_test: float,
                    head_cut: datetime, cut: datetime, embeddings: dict[str, tuple[np.ndarray, np.ndarray]],
                    seed: int, say: Progress, k: int = 50, models: dict[str, CStar] | None = None,
                    tune_on: np.ndarray | None = None, head_models: dict[str, CStar] | None = None
                    ) -> dict[str, object]:
    """First basket after each cut-off. Every embedding enters through its neighbours' purchases; a C-STAR
    encoder also through its pre-trained next-basket head. Both weights are chosen on the head month, on
    the customers of ``tune_on`` (a bool mask over customers; default all), with ``head_models[name]``'s
    next-basket head there (default: ``models[name]``; the embeddings' head-month half must match)."""
    n_l3 = vocab.sizes[2]
    index = {c: i for i, c in enumerate(enc_test.customer_ids)}
    head_models = head_models or models

    def split(enc, start, end, day):
        targets = first_basket_after(events, start, end)
        rows = np.array([index[c] for c in targets if enc.lengths[index[c]] > 0], dtype=np.int64)
        t = [vocab.encode(2, np.array(sorted(targets[enc_test.customer_ids[r]]), dtype=object)) for r in rows]
        counts, last = history_matrices(enc, rows, day, n_l3)
        return rows, t, counts, last

    h_rows, h_t, h_counts, h_last = split(enc_head, head_cut, cut, day_head)
    tune = np.flatnonzero(tune_on[h_rows]) if tune_on is not None else np.arange(len(h_rows))
    tune_t = [h_t[i] for i in tune]
    t_rows, t_t, t_counts, t_last = split(enc_test, cut, None, day_test)
    pop_head = np.bincount(enc_head.l3, minlength=n_l3).astype(np.float64)
    pop = np.bincount(enc_test.l3, minlength=n_l3).astype(np.float64)
    results: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    results["popularity"] = ranking_metrics(popularity_scores(pop, len(t_rows)).copy(), t_t)
    results["frequency_popularity"] = ranking_metrics(frequency_popularity_scores(t_counts, pop), t_t)
    say("completion head", 0, 1)
    head = fit_completion_head(h_counts, h_last, h_t, pop_head, seed=seed)
    base_head = completion_scores(head, h_counts, h_last, pop_head)
    base_test = completion_scores(head, t_counts, t_last, pop)
    results["head_without_embedding"] = ranking_metrics(base_test, t_t)
    pools = {}
    for key, enc in (("head", enc_head), ("test", enc_test)):
        pool = np.flatnonzero(enc.lengths > 0)
        pools[key] = (pool, subclass_counts(enc, n_l3)[pool].toarray().astype(np.float32),
                      {r: i for i, r in enumerate(pool)})
    alphas: dict[str, float] = {}
    for name, (emb_head, emb_test) in embeddings.items():
        say(f"completion {name}", 0, 1)
        neigh = {}
        for key, emb, rows in (("head", emb_head, h_rows), ("test", emb_test, t_rows)):
            pool, counts, pos = pools[key]
            neigh[key] = neighbour_scores(emb[rows], emb[pool], counts, k, np.array([pos[r] for r in rows]))
        nxt_tune, nxt_test, betas = 0.0, 0.0, (0.0,)  # embeddings without a next-basket head
        if models is not None and name in models:
            nxt_tune = next_basket_scores(head_models[name], emb_head[h_rows[tune]])
            nxt_test = next_basket_scores(models[name], emb_test[t_rows])
            betas = BETAS
        # the blend weights are chosen on the training month, never on the test month
        alpha, beta = max(((a, b) for a in ALPHAS for b in betas), key=lambda ab: ranking_metrics(
            blend(base_head[tune], neigh["head"][tune], ab[0]) + ab[1] * nxt_tune, tune_t)[0].mean())
        alphas[name] = {"neighbours": alpha, "next_basket": beta}
        results[name] = ranking_metrics(blend(base_test, neigh["test"], alpha) + beta * nxt_test, t_t)
    out: dict[str, object] = {"train_customers": int(len(h_rows)), "tune_customers": int(len(tune)),
                              "test_customers": int(len(t_rows)),
                              "neighbours": k, "blend_weight": alphas}
    for name, (rec, ndcg) in results.items():
        out[name] = {"recall@10": bootstrap(rec, seed=seed).as_dict(), "ndcg@10": bootstrap(ndcg, seed=seed).as_dict()}
    ref = results["cstar"][0]
    out["gain_recall@10"] = {other: paired_difference(ref, results[other][0], seed)
                             for other in results if other != "cstar"}
    return out


@torch.no_grad()
def next_basket_scores(model: CStar, embeddings: np.ndarray) -> np.ndarray:
    """[R, n_l3] log-probabilities of the pre-trained next-basket head (specials at a large negative)."""
    logits = model.predict_next(torch.from_numpy(np.ascontiguousarray(embeddings)))
    logits[:, :N_SPECIAL] = -1e4
    return torch.log_softmax(logits, dim=1).numpy()


@torch.no_grad()
def masked_hit_rate(models: dict[str, CStar], events: Events, vocab: CategoryVocab, cut: datetime,
                    max_events: int, seed: int, n_customers: int = 3000) -> dict[str, object]:
    """Held-out (in time) trajectories: mask the events after ``cut`` and ask the pre-trained head for
    them; top-10 hit rate, against the top-10 most popular subclasses."""
    window = events.window(as_day(cut) + 28.0, max_events=max_events)
    enc = window.encode(vocab)
    rng = np.random.default_rng(seed)
    after = np.array([bool((enc.day[s:e] >= as_day(cut)).any() and (enc.day[s:e] < as_day(cut)).any())
                      for s, e in zip(enc.offsets[:-1], enc.offsets[1:])])
    rows = np.flatnonzero(after)
    rows = np.sort(rng.choice(rows, min(n_customers, len(rows)), replace=False))
    pop_top = np.argsort(-np.bincount(enc.l3, minlength=vocab.sizes[2]))[:10]
    out: dict[str, object] = {"customers": int(len(rows))}
    hits: dict[str, list[np.ndarray]] = {"popularity": []}
    for name in models:
        hits[name] = []
    for s in range(0, len(rows), 256):
        arr = batch_arrays(enc, rows[s:s + 256], as_of_day=as_day(cut) + 28.0, max_events=max_events)
        day = np.zeros_like(arr["l1"], dtype=np.float64)
        for i, r in enumerate(rows[s:s + 256]):
            n = int(arr["valid"][i].sum())
            day[i, :n] = enc.day[enc.offsets[r + 1] - n:enc.offsets[r + 1]]
        masked = torch.from_numpy(arr["valid"] & (day >= as_day(cut)) & (arr["l3"] > 2))
        x = to_tensors(arr)
        xm = dict(x)
        for k in ("l1", "l2", "l3"):
            xm[k] = x[k].masked_fill(masked, 2)
        truth = x["l3"][masked]
        hits["popularity"].append(np.isin(truth.numpy(), pop_top))
        for name, model in models.items():
            if model.predict_l3 is None:
                continue
            _, states = model.encode(xm)
            top = model.predict_l3(states[masked]).topk(10, dim=-1).indices
            hits[name].append((top == truth[:, None]).any(1).numpy())
    for name, h in hits.items():
        if h:
            out[name] = bootstrap(np.concatenate(h), seed=seed).as_dict()
    return out


def plot_map(embeddings: np.ndarray, labels: np.ndarray, path: Path, seed: int = 0, n: int = 4000,
             title: str = "C-STAR customer embeddings (t-SNE)", legend: str = "age group") -> Path:
    """2-D map (PCA to 30, then t-SNE) of a sample of customers, coloured by a label (age group)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    rng = np.random.default_rng(seed)
    keep = np.flatnonzero(np.array([v is not None for v in labels]))
    keep = rng.choice(keep, min(n, len(keep)), replace=False)
    x = PCA(min(30, embeddings.shape[1]), random_state=seed).fit_transform(embeddings[keep])
    xy = TSNE(2, random_state=seed, init="pca", perplexity=30).fit_transform(x)
    lab = labels[keep].astype(str)
    fig, ax = plt.subplots(figsize=(7, 6))
    groups = sorted(set(lab), key=lambda g: (not g.startswith("<"), g.startswith(">"), g))  # "<25" ... ">65"
    for i, g in enumerate(groups):
        m = lab == g
        ax.scatter(xy[m, 0], xy[m, 1], s=3, alpha=0.6, label=g, color=plt.cm.viridis(i / max(1, len(set(lab)) - 1)))
    ax.legend(markerscale=4, fontsize=7, title=legend.replace("_", " "))
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


METHOD_NAMES = {
    "cstar": "C-STAR (coarse + fine, pre-trained)", "coarse_only": "coarse only (pre-trained)",
    "fine_only": "fine only (pre-trained)", "graph_fine": "coarse + transition-graph fine encoder (pre-trained)", "no_pretraining": "C-STAR without pre-training",
    "bag_of_categories": "bag of categories (TF-IDF + SVD)", "category_mean": "mean of category vectors (item2vec-style)",
    "tree_wasserstein_svd": "linear tree-Wasserstein embedding (SVD)", "popularity": "popularity",
    "frequency_popularity": "personal frequency + popularity", "head_without_embedding": "completion head, no embedding",
}


def report_markdown(report: dict) -> str:
    """The evaluation report as markdown tables (value [95% CI])."""
    def ci(e: dict) -> str:
        return f"{e['value']:.4f} [{e['ci95'][0]:.4f}, {e['ci95'][1]:.4f}]"

    out = []
    comp = report["completion"]
    out += [f"**Trajectory completion** — subclasses of the first basket on or after {report['test_from']} "
            f"({comp['test_customers']:,} customers; head trained on {comp['train_customers']:,} customers' "
            f"first basket from {report['head_from']}, blend weights chosen on the {comp.get('tune_customers', 0):,} "
            f"of them kept out of pre-training):", "",
            "| method | Recall@10 | NDCG@10 | neighbour weight | next-basket head weight |", "|---|---|---|---|---|"]
    for name, v in comp.items():
        if isinstance(v, dict) and "recall@10" in v:
            w = comp.get("blend_weight", {}).get(name, {})
            w = w if isinstance(w, dict) else {"neighbours": w}
            out.append(f"| {METHOD_NAMES.get(name, name)} | {ci(v['recall@10'])} | {ci(v['ndcg@10'])} | "
                       f"{w.get('neighbours', '')} | {w.get('next_basket', '')} |")
    out += ["", "Paired difference in Recall@10, C-STAR minus each method (same customers, 95% bootstrap CI):", "",
            "| vs | difference |", "|---|---|"]
    out += [f"| {METHOD_NAMES.get(k, k)} | {ci(v)} |" for k, v in comp["gain_recall@10"].items()]
    for lab, d in report["profiling"].items():
        first = next(v for v in d.values() if isinstance(v, dict) and "classes" in v)
        folds = (f"{first['repeats']} x {first['folds']}-fold stratified cross-validation, intervals: corrected "
                 "repeated k-fold t" if first.get("repeats", 1) > 1 else f"cross-fitted over {first['folds']} folds")
        out += ["", f"**Profiling: {lab}** ({first['classes']} classes, {first['customers']:,} customers, linear probe "
                f"{folds}; majority class {first['majority']:.3f}):", "",
                "| embedding | accuracy | macro-F1 | k-means NMI |", "|---|---|---|---|"]
        for name, v in d.items():
            if isinstance(v, dict) and "classes" in v:
                out.append(f"| {METHOD_NAMES.get(name, name)} | {ci(v['accuracy'])} | {ci(v['macro_f1'])} | "
                           f"{ci(v['nmi'])} |")
        pre, boc = d["pretraining_gain"], d["gain_over_bag_of_categories"]
        out += ["", f"C-STAR minus the same encoder without pre-training (paired): accuracy {ci(pre['accuracy'])}, "
                f"macro-F1 {ci(pre['macro_f1'])}" + (f", NMI {ci(pre['nmi'])}" if "nmi" in pre else "")
                + f"; minus bag of categories: accuracy {ci(boc['accuracy'])}, macro-F1 {ci(boc['macro_f1'])}"
                + (f", NMI {ci(boc['nmi'])}" if "nmi" in boc else "") + "."]
        if d.get("references"):
            out += ["", f"How much of {lab} the purchases carry at all — the same probe on features that are not "
                    "embeddings:", "", "| reference features | features | accuracy | macro-F1 |", "|---|---|---|---|"]
            out += [f"| {REFERENCE_NAMES.get(k, k)} | {v['features']:,} | {ci(v['accuracy'])} | {ci(v['macro_f1'])} |"
                    for k, v in d["references"].items()]
    m = report["masked_hit_rate"]
    out += ["", f"**Masked categories on held-out events** (the 4 weeks from {report['test_from']}, {m['customers']:,} "
            "customers): top-10 hit rate",
            "", "| method | hit@10 |", "|---|---|"]
    out += [f"| {METHOD_NAMES.get(k, k)} | {ci(v)} |" for k, v in m.items() if isinstance(v, dict)]
    res = report.get("resolution")
    if res:
        out += ["", f"**Item resolution** — the ranker of `voicecart.ranking` on its category-query protocol "
                f"({res['queries']:,} February queries), trained and tested with and without the C-STAR feature:", "",
                "| ranker | HR@1 |", "|---|---|"]
        for key, label in (("without_embedding", "without embedding"), ("with_embedding", "with C-STAR embedding"),
                           ("with_no_pretraining", "with the embedding of the encoder without pre-training")):
            if key in res:
                h = res[key]["hr@1"]
                out.append(f"| {label} | {h['value']:.4f} [{h['low']:.4f}, {h['high']:.4f}] |")
        out += ["", f"HR@1 gain from the embedding (paired): {ci(res['hr@1_gain'])}."]
        if "hr@1_gain_over_no_pretraining" in res:
            out[-1] += f" Over the embedding without pre-training: {ci(res['hr@1_gain_over_no_pretraining'])}."
    pre = report["pretraining"]
    out += ["", "**Pre-training** (this run):", "", "| encoder | epochs | seconds | trajectories/s | parameters |",
            "|---|---|---|---|---|"]
    for name, v in pre.items():
        ep = v["final_loss"]["epoch"] if v.get("final_loss") else ""
        out.append(f"| {METHOD_NAMES.get(name, name)} | {ep:g} | {v['seconds']} | {v['trajectories_per_s']} | "
                   f"{v['parameters']:,} |")
    return "\n".join(out)
