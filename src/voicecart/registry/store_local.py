"""Bundles in a folder on this machine (the local default): nothing to download."""

from __future__ import annotations

from pathlib import Path

from fsspec.implementations.local import LocalFileSystem

from voicecart.registry.stores import LocalModelStore


class LocalStore:
    def __init__(self, path: Path) -> None:
        self.fs = LocalFileSystem()
        self.root = str(Path(path).resolve())

    def url(self, path: str) -> str:
        return path

    def fetch(self, path: str, cache_dir: Path | None) -> Path:
        return Path(path)


def open(config: LocalModelStore) -> LocalStore:  # noqa: A001 - the backend's one entry point
    return LocalStore(config.path)
