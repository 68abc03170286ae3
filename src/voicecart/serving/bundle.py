"""From a model bundle (``voicecart.registry.load_bundle``) to a :class:`ServingModel`.

A servable bundle is the registry's layout plus the catalogue snapshot the ranker was trained
against, ``model/catalog.pkl`` (``Catalog.save``), written next to the ranker weights by the
bundle's ``save_weights``. :func:`build_bundle_from_dataset` makes one from a prepared dataset with
the ranking and export libraries' own functions (tests, benchmark and the demo use it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from voicecart.ranking.catalog import Candidates, Catalog
from voicecart.schemas import CustomerProfile
from voicecart.serving.engine import ServingModel
from voicecart.serving.errors import BundleError
from voicecart.serving.predictor import FallbackScorer, OnnxScorer, Scorer, TritonScorer

CATALOG_FILES = ("model/catalog.pkl", "catalog.pkl")
DAY_S = 86_400.0


def catalog_path(root: Path) -> Path:
    for rel in CATALOG_FILES:
        if (root / rel).is_file():
            return root / rel
    raise BundleError(f"{root} has no catalogue snapshot (looked for {', '.join(CATALOG_FILES)})")


def featurizer(input_name: str, batched: bool):  # noqa: ANN201 - returns engine.Featurizer
    """The ranker's input tensors from one request's candidates (ONE feature code: ranking.features)."""
    from voicecart.ranking.features import candidate_features

    def featurize(profile: CustomerProfile, cands: Candidates, catalog: Catalog, now_day: float) -> dict[str, np.ndarray]:
        x = candidate_features(profile, cands, catalog, now_day * DAY_S)  # [n, F]
        return {input_name: x[None] if batched else x}  # [1, n, F]

    return featurize


def load_serving_model(model_dir: str | Path, *, triton_url: str | None = None, triton_model: str | None = None,
                       triton_timeout_s: float = 0.05) -> ServingModel:
    """Open and verify a bundle (or a registry's champion) and load everything the request path needs."""
    from voicecart.registry import BundleError as RegistryBundleError
    from voicecart.registry import load_bundle

    try:
        bundle = load_bundle(model_dir)
    except RegistryBundleError as exc:
        raise BundleError(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - e.g. an unreadable champion pointer: never a 5xx
        raise BundleError(f"{model_dir}: cannot open the bundle ({type(exc).__name__}: {exc})") from None
    signature = bundle.signature
    if len(signature.inputs) != 1:
        raise BundleError(f"{bundle.root}: the ranker must take one input tensor, got {signature.input_names}")
    spec = signature.inputs[0]
    try:
        catalog = Catalog.load(catalog_path(bundle.root))
    except BundleError:
        raise
    except Exception as exc:
        raise BundleError(f"{bundle.root}: catalogue snapshot unreadable ({type(exc).__name__}: {exc})") from None
    local = OnnxScorer(bundle.onnx)
    scorer: Scorer = local
    if triton_url:
        remote = TritonScorer(triton_url, triton_model or bundle.metadata.name, timeout_s=triton_timeout_s,
                              output_name=signature.output_names[0])
        scorer = FallbackScorer(remote, local)
    return ServingModel(version=bundle.version, catalog=catalog, scorer=scorer,
                        featurize=featurizer(spec.name, batched=len(spec.shape) == 3), now=float(catalog.as_of))


def build_bundle_from_dataset(data_dir: str | Path, out: str | Path, *, version: str = "v0001",
                              holdout_days: float = 14.0, epochs: int = 2, seed: int = 0,
                              name: str = "voicecart") -> Path:
    """Train a ranker on a prepared dataset and write a servable bundle (weights, ONNX, Triton, catalogue).

    The catalogue is as of ``holdout_days`` before the last purchase; the ranker learns from the
    category lists of the purchases after it (the ranking library's own training path).
    """
    from datetime import datetime, timezone

    import torch

    from voicecart.export import build_bundle
    from voicecart.ranking.features import FEATURE_NAMES, CustomerAggregates
    from voicecart.ranking.history import History, Purchases
    from voicecart.ranking.model import RankerConfig
    from voicecart.ranking.train import TrainingSet, category_queries, list_features, train_ranker
    from voicecart.registry import feature_schema_hash
    from voicecart.schemas import DataWindow, ModelMetadata

    torch.manual_seed(seed)
    purchases = Purchases.from_dataset(data_dir)
    end = float(purchases.day.max()) + 1e-6
    as_of = end - holdout_days
    catalog = Catalog.build(purchases, as_of, seed=seed)
    history = History.from_purchases(purchases, as_of)
    aggregates = CustomerAggregates(history, catalog)
    queries = category_queries(purchases, catalog, history, aggregates, as_of, end)
    features = list_features(queries, catalog, history, aggregates)
    ranker = train_ranker(TrainingSet.from_lists(queries, features),
                          RankerConfig(n_features=features.shape[1], epochs=epochs, seed=seed), log=lambda _: None)

    def save_weights(directory: Path) -> None:
        ranker.save(directory)
        catalog.save(directory / "catalog.pkl")

    example = {"features": features[: min(len(features), 16)][None].astype(np.float32)}
    day = lambda d: datetime.fromtimestamp(d * DAY_S, tz=timezone.utc)  # noqa: E731
    metadata = ModelMetadata(
        name=name, version=version, created_at=datetime.now(timezone.utc),
        data_window=DataWindow(start=day(float(purchases.day.min())), end=day(as_of)),
        feature_names=list(FEATURE_NAMES), feature_schema_hash=feature_schema_hash(list(FEATURE_NAMES)),
        extra={"source": str(data_dir), "epochs": epochs})
    return build_bundle(ranker, example, Path(out), metadata, save_weights=save_weights, mar=False)
