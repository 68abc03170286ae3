"""The request path in process: ``ResolutionEngine.resolve`` on real Ta-Feng requests, this code against a
baseline commit of it, in one run.

Real February requests ("add <subclass>" of a product a customer bought, with their profile as of the
end of the data) go through the served engine — parse, candidates, the ONE profile row, features, the
exported ranker in ONNX Runtime, the answer — on one thread. The same requests run on the engine of
``--baseline-ref`` (default: the commit before the one-snapshot redesign) from a git worktree of it;
both run in child processes, alternating, so they share the machine's load. The popularity-only path (no
profile, so no features and no model) is the same-process floor of each.
Usage: python benchmarks/resolve_inprocess.py [--data data/tafeng] [--n 5000] [--baseline-ref a97246b]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_section  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BASELINE_REF = "a97246b"


def requests(data: Path, n: int) -> list[dict]:
    """``n`` real February lines: the customer and "add <the bought product's subclass>"."""
    from voicecart.data import connect

    rows = connect(data).execute(
        "SELECT o.customer_id, p.category_l3 FROM order_lines l JOIN orders o USING (order_id) "
        "JOIN products p USING (product_id) WHERE o.timestamp >= TIMESTAMP '2001-02-01' "
        "ORDER BY hash(o.order_id || l.product_id) LIMIT ?", [n]).fetchall()
    return [{"customer_id": c, "utterance": f"add {code}"} for c, code in rows]


def child(data: Path, work: Path, asked: list[dict]) -> dict:
    """Time this code's engine (whichever version is on sys.path) on ``asked``; p50/p99 in ms."""
    import torch

    from voicecart.config import ServingSettings
    from voicecart.schemas import ResolveRequest
    from voicecart.serving.engine import ResolutionEngine
    from voicecart.serving.profiles import StaticProfiles, profiles_from_dataset

    torch.set_num_threads(1)
    try:  # this code: a bundle from the one trainer, statistics from the snapshot SQL
        from voicecart.export.model import bundle_from_dataset
        from voicecart.serving.bundle import load_serving_model, stats_from_dataset

        bundle = work / "bundle"
        if not bundle.exists():
            bundle_from_dataset(data, bundle, epochs=1)
        model = load_serving_model(bundle, stats=stats_from_dataset(data))
        profiles = profiles_from_dataset(data)
    except ImportError:  # the baseline commit: serving trained its own bundle
        from datetime import datetime, timezone

        from voicecart.serving.bundle import build_bundle_from_dataset, load_serving_model

        bundle = work / "bundle"
        if not bundle.exists():
            build_bundle_from_dataset(data, bundle, epochs=1)
        model = load_serving_model(bundle)
        profiles = profiles_from_dataset(data, datetime.fromtimestamp(model.now * 86_400, tz=timezone.utc))
    out = {}
    for name, store in (("popularity only", StaticProfiles([])), ("full path", profiles)):
        engine = ResolutionEngine(model, store, ServingSettings(deadline_ms=10_000))
        reqs = [ResolveRequest(**r) for r in asked]
        for r in reqs[:200]:
            engine.resolve(r)  # warm-up
        lat = np.empty(len(reqs))
        personal = 0
        for k, r in enumerate(reqs):
            t = time.perf_counter()
            answer = engine.resolve(r)
            lat[k] = (time.perf_counter() - t) * 1000
            personal += answer.personalized
        engine.close()
        out[name] = {"p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99)),
                     "personalized": personal / len(reqs)}
    return out


def run_child(src: Path, data: Path, work: Path, asked: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, __file__, "--child", "--data", str(data), "--work", str(work),
                          "--requests", str(asked)], env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"benchmark child ({src}) failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path("data/tafeng"))
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--baseline-ref", default=BASELINE_REF)
    ap.add_argument("--child", action="store_true")
    ap.add_argument("--work", type=Path)
    ap.add_argument("--requests", type=Path)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.data, args.work, json.loads(args.requests.read_text()))))
        return
    if not (args.data / "manifest.json").exists():
        print(f"skipped: {args.data} is not a prepared dataset (voicecart data prepare --source tafeng)")
        return
    with tempfile.TemporaryDirectory(prefix="vc-inprocess-") as tmp:
        tmp = Path(tmp)
        asked = tmp / "requests.json"
        asked.write_text(json.dumps(requests(args.data.resolve(), args.n)))
        versions = {"this code": REPO / "src"}
        if args.baseline_ref:
            baseline = tmp / "baseline"
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(baseline), args.baseline_ref],
                           check=True, capture_output=True)
            versions[f"baseline {args.baseline_ref}"] = baseline / "src"
        try:
            results: dict[str, list[dict]] = {v: [] for v in versions}
            for r in range(args.rounds):  # alternate: both see the same machine load
                for name, src in versions.items():
                    work = tmp / name.replace(" ", "_")
                    work.mkdir(exist_ok=True)
                    results[name].append(run_child(src, args.data.resolve(), work, asked))
                    print(f"round {r + 1} {name}: {results[name][-1]}", flush=True)
        finally:
            if args.baseline_ref:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tmp / "baseline")],
                               check=False, capture_output=True)
    rows = []
    ref = None
    for name, runs in results.items():
        for path in ("popularity only", "full path"):
            p50 = float(np.median([x[path]["p50"] for x in runs]))
            p99 = float(np.median([x[path]["p99"] for x in runs]))
            personal = runs[0][path]["personalized"]
            if path == "full path" and ref is None:
                ref = (p50, p99)
            ratio = f"{p50 / ref[0]:.2f}x / {p99 / ref[1]:.2f}x" if path == "full path" and ref else "–"
            rows.append(f"| {name} | {path} | {p50:.3f} | {p99:.3f} | {personal:.0%} | {ratio} |")
    md = (f"{args.n:,} real Ta-Feng February requests (`add <subclass>` of a bought product, profiles as of the data's "
          f"end), one thread, `ResolutionEngine.resolve` (parse, candidates, the profile row, features, ONNX Runtime "
          f"ranker, answer); median of {args.rounds} alternating rounds per version, each in its own process.\n\n"
          "| code | path | p50 ms | p99 ms | personalized | p50 / p99 vs this code |\n|---|---|---|---|---|---|\n"
          + "\n".join(rows))
    write_section("resolve_inprocess", "## Resolve in-process (the served engine)\n\n" + md)
    print(md)


if __name__ == "__main__":
    main()
