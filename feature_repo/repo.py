"""The voicecart Feast objects, for the `feast` CLI (`feast apply` in this folder).

The definitions live in ``voicecart.features.definitions`` and the backend is the settings' own
(``voicecart.features.store.definitions``), so the CLI, the pipelines and this repository register
exactly the same views. Offline tables are read from ``$VOICECART_FEATURES__STORE_DIR/offline``
(default ``../runs/features/offline``), written by ``voicecart features build``; with
``feature_store.production.yaml`` set ``VOICECART_FEATURES__OFFLINE__TYPE=bigquery`` (and its project and
dataset) to read the BigQuery tables instead.
"""

import os
from pathlib import Path

from voicecart.config import load_settings
from voicecart.features.store import definitions

_settings = load_settings().features
if "VOICECART_FEATURES__STORE_DIR" not in os.environ:
    _settings = _settings.model_copy(update={"store_dir": Path(__file__).parent.parent / "runs/features"})

# Feast discovers objects bound to module-level names.
(customer, product, customer_profile_source, customer_profile_push, customer_profile, customer_embedding,
 customer_features, product_features, serving_profile, ranker_training, cstar_training) = definitions(_settings)
