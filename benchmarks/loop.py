"""Does the closed loop pay? The replay (`voicecart simulate`) on Ta-Feng February and on synthetic data with a
planted brand switch, three arms each: the frozen first model, weekly retraining without the feedback, weekly
retraining with it. Every answer is a real HTTP answer of the served engine; every arm sees the same requests,
so the arms' HR@1 is compared paired. Writes the ``loop`` section of docs/benchmarks.md and two plots.

Usage: python benchmarks/loop.py [--data data/tafeng] [--max-customers 1500] [--days 28]
       [--synthetic-customers 300] [--epochs 3] [--out runs/loop-bench]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import REPORT, write_section  # noqa: E402

IMG = REPORT.parent / "img"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path("data/tafeng"))
    ap.add_argument("--max-customers", type=int, default=1500, help="Ta-Feng customers sampled (0: all)")
    ap.add_argument("--days", type=int, default=28)
    ap.add_argument("--synthetic-customers", type=int, default=300)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--no-gate-latency", dest="gate_latency", action="store_false",
                    help="lift the gate's latency guardrail (kept by default: it measures the model's CPU time, "
                         "which the machine's load leaves alone)")
    ap.add_argument("--out", type=Path, default=Path("runs/loop-bench"))
    ap.add_argument("--skip-tafeng", action="store_true")
    ap.add_argument("--report-only", action="store_true",
                    help="rewrite the section from the replays already in --out (their answers and records)")
    args = ap.parse_args()
    from voicecart.cli.simulate import console, replay_with_progress
    from voicecart.simulate import ReplayConfig
    from voicecart.simulate.planted import planted_world
    from voicecart.simulate.report import summarize

    common = dict(days=args.days, epochs=args.epochs, gate_latency=args.gate_latency)
    parts, numbers = [], {}
    t_all = time.perf_counter()
    runs = []
    if not args.skip_tafeng and (args.data / "manifest.json").exists():
        runs.append(("tafeng", ReplayConfig(dataset=args.data.resolve(), out=(args.out / "tafeng").resolve(),
                                            start="2001-02-01", max_customers=args.max_customers, **common), None))
    elif not args.skip_tafeng:
        parts.append(f"Ta-Feng skipped: {args.data} is not a prepared dataset (voicecart data prepare --source tafeng).")
    world = planted_world((args.out / "synthetic-data").resolve(), customers=args.synthetic_customers,
                          replay_days=args.days, switch_after=7)
    runs.append(("synthetic", ReplayConfig(dataset=world.dataset, out=(args.out / "synthetic").resolve(),
                                           start=world.start, **common), world))
    # the same world with every retrained model sent to the canary: what the feedback does once it is served
    runs.append(("synthetic_canary_decides", ReplayConfig(
        dataset=world.dataset, out=(args.out / "synthetic_canary_decides").resolve(), start=world.start,
        arms=("no_feedback", "feedback"), offline_gate=False, **common), world))
    earlier = json.loads((args.out / "loop.json").read_text()) if args.report_only else {}
    for name, cfg, planted in runs:
        if args.report_only:
            result = json.loads((cfg.out / "replay.json").read_text())
            seconds = earlier[name]["seconds"]
        else:
            shutil.rmtree(cfg.out, ignore_errors=True)
            t0 = time.perf_counter()
            result = replay_with_progress(cfg, console)
            seconds = time.perf_counter() - t0
        summary = summarize(cfg.out, result, planted)
        IMG.mkdir(parents=True, exist_ok=True)
        png = IMG / f"loop_{name}.png"
        shutil.copyfile(summary["numbers"]["plot"], png)
        requests = sum(c["requests"] for c in result["cycles"])
        scope = (f"{cfg.max_customers:,} sampled customers" if cfg.max_customers else "all customers") \
            if planted is None else f"{args.synthetic_customers:,} synthetic customers"
        gate = "" if cfg.offline_gate else "Offline gate off: every retrained model went to the canary. "
        parts.append(f"### {name}: {cfg.days} days from {cfg.start}, {scope}\n\n{gate}"
                     f"{requests:,} answers over HTTP ({len(cfg.arms)} arms), {seconds / 60:.1f} min. "
                     f"Plot: `docs/img/{png.name}`.\n\n![weekly HR@1, {name}](img/{png.name})\n\n{summary['markdown']}")
        numbers[name] = {"seconds": seconds, "requests": requests, **summary["numbers"]}
        console.print(summary["markdown"], highlight=False)
    total = earlier["seconds"] if args.report_only else time.perf_counter() - t_all
    intro = (f"`python benchmarks/loop.py --max-customers {args.max_customers} --days {args.days} --synthetic-customers "
             f"{args.synthetic_customers} --epochs {args.epochs}{'' if args.gate_latency else ' --no-gate-latency'}`: "
             f"{total / 60:.1f} min in all. Each arm replays the "
             "same requests (one per customer, day and category bought) against its own served registry; the "
             "retrain cycle is the pipeline's steps in-process (snapshot → train → export → gate → register → "
             f"canary); the gate's latency guardrail was {'kept' if args.gate_latency else 'lifted'}. How to read "
             "it: docs/loop.md.")
    write_section("loop", "## Closed loop: the replay (`voicecart simulate`)\n\n" + intro + "\n\n" + "\n\n".join(parts))
    out = args.out / "loop.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"seconds": total, **numbers}, indent=2, default=str))
    print(f"wrote {REPORT} and {out}")


if __name__ == "__main__":
    main()
