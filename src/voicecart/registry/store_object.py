"""Bundles in object storage (gs://, s3://, memory://) through fsspec, fetched into a local cache to be read."""

from __future__ import annotations

import hashlib
import posixpath
import shutil
import tempfile
from pathlib import Path

import fsspec

from voicecart.registry.stores import ObjectModelStore


def default_cache_dir() -> Path:
    return Path(tempfile.gettempdir()) / "voicecart-bundles"


class ObjectStore:
    def __init__(self, uri: str) -> None:
        self.fs, self.root = fsspec.core.url_to_fs(uri)
        protocol = self.fs.protocol
        self.protocol = protocol if isinstance(protocol, str) else protocol[0]

    def url(self, path: str) -> str:
        return f"{self.protocol}://{path.lstrip('/')}"

    def fetch(self, path: str, cache_dir: Path | None) -> Path:
        """Download every file under ``path`` into ``cache_dir`` (atomically: a failed copy leaves nothing)."""
        cache = Path(cache_dir or default_cache_dir())
        cache.mkdir(parents=True, exist_ok=True)
        dest = cache / hashlib.sha256(self.url(path).encode()).hexdigest()[:16]
        tmp = Path(tempfile.mkdtemp(prefix=".dl-", dir=cache))
        try:
            entries = self.fs.find(path)
            if not entries:
                raise FileNotFoundError(self.url(path))
            for entry in entries:
                target = tmp / posixpath.relpath(entry, path.rstrip("/"))
                target.parent.mkdir(parents=True, exist_ok=True)
                self.fs.get_file(entry, str(target))
            if dest.exists():
                shutil.rmtree(dest)
            tmp.rename(dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return dest


def open(config: ObjectModelStore) -> ObjectStore:  # noqa: A001 - the backend's one entry point
    return ObjectStore(config.uri)
