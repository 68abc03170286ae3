"""Candidate retrieval on its own: is the product a household bought among the candidates of what it
would have said?

Each sampled order line after ``test_from`` becomes one voice request made of the catalogue's words
(:mod:`voicecart.data.utterances`), once as said and once as heard (ASR noise). Both go through the
real parser (:func:`voicecart.ranking.parse.parse`) and the real retrieval
(:meth:`voicecart.ranking.catalog.Catalog.candidates`, catalogue as of ``test_from``). Reported:
recall@k of the bought product among the candidates in retrieval order, the same for its product type
(did retrieval reach the right shelf), how often the parser gives up, and the requests it failed on.
Ranking — which candidate comes first for this household — is measured elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np

from voicecart.data.utterances import Utterance, UtteranceConfig, generate_utterances
from voicecart.evaluation.metrics import bootstrap

KS = (1, 10, 50, 100)


def sample_lines(data: Path, test_from: datetime, n: int, seed: int = 0) -> list[tuple[str, float]]:
    """``n`` order lines (product, quantity) bought on or after ``test_from``, drawn at random."""
    from voicecart.data import connect

    rows = connect(data).execute(
        "SELECT l.product_id, l.quantity FROM order_lines l JOIN orders o USING (order_id) "
        "WHERE o.timestamp >= ? ORDER BY o.order_id, l.product_id", [test_from]).fetchall()
    if not rows:
        raise ValueError(f"no order lines on or after {test_from:%Y-%m-%d}: choose an earlier --test-from")
    pick = np.sort(np.random.default_rng(seed).choice(len(rows), min(n, len(rows)), replace=False))
    return [rows[i] for i in pick]


def product_rows(data: Path, product_ids: set[str]) -> dict[str, dict]:
    from voicecart.data import connect

    table = connect(data).sql("SELECT * FROM products WHERE product_id IN (SELECT unnest(?::VARCHAR[]))",
                              params=[sorted(product_ids)]).to_arrow_table()
    return {r["product_id"]: r for r in table.to_pylist()}


def retrieve(catalog, utterances: list[Utterance | None], heard: bool, k: int) -> dict[str, np.ndarray]:
    """Per request: 1-based rank of the bought product and of the first product of its type among the
    candidates (0 = absent), whether the parser understood an add request with a mention, the number of
    candidates."""
    from voicecart.ranking.parse import parse
    from voicecart.schemas import Intent

    n = len(utterances)
    out = {"rank": np.zeros(n, np.int64), "type_rank": np.zeros(n, np.int64), "parsed": np.zeros(n, bool),
           "candidates": np.zeros(n, np.int64)}
    for i, u in enumerate(utterances):
        if u is None:
            continue
        parsed = parse(u.text if heard else u.clean)
        if parsed.intent is not Intent.add or not parsed.mention:
            continue
        out["parsed"][i] = True
        cands = catalog.candidates(parsed, k=k).product
        truth = catalog.index[u.product_id]
        out["candidates"][i] = len(cands)
        hit = np.flatnonzero(cands == truth)
        out["rank"][i] = hit[0] + 1 if len(hit) else 0
        same = np.flatnonzero(catalog.cat_of[cands] == catalog.cat_of[truth])
        out["type_rank"][i] = same[0] + 1 if len(same) else 0
    return out


def _recalls(ranks: np.ndarray, ks: tuple[int, ...], n_boot: int, seed: int) -> dict[str, dict]:
    return {f"recall@{k}": bootstrap(((ranks > 0) & (ranks <= k)).astype(float), n_boot, seed).as_dict()
            for k in ks}


def retrieval_recall(data: Path, test_from: datetime, *, lines: int = 10_000, ks: tuple[int, ...] = KS,
                     config: UtteranceConfig = UtteranceConfig(), n_boot: int = 300,
                     say: Callable[[str], None] = lambda _: None) -> dict[str, object]:
    """Recall of the bought product (and of its type) among the candidates, as said and as heard, with
    95% bootstrap intervals over requests, split by the kind of phrase and of noise."""
    import pyarrow.parquet as pq

    from voicecart.features.build import materialized
    from voicecart.ranking.catalog import Catalog
    from voicecart.serving.bundle import catalog_with_stats

    say("building the catalogue and its statistics as of the cut-off (the feature SQL)")
    catalog = catalog_with_stats(Catalog.from_table(pq.read_table(Path(data) / "products.parquet")),
                                 materialized(data, test_from)[1])
    sample = sample_lines(data, test_from, lines, config.seed)
    products = product_rows(data, {p for p, _ in sample})
    utterances = generate_utterances(products, sample, config)
    spoken = np.array([u is not None for u in utterances])
    sold = np.array([catalog.stats.popularity[catalog.index[p]] > 0 for p, _ in sample])
    report: dict[str, object] = {
        "test_from": test_from.date().isoformat(), "lines": len(sample), "k": max(ks), "config": vars(config).copy(),
        "without_words": int((~spoken).sum()), "never_sold_before": int((~sold).sum()),
        "catalogue_products": len(catalog),
    }
    kinds = np.array([u.kind if u else "" for u in utterances])
    noise = np.array([("+".join(u.noise) or "none") if u else "" for u in utterances])
    for heard in (False, True):
        say(f"retrieving for the requests {'as heard' if heard else 'as said'}")
        r = retrieve(catalog, utterances, heard, max(ks))
        rows = np.flatnonzero(spoken)
        part: dict[str, object] = {
            "parsed": bootstrap(r["parsed"][rows].astype(float), n_boot, config.seed).as_dict(),
            "mean_candidates": round(float(r["candidates"][rows].mean()), 1),
            "product": _recalls(r["rank"][rows], ks, n_boot, config.seed),
            "type": _recalls(r["type_rank"][rows], ks, n_boot, config.seed),
            "by_phrase": {kind: {"requests": int((kinds[rows] == kind).sum()),
                                 **_recalls(r["rank"][rows][kinds[rows] == kind], (max(ks),), n_boot, config.seed),
                                 "type_recall": _recalls(r["type_rank"][rows][kinds[rows] == kind], (max(ks),),
                                                         n_boot, config.seed)[f"recall@{max(ks)}"]}
                          for kind in ("type", "short", "category") if (kinds[rows] == kind).any()},
            "sold_before_only": _recalls(r["rank"][rows][sold[rows]], (max(ks),), n_boot, config.seed),
        }
        if heard:
            groups = {g: rows[noise[rows] == g] for g in np.unique(noise[rows])}
            part["by_noise"] = {g: {"requests": int(len(idx)),
                                    **_recalls(r["rank"][idx], (max(ks),), n_boot, config.seed),
                                    "type_recall": _recalls(r["type_rank"][idx], (max(ks),), n_boot,
                                                            config.seed)[f"recall@{max(ks)}"]}
                                for g, idx in groups.items()}
            part["parser_failures"] = [utterances[i].text for i in rows[~r["parsed"][rows]][:25]]
        else:
            part["parser_failures"] = [utterances[i].clean for i in rows[~r["parsed"][rows]][:25]]
        report["heard" if heard else "said"] = part
    return report
