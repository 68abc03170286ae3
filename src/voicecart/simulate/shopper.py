"""The simulated shopper: one voice request per (customer, day, category) they really bought in, and the
reaction to the answer, from what they bought that day.

* the answer is a product they bought: ``kept``, then ``bought``;
* a product they bought is among the answer's alternatives: ``swapped`` to it;
* otherwise: ``removed``.

(The served answer names its alternatives, not its whole candidate list, so "among the candidates" is
"among the alternatives" here.)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path


@dataclass(frozen=True)
class Ask:
    """One request of the replay: a customer asks for a category on a day; ``bought`` is what they took."""

    request_id: str
    customer_id: str
    category: str
    """What is said: the category's code when it is a number (the engine resolves a spoken code to exactly that
    subclass, as for Ta-Feng), else its name."""
    subclass: str
    """The category code (``category_l3``)."""
    bought: tuple[str, ...]
    timestamp: datetime
    """When they bought it (the first such line of the day; UTC)."""

    def body(self) -> dict:
        return {"customer_id": self.customer_id, "utterance": f"add {self.category} to my cart",
                "request_id": self.request_id}


def day_asks(dataset: str | Path, day: datetime) -> list[Ask]:
    """The requests of ``day`` (UTC) in a prepared dataset: one per (customer, category) bought that day."""
    from voicecart.data import connect

    start = day.replace(tzinfo=None)
    con = connect(Path(dataset))
    try:
        rows = con.execute(
            "SELECT o.customer_id, p.category_l3, CASE WHEN regexp_full_match(p.category_l3, '[0-9]+') THEN p.category_l3 "
            "ELSE coalesce(p.category_l3_name, p.category_l3) END AS said, "
            "list(DISTINCT l.product_id ORDER BY l.product_id) AS bought, min(o.timestamp) AS first_at "
            "FROM orders o JOIN order_lines l USING (order_id) JOIN products p USING (product_id) "
            "WHERE o.timestamp >= ? AND o.timestamp < ? AND p.category_l3 IS NOT NULL "
            "GROUP BY ALL ORDER BY first_at, o.customer_id, p.category_l3",
            [start, start + timedelta(days=1)]).fetchall()
    finally:
        con.close()
    return [Ask(f"{start:%Y%m%d}-{c}-{sub}", str(c), str(said), str(sub), tuple(map(str, bought)),
                at.replace(tzinfo=timezone.utc))
            for c, sub, said, bought, at in rows]


def react(ask: Ask, answer: dict) -> list[dict]:
    """The feedback events (``/v1/feedback`` bodies) the shopper sends about ``answer``; none without a product."""
    product = (answer.get("product") or {}).get("id")
    if not product:
        return []
    stamp = {"request_id": ask.request_id, "customer_id": ask.customer_id, "product_id": product,
             "arm": answer.get("arm"), "model_version": answer.get("model_version")}

    def event(kind: str, seconds: int, **extra: str) -> dict:
        at = ask.timestamp + timedelta(seconds=seconds)
        return {**stamp, "event_id": f"{ask.request_id}-{kind}", "kind": kind,
                "timestamp": at.isoformat().replace("+00:00", "Z"), **extra}

    from voicecart.rollout.local import shopper_feedback

    kind, taken = shopper_feedback(answer, ask.bought)
    if kind == "kept":
        return [event("kept", 0), event("bought", 60)]
    if kind == "swapped":
        return [event("swapped", 0, substitute_id=taken)]
    return [event("removed", 0)]


def outcome(events: list[dict]) -> str:
    """What the shopper did, in one word: kept / swapped / removed / unanswered."""
    kinds = {e["kind"] for e in events}
    return "kept" if "kept" in kinds else "swapped" if "swapped" in kinds else "removed" if kinds else "unanswered"
