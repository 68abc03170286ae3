"""The small synthetic world the serving integration tests share: a prepared dataset and a bundle."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from voicecart.data.store import write_dataset
from voicecart.data.synthetic import SyntheticConfig, generate
from voicecart.serving.bundle import build_bundle_from_dataset, load_serving_model


def synthetic_world(root: Path, customers: int, seed: int, customer_index: int = 3) -> dict:
    """{root, data, bundle, as_of (the bundle's catalogue moment), customer} for a synthetic dataset."""
    tables, _ = generate(SyntheticConfig(n_customers=customers, seed=seed))
    write_dataset(tables, root / "data", source="synthetic")
    bundle = build_bundle_from_dataset(root / "data", root / "bundle", epochs=1)
    as_of = datetime.fromtimestamp(load_serving_model(bundle).now * 86_400, tz=timezone.utc)
    return {"root": root, "data": root / "data", "bundle": bundle, "as_of": as_of,
            "customer": str(tables.customers.column("customer_id")[customer_index])}
