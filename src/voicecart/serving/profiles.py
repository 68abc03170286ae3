"""Profiles without a store, and how feedback updates profiles.

The real online store the engine reads is ``voicecart.features.online.FeastProfiles`` (ONE Feast read per
request). :class:`StaticProfiles` holds profiles built offline in memory (no store configured: the local
demo and unit tests); :func:`feedback_push` folds feedback events into profile rows for either.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from voicecart.schemas import CustomerProfile, FeedbackEvent


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
