"""Where bundles are stored: one small interface, one module per backend, chosen by a typed config.

=============  ===========================================  ============================================
``type``       module                                       holds bundles in
=============  ===========================================  ============================================
``local``      :mod:`voicecart.registry.store_local`        a folder on this machine (the local default)
``object``     :mod:`voicecart.registry.store_object`       object storage through fsspec (gs://, s3://)
=============  ===========================================  ============================================
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated, Literal, Protocol

from fsspec import AbstractFileSystem
from pydantic import BaseModel, Field


class LocalModelStore(BaseModel):
    type: Literal["local"] = "local"
    path: Path


class ObjectModelStore(BaseModel):
    type: Literal["object"] = "object"
    uri: str = Field(pattern=r"^[a-z][a-z0-9+.-]*://")
    """``gs://bucket/prefix``, ``s3://...``, ``memory://...`` (tests)."""


ModelStoreConfig = Annotated[LocalModelStore | ObjectModelStore, Field(discriminator="type")]


class ModelStore(Protocol):
    """Files of a registry: an fsspec filesystem, a root in it, and bundles made local on demand."""

    fs: AbstractFileSystem
    root: str

    def url(self, path: str) -> str:
        """The address of ``path`` (a path of ``fs``) that ``open_store`` / ``fetch`` understand again."""
        ...

    def fetch(self, path: str, cache_dir: Path | None) -> Path:
        """A local folder holding the files under ``path`` (downloaded for remote stores)."""
        ...


def config_of(location: str | Path | LocalModelStore | ObjectModelStore) -> LocalModelStore | ObjectModelStore:
    """A typed store config from a location as people type it (a folder, or a URI)."""
    if isinstance(location, (LocalModelStore, ObjectModelStore)):
        return location
    from voicecart.schemas.locations import local_path

    path = local_path(location)
    return LocalModelStore(path=path) if path is not None else ObjectModelStore(uri=str(location))


def open_store(location: str | Path | LocalModelStore | ObjectModelStore) -> ModelStore:
    config = config_of(location)
    return importlib.import_module(f"voicecart.registry.store_{config.type}").open(config)
