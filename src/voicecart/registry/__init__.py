"""Versioned model bundles and the champion pointer, in a local folder or object storage.

The one call serving needs::

    bundle = load_bundle("runs/registry")            # the champion of a registry (folder or gs://, s3://)
    bundle = load_bundle("runs/registry", version="v0003")
    bundle = load_bundle("path/to/one/bundle")       # a single bundle folder
    bundle.onnx, bundle.torchscript, bundle.triton_repository("cpu"), bundle.torchserve_dir,
    bundle.weights_dir, bundle.signature, bundle.metadata (schemas.ModelMetadata), bundle.version
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from pathlib import Path

import fsspec

from voicecart.export import layout
from voicecart.registry.bundle import Bundle, BundleError, IncompatibleBundleError, open_bundle
from voicecart.registry.store import CanaryPointer, ChampionPointer, Registry, RegistryError, VersionInfo


def feature_schema_hash(feature_names: list[str], dtypes: list[str] | None = None) -> str:
    """Stable hash of the ranker's input features (names in order, and dtypes when given)."""
    payload = json.dumps({"names": list(feature_names), "dtypes": list(dtypes or [])}, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def load_bundle(dir_or_uri: str | Path, *, version: str | None = None, name: str = "voicecart",
                cache_dir: Path | None = None, expected_feature_schema_hash: str | None = None) -> Bundle:
    """Open a model bundle: a bundle folder/URI itself, or a registry root (its champion or ``version``).

    Remote URIs (gs://, s3://, memory://) are downloaded to ``cache_dir`` first; checksums are
    verified. Raises :class:`BundleError` (missing/corrupt) or :class:`IncompatibleBundleError`.
    """
    uri = str(dir_or_uri)
    fs, root = fsspec.core.url_to_fs(uri)
    if fs.exists(posixpath.join(root, layout.METADATA)) and version is None:
        return open_bundle(uri, cache_dir=cache_dir, expected_feature_schema_hash=expected_feature_schema_hash)
    if fs.exists(posixpath.join(root, name)):
        try:
            return Registry(uri, name=name, cache_dir=cache_dir).load(
                version, expected_feature_schema_hash=expected_feature_schema_hash)
        except RegistryError as exc:
            raise BundleError(str(exc)) from None
    raise BundleError(f"{uri} is neither a model bundle ({layout.METADATA}) nor a registry holding model {name!r}")


__all__ = [
    "Bundle",
    "BundleError",
    "CanaryPointer",
    "ChampionPointer",
    "IncompatibleBundleError",
    "Registry",
    "RegistryError",
    "VersionInfo",
    "feature_schema_hash",
    "load_bundle",
    "open_bundle",
]
