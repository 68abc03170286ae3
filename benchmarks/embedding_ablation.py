"""Does C-STAR help the ranker? The same ranker trained and tested with and without the embedding feature
on Ta-Feng's online protocol, from one snapshot, with the paired bootstrap interval of the HR@1 gain.

The encoder is pre-trained on the trajectories before the cut-off exactly as the pipeline's C-STAR step
does (``voicecart.trajectory.window.pretrain_window``); each customer's embedding is taken as of every
training cut and the cut-off, the product vectors (buyer centroids) are fit at those cuts. This decides
the pipeline's ``use_embeddings`` default: on only if the gain's interval is above zero.
Usage: python benchmarks/embedding_ablation.py [--data data/tafeng] [--epochs 2] [--ranker-epochs 4]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import peak_rss_mib, write_section  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path("data/tafeng"))
    ap.add_argument("--test-from", default="2001-02-01")
    ap.add_argument("--epochs", type=int, default=2, help="C-STAR pre-training epochs")
    ap.add_argument("--ranker-epochs", type=int, default=4)
    ap.add_argument("--json", type=Path, default=Path("runs/embedding_ablation.json"))
    args = ap.parse_args()
    if not (args.data / "manifest.json").exists():
        print(f"skipped: {args.data} is not a prepared dataset (voicecart data prepare --source tafeng)")
        return
    from voicecart.evaluation.cstar import resolution_with_embedding
    from voicecart.features.snapshot import training_cuts
    from voicecart.schemas.times import parse_moment
    from voicecart.trajectory.window import pretrain_window

    t0 = time.perf_counter()
    test_from = parse_moment(args.test_from)
    with tempfile.TemporaryDirectory(prefix="vc-ablation-") as tmp:
        tmp = Path(tmp)
        pre = pretrain_window(args.data, tmp / "encoder", tmp / "emb", tmp / "curves.html", as_of=args.test_from,
                              embed_at=training_cuts(test_from), epochs=args.epochs)
        pre_s = time.perf_counter() - t0
        report = resolution_with_embedding(args.data, tmp / "encoder", test_from, epochs=args.ranker_epochs,
                                           log=print)
    seconds = time.perf_counter() - t0
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"pretraining": pre, "resolution": report, "seconds": seconds}, indent=2, default=str))
    gain = report["hr@1_gain"]
    rows = [f"| {arm.replace('_', ' ')} | {report[arm]['hr@1']['value']:.4f} [{report[arm]['hr@1']['low']:.4f}, "
            f"{report[arm]['hr@1']['high']:.4f}] | {report[arm]['mrr']['value']:.4f} |"
            for arm in ("without_embedding", "with_embedding")]
    verdict = ("**on by default**" if gain["ci95"][0] > 0 else "**off by default** (the interval does not clear zero)"
               if gain["ci95"][1] > 0 else "**off by default** (the embedding hurts)")
    md = (f"Ta-Feng online protocol from {args.test_from} ({report['queries']:,} queries), the ranker trained "
          f"{args.ranker_epochs} epochs with and without the C-STAR feature on the same snapshot; C-STAR pre-trained "
          f"{args.epochs} epoch(s) before the cut-off ({pre['seconds']:.0f} s, {pre['customers']:,} customers).\n\n"
          "| ranker | HR@1 [95% CI] | MRR |\n|---|---|---|\n" + "\n".join(rows) +
          f"\n\nPaired HR@1 gain with the embedding: {gain['value']:+.4f} [{gain['ci95'][0]:+.4f}, {gain['ci95'][1]:+.4f}] "
          f"→ embeddings {verdict}. Wall time {seconds:.0f} s ({pre_s:.0f} s of it pre-training), peak RSS "
          f"{peak_rss_mib():,.0f} MiB, at {datetime.now(timezone.utc):%H:%M} UTC.")
    write_section("embedding_ablation", "## C-STAR in the ranker: with and without the embedding\n\n" + md)
    print(md)


if __name__ == "__main__":
    main()
