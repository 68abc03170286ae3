"""A model bundle opened for use: local paths to every export plus its metadata, verified."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from voicecart.export import layout
from voicecart.export.layout import sha256
from voicecart.export.signature import ModelSignature
from voicecart.schemas import ModelMetadata


class BundleError(RuntimeError):
    """A bundle that is missing, incomplete or corrupt; the message names the file."""


class IncompatibleBundleError(BundleError):
    """A bundle built for another feature schema than the one asked for."""


@dataclass(frozen=True)
class Bundle:
    """Local, verified paths of one model version (what serving and the gate read)."""

    root: Path
    uri: str
    metadata: ModelMetadata

    @property
    def version(self) -> str:
        return self.metadata.version

    @property
    def weights_dir(self) -> Path:
        return self.root / layout.WEIGHTS_DIR

    @property
    def onnx(self) -> Path:
        return self.root / layout.ONNX

    @property
    def torchscript(self) -> Path:
        return self.root / layout.TORCHSCRIPT

    @property
    def signature(self) -> ModelSignature:
        return ModelSignature.load(self.root / layout.SIGNATURE)

    def triton_repository(self, flavour: str = "cpu") -> Path:
        """The folder to pass as ``tritonserver --model-repository`` (holds ``<name>/config.pbtxt``)."""
        return self.root / layout.TRITON_DIR / flavour

    @property
    def torchserve_dir(self) -> Path:
        """KServe PyTorch-runtime storage: ``config/config.properties`` + ``model-store/``."""
        return self.root / layout.TORCHSERVE_DIR

    @property
    def mar(self) -> Path | None:
        path = self.torchserve_dir / "model-store" / f"{self.metadata.name}.mar"
        return path if path.exists() else None


def verify(root: Path, uri: str) -> ModelMetadata:
    """Check metadata and every checksum; raise :class:`BundleError` naming the bad file."""
    meta = root / layout.METADATA
    if not meta.exists():
        raise BundleError(f"{uri} is not a complete bundle: {layout.METADATA} is missing")
    try:
        metadata = ModelMetadata.model_validate_json(meta.read_text())
    except ValidationError as exc:
        raise BundleError(f"{uri}/{layout.METADATA} is not valid model metadata: {exc.errors()[0]['msg']} "
                          f"(field {'.'.join(str(p) for p in exc.errors()[0]['loc'])})") from None
    sums = root / layout.CHECKSUMS
    if not sums.exists():
        raise BundleError(f"{uri} is corrupt: {layout.CHECKSUMS} is missing")
    try:
        expected = json.loads(sums.read_text())
    except json.JSONDecodeError as exc:
        raise BundleError(f"{uri}/{layout.CHECKSUMS} is not JSON: {exc}") from None
    for rel in (layout.ONNX, layout.TORCHSCRIPT, layout.SIGNATURE):
        if rel not in expected:
            raise BundleError(f"{uri} is incomplete: {rel} is not part of the bundle")
    for rel, digest in expected.items():
        path = root / rel
        if not path.exists():
            raise BundleError(f"{uri} is corrupt: {rel} is missing")
        if sha256(path) != digest:
            raise BundleError(f"{uri} is corrupt: {rel} does not match its checksum in {layout.CHECKSUMS}")
    return metadata


def open_bundle(uri: str | Path, *, cache_dir: Path | None = None,
                expected_feature_schema_hash: str | None = None) -> Bundle:
    """Open one bundle folder (local path or fsspec URI), downloading remote ones to ``cache_dir``."""
    from voicecart.registry.stores import open_store

    uri = str(uri)
    store = open_store(uri)
    try:
        root = store.fetch(store.root, cache_dir)
    except FileNotFoundError:
        raise BundleError(f"bundle {uri} does not exist") from None
    if not root.is_dir():
        raise BundleError(f"bundle folder {root} does not exist")
    metadata = verify(root, uri)
    if expected_feature_schema_hash is not None and metadata.feature_schema_hash != expected_feature_schema_hash:
        raise IncompatibleBundleError(
            f"bundle {uri} (version {metadata.version}) was built for feature schema "
            f"{metadata.feature_schema_hash[:12]}, this run uses {expected_feature_schema_hash[:12]}: "
            "its features differ, so it cannot be scored or served with them")
    return Bundle(root=root, uri=uri, metadata=metadata)
