"""The small synthetic world the serving integration tests share: a prepared dataset and a bundle."""

from __future__ import annotations

from pathlib import Path

from voicecart.data.store import write_dataset
from voicecart.data.synthetic import SyntheticConfig, generate
from voicecart.export.model import bundle_from_dataset
from voicecart.schemas.times import from_epoch
from voicecart.serving.bundle import load_serving_model


def synthetic_world(root: Path, customers: int, seed: int, customer_index: int = 3) -> dict:
    """{root, data, bundle, as_of (the bundle's catalogue moment), customer} for a synthetic dataset."""
    tables, _ = generate(SyntheticConfig(n_customers=customers, seed=seed))
    write_dataset(tables, root / "data", source="synthetic")
    bundle = bundle_from_dataset(root / "data", root / "bundle", epochs=1)
    as_of = from_epoch(load_serving_model(bundle).now)
    return {"root": root, "data": root / "data", "bundle": bundle, "as_of": as_of,
            "customer": str(tables.customers.column("customer_id")[customer_index])}
