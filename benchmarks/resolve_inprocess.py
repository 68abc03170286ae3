"""Resolve latency in-process: parse + candidates + features + rank for real Ta-Feng requests.

10,000 February requests ("add <subclass>" for a customer with their profile as of Feb 1),
p50/p99 per request for the full path, with the popularity-only path (no features, no model)
as the same-process baseline. Needs a prepared Ta-Feng (`voicecart data prepare --source tafeng`).
Usage: python benchmarks/resolve_inprocess.py [--data data/tafeng] [--n 10000]
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_section  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data/tafeng")
    ap.add_argument("--n", type=int, default=10_000)
    args = ap.parse_args()
    if not (Path(args.data) / "manifest.json").exists():
        print(f"skipped: {args.data} is not a prepared dataset (voicecart data prepare --source tafeng)")
        return
    import onnxruntime as ort
    import torch

    from voicecart.ranking import Catalog, History, Purchases, Ranker, RankerConfig, Resolver, to_day

    torch.set_num_threads(1)
    cut = to_day(datetime(2001, 2, 1, tzinfo=timezone.utc))
    purchases = Purchases.from_dataset(args.data)
    catalog = Catalog.build(purchases, cut)
    history = History.from_purchases(purchases, cut)
    feb = purchases.between(cut, cut + 28)
    rng = np.random.default_rng(0)
    pick = rng.choice(len(feb), min(args.n, len(feb)), replace=False)
    requests = []
    profiles = {}
    for i in pick:
        u, p = int(feb.customer[i]), int(feb.product[i])
        if u not in profiles:
            profiles[u] = history.profile(u, purchases.customer_ids[u], purchases.product_ids)
        requests.append((f"add {catalog.category_codes[catalog.cat_of[p]]}", profiles[u], float(feb.day[i]) * 86_400))
    model = Ranker(RankerConfig())  # weights do not change the cost; a trained one is the same shape
    model.eval()
    onnx_path = Path("/tmp/voicecart_bench_ranker.onnx")
    model.export_onnx(onnx_path)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])

    def onnx_scorer(x: np.ndarray) -> np.ndarray:
        return session.run(["scores"], {"features": x[None]})[0][0]

    engines = {"popularity only (baseline)": Resolver(catalog, None, max_candidates=100),
               "full path, torch ranker": Resolver(catalog, model, max_candidates=100),
               "full path, ONNX Runtime ranker": Resolver(catalog, model, max_candidates=100, scorer=onnx_scorer)}
    rows = []
    base_p50 = None
    for name, engine in engines.items():
        for utt, prof, now in requests[:200]:
            engine.resolve(utt, prof, now)  # warm-up
        lat = np.empty(len(requests))
        for k, (utt, prof, now) in enumerate(requests):
            t = time.perf_counter()
            engine.resolve(utt, prof, now)
            lat[k] = (time.perf_counter() - t) * 1000
        p50, p99 = np.percentile(lat, [50, 99])
        base_p50 = base_p50 or p50
        rows.append(f"| {name} | {p50:.3f} | {p99:.3f} | {p50 / base_p50:.1f}x |")
        print(name, f"p50 {p50:.3f} ms p99 {p99:.3f} ms")
    n_cands = [len(catalog.candidates(r[0].split()[1], 100)) for r in requests[:2000]]
    md = (f"{len(requests):,} real Ta-Feng February requests (`add <subclass>`, profile as of 2001-02-01, "
          f"median {int(np.median(n_cands))} / max {max(n_cands)} candidates, capped at 100), one thread, "
          "in-process `Resolver.resolve` (parse + candidates + features + rank + top-5).\n\n"
          "| engine | p50 ms | p99 ms | p50 vs baseline |\n|---|---|---|---|\n" + "\n".join(rows))
    write_section("resolve_inprocess", "## Resolve in-process (ranking)\n\n" + md)


if __name__ == "__main__":
    main()
