"""Item resolution as a C-STAR task: the ranker of ``voicecart.ranking`` trained and tested with and
without the customer-embedding feature, on the online protocol of :mod:`.resolution`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Callable

from voicecart.evaluation.metrics import bootstrap, summarize, truth_ranks
from voicecart.evaluation.resolution import evaluation_window, protocol_snapshot
from voicecart.ranking import RankerConfig, score_rows, train_ranker
from voicecart.features.snapshot import TRAIN_DAYS
from voicecart.schemas.times import DAY_S, epoch_s, utc


def resolution_with_embedding(data: Path, checkpoint: Path, test_from: datetime, *, test_end: datetime | None = None,
                              epochs: int = 4, n_boot: int = 300, log: Callable[[str], None] = print,
                              no_pretraining: Path | None = None) -> dict:
    """The ranker trained and tested without the C-STAR feature, and with it — the customer's embedding
    as of each moment dotted with each product's buyer centroid (fit at each cut) — on the online
    protocol's snapshot. ``no_pretraining``: also with the embedding of the same encoder before
    pre-training (its checkpoint), so the pre-training's own share is measured. HR@1 of each and the
    paired differences. The snapshot is built once; an arm only adds its embeddings."""
    from datetime import timedelta

    from voicecart.data import connect
    from voicecart.features.offline_duckdb import DuckDBEngine
    from voicecart.features.snapshot import training_cuts
    from voicecart.trajectory import load_encoder, load_events
    from voicecart.trajectory.window import embed_moments

    engine = DuckDBEngine(data)
    last = engine.query("SELECT MAX(timestamp) AS t FROM orders").column("t")[0].as_py()
    end = utc(test_end) if test_end else utc(last).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    snapshot = protocol_snapshot(engine, "online", test_from, end)
    events = load_events(connect(data))
    moments = training_cuts(test_from)
    start = epoch_s(test_from)
    arms = {"without_embedding": None, "with_embedding": load_encoder(checkpoint)[:2]}
    if no_pretraining is not None:
        arms["with_no_pretraining"] = load_encoder(no_pretraining)[:2]
    hits, out = {}, {}
    for name, encoder in arms.items():
        use = encoder is not None
        snap = snapshot.with_embeddings(embed_moments(*encoder, events, moments) if use else None)
        model = train_ranker(snap, start=start - TRAIN_DAYS * DAY_S, end=start,
                             config=RankerConfig(epochs=epochs, use_embedding=use), log=log)
        window = evaluation_window(snap, model, start, epoch_s(end), use_embedding=use, baselines=False, log=log)
        q = window.queries
        ranks = truth_ranks(score_rows(model.ranker, window.features, q.offsets), q.label, q.offsets)
        out["queries"] = int(len(q))
        hits[name] = (ranks == 1).astype(float)
        out[name] = summarize(ranks, n_boot=n_boot)["all"]
    out["hr@1_gain"] = _paired(hits["with_embedding"] - hits["without_embedding"])
    if "with_no_pretraining" in hits:
        out["hr@1_gain_over_no_pretraining"] = _paired(hits["with_embedding"] - hits["with_no_pretraining"])
    return out


def _paired(difference) -> dict:  # noqa: ANN001
    """Mean paired difference per query with its 95% bootstrap interval (the C-STAR reports' shape)."""
    ci = bootstrap(difference, n_boot=1000)
    return {"value": round(ci.value, 4), "ci95": [round(ci.low, 4), round(ci.high, 4)]}
