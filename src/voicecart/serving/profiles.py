"""Where the engine gets customer profiles, and how feedback updates them.

:class:`FeastProfiles` is the real online store (``voicecart.features.online.ProfileStore``, ONE
Feast read per request) opened lazily, so a server that starts while the store is down answers by
popularity and picks the store up when it comes back. :class:`StaticProfiles` holds profiles
built offline in memory (no store configured: the local demo and unit tests).
"""

from __future__ import annotations

import logging
import threading
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

    def describe(self) -> str:
        return f"profiles in memory ({len(self._profiles)} customers)"

    def push(self, profiles: Iterable[CustomerProfile]) -> int:
        n = 0
        for p in profiles:
            self._profiles[p.customer_id] = p
            n += 1
        return n


class FeastProfiles:
    """The Feast online store, opened lazily and reopened by :meth:`probe`.

    The engine's circuit breaker calls :meth:`probe` (in the background) while the store is
    failing: it drops the current Feast objects and opens new ones, so a store whose connection
    died (a truncated SQLite file, a restarted Redis) heals without a restart.
    """

    def __init__(self, settings: FeatureSettings) -> None:
        self.settings = settings
        self._store: Any = None
        self._lock = threading.Lock()

    def _open(self) -> Any:
        from voicecart.features.online import ProfileStore

        store = self._store
        if store is not None:
            return store
        with self._lock:
            if self._store is None:
                self._store = ProfileStore.from_settings(self.settings)
            return self._store

    def get(self, customer_id: str) -> CustomerProfile | None:
        return self._open().get(customer_id)

    def probe(self) -> None:
        """Reconnect, then one read; raises while the store is still down."""
        with self._lock:
            self._store = None
        self._open().get(PROBE_CUSTOMER)

    def warm_up(self) -> bool:
        """Open the store and do one read before serving (Feast's first read is slow); False if down."""
        try:
            self._open().get(PROBE_CUSTOMER)
            return True
        except Exception as exc:  # noqa: BLE001 - down at start: serve by popularity, retry later
            log.warning("online store not available at start-up, answering by popularity: %s", exc)
            return False

    def push(self, profiles: Iterable[CustomerProfile]) -> int:
        return self._open().push(profiles)

    def describe(self) -> str:
        s = self.settings
        from voicecart.features.store import describe_online

        return f"Feast online store ({describe_online(s)})"


PROBE_CUSTOMER = "voicecart-health-probe"


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
