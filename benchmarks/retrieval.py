"""Candidate retrieval quality on real queries: NDCG@10 on the Home Depot relevance set.

Our retrieval (`Catalog.candidates`: bm25s + plural folding + one-edit spelling correction)
against plain BM25 (bm25s with its stock tokenizer: lower case, English stop words) over the
same product titles. Gain = the averaged human relevance (1-3) of judged products, 0 for
unjudged ones; ideal DCG from the judged products. Reads ../shared/data/homedepot/train.csv.zip.
Usage: python benchmarks/retrieval.py [--queries N]
"""

from __future__ import annotations

import argparse
import sys
import time
import zipfile
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_section  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "homedepot" / "train.csv.zip"


def load(path: Path):  # noqa: ANN201
    import csv
    import io

    with zipfile.ZipFile(path) as zf:
        name = [n for n in zf.namelist() if n.endswith(".csv")][0]
        text = zf.read(name).decode("iso-8859-1")
    rows = list(csv.DictReader(io.StringIO(text)))
    titles: dict[str, str] = {}
    judged: dict[str, dict[str, float]] = defaultdict(dict)
    for r in rows:
        titles[r["product_uid"]] = r["product_title"]
        judged[r["search_term"]][r["product_uid"]] = float(r["relevance"])
    return titles, judged


def ndcg_at_10(ranked: list[str], gains: dict[str, float]) -> float:
    dcg = sum(gains.get(p, 0.0) / np.log2(i + 2) for i, p in enumerate(ranked[:10]))
    ideal = sorted(gains.values(), reverse=True)[:10]
    idcg = sum(g / np.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--queries", type=int, default=0, help="evaluate on a sample (0 = all)")
    args = ap.parse_args()
    if not DATA.exists():
        print(f"skipped: {DATA} not found")
        return
    import bm25s

    import pyarrow as pa

    from voicecart.ranking import Catalog

    titles, judged = load(DATA)
    uids = sorted(titles)
    products = [dict(product_id=u, title=titles[u], category_l1="0", category_l2="0", category_l3="0") for u in uids]
    t = time.perf_counter()
    catalog = Catalog.from_table(pa.Table.from_pylist(products))
    build_ours = time.perf_counter() - t
    t = time.perf_counter()
    plain = bm25s.BM25()
    plain.index(bm25s.tokenize([titles[u] for u in uids], stopwords="en", show_progress=False), show_progress=False)
    build_plain = time.perf_counter() - t
    queries = sorted(judged)
    if args.queries:
        queries = list(np.random.default_rng(0).choice(queries, args.queries, replace=False))
    ours, base = [], []
    t_ours = t_base = 0.0
    for q in queries:
        t = time.perf_counter()
        cands = catalog.candidates(q, 10, sold_only=False)
        t_ours += time.perf_counter() - t
        ours.append(ndcg_at_10([uids[i] for i in cands.product], judged[q]))
        t = time.perf_counter()
        tok = bm25s.tokenize([q], stopwords="en", show_progress=False)
        if tok.ids and tok.ids[0]:
            docs, _ = plain.retrieve(tok, k=10, show_progress=False)
            ranked = [uids[i] for i in docs[0]]
        else:
            ranked = []
        t_base += time.perf_counter() - t
        base.append(ndcg_at_10(ranked, judged[q]))
    ours_m, base_m = float(np.mean(ours)), float(np.mean(base))
    rng = np.random.default_rng(0)
    diff = np.asarray(ours) - np.asarray(base)
    boots = [diff[rng.integers(0, len(diff), len(diff))].mean() for _ in range(300)]
    lo, hi = np.quantile(boots, [0.025, 0.975])
    print(f"NDCG@10 ours {ours_m:.4f} plain BM25 {base_m:.4f} (diff CI {lo:.4f}..{hi:.4f})")
    md = (f"Home Depot search relevance: {len(queries):,} real queries over {len(uids):,} product titles "
          "(graded 1-3 by raters; unjudged products count 0).\n\n"
          "| retrieval | NDCG@10 | ratio vs plain BM25 | ms / query | index build s |\n|---|---|---|---|---|\n"
          f"| plain BM25 (bm25s stock tokenizer) | {base_m:.4f} | 1.00x | {1000 * t_base / len(queries):.2f} | {build_plain:.1f} |\n"
          f"| voicecart `Catalog.candidates` (plural folding + spelling) | {ours_m:.4f} | {ours_m / base_m:.2f}x | "
          f"{1000 * t_ours / len(queries):.2f} | {build_ours:.1f} |\n\n"
          f"Paired bootstrap 95% CI of the NDCG@10 difference: [{lo:+.4f}, {hi:+.4f}].")
    write_section("retrieval", "## Candidate retrieval (ranking)\n\n" + md)
    Path(__file__).resolve().parents[1].joinpath("docs", "img").mkdir(parents=True, exist_ok=True)


if __name__ == "__main__":
    main()
