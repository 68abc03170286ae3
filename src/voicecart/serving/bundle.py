"""From a model bundle (``voicecart.registry.load_bundle``) and the feature store to a :class:`ServingModel`.

A servable bundle is the registry's layout plus the catalogue the ranker was trained with,
``model/catalog.pkl`` (``TrainedRanker.save``: products, text index, product vectors, and the product
statistics of the end of its data window as a fallback). The statistics served come from a
:data:`StatsSource` — the Feast ``product_features`` view (what the snapshot materialized) or the
same SQL over a prepared dataset — read at load and on every reload. Serving never trains.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pyarrow as pa

from voicecart.ranking.catalog import Catalog, ProductStats
from voicecart.ranking.features import featurizer
from voicecart.schemas.times import epoch_array
from voicecart.serving.engine import ServingModel
from voicecart.serving.errors import BundleError
from voicecart.config import OnnxPredictor, TritonPredictor
from voicecart.serving.predictor import open_predictor

CATALOG_FILES = ("model/catalog.pkl", "catalog.pkl")

StatsSource = Callable[[], pa.Table]
"""Returns ``product_stats`` rows of one moment (product_id, event_timestamp, popularity_all, ...)."""


def catalog_path(root: Path) -> Path:
    for rel in CATALOG_FILES:
        if (root / rel).is_file():
            return root / rel
    raise BundleError(f"{root} has no catalogue (looked for {', '.join(CATALOG_FILES)})")


def _dataset_stats(data_dir: str | Path, as_of: datetime | None) -> pa.Table:
    from voicecart.features.build import materialized

    return materialized(data_dir, as_of)[1]


def _feast_stats(settings) -> pa.Table:  # noqa: ANN001
    from voicecart.features.online import read_product_stats

    return read_product_stats(settings)


def stats_from_dataset(data_dir: str | Path, as_of: datetime | None = None) -> StatsSource:
    """Product statistics computed by the feature SQL over a prepared dataset (default: after its last order);
    picklable, so every worker process can read them."""
    return functools.partial(_dataset_stats, data_dir, as_of)


def stats_from_feast(settings) -> StatsSource:  # noqa: ANN001 - config.FeatureSettings
    """Product statistics from the Feast online store's ``product_features`` view (all products)."""
    return functools.partial(_feast_stats, settings)


def catalog_with_stats(catalog: Catalog, rows: pa.Table | None) -> Catalog:
    """The catalogue with the statistics of ``rows`` (one moment); the bundle's own when none are given."""
    if rows is None or rows.num_rows == 0:
        return catalog
    moment = float(epoch_array(rows.column("event_timestamp")).max())
    return catalog.at(ProductStats.from_rows(rows, catalog.index, len(catalog), moment))


def load_serving_model(model_dir: str | Path, *, stats: StatsSource | None = None,
                       predictor: OnnxPredictor | TritonPredictor | None = None, version: str | None = None) -> ServingModel:
    """Open and verify a bundle (or a registry's champion, or its ``version``) and load everything the request
    path needs."""
    from voicecart.registry import BundleError as RegistryBundleError
    from voicecart.registry import load_bundle

    try:
        bundle = load_bundle(model_dir, version=version)
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
        raise BundleError(f"{bundle.root}: catalogue unreadable ({type(exc).__name__}: {exc})") from None
    try:
        catalog = catalog_with_stats(catalog, stats() if stats is not None else None)
    except Exception as exc:  # noqa: BLE001 - a store that is down at load: serve the bundle's own statistics
        import logging

        logging.getLogger("voicecart.serving").warning("product statistics unavailable (%s: %s); serving the "
                                                       "bundle's own", type(exc).__name__, exc)
    scorer = open_predictor(predictor or OnnxPredictor(), bundle)
    return ServingModel(version=bundle.version, catalog=catalog, scorer=scorer,
                        featurize=featurizer(spec.name, batched=len(spec.shape) == 3), now=catalog.stats.moment)

