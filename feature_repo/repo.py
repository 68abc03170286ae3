"""The voicecart Feast objects, for the `feast` CLI (`feast apply` in this folder).

The definitions live in ``voicecart.features.definitions`` so that the CLI, the pipelines and
this repository register exactly the same views. Offline tables are read from
``$VOICECART_FEATURES__STORE_DIR/offline`` (default ``../runs/features/offline``), written by
``voicecart features build``; with ``feature_store.production.yaml`` set
``VOICECART_FEATURES__OFFLINE=bigquery`` to read the BigQuery tables instead.
"""

import os
from pathlib import Path

from voicecart.features.definitions import BigQueryTables, FileTables, feature_objects

if os.environ.get("VOICECART_FEATURES__OFFLINE") == "bigquery":
    _tables = BigQueryTables(os.environ["VOICECART_FEATURES__BIGQUERY_PROJECT"],
                             os.environ["VOICECART_FEATURES__BIGQUERY_DATASET"])
else:
    _store_dir = Path(os.environ.get("VOICECART_FEATURES__STORE_DIR", Path(__file__).parent.parent / "runs/features"))
    _tables = FileTables(_store_dir / "offline")

# Feast discovers objects bound to module-level names.
(customer, product, customer_profile_source, customer_profile_push, customer_profile, customer_embedding,
 customer_features, product_features, serving_profile, ranker_training, cstar_training) = feature_objects(_tables)
