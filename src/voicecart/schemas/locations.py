"""Where a store lives — a local folder or a remote URI (gs://, s3://, memory://, ...): the one place that
tells them apart, so no other module tests a URI scheme."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse


def local_path(location: str | Path) -> Path | None:
    """The local path a location names (a plain path or ``file://``), or None for a remote URI."""
    if isinstance(location, Path):
        return location
    parsed = urlparse(str(location))
    if parsed.scheme in ("", "file") or len(parsed.scheme) == 1:  # "C:" on Windows is a drive, not a scheme
        return Path(parsed.path if parsed.scheme == "file" else str(location))
    return None


def absolute(location: str | Path) -> str:
    """A local location made absolute (every pipeline step, a subprocess, sees the same folder); a URI as is."""
    path = local_path(location)
    return str(path.resolve()) if path is not None else str(location)
