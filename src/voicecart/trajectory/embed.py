"""Customer embeddings from a trained encoder: in batch (parquet for the Feast embedding view), online
(one customer's history rows), and the encoder exported to ONNX for serving.

Parquet layout, one row per customer, the schema of ``voicecart.features`` ``customer_embedding`` view:
``customer_id`` (string), ``event_timestamp`` (timestamp[us, UTC], the cut-off the trajectory was read
up to; naive times are UTC) and ``embedding`` (list<float32>, length ``dim``). ``voicecart cstar embed
--feature-dir`` also writes it through :func:`voicecart.features.write_embeddings`.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from voicecart.trajectory.model import INPUTS, CStar
from voicecart.trajectory.trajectories import CategoryVocab, EncodedEvents, Events, as_day, batch_arrays

EMBEDDING_COLUMNS = ("customer_id", "event_timestamp", "embedding")


@torch.no_grad()
def embed_events(model: CStar, events: EncodedEvents, as_of_day: float, *, batch_size: int = 1024,
                 on_batch: Callable[[int, int], None] | None = None, device: str = "auto") -> np.ndarray:
    """[C, E] float32 embeddings of every customer of ``events`` (empty windows included), in order, computed
    on ``device`` (settings trajectory.device: CUDA when present); the model is left where it was."""
    from voicecart.devices import resolve_device

    at = resolve_device(device)
    home = model.device
    model.eval().to(at)
    order = np.argsort(events.lengths, kind="stable")  # similar lengths together: little padding
    out = np.zeros((len(events), model.cfg.dim), np.float32)
    for s in range(0, len(order), batch_size):
        rows = order[s:s + batch_size]
        x = {k: torch.from_numpy(v).to(at) for k, v in batch_arrays(events, rows, as_of_day, model.cfg.max_events).items()}
        out[rows] = model(**x).float().cpu().numpy()
        if on_batch is not None:
            on_batch(min(s + batch_size, len(order)), len(order))
    model.to(home)
    return out


def embed_history(model: CStar, vocab: CategoryVocab, events: Events, as_of: datetime) -> np.ndarray:
    """Online path: the same windowing and encoding as offline, for the few customers of ``events``."""
    window = events.window(as_of, max_events=model.cfg.max_events)
    return embed_events(model, window.encode(vocab), as_day(as_of))


def embeddings_table(customer_ids: np.ndarray, as_of: datetime, embeddings: np.ndarray) -> pa.Table:
    emb = np.ascontiguousarray(embeddings, dtype=np.float32)
    values = pa.array(emb.reshape(-1), pa.float32())
    offsets = pa.array(np.arange(0, emb.size + 1, emb.shape[1], dtype=np.int32))
    return pa.table({
        "customer_id": pa.array(np.asarray(customer_ids, dtype=object).astype(str), pa.string()),
        "event_timestamp": pa.array(np.full(len(emb), np.datetime64(_naive_utc(as_of), "us")),
                                    pa.timestamp("us")).cast(pa.timestamp("us", tz="UTC")),
        "embedding": pa.ListArray.from_arrays(offsets, values),
    })


def _naive_utc(ts: datetime) -> datetime:
    return ts if ts.tzinfo is None else ts.astimezone(timezone.utc).replace(tzinfo=None)


def write_embeddings(path: Path, customer_ids: np.ndarray, as_of: datetime, embeddings: np.ndarray) -> Path:
    """Write the embedding parquet atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(embeddings_table(customer_ids, as_of, embeddings), tmp)
    tmp.replace(path)
    return path


def read_embeddings(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(customer ids, [C, E] float32) from an embedding parquet."""
    table = pq.read_table(path, columns=["customer_id", "embedding"])
    ids = np.asarray(table.column("customer_id").to_pylist(), dtype=object)
    flat = table.column("embedding").combine_chunks().flatten().to_numpy()
    return ids, flat.reshape(len(ids), -1).astype(np.float32)


def export_onnx(model: CStar, path: Path, *, opset: int = 17) -> Path:
    """Export the encoder: inputs ``INPUTS`` ([B, T] int64, ``valid`` bool), output ``embedding`` [B, E]."""
    model.eval()
    B, T = 2, 5
    example = {k: torch.zeros(B, T, dtype=torch.int64) for k in INPUTS}
    example["valid"] = torch.ones(B, T, dtype=torch.bool)
    for k in ("l1", "l2", "l3"):
        example[k] = torch.full((B, T), 3, dtype=torch.int64)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dynamic = {k: {0: "batch", 1: "events"} for k in INPUTS}
    dynamic["embedding"] = {0: "batch"}
    torch.onnx.export(model, tuple(example[k] for k in INPUTS), str(path), input_names=list(INPUTS),
                      output_names=["embedding"], dynamic_axes=dynamic, opset_version=opset, dynamo=False)
    return path


def buyer_centroids(con, customer_ids: np.ndarray, embeddings: np.ndarray, until: datetime
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(product ids, [P, E] float32) each product's vector in the customer-embedding space: the unit-norm
    mean embedding of the customers who bought it before ``until``. A customer's embedding dotted with it
    says "customers like you buy this one" — a signal *inside* a category, where category-level vectors
    are all equal. For ``voicecart.ranking``'s ``Catalog.embedding_items``."""
    index = {str(c): i for i, c in enumerate(customer_ids)}
    pairs = con.sql("SELECT DISTINCT o.customer_id, l.product_id FROM orders o JOIN order_lines l USING (order_id) "
                    "WHERE o.timestamp < ? ORDER BY 2", params=[until]).to_arrow_table()
    cust = np.array([index.get(c, -1) for c in pairs.column("customer_id").to_pylist()], dtype=np.int64)
    prod_codes = np.asarray(pairs.column("product_id").to_pylist(), dtype=object)
    keep = cust >= 0
    products, prod = np.unique(prod_codes[keep], return_inverse=True)
    unit = embeddings / (np.linalg.norm(embeddings, axis=1, keepdims=True) + 1e-9)
    sums = np.zeros((len(products), embeddings.shape[1]), np.float64)
    np.add.at(sums, prod, unit[cust[keep]])
    sums /= np.linalg.norm(sums, axis=1, keepdims=True) + 1e-9
    return products, sums.astype(np.float32)
