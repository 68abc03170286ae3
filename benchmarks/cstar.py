"""C-STAR on CPU: pre-training throughput and memory on Ta-Feng and Complete Journey, and embedding many synthetic
customers in batch.

    python benchmarks/cstar.py [--data data/tafeng] [--cj-data data/cj] [--customers 1000000] [--steps 40]

Pre-training is timed for ``--steps`` steps of the real model on real Ta-Feng trajectories (Nov–Jan) and on
Complete Journey's (to 2017-11-01, with the evaluation's window and batch for it), each
extrapolated to the full run (epochs x customers); the coarse-only encoder, timed the same way in this
process, is the baseline of the ratio. Batch embedding generates synthetic shops of 100,000 customers
(``voicecart.data.synthetic``) until ``--customers`` have been embedded; building their trajectories and
encoding them are timed separately. Writes the ``cstar`` section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import peak_rss_mib, write_section  # noqa: E402

from voicecart.trajectory import CategoryVocab, CStar, CStarConfig, as_day, embed_events, load_events  # noqa: E402
from voicecart.trajectory.pretrain import _batches, step_losses  # noqa: E402


def time_pretraining(enc, vocab, cut_day: float, cfg: CStarConfig, steps: int, batch_size: int) -> float:
    """Trajectories per second of real pre-training steps (forward + backward + update)."""
    torch.manual_seed(0)
    model = CStar(cfg).train()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    rng = np.random.default_rng(0)
    gen = torch.Generator().manual_seed(0)
    batches = _batches(enc, np.flatnonzero(enc.lengths > 0), batch_size, rng)[: steps + 2]
    seen, t0 = 0, 0.0
    for i, rows in enumerate(batches):
        if i == 2:  # two warm-up steps
            seen, t0 = 0, time.perf_counter()
        loss = step_losses(model, enc, rows, cut_day, rng, gen)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        seen += len(rows)
    return seen / (time.perf_counter() - t0)


def pretraining_section(name: str, data: Path, cut: datetime, window_name: str, max_events: int, batch_size: int,
                        epochs: int, args: argparse.Namespace, history: int | None = None) -> list[str]:
    """Markdown lines: pre-training throughput of C-STAR and of the coarse-only baseline on one dataset
    (``history``: events pre-training draws its windows from, as ``EvaluationConfig.pretrain_history``)."""
    if not (data / "manifest.json").exists():
        return [f"_{name} not prepared at {data}: pre-training on it not measured._", ""]
    from voicecart.data import connect

    t = time.perf_counter()
    events = load_events(connect(data), until=cut)
    window = events.window(cut, max_events=history or max_events)
    vocab = CategoryVocab.from_paths(window.l1, window.l2, window.l3)
    enc = window.encode(vocab)
    build_s = time.perf_counter() - t
    cfg = CStarConfig(*vocab.sizes, max_events=max_events)
    n = int((enc.lengths > 0).sum())
    steps = min(args.steps, max(1, n // batch_size - 2))
    full = time_pretraining(enc, vocab, as_day(cut), cfg, steps, batch_size)
    coarse = time_pretraining(enc, vocab, as_day(cut), replace(cfg, fine=False), steps, batch_size)
    run_min = epochs * n / full / 60
    return [
        f"**Pre-training on {name}** ({window_name}, {n:,} customers with history, {int(enc.offsets[-1]):,} events "
        f"in windows of at most {max_events}" + (f" drawn from the last {history}" if history else "")
        + f"; {args.threads} torch threads, batch {batch_size}, {steps} timed steps):",
        "",
        "| what | measured |",
        "|---|---|",
        f"| trajectories from canonical tables (DuckDB + numpy) | {build_s:.1f} s |",
        f"| C-STAR (coarse + fine), pre-training | {full:,.0f} trajectories/s |",
        f"| coarse-only encoder (baseline), pre-training | {coarse:,.0f} trajectories/s |",
        f"| full model / coarse-only throughput | {full / coarse:.2f}x |",
        f"| extrapolated full pre-training, {epochs} epochs | {run_min:.1f} min "
        f"({'under' if run_min < 10 else 'over'} the 10-minute aim) |",
        f"| parameters | {CStar(cfg).num_parameters():,} |",
        f"| peak resident memory so far | {peak_rss_mib():,.0f} MiB |",
        "",
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path("data/tafeng"))
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=4, help="epochs of the full run the time is extrapolated to")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cj-data", type=Path, default=Path("data/cj"), help="prepared Complete Journey")
    ap.add_argument("--cj-max-events", type=int, default=128)  # as docs/cstar.md's Complete Journey run
    ap.add_argument("--cj-batch-size", type=int, default=64)
    ap.add_argument("--cj-epochs", type=int, default=8)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    lines = []

    lines += pretraining_section("Ta-Feng", args.data, datetime(2001, 2, 1), "Nov–Jan", 128, args.batch_size,
                                 args.epochs, args)
    lines += pretraining_section("Complete Journey", args.cj_data, datetime(2017, 11, 1), "Jan–Oct 2017",
                                 args.cj_max_events, args.cj_batch_size, args.cj_epochs, args, history=4096)

    # ---- batch embedding of synthetic customers
    from voicecart.data.synthetic import SyntheticConfig, generate

    chunk = min(100_000, args.customers)
    vocab = None
    model = None
    build_s = embed_s = 0.0
    done = 0
    seed = 0
    while done < args.customers:
        n = min(chunk, args.customers - done)
        tables, _ = generate(SyntheticConfig(n_customers=n, seed=seed))
        t = time.perf_counter()
        events = load_events(tables)
        if vocab is None:
            vocab = CategoryVocab.from_paths(events.l1, events.l2, events.l3)
            torch.manual_seed(0)
            model = CStar(CStarConfig(*vocab.sizes)).eval()
        cut = datetime(2021, 1, 1)
        enc = events.window(cut, max_events=model.cfg.max_events).encode(vocab)
        build_s += time.perf_counter() - t
        t = time.perf_counter()
        emb = embed_events(model, enc, as_day(cut), batch_size=2048)
        embed_s += time.perf_counter() - t
        assert emb.shape == (n, model.cfg.dim)
        done += n
        seed += 1
        print(f"embedded {done:,} customers ({build_s:.0f} s trajectories, {embed_s:.0f} s encoder)", flush=True)
    lines += [
        f"**Batch embedding of {done:,} synthetic customers** (`voicecart.data.synthetic`, shops of {chunk:,}; "
        f"untrained weights, same compute; {args.threads} torch threads):",
        "",
        "| what | measured |",
        "|---|---|",
        f"| building trajectories | {build_s:.0f} s ({done / build_s:,.0f} customers/s) |",
        f"| encoder forward | {embed_s:.0f} s ({done / embed_s:,.0f} customers/s) |",
        f"| encoder / trajectory building time | {embed_s / build_s:.2f}x |",
        f"| peak resident memory | {peak_rss_mib():,.0f} MiB |",
    ]
    print(write_section("cstar", "## C-STAR trajectory encoder\n\n" + "\n".join(lines)))


if __name__ == "__main__":
    main()
