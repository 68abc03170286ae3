"""The pipeline's export step: a trained ranker and its catalogue -> a checked, servable bundle.

The bundle holds the ranker (ONNX, TorchScript, Triton repository, TorchServe .mar) and, under
``model/``, the weights and the catalogue with the product vectors of the training cut. Product
statistics are not in it: serving reads them from the feature store (the same snapshot rows training
used), so a bundle never carries stale popularity.
"""

from __future__ import annotations

import os
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from voicecart.schemas import DataWindow, ModelMetadata
from voicecart.schemas.times import epoch_s, parse_moment

MODEL_NAME = "voicecart"


def git_commit() -> str | None:
    """The code's commit: ``VOICECART_GIT_COMMIT`` (set in the image) or ``git rev-parse``."""
    if os.environ.get("VOICECART_GIT_COMMIT"):
        return os.environ["VOICECART_GIT_COMMIT"]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired):
        return None


def held_out_requests(snapshot, trained, start: float, end: float, n: int, seed: int = 1) -> list[dict[str, np.ndarray]]:  # noqa: ANN001
    """``n`` single requests {"features": [1, candidates, F]} of the window after ``start``, sizes spread."""
    from voicecart.ranking.lists import SnapshotIndex, list_features, walk

    vectors = None if trained.catalog.vectors is None else {-np.inf: trained.catalog.vectors}
    index = SnapshotIndex(snapshot, trained.catalog, vectors, use_embedding=trained.ranker.config.use_embedding)
    out: list[dict[str, np.ndarray]] = []
    rng = np.random.default_rng(seed)
    for view, lists in walk(index, start, end, candidates_at=start):
        if not len(lists):
            continue
        picks = rng.choice(len(lists), size=min(len(lists), max(n - len(out), 0), 8), replace=False)
        sub = lists.take(picks)
        feats = list_features(view, sub, use_embedding=trained.ranker.config.use_embedding)
        out += [{"features": feats[sub.offsets[i]:sub.offsets[i + 1]][None].astype(np.float32)} for i in range(len(sub))]
        if len(out) >= n:
            break
    return out


def with_stats_at(trained, snapshot, moment: float) -> None:  # noqa: ANN001
    """Give the bundle's catalogue the snapshot's product statistics at ``moment`` (the freshest it knows:
    serving falls back on them when no feature store answers)."""
    import pyarrow as pa

    from voicecart.ranking.catalog import ProductStats
    from voicecart.schemas.times import epoch_array

    at = epoch_array(snapshot.products.column("event_timestamp"))
    if (at == moment).any():
        rows = snapshot.products.filter(pa.array(at == moment))
        trained.catalog = trained.catalog.at(ProductStats.from_rows(rows, trained.catalog.index, len(trained.catalog),
                                                                    moment))


def export_model(model_dir: str | Path, snapshot_dir: str | Path, bundle_out: str | Path, *, test_from: str,
                 window_start: str, window_end: str, held_out: int = 64, mar: bool = True) -> dict:
    """Write the bundle and check every export against torch on held-out requests of the test window."""
    from voicecart.export.bundle import build_bundle
    from voicecart.features.snapshot import Snapshot
    from voicecart.ranking.train import TrainedRanker
    from voicecart.registry import feature_schema_hash

    trained = TrainedRanker.load(model_dir)
    snapshot = Snapshot.load(snapshot_dir)
    requests = held_out_requests(snapshot, trained, epoch_s(parse_moment(test_from)),
                                 epoch_s(parse_moment(window_end)), held_out)
    if not requests:
        from voicecart.data.errors import DataError

        raise DataError(f"no requests after {test_from} in the snapshot to check the exports on")
    config = trained.ranker.config
    names = list(config.feature_names)
    metadata = ModelMetadata(
        name=MODEL_NAME, version="draft", created_at=datetime.now(timezone.utc),
        data_window=DataWindow(start=parse_moment(window_start), end=parse_moment(window_end)), feature_names=names,
        feature_schema_hash=feature_schema_hash(names), git_commit=git_commit(),
        extra={"test_from": test_from, "hidden": ",".join(str(h) for h in config.hidden), "epochs": config.epochs,
               "lr": config.lr, "seed": config.seed, "use_embedding": config.use_embedding,
               "purchase_lists": trained.info.get("purchase_lists"), "feedback_lists": trained.info.get("feedback_lists")})
    with_stats_at(trained, snapshot, epoch_s(parse_moment(window_end)))
    build_bundle(trained.ranker, requests[0], Path(bundle_out), metadata, save_weights=trained.save,
                 held_out=requests[1:], mar=mar)
    return {"feature_schema_hash": metadata.feature_schema_hash, "held_out_requests_checked": len(requests)}


def bundle_from_dataset(data_dir: str | Path, out: str | Path, *, version: str = "v0001", holdout_days: float = 14.0,
                        train_days: int = 56, epochs: int = 2, seed: int = 0, name: str = MODEL_NAME,
                        mar: bool = False) -> Path:
    """A servable bundle from a prepared dataset in one call (tests, benchmarks, the quick start): the
    snapshot of its last ``train_days + holdout_days`` days, the ranker trained by the one trainer on all
    but the last ``holdout_days``, exported and checked on requests of those days."""
    from datetime import timedelta

    from voicecart.export.bundle import build_bundle
    from voicecart.features.offline_duckdb import DuckDBEngine
    from voicecart.features.snapshot import as_of_day, build_snapshot, training_cuts, window_lines
    from voicecart.ranking import RankerConfig, train_ranker
    from voicecart.registry import feature_schema_hash
    from voicecart.schemas.times import midnight, utc

    engine = DuckDBEngine(data_dir)
    first, last = (engine.query(f"SELECT {f}(timestamp) AS t FROM orders").column("t")[0].as_py() for f in ("MIN", "MAX"))
    end = midnight(last) + timedelta(days=1)
    cut = midnight(end - timedelta(days=holdout_days))
    start = max(cut - timedelta(days=train_days), midnight(utc(first)))
    days = int((cut - start).days)
    snapshot = build_snapshot(engine, as_of_day(window_lines(engine, start, end)),
                              cuts=training_cuts(cut, max(days, 1)), extra_moments=[end])
    trained = train_ranker(snapshot, start=epoch_s(start), end=epoch_s(cut),
                           config=RankerConfig(epochs=epochs, seed=seed), log=lambda _: None)
    requests = held_out_requests(snapshot, trained, epoch_s(cut), epoch_s(end), 16)
    if not requests:
        raise ValueError(f"{data_dir}: no purchases in the last {holdout_days:g} days to check the exports on")
    with_stats_at(trained, snapshot, epoch_s(end))
    names = list(trained.ranker.config.feature_names)
    metadata = ModelMetadata(name=name, version=version, created_at=datetime.now(timezone.utc),
                             data_window=DataWindow(start=start, end=cut), feature_names=names,
                             feature_schema_hash=feature_schema_hash(names),
                             extra={"source": str(data_dir), "epochs": epochs, "test_from": cut.date().isoformat()})
    return build_bundle(trained.ranker, requests[0], Path(out), metadata, save_weights=trained.save,
                        held_out=requests[1:], mar=mar)
