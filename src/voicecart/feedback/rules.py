"""Implicit feedback -> training labels: the labelling rules, in one table.

An answer is followed by what the customer did. Each event becomes one or two labelled rows
for the next training window: ``(customer, product, label, weight, timestamp)`` where label is
+1 (the customer wanted this product) or -1 (they did not). See docs/feedback.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from voicecart.schemas import FeedbackEvent

# kind -> (label of the answered product, weight); swaps also label the substitute (+1).
RULES: dict[str, tuple[int, float]] = {
    "bought": (+1, 1.0),  # purchased: the strongest evidence
    "kept": (+1, 0.5),  # left in the cart; may still be removed before checkout
    "removed": (-1, 1.0),  # taken out of the cart: the answer was wrong
    "swapped": (-1, 1.0),  # replaced: wrong answer, and the substitute is the right one
    "reasked": (-1, 0.5),  # asked again for the same thing: probably wrong, weakly
}
SUBSTITUTE_RULE: tuple[int, float] = (+1, 1.0)


@dataclass(frozen=True)
class Label:
    customer_id: str
    product_id: str
    label: int
    weight: float
    timestamp: datetime
    request_id: str
    source: str  # the event kind it came from


def labels_from_event(event: FeedbackEvent) -> list[Label]:
    """One event -> its labelled rows (a swap gives two: -1 for the answer, +1 for the substitute)."""
    label, weight = RULES[event.kind]
    out = [Label(event.customer_id, event.product_id, label, weight, event.timestamp, event.request_id, event.kind)]
    if event.kind == "swapped" and event.substitute_id:
        sl, sw = SUBSTITUTE_RULE
        out.append(Label(event.customer_id, event.substitute_id, sl, sw, event.timestamp, event.request_id,
                         "swapped_substitute"))
    return out


def labels_from_events(events: list[FeedbackEvent]) -> list[Label]:
    """All labels of a stream of events; a later event for the same (request, product) wins."""
    latest: dict[tuple[str, str], Label] = {}
    for ev in sorted(events, key=lambda e: e.timestamp):
        for lab in labels_from_event(ev):
            latest[(lab.request_id, lab.product_id)] = lab
    return list(latest.values())
