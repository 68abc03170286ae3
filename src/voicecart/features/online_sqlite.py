"""The local online store: Feast's SQLite store in one file (``<store_dir>/online_store.db`` by default)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from feast import FeatureStore

    from voicecart.config import SqliteOnline


def feast_config(config: "SqliteOnline", store_dir: Path) -> dict[str, Any]:
    return {"type": "sqlite", "path": str(Path(config.path or Path(store_dir) / "online_store.db").resolve())}


def describe(config: "SqliteOnline", store_dir: Path) -> str:
    return f"sqlite {feast_config(config, store_dir)['path']}"


def check_reachable(config: "SqliteOnline") -> None:
    """A local file is always reachable (Feast creates it)."""


def tune(store: "FeatureStore", config: "SqliteOnline") -> None:
    """Nothing to tune: reads are local."""
