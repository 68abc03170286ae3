"""The pipeline's C-STAR step: pre-train the encoder on the trajectories before the cut-off, then embed
every customer as of each moment the snapshot needs (the training cuts, the cut-off, the window end).

Embeddings leave as one table (customer_id, event_timestamp, embedding): the features step joins them
into the snapshot (a customer's row as of a moment is their latest embedding at or before it) and the
Feast ``customer_embedding`` view serves the newest.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from voicecart.devices import resolve_device
from voicecart.features.snapshot import EMBEDDINGS_FILE
from voicecart.schemas.times import DAY_S, epoch_s, naive_utc, parse_moment



def pretrain_window(dataset: str | Path, encoder_out: str | Path, embeddings_out: str | Path, curves_out: str | Path,
                    *, as_of: str, embed_at: Sequence[datetime] = (), epochs: int = 2, embedding_dim: int = 64,
                    max_events: int = 128, seed: int = 0) -> dict:
    """Pre-train on trajectories before ``as_of``; embed every customer as of ``as_of`` and each of
    ``embed_at``; plot the losses (``curves_out``, an HTML page with the PNG inline)."""
    from voicecart.config import load_settings
    from voicecart.data import connect
    from voicecart.trajectory import CategoryVocab, CStarConfig, TrainConfig, load_events, pretrain

    settings = load_settings().trajectory  # the device: CUDA on a GPU node, else the CPU
    cut = naive_utc(parse_moment(as_of))
    con = connect(Path(dataset))
    moments = sorted({cut, *(naive_utc(m) for m in embed_at)})
    events = load_events(con, until=max(moments))
    window = events.window(cut, max_events=max_events)
    vocab = CategoryVocab.from_paths(window.l1, window.l2, window.l3)
    n1, n2, n3 = vocab.sizes
    model_cfg = CStarConfig(n_l1=n1, n_l2=n2, n_l3=n3, dim=embedding_dim, max_events=max_events)
    out = Path(encoder_out)
    train = TrainConfig(epochs=epochs, seed=seed, device=settings.device, amp=settings.amp)
    result = pretrain(window.encode(vocab), vocab, epoch_s(cut) / DAY_S, model_cfg, train, out)
    table = embed_moments(result.model, vocab, events, moments, device=settings.device)
    Path(embeddings_out).mkdir(parents=True, exist_ok=True)
    pq.write_table(table, Path(embeddings_out) / EMBEDDINGS_FILE)
    png = out / "loss.png"
    img = base64.b64encode(png.read_bytes()).decode() if png.exists() else ""
    Path(curves_out).write_text(f"<html><body><h3>C-STAR pre-training</h3>"
                                f"{'<img src=data:image/png;base64,' + img + '>' if img else 'no steps'}</body></html>")
    return {"customers": int(len(window)), "moments": len(moments), "rows": table.num_rows,
            "seconds": round(result.seconds, 1), "trajectories_per_s": round(result.trajectories_per_s, 1),
            "embedding_dim": embedding_dim, "device": str(resolve_device(settings.device))}


def embed_moments(model, vocab, events, moments: Sequence[datetime], device: str = "auto") -> pa.Table:  # noqa: ANN001
    """Every customer of ``events`` embedded as of each moment (their trajectory before it), on ``device``:
    one table of (customer_id, event_timestamp = moment, embedding) rows."""
    from voicecart.trajectory.embed import embed_events, embeddings_table

    tables = []
    for moment in sorted({naive_utc(m) for m in moments}):
        at = events.window(moment, max_events=model.cfg.max_events)
        emb = embed_events(model, at.encode(vocab), epoch_s(moment) / DAY_S, device=device)
        tables.append(embeddings_table(at.customer_ids, moment, emb))
    return pa.concat_tables(tables)
