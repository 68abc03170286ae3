"""The pipeline's C-STAR step on a small synthetic shop: one pre-training, every customer embedded at each moment."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from voicecart.data.store import write_dataset
from voicecart.data.synthetic import SyntheticConfig, generate
from voicecart.features.snapshot import EMBEDDINGS_FILE
from voicecart.trajectory.window import pretrain_window


def test_pretrain_window_embeds_every_customer_at_every_moment(tmp_path: Path) -> None:
    tables, _ = generate(SyntheticConfig(n_customers=60, mean_orders=6, seed=2))
    write_dataset(tables, tmp_path / "data", source="synthetic")
    cuts = [datetime(2020, 2, 1, tzinfo=timezone.utc), datetime(2020, 2, 15, tzinfo=timezone.utc)]
    summary = pretrain_window(tmp_path / "data", tmp_path / "encoder", tmp_path / "emb", tmp_path / "curves.html",
                              as_of="2020-03-01", embed_at=cuts, epochs=1, embedding_dim=16, max_events=32)
    table = pq.read_table(tmp_path / "emb" / EMBEDDINGS_FILE)
    assert summary["moments"] == 3 and summary["rows"] == table.num_rows > 0
    assert set(table.column_names) >= {"customer_id", "event_timestamp", "embedding"}
    moments = {m.replace(tzinfo=None) for m in table.column("event_timestamp").to_pylist()}
    assert moments <= {datetime(2020, 3, 1), datetime(2020, 2, 1), datetime(2020, 2, 15)} and len(moments) >= 2
    vectors = np.asarray(table.column("embedding").to_pylist(), dtype=np.float32)
    assert vectors.shape[1] == 16 and np.isfinite(vectors).all()
    assert "C-STAR pre-training" in (tmp_path / "curves.html").read_text()
