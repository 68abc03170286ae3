"""Item resolution as a C-STAR task: the ranker of ``voicecart.ranking`` trained and tested with and
without the customer-embedding feature, on the category-query protocol of :mod:`.resolution`."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Callable

import numpy as np

from voicecart.evaluation.metrics import summarize, truth_ranks
from voicecart.evaluation.resolution import Snapshot, month_starts, train_on_cuts
from voicecart.ranking import Purchases, RankerConfig
from voicecart.ranking.history import to_day
from voicecart.ranking.train import category_queries, list_features, score_rows


def resolution_with_embedding(data: Path, checkpoint: Path, test_from: datetime, *, months: int = 2,
                              epochs: int = 4, n_boot: int = 300, log: Callable[[str], None] = print,
                              no_pretraining: Path | None = None) -> dict:
    """The ranker trained and tested without the C-STAR feature, and with it — the customer's embedding
    (``History.embedding``) dotted with each product's buyer centroid (``Catalog.embedding_items``), both
    as of each cut. ``no_pretraining``: also with the embedding of the same encoder before pre-training
    (its checkpoint), so the pre-training's own share is measured. HR@1 of each and the paired differences.

    Each cut's snapshot (catalogue, history, aggregates) is built once; an arm only adds its embeddings."""
    from voicecart.data import connect
    from voicecart.trajectory import as_day, buyer_centroids, embed_events, load_encoder, load_events
    from voicecart.trajectory.tasks import bootstrap

    con = connect(data)
    purchases = Purchases.from_dataset(data)
    events = load_events(con).including(purchases.customer_ids)
    start = to_day(test_from)
    cuts = month_starts(float(purchases.day.min()), start, months)
    if not cuts:
        raise ValueError(f"item resolution trains on whole months before --test-from {test_from:%Y-%m-%d} and the "
                         "data has none (it needs a first-of-month cut at least 28 days after the first order); "
                         "use a later --test-from or --no-resolution")
    base = {day: Snapshot.build(purchases, day) for day in [*cuts, start]}

    def with_embedding(snap: Snapshot, model, vocab) -> Snapshot:
        """``snap`` plus the customer and product vectors of ``model`` as of its cut (``snap`` untouched)."""
        cut = datetime.utcfromtimestamp(snap.as_of * 86_400)
        enc = events.window(cut, max_events=model.cfg.max_events).encode(vocab)
        emb = embed_events(model, enc, as_day(cut))
        row = {str(c): i for i, c in enumerate(enc.customer_ids)}
        products, vectors = buyer_centroids(con, enc.customer_ids, emb, cut)
        items = np.zeros((len(purchases.product_ids), emb.shape[1]), np.float32)
        where = {p: i for i, p in enumerate(products)}
        for j, p in enumerate(purchases.product_ids):
            if p in where:
                items[j] = vectors[where[p]]
        return replace(snap, history=replace(snap.history, embedding=emb[[row[str(c)] for c in purchases.customer_ids]]),
                       catalog=replace(snap.catalog, embedding_items=items))

    arms = {"without_embedding": None, "with_embedding": load_encoder(checkpoint)[:2]}
    if no_pretraining is not None:
        arms["with_no_pretraining"] = load_encoder(no_pretraining)[:2]
    # the test queries do not depend on the embedding: built once, from the plain snapshot
    tq = category_queries(purchases, base[start].catalog, base[start].history, base[start].aggregates, start,
                          float(purchases.day.max()) + 1)
    hits, out = {}, {"queries": int(len(tq))}
    for name, encoder in arms.items():
        snaps = base if encoder is None else {day: with_embedding(s, *encoder) for day, s in base.items()}
        use = encoder is not None
        test = snaps[start]
        ranker = train_on_cuts(purchases, cuts, start, lambda _p, day: snaps[day],
                               config=RankerConfig(epochs=epochs, use_embedding=use), log=log)
        feats = list_features(tq, test.catalog, test.history, test.aggregates, use_embedding=use)
        ranks = truth_ranks(score_rows(ranker, feats, tq.offsets), tq.label, tq.offsets)
        hits[name] = (ranks == 1).astype(float)
        out[name] = summarize(ranks, n_boot=n_boot)["all"]
    out["hr@1_gain"] = bootstrap(hits["with_embedding"] - hits["without_embedding"]).as_dict()
    if "with_no_pretraining" in hits:
        out["hr@1_gain_over_no_pretraining"] = bootstrap(hits["with_embedding"] - hits["with_no_pretraining"]).as_dict()
    return out
