"""Where the engine gets customer profiles, and how feedback updates them.

:class:`FeastProfiles` is the real online store (``voicecart.features.online.ProfileStore``, ONE
Feast read per request) opened lazily, so a server that starts while the store is down answers by
popularity and picks the store up when it comes back. :class:`StaticProfiles` holds profiles
built offline in memory (no store configured: the local demo and unit tests).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from voicecart.config import FeatureSettings
from voicecart.schemas import CustomerProfile, FeedbackEvent

log = logging.getLogger("voicecart.serving.profiles")


class StaticProfiles:
    """Profiles held in memory (customer_id -> CustomerProfile)."""

    def __init__(self, profiles: Iterable[CustomerProfile]) -> None:
        self._profiles = {p.customer_id: p for p in profiles}

    def get(self, customer_id: str) -> CustomerProfile | None:
        return self._profiles.get(customer_id)

    def push(self, profiles: Iterable[CustomerProfile]) -> int:
        n = 0
        for p in profiles:
            self._profiles[p.customer_id] = p
            n += 1
        return n


class FeastProfiles:
    """The Feast online store, (re)opened lazily: at most one open attempt per ``retry_s``."""

    def __init__(self, settings: FeatureSettings, retry_s: float = 5.0) -> None:
        self.settings = settings
        self.retry_s = retry_s
        self._store: Any = None
        self._next_try = 0.0
        self._lock = threading.Lock()

    def _open(self) -> Any:
        from voicecart.features.errors import FeatureStoreUnavailable
        from voicecart.features.online import ProfileStore

        if self._store is not None:
            return self._store
        with self._lock:
            if self._store is None:
                if time.monotonic() < self._next_try:
                    raise FeatureStoreUnavailable("online store not open yet (retrying)")
                self._next_try = time.monotonic() + self.retry_s
                self._store = ProfileStore.from_settings(self.settings)
        return self._store

    def get(self, customer_id: str) -> CustomerProfile | None:
        return self._open().get(customer_id)

    def warm_up(self) -> bool:
        """Open the store and do one read before serving (Feast's first read is slow); False if down."""
        try:
            self._open().get("warm-up")
            return True
        except Exception as exc:  # noqa: BLE001 - down at start: serve by popularity, retry later
            self._next_try = 0.0
            log.warning("online store not available at start-up, answering by popularity: %s", exc)
            return False

    def push(self, profiles: Iterable[CustomerProfile]) -> int:
        return self._open().push(profiles)


def profile_updates(events: Sequence[FeedbackEvent], profiles: Any) -> list[CustomerProfile]:
    """Profiles after the purchases the events say happened (bought/kept, or the swapped-in product)."""
    from voicecart.features.online import with_purchase

    updated: dict[str, CustomerProfile] = {}
    for e in events:
        product = e.substitute_id if e.kind == "swapped" else e.product_id if e.kind in ("bought", "kept") else None
        if product is None:
            continue
        profile = updated.get(e.customer_id) or profiles.get(e.customer_id) or CustomerProfile(customer_id=e.customer_id)
        updated[e.customer_id] = with_purchase(profile, product, e.timestamp)
    return list(updated.values())


def feedback_push(profiles: Any):  # noqa: ANN201 - returns feedback.FeedbackPush
    """The push of the feedback intake: fold events into profiles, write them online in one push."""

    def push(events: Sequence[FeedbackEvent]) -> None:
        rows = profile_updates(events, profiles)
        if rows:
            profiles.push(rows)

    return push


def profiles_from_dataset(data_dir: str | Path, as_of: datetime | None = None) -> StaticProfiles:
    """Every customer's profile row as of ``as_of`` (default: after the last order), computed by the feature
    SQL (no store needed)."""
    from voicecart.features.build import materialized

    profiles = []
    for row in materialized(data_dir, as_of)[0].to_pylist():
        ts = row.pop("event_timestamp", None)
        known = {k: v for k, v in row.items() if k in CustomerProfile.model_fields and v is not None}
        profiles.append(CustomerProfile(**known, as_of=ts))
    return StaticProfiles(profiles)
