"""Features: SQL over the canonical tables (DuckDB here, BigQuery at scale) and the Feast glue.

The only package that imports feast (lazily: importing ``voicecart.features`` is cheap).

* offline: :func:`build_features` writes parquet feature tables; :func:`profiles_as_of` /
  :func:`feature_table` give point-in-time snapshots for training; :func:`write_embeddings` is
  where C-STAR puts embeddings.
* online: :class:`voicecart.features.online.ProfileStore` (one read per request, push from feedback).
* Feast repo: :mod:`voicecart.features.store` (config from settings, apply, materialize),
  :mod:`voicecart.features.definitions` (entities, views, push source, services).
"""

from voicecart.features.build import (
    EMBEDDINGS_FILE,
    FEATURE_TABLES,
    BuildSummary,
    build_features,
    feature_table,
    profiles_as_of,
    write_embeddings,
)
from voicecart.features.errors import FeatureDefinitionError, FeatureStoreError, FeatureStoreUnavailable
from voicecart.features.sql import QUERIES, render, to_bigquery

__all__ = [
    "EMBEDDINGS_FILE", "FEATURE_TABLES", "QUERIES", "BuildSummary", "FeatureDefinitionError", "FeatureStoreError",
    "FeatureStoreUnavailable", "ProfileStore", "build_features", "feature_table", "profiles_as_of", "render",
    "to_bigquery", "write_embeddings",
]


def __getattr__(name: str):  # ProfileStore pulls in feast only when asked for
    if name == "ProfileStore":
        from voicecart.features.online import ProfileStore

        return ProfileStore
    raise AttributeError(name)
