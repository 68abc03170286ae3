"""Pre-training loop for C-STAR: explicit, resumable, with progress, loss curves and a NaN guard.

Every step reads a batch of customers twice — the trajectory before a random basket, and a random crop —
and adds the five objectives of ``model.py``: tree-Wasserstein distillation (structure), masked category
and next-basket prediction (semantics), rhythm prediction and two-window consistency. ``checkpoint.pt``
in the run folder always holds the last good state; a re-run with ``resume=True`` continues from it, and a
non-finite loss stops the run with a message that names the step, leaving that checkpoint untouched.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from voicecart.trajectory.model import (CStar, CStarConfig, consistency_loss, mask_events, masked_category_loss,
                                        next_basket_loss, rhythm, rhythm_loss, structure_loss)
from voicecart.trajectory.trajectories import N_SPECIAL, CategoryVocab, EncodedEvents, batch_arrays
from voicecart.trajectory.wasserstein import tree_vectors

CHECKPOINT = "checkpoint.pt"


class TrainingDiverged(RuntimeError):
    """The loss stopped being finite; the last good checkpoint is kept."""


@dataclass
class TrainConfig:
    epochs: int = 4
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 0.01
    seed: int = 0
    checkpoint_every: int = 50  # steps
    max_customers: int | None = None  # a random subset, for quick runs
    device: str = "auto"  # settings trajectory.device: CUDA when present, else CPU
    amp: bool = False  # bf16 autocast on CUDA


@dataclass
class PretrainResult:
    model: CStar
    vocab: CategoryVocab
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    trajectories_per_s: float = 0.0


def to_tensors(arrays: dict[str, np.ndarray], device: torch.device | None = None) -> dict[str, torch.Tensor]:
    if device is None or device.type == "cpu":
        return {k: torch.from_numpy(v) for k, v in arrays.items()}
    return {k: torch.from_numpy(v).pin_memory().to(device, non_blocking=True) for k, v in arrays.items()}


def _batches(events: EncodedEvents, rows: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffle, then sort by length inside chunks of 32 batches so padding stays small."""
    rows = rng.permutation(rows)
    lengths = events.lengths[rows]
    out = []
    chunk = batch_size * 32
    for s in range(0, len(rows), chunk):
        part = rows[s:s + chunk][np.argsort(lengths[s:s + chunk], kind="stable")]
        out += [part[i:i + batch_size] for i in range(0, len(part), batch_size)]
    return [out[i] for i in rng.permutation(len(out))]


def next_basket_split(events: EncodedEvents, rows: np.ndarray, as_of_day: float, n_l3: int,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
    """For each customer with two baskets or more, a random basket k >= 1: the trajectory is cut before it
    (``ends``, absolute event index), read as of its day (``as_of``), and its subclasses are the target
    ([B, n_l3], rows summing to 1). Customers with one basket keep their whole window and no target."""
    ends = events.offsets[np.asarray(rows) + 1].copy()
    as_of = np.full(len(rows), as_of_day, np.float64)
    target = torch.zeros(len(rows), n_l3)
    for i, r in enumerate(rows):
        s, e = int(events.offsets[r]), int(events.offsets[r + 1])
        starts = s + np.flatnonzero(np.diff(events.basket[s:e], prepend=-1) != 0)
        if len(starts) < 2:
            continue
        k = int(rng.integers(1, len(starts)))
        stop = int(starts[k + 1]) if k + 1 < len(starts) else e
        ends[i], as_of[i] = starts[k], events.day[starts[k]]
        target[i, torch.from_numpy(events.l3[starts[k]:stop])] = 1.0
    target[:, :N_SPECIAL] = 0.0
    return ends, as_of, target / target.sum(1, keepdim=True).clamp(min=1.0)


def step_losses(model: CStar, events: EncodedEvents, rows: np.ndarray, as_of_day: float,
                rng: np.random.Generator, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """The pre-training losses on one batch of customers, two windows each: window ``a`` is the trajectory
    before a random basket (masked; predicts that basket and the rhythm of window ``b``), window ``b`` a
    random contiguous crop (distils the tree-Wasserstein distances); both are one customer (consistency)."""
    cfg = model.cfg
    device = model.device
    ends, as_of, target = next_basket_split(events, rows, as_of_day, cfg.n_l3, rng)
    target = target.to(device)
    a = to_tensors(batch_arrays(events, rows, as_of, cfg.max_events, ends=ends), device)
    b = to_tensors(batch_arrays(events, rows, as_of_day, cfg.max_events, rng, crop=cfg.crop), device)
    a_masked, masked = mask_events(a, cfg.mask_prob, generator)
    emb_a, states_a = model.encode(a_masked)  # [B, E], [B, T, D]
    emb_b, _ = model.encode(b)
    tree_b = tree_vectors(b["l1"], b["l2"], b["l3"], b["valid"], (cfg.n_l1, cfg.n_l2, cfg.n_l3), cfg.edge_weights)
    losses = {
        "structure": structure_loss(emb_b, tree_b),
        "masked": masked_category_loss(model, states_a, a, masked),
        "consistency": consistency_loss(emb_a, emb_b, cfg.temperature),
        "next": next_basket_loss(model, emb_a, target),
        "rhythm": rhythm_loss(model, emb_a, rhythm(b)),
    }
    losses["loss"] = sum(cfg.loss_weights.get(k, 0.0) * v for k, v in losses.items())
    return losses


def save_checkpoint(path: Path, model: CStar, vocab: CategoryVocab, optimizer: torch.optim.Optimizer | None,
                    train: TrainConfig, state: dict[str, Any], history: list[dict[str, float]]) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "config": model.cfg.to_dict(), "vocab": vocab.to_json(),
                "optimizer": optimizer.state_dict() if optimizer is not None else None,
                "train": asdict(train), "state": state, "history": history}, tmp)
    tmp.replace(path)  # atomic: a crash never leaves half a checkpoint


def load_encoder(path: Path) -> tuple[CStar, CategoryVocab, dict[str, Any]]:
    """(model in eval mode, vocabulary, the raw checkpoint) from a checkpoint file or run folder."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.exists():
        raise FileNotFoundError(f"no C-STAR checkpoint at {path} (run `voicecart cstar pretrain` first)")
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    model = CStar(CStarConfig(**ckpt["config"]))
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model, CategoryVocab.from_json(ckpt["vocab"]), ckpt


def pretrain(events: EncodedEvents, vocab: CategoryVocab, as_of_day: float, model_cfg: CStarConfig,
             train: TrainConfig, out_dir: Path | None = None, *, resume: bool = True,
             on_step: Callable[[int, int, dict[str, float]], None] | None = None) -> PretrainResult:
    """Pre-train on the customers of ``events`` that have at least one event; returns the model.

    ``out_dir``: where ``checkpoint.pt``, ``history.json`` and ``loss.png`` go (None: keep nothing).
    ``on_step(step, total_steps, losses)`` is called after every step (progress bars).
    """
    from voicecart.devices import resolve_device

    torch.manual_seed(train.seed)
    device = resolve_device(train.device)
    model = CStar(model_cfg)
    optimizer = torch.optim.AdamW(model.parameters(), lr=train.lr, weight_decay=train.weight_decay)
    history: list[dict[str, float]] = []
    state = {"epoch": 0, "batch": 0, "step": 0}
    ckpt_path = Path(out_dir) / CHECKPOINT if out_dir is not None else None
    if ckpt_path is not None:
        ckpt_path.parent.mkdir(parents=True, exist_ok=True)
        if resume and ckpt_path.exists():
            ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
            if ckpt["config"] != model_cfg.to_dict() or ckpt["vocab"] != vocab.to_json():
                raise ValueError(f"{ckpt_path} was trained with another model config or vocabulary; "
                                 "use a new output folder or --no-resume")
            model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            state, history = ckpt["state"], ckpt["history"]
    model.to(device)  # after loading: the optimizer's state follows its parameters
    autocast = train.amp and device.type == "cuda"

    eligible = np.flatnonzero(events.lengths > 0)
    if train.max_customers is not None and len(eligible) > train.max_customers:
        eligible = np.sort(np.random.default_rng(train.seed).choice(eligible, train.max_customers, replace=False))
    if len(eligible) < 2:
        raise ValueError(f"pre-training needs at least 2 customers with events before the cut-off, got {len(eligible)}")
    steps_per_epoch = math.ceil(len(eligible) / train.batch_size)
    total = steps_per_epoch * train.epochs
    generator = torch.Generator().manual_seed(train.seed)
    seen, t0 = 0, time.perf_counter()
    model.train()
    for epoch in range(state["epoch"], train.epochs):
        rng = np.random.default_rng([train.seed, epoch])  # the epoch's order is reproducible: resume mid-epoch
        batches = _batches(events, eligible, train.batch_size, rng)
        for b in range(state["batch"] if epoch == state["epoch"] else 0, len(batches)):
            rows = batches[b]
            if len(rows) < 2:
                continue
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                losses = step_losses(model, events, rows, as_of_day, rng, generator)
            if not torch.isfinite(losses["loss"]):
                where = f"epoch {epoch + 1}, step {state['step'] + 1}"
                kept = f"the last good checkpoint {ckpt_path} is kept" if ckpt_path and ckpt_path.exists() else \
                    "no checkpoint had been written yet"
                raise TrainingDiverged(
                    f"pre-training loss became {losses['loss'].item()} at {where} "
                    f"({', '.join(f'{k}={v.item():.4g}' for k, v in losses.items())}); {kept}. "
                    f"Lower the learning rate (now {train.lr}) and resume.")
            optimizer.zero_grad(set_to_none=True)
            losses["loss"].backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            seen += len(rows)
            state = {"epoch": epoch, "batch": b + 1, "step": state["step"] + 1}
            record = {"step": state["step"], "epoch": epoch + (b + 1) / len(batches),
                      **{k: float(v.detach()) for k, v in losses.items()}}
            history.append(record)
            if on_step is not None:
                on_step(state["step"], total, record)
            if ckpt_path is not None and state["step"] % train.checkpoint_every == 0:
                save_checkpoint(ckpt_path, model, vocab, optimizer, train, state, history)
        state = {"epoch": epoch + 1, "batch": 0, "step": state["step"]}
        if ckpt_path is not None:
            save_checkpoint(ckpt_path, model, vocab, optimizer, train, state, history)
    seconds = time.perf_counter() - t0
    model.eval().to("cpu")  # embedding, export and checkpoints read it on the CPU unless asked otherwise
    if out_dir is not None:
        Path(out_dir, "history.json").write_text(json.dumps(history))
        if history:
            plot_losses(history, Path(out_dir) / "loss.png")
    return PretrainResult(model, vocab, history, seconds, seen / seconds if seconds > 0 else 0.0)


def plot_losses(history: list[dict[str, float]], path: Path, title: str = "C-STAR pre-training") -> Path:
    """Loss curves (total and each objective, smoothed) against epochs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    x = np.array([h["epoch"] for h in history])
    for key in ("loss", "structure", "masked", "consistency", "next", "rhythm"):
        y = np.array([h.get(key, np.nan) for h in history])
        k = max(1, len(y) // 50)
        smooth = np.convolve(y, np.ones(k) / k, mode="valid")
        ax.plot(x[k - 1:], smooth, label=key)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
