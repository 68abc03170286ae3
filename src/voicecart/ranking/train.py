"""THE ranker trainer: labelled lists from a feature snapshot -> a fitted :class:`Ranker`.

:func:`train_ranker` is the one training entry point (CLI, pipeline, evaluation, tests): every purchased
line in [start, end) becomes a list featurized from the snapshot as of its own moment, logged feedback
becomes lists by ``voicecart.feedback``'s rules next to them, product vectors are fit at each cut of the
snapshot (a list uses the latest cut at or before its moment, never its future), and the MLP is fit on
the lists with a listwise loss, on CUDA when the machine has it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from voicecart.devices import resolve_device
from voicecart.ranking.catalog import Catalog, ProductVectors
from voicecart.ranking.lists import QueryLists, SnapshotIndex, concat_offsets, feedback_lists, list_features, ranges, walk
from voicecart.ranking.model import Ranker, RankerConfig
from voicecart.ranking.vectors import fit_vectors
from voicecart.schemas.times import DAY_S, epoch_array, epoch_s, midnight


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
        prio = np.where(queries.label != 0, -1.0, rng.random(len(rl)))  # labelled rows first, then random
        order = np.lexsort((prio, rl))
        rank_in_list = np.arange(len(rl)) - queries.offsets[rl[order]]
        keep_rows = order[(rank_in_list < max_candidates) & labelled[rl[order]]]
        keep_rows.sort()
        sizes = np.bincount(rl[keep_rows], minlength=len(queries))[labelled]
        return cls(features[keep_rows], queries.label[keep_rows],
                   np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64), queries.weight[labelled])

    @classmethod
    def concat(cls, parts: Sequence["TrainingSet"]) -> "TrainingSet":
        return cls(np.concatenate([p.features for p in parts]), np.concatenate([p.label for p in parts]),
                   concat_offsets([p.offsets for p in parts]), np.concatenate([p.weight for p in parts]))

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
        rows = ranges(self.offsets[lists], sizes)
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


def fit(examples: TrainingSet, config: RankerConfig | None = None, *, log: Callable[[str], None] = print) -> Ranker:
    """Fit the MLP on labelled lists; deterministic for a given config.seed on one device."""
    config = config or RankerConfig(n_features=examples.features.shape[1])
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model = Ranker(config)
    model.fit_scaler(examples.features)
    model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    n = len(examples)
    steps = config.epochs * ((n + config.batch_lists - 1) // config.batch_lists)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=max(steps, 1))
    on_gpu = device.type != "cpu"
    amp = config.mixed_precision and on_gpu
    sizes = np.diff(examples.offsets)
    t0 = time.perf_counter()
    for epoch in range(config.epochs):
        order = np.argsort(sizes + rng.random(n), kind="stable")  # bucket lists by size: little padding
        batches = [order[i:i + config.batch_lists] for i in range(0, n, config.batch_lists)]
        rng.shuffle(batches)
        model.train()
        total = 0.0
        for lists in batches:
            x, y, mask, w = examples.batch(lists)
            if on_gpu:
                x, y, mask, w = (t.to(device, non_blocking=True) for t in (x, y, mask, w))
            if amp:
                with torch.autocast(device.type, dtype=torch.bfloat16):
                    scores = model(x).float()
            else:
                scores = model(x)
            loss = list_loss(scores, y, mask, w)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(lists)
        log(f"epoch {epoch + 1}/{config.epochs}: loss {total / max(n, 1):.4f} ({time.perf_counter() - t0:.0f}s, {device})")
    model.eval()
    return model.to("cpu")


@torch.no_grad()
def score_rows(model: Ranker, features: np.ndarray, offsets: np.ndarray, batch_lists: int = 2048) -> np.ndarray:
    """Scores [R] of every row of every list."""
    scores = np.zeros(len(features), dtype=np.float32)
    ts = TrainingSet(features, np.zeros(len(features), dtype=np.float32), offsets,
                     np.ones(len(offsets) - 1, dtype=np.float32))
    sizes = np.diff(offsets)
    order = np.argsort(sizes, kind="stable")
    for i in range(0, len(order), batch_lists):
        lists = order[i:i + batch_lists]
        x, _, mask, _ = ts.batch(lists)
        s = model(x).numpy()
        scores[ranges(offsets[lists], sizes[lists])] = s[mask.numpy()]
    return scores


def fit_cut_vectors(snapshot, catalog: Catalog, *, use_embedding: bool, seed: int = 0,  # noqa: ANN001
                    until: float = np.inf) -> dict[float, ProductVectors]:
    """Product vectors fit at each cut of the snapshot at or before ``until`` (epoch s)."""
    pairs = snapshot.cut_pairs
    out: dict[float, ProductVectors] = {}
    if pairs.num_rows == 0:
        return out
    at = epoch_array(pairs.column("event_timestamp"))
    for cut in np.unique(at):
        if cut > until:
            continue
        rows = pairs.filter(np.asarray(at == cut))
        embeddings = None
        if use_embedding and snapshot.embeddings is not None:
            ids = sorted(set(rows.column("customer_id").to_pylist()))
            matrix = snapshot.embeddings_as_of(ids, np.full(len(ids), cut))
            embeddings = None if matrix is None else dict(zip(ids, matrix))
        out[float(cut)] = fit_vectors(rows, catalog, embeddings=embeddings, seed=seed)
    return out


CATALOG_FILE = "catalog.pkl"
INFO_FILE = "training.json"


@dataclass
class TrainedRanker:
    """A fitted ranker with the catalogue it scores with (product vectors of its last cut)."""

    ranker: Ranker
    catalog: Catalog
    info: dict = field(default_factory=dict)

    def save(self, directory: str | Path) -> Path:
        """``ranker.pt`` + ``ranker.json`` (Ranker.save), ``catalog.pkl``, ``training.json``."""
        directory = self.ranker.save(directory)
        self.catalog.save(directory / CATALOG_FILE)
        (directory / INFO_FILE).write_text(json.dumps(self.info, indent=2, default=str))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "TrainedRanker":
        directory = Path(directory)
        info = directory / INFO_FILE
        return cls(Ranker.load(directory), Catalog.load(directory / CATALOG_FILE),
                   json.loads(info.read_text()) if info.is_file() else {})


def group_by_moment(labels: Sequence) -> dict[float, list]:  # noqa: ANN001
    """Feedback labels by the moment they are featurized at: the start of their day (as the snapshot's lines)."""
    out: dict[float, list] = {}
    for lab in labels:
        out.setdefault(epoch_s(midnight(lab.timestamp)), []).append(lab)
    return out


def train_ranker(snapshot, *, start: float, end: float, config: RankerConfig | None = None,  # noqa: ANN001
                 feedback: Sequence = (), max_candidates: int = 48,
                 log: Callable[[str], None] = print) -> TrainedRanker:
    """THE training entry point: lists of [start, end) (epoch s) from ``snapshot`` (+ ``feedback`` labels,
    ``voicecart.feedback.Label``), product vectors fit at the snapshot's cuts, the MLP fit on them."""
    config = config or RankerConfig()
    t0 = time.perf_counter()
    catalog = Catalog.from_table(snapshot.catalog)
    vectors = fit_cut_vectors(snapshot, catalog, use_embedding=config.use_embedding, seed=config.seed, until=end)
    index = SnapshotIndex(snapshot, catalog, vectors, use_embedding=config.use_embedding)
    by_moment = group_by_moment([lab for lab in feedback if start <= epoch_s(lab.timestamp) < end])
    parts, info = [], {"purchase_lists": 0, "feedback_lists": 0, "feedback_skipped": {}}
    seen_feedback: set[float] = set()
    for view, lists in walk(index, start, end):
        feats = list_features(view, lists, use_embedding=config.use_embedding)
        parts.append(TrainingSet.from_lists(lists, feats, max_candidates, seed=config.seed + len(parts)))
        info["purchase_lists"] += len(parts[-1])
        if view.moment in by_moment:
            seen_feedback.add(view.moment)
            fb, skipped = feedback_lists(view, by_moment[view.moment], view.catalog.sold_members())
            _add(info["feedback_skipped"], skipped)
            if len(fb):
                parts.append(TrainingSet.from_lists(fb, list_features(view, fb, use_embedding=config.use_embedding),
                                                    max_candidates, seed=config.seed + len(parts)))
                info["feedback_lists"] += len(parts[-1])
    for moment, labs in by_moment.items():  # feedback on a day without purchases in the snapshot
        if moment not in seen_feedback:
            _add(info["feedback_skipped"], {"no_snapshot_row": len(labs)})
    parts = [p for p in parts if len(p)]
    if not parts:
        from voicecart.data.errors import DataError

        raise DataError(f"no training lists between {start / DAY_S:.0f} and {end / DAY_S:.0f} (epoch days): the window "
                        "has no purchases in categories with 2+ known products")
    log(f"{info['purchase_lists']:,} purchase lists, {info['feedback_lists']:,} feedback lists "
        f"over {len(index.moments)} moments ({time.perf_counter() - t0:.0f}s)")
    examples = TrainingSet.concat(parts)
    config.n_features = examples.features.shape[1]
    ranker = fit(examples, config, log=log)
    last = max((c for c in vectors if c <= end), default=None)
    info["seconds"] = round(time.perf_counter() - t0, 1)
    info["vectors_cut"] = last
    # the model's catalogue: its cut's vectors, and the statistics of its cut (a fallback for serving)
    stats = index.stats_at(end) if end in index.stats else catalog.stats
    return TrainedRanker(ranker, catalog.at(stats).with_vectors(vectors[last] if last is not None else None), info)


def _add(into: dict[str, int], more: dict[str, int]) -> None:
    for k, v in more.items():
        into[k] = into.get(k, 0) + v


def parse_hidden(hidden: str | Sequence[int]) -> tuple[int, ...]:
    """``"64,32"`` -> (64, 32); a clear error for anything else."""
    widths = tuple(int(w) for w in (hidden.split(",") if isinstance(hidden, str) else hidden) if str(w).strip())
    if not widths or min(widths) < 1:
        raise ValueError(f"hidden must be comma-separated layer widths like '64,32', got {hidden!r}")
    return widths


def train_step(snapshot_dir: str | Path, model_out: str | Path, *, test_from: str, use_embedding: bool = False,
               epochs: int = 6, hidden: str = "64,32", lr: float = 3e-3, seed: int = 0, train_days: int | None = None,
               device: str | None = None, ablations: bool = True, log: Callable[[str], None] = print) -> dict:
    """The pipeline's train step: the ranker of the ``train_days`` before ``test_from`` from the features
    step's snapshot — its purchases and its feedback events — saved to ``model_out``.

    With ``ablations``, the same ranker is also trained without what the main one adds — the feedback lists
    (when the window has feedback) and the C-STAR embedding (when it is used) — and saved under
    ``model_out/ablations/<name>``, so the evaluation shows what each adds on the same window.
    """
    from voicecart.features.snapshot import TRAIN_DAYS, Snapshot
    from voicecart.feedback import labels_from_events
    from voicecart.feedback.log import read_table
    from voicecart.schemas.times import parse_moment

    cut = epoch_s(parse_moment(test_from))
    days = TRAIN_DAYS if train_days is None else train_days
    snapshot = Snapshot.load(snapshot_dir)
    events, refused = usable_feedback(snapshot.feedback)
    read = read_table(events, "the snapshot's feedback") if events is not None else None
    labels = labels_from_events(read.events) if read is not None else []
    if device is None:
        from voicecart.config import load_settings

        device = load_settings().ranking.device
    config = RankerConfig(hidden=parse_hidden(hidden), epochs=epochs, lr=lr, seed=seed, use_embedding=use_embedding,
                          device=device)
    trained = train_ranker(snapshot, start=cut - days * DAY_S, end=cut, config=config, feedback=labels, log=log)
    _add(trained.info["feedback_skipped"], refused)
    if read is not None:
        trained.info["feedback_events"] = len(read.events)
        trained.info["feedback_rejected"] = len(read.rejected)
        trained.info["feedback_flagged"] = read.flagged
    trained.save(model_out)
    variants = {"no_feedback": (config, ()) if labels else None,
                "no_embedding": (replace(config, use_embedding=False), labels) if use_embedding else None}
    for name, variant in variants.items():
        if ablations and variant is not None:
            log(f"ablation {name}")
            train_ranker(snapshot, start=cut - days * DAY_S, end=cut, config=variant[0], feedback=variant[1],
                         log=log).save(Path(model_out) / ABLATIONS / name)
    info = trained.info
    return {"train_seconds": info["seconds"], "purchase_lists": info["purchase_lists"],
            "feedback_lists": info["feedback_lists"], "feedback_skipped": sum(info["feedback_skipped"].values()),
            "epochs": epochs, "hidden": hidden, "lr": lr, "n_features": trained.ranker.config.n_features,
            "use_embedding": use_embedding}


def usable_feedback(table):  # noqa: ANN001, ANN201 - pyarrow.Table | None -> (pyarrow.Table | None, dict)
    """The snapshot's feedback without the events the intake flagged as naming an unknown customer or product
    (counted by flag): they were acknowledged and logged, but they teach nothing."""
    if table is None or "flags" not in table.column_names:
        return table, {}
    import pyarrow as pa

    flags = [set(filter(None, (f or "").split(","))) for f in table.column("flags").to_pylist()]
    refused: dict[str, int] = {}
    keep = []
    for f in flags:
        bad = sorted(x for x in f if x.startswith("unknown_"))
        for x in bad:
            refused[x] = refused.get(x, 0) + 1
        keep.append(not bad)
    return table.filter(pa.array(keep, type=pa.bool_())), refused


ABLATIONS = "ablations"
"""Folder of a trained model holding the same ranker trained without one of its inputs."""
