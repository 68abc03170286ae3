"""Versioned model bundles in a local folder or any fsspec URI (file://, gs://, s3://, memory://).

Layout under the registry URI::

    <uri>/<model>/versions/v0001/...      one bundle per version (metadata.json uploaded last)
    <uri>/<model>/champion.json           the champion pointer and its history
    <uri>/<model>/runs/<run_id>.json      one record per pipeline run, failed ones included

A version exists once its ``metadata.json`` does, so a crashed upload never shows up as a
version. Promotion and rollback only rewrite ``champion.json``.
"""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from pydantic import BaseModel, Field

from voicecart.export import layout
from voicecart.registry.bundle import Bundle, BundleError, open_bundle
from voicecart.schemas import ModelMetadata

_VERSION = re.compile(r"^v(\d{4,})$")


class RegistryError(RuntimeError):
    """A registry operation that cannot proceed (unknown version, nothing to roll back to...)."""


class ChampionEvent(BaseModel):
    version: str
    action: str
    """``promote`` or ``rollback``."""
    at: datetime
    reason: str


class ChampionPointer(BaseModel):
    version: str | None = None
    history: list[ChampionEvent] = Field(default_factory=list)


class CanaryPointer(BaseModel):
    """A version the gate promoted, taking ``percent`` of the traffic beside the champion until decided."""

    version: str
    percent: int = Field(ge=1, le=99)
    stable: str
    """The champion it is compared with."""
    state: str = "requested"
    """``requested`` (the deploy step asked), ``running`` (a controller started the split), then the canary
    pointer is removed when decided (the champion pointer's history keeps the outcome)."""
    started_at: datetime
    reason: str


@dataclass(frozen=True)
class VersionInfo:
    version: str
    metadata: ModelMetadata
    champion: bool


class Registry:
    """One model's versions and champion pointer under ``uri``."""

    def __init__(self, uri: str | Path, name: str = "voicecart", cache_dir: Path | None = None) -> None:
        from voicecart.registry.stores import open_store

        self.uri = str(uri)
        self.name = name
        self.store = open_store(uri)
        self.fs = self.store.fs
        self.root = posixpath.join(self.store.root.rstrip("/"), name)
        self.cache_dir = cache_dir

    # -- paths -------------------------------------------------------------------------------
    def _p(self, *parts: str) -> str:
        return posixpath.join(self.root, *parts)

    def _url(self, path: str) -> str:
        return self.store.url(path)

    def version_uri(self, version: str) -> str:
        return self._url(self._p("versions", version))

    # -- versions ----------------------------------------------------------------------------
    def versions(self) -> list[str]:
        """Complete versions, oldest first."""
        base = self._p("versions")
        if not self.fs.exists(base):
            return []
        found = []
        for entry in self.fs.ls(base, detail=False):
            v = posixpath.basename(entry.rstrip("/"))
            if _VERSION.match(v) and self.fs.exists(posixpath.join(base, v, layout.METADATA)):
                found.append(v)
        return sorted(found, key=lambda v: int(v[1:]))

    def metadata(self, version: str) -> ModelMetadata:
        path = self._p("versions", version, layout.METADATA)
        if not self.fs.exists(path):
            raise RegistryError(f"model {self.name!r} has no version {version!r} in {self.uri} "
                                f"(known: {', '.join(self.versions()) or 'none'})")
        with self.fs.open(path, "r") as f:
            return ModelMetadata.model_validate_json(f.read())

    def list(self) -> list[VersionInfo]:
        champ = self.champion()
        return [VersionInfo(v, self.metadata(v), v == champ) for v in self.versions()]

    def next_version(self) -> str:
        base = self._p("versions")
        taken = [0]
        if self.fs.exists(base):
            for entry in self.fs.ls(base, detail=False):
                m = _VERSION.match(posixpath.basename(entry.rstrip("/")))
                if m:
                    taken.append(int(m.group(1)))
        return f"v{max(taken) + 1:04d}"

    def publish(self, bundle_dir: Path, *, version: str | None = None, metrics: dict[str, float] | None = None,
                extra: dict[str, str | float | int | bool | None] | None = None) -> str:
        """Upload a bundle folder written by ``export.build_bundle`` as a new version.

        The version and parent (the current champion) are stamped into its metadata; files go
        first, ``metadata.json`` last. ``metrics``/``extra`` (e.g. the evaluation and the gate's
        verdict) are merged into the metadata. Returns the version.
        """
        bundle_dir = Path(bundle_dir)
        meta_path = bundle_dir / layout.METADATA
        if not meta_path.exists():
            raise BundleError(f"{bundle_dir} is not a bundle: {layout.METADATA} is missing")
        metadata = ModelMetadata.model_validate_json(meta_path.read_text())
        version = version or self.next_version()
        metadata = metadata.model_copy(update={
            "name": self.name, "version": version,
            "parent_version": metadata.parent_version or self.champion(),
            "metrics": {**metadata.metrics, **(metrics or {})}, "extra": {**metadata.extra, **(extra or {})}})
        dest = self._p("versions", version)
        if self.fs.exists(posixpath.join(dest, layout.METADATA)):
            raise RegistryError(f"version {version} of {self.name!r} already exists in {self.uri}")
        for path in sorted(bundle_dir.rglob("*")):
            if path.is_file() and path.name != layout.METADATA:
                target = posixpath.join(dest, path.relative_to(bundle_dir).as_posix())
                self.fs.makedirs(posixpath.dirname(target), exist_ok=True)
                self.fs.put_file(str(path), target)
        with self.fs.open(posixpath.join(dest, layout.METADATA), "w") as f:
            f.write(metadata.model_dump_json(indent=2))
        return version

    # -- champion ----------------------------------------------------------------------------
    def pointer(self) -> ChampionPointer:
        path = self._p("champion.json")
        if not self.fs.exists(path):
            return ChampionPointer()
        with self.fs.open(path, "r") as f:
            return ChampionPointer.model_validate_json(f.read())

    def champion(self) -> str | None:
        return self.pointer().version

    def _write_pointer(self, pointer: ChampionPointer) -> None:
        self.fs.makedirs(self.root, exist_ok=True)
        with self.fs.open(self._p("champion.json"), "w") as f:
            f.write(pointer.model_dump_json(indent=2))

    def promote(self, version: str, reason: str) -> ChampionPointer:
        """Make ``version`` the champion (it must exist and open cleanly)."""
        self.load(version)  # a corrupt bundle never becomes champion
        pointer = self.pointer()
        pointer.history.append(ChampionEvent(version=version, action="promote", at=datetime.now(timezone.utc),
                                             reason=reason))
        pointer.version = version
        self._write_pointer(pointer)
        return pointer

    def rollback(self, reason: str = "manual rollback") -> ChampionPointer:
        """Point the champion back at the one before it."""
        pointer = self.pointer()
        if pointer.version is None:
            raise RegistryError(f"model {self.name!r} has no champion to roll back")
        previous = None
        seen_current = False
        for event in reversed(pointer.history):
            if event.version == pointer.version and not seen_current:
                seen_current = True
                continue
            if seen_current and event.version != pointer.version:
                previous = event.version
                break
        if previous is None:
            raise RegistryError(f"champion {pointer.version} of {self.name!r} has no earlier champion to roll back to")
        pointer.history.append(ChampionEvent(version=previous, action="rollback", at=datetime.now(timezone.utc),
                                             reason=f"{reason} (was {pointer.version})"))
        pointer.version = previous
        self._write_pointer(pointer)
        return pointer

    # -- canary ------------------------------------------------------------------------------
    def canary(self) -> CanaryPointer | None:
        path = self._p("canary.json")
        if not self.fs.exists(path):
            return None
        with self.fs.open(path, "r") as f:
            return CanaryPointer.model_validate_json(f.read())

    def start_canary(self, version: str, percent: int, reason: str) -> CanaryPointer:
        """Ask for ``version`` to take ``percent`` of the traffic beside the champion (it must open cleanly).
        The first model ever has nothing to share traffic with: it becomes the champion directly."""
        self.load(version)  # a corrupt bundle never takes traffic
        champion = self.champion()
        if champion is None or champion == version:
            self.promote(version, f"{reason} (no champion to canary against: promoted directly)")
            return CanaryPointer(version=version, percent=99, stable=version, state="promoted",
                                 started_at=datetime.now(timezone.utc), reason=reason)
        pointer = CanaryPointer(version=version, percent=percent, stable=champion, started_at=datetime.now(timezone.utc),
                                reason=reason)
        self._write_canary(pointer)
        return pointer

    def mark_canary_running(self) -> CanaryPointer:
        pointer = self.canary()
        if pointer is None:
            raise RegistryError(f"model {self.name!r} has no canary to start")
        pointer = pointer.model_copy(update={"state": "running"})
        self._write_canary(pointer)
        return pointer

    def end_canary(self, promote: bool, reason: str) -> ChampionPointer:
        """The canary's outcome: ``promote`` makes it the champion; either way the split ends."""
        pointer = self.canary()
        if pointer is None:
            raise RegistryError(f"model {self.name!r} has no canary to end")
        if promote:
            champion = self.promote(pointer.version, f"canary promoted: {reason}")
        else:
            champion = self.pointer()
            champion.history.append(ChampionEvent(version=pointer.version, action="canary_rollback",
                                                  at=datetime.now(timezone.utc), reason=reason))
            self._write_pointer(champion)
        self.fs.rm(self._p("canary.json"))
        return champion

    def _write_canary(self, pointer: CanaryPointer) -> None:
        self.fs.makedirs(self.root, exist_ok=True)
        with self.fs.open(self._p("canary.json"), "w") as f:
            f.write(pointer.model_dump_json(indent=2))

    # -- loading -----------------------------------------------------------------------------
    def load(self, version: str | None = None, *, expected_feature_schema_hash: str | None = None) -> Bundle:
        """Open ``version`` (default: the champion) as a local :class:`Bundle`, verifying checksums."""
        version = version or self.champion()
        if version is None:
            raise RegistryError(f"model {self.name!r} in {self.uri} has no champion yet")
        self.metadata(version)  # clear error for an unknown version
        return open_bundle(self.version_uri(version), cache_dir=self.cache_dir,
                           expected_feature_schema_hash=expected_feature_schema_hash)

    # -- run records -------------------------------------------------------------------------
    def record_run(self, run_id: str, record: dict) -> str:
        """Write ``runs/<run_id>.json`` (any JSON-able dict, e.g. the gate's decision or a failure)."""
        record = {"run_id": run_id, "recorded_at": datetime.now(timezone.utc).isoformat(), **record}
        path = self._p("runs", f"{run_id}.json")
        self.fs.makedirs(posixpath.dirname(path), exist_ok=True)
        with self.fs.open(path, "w") as f:
            f.write(json.dumps(record, indent=2, default=str))
        return self._url(path)

    def runs(self) -> list[dict]:
        base = self._p("runs")
        if not self.fs.exists(base):
            return []
        records = []
        for entry in self.fs.ls(base, detail=False):
            if entry.endswith(".json"):
                with self.fs.open(entry, "r") as f:
                    records.append(json.loads(f.read()))
        return sorted(records, key=lambda r: r.get("recorded_at", ""))


