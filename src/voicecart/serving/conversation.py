"""Conversation turns: short-lived state per ``conversation_id`` so follow-ups resolve.

A follow-up refers to the last answer: "no, the other one" (next alternative), "the organic one"
/ "the bigger one" (the same candidates under a constraint), "make it three" (quantity),
"cancel that" (undo). :func:`follow_up` recognises them; the engine applies them to the
:class:`Turn` kept in a :class:`ConversationStore`: :class:`MemoryConversationStore` here (TTL'd,
bounded, one process), or ``conversation_redis.RedisConversationStore`` (shared by replicas),
chosen by ``serving.conversations.type`` through :func:`conversation_store`.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

import numpy as np

from voicecart.serving.errors import ServingError


class FollowUpKind(str, Enum):
    next = "next"
    constrain = "constrain"
    quantity = "quantity"
    cancel = "cancel"


@dataclass(frozen=True)
class FollowUp:
    kind: FollowUpKind
    constraint: str | None = None
    """For ``constrain``: organic, bigger, smaller, cheaper, ... (the word the shopper used)."""
    quantity_text: str | None = None
    """For ``quantity``: the words after "make it", parsed by the utterance parser."""


_NEXT = re.compile(
    r"^(?:no[,.!]?\s*)?(?:not (?:that|this)(?: one)?|(?:the|an|a) ?other one|another one|something else|"
    r"a different one|(?:the )?next one|try (?:again|another)|wrong one)[.!]?$")
_CANCEL = re.compile(r"^(?:no[,.!]?\s*)?(?:cancel(?: that| it| this)?|never ?mind|undo(?: that| it)?|forget (?:it|that)|"
                     r"scratch that|take (?:it|that) (?:out|back|off))[.!]?$")
_QUANTITY = re.compile(r"^(?:no[,.!]?\s*)?(?:make (?:it|that)|change (?:it|that) to|i meant|actually|let'?s do)\s+(.+?)[.!]?$")
_CONSTRAIN = re.compile(r"^(?:no[,.!]?\s*)?(?:i want |i meant |give me |get )?(?:the|a|an) ([a-z][a-z -]*?) (?:one|ones|kind|version)[.!]?$")
CONSTRAINTS = {
    "organic": "organic", "bigger": "bigger", "larger": "bigger", "big": "bigger", "large": "bigger",
    "smaller": "smaller", "small": "smaller", "little": "smaller", "cheaper": "cheaper", "cheap": "cheaper",
    "cheapest": "cheaper", "less expensive": "cheaper",
}


def follow_up(text: str) -> FollowUp | None:
    """The follow-up this utterance is, or None when it is a new request."""
    t = " ".join(text.lower().replace(",", ", ").split()).strip()
    if _CANCEL.match(t):
        return FollowUp(FollowUpKind.cancel)
    if _NEXT.match(t):
        return FollowUp(FollowUpKind.next)
    if m := _QUANTITY.match(t):
        return FollowUp(FollowUpKind.quantity, quantity_text=m.group(1))
    if m := _CONSTRAIN.match(t):
        words = m.group(1).strip()
        if words not in ("other", "same", "next", "different"):
            return FollowUp(FollowUpKind.constrain, constraint=CONSTRAINTS.get(words, words))
    return None


_SIZE_WORDS = {"mini": 0.5, "small": 1, "regular": 2, "medium": 2, "large": 3, "big": 3, "jumbo": 4,
               "family size": 4, "family": 4, "value pack": 4, "bulk": 5}
_UNIT_BASE = {"ml": ("ml", 1), "l": ("ml", 1000), "liter": ("ml", 1000), "litre": ("ml", 1000),
              "gal": ("ml", 3785), "gallon": ("ml", 3785), "fl oz": ("ml", 29.6), "oz": ("g", 28.35),
              "g": ("g", 1), "kg": ("g", 1000), "lb": ("g", 453.6), "lbs": ("g", 453.6), "ct": ("ct", 1),
              "pack": ("ct", 1), "pk": ("ct", 1), "count": ("ct", 1)}
_SIZE_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(fl oz|ml|l|liter|litre|gal|gallon|oz|g|kg|lbs|lb|ct|pack|pk|count)\b")


def size_of(title: str | None) -> tuple[str, float] | None:
    """(kind, amount) from a product title: ("ml", 1000) for "1 l", ("word", 3) for "large"."""
    if not title:
        return None
    t = title.lower()
    if m := _SIZE_RE.search(t):
        base, factor = _UNIT_BASE[m.group(2)]
        return base, float(m.group(1)) * factor
    for word, rank in sorted(_SIZE_WORDS.items(), key=lambda kv: -len(kv[0])):
        if re.search(rf"\b{word}\b", t):
            return "word", float(rank)
    return None


@dataclass
class Turn:
    """What a conversation remembers: the last answer's ranked candidates and where we are in them."""

    customer_id: str
    request_id: str
    product_ids: list[str]
    """Candidates in ranked order (best first)."""
    titles: list[str | None]
    scores: list[float]
    rel_price: list[float]
    position: int
    """Index of the product currently in the cart for this turn."""
    quantity: float
    unit: str | None
    intent: Any
    personalized: bool
    cancelled: bool = False
    expires_at: float = 0.0
    rejected: set[int] = field(default_factory=set)

    @property
    def product_id(self) -> str | None:
        return self.product_ids[self.position] if 0 <= self.position < len(self.product_ids) else None

    def next_position(self) -> int | None:
        """The best-ranked candidate not yet rejected (after the current one)."""
        for i in range(len(self.product_ids)):
            if i != self.position and i not in self.rejected:
                return i
        return None

    def constrained_position(self, constraint: str) -> int | None:
        """The best-ranked candidate (not the current one) that satisfies the constraint."""
        others = [i for i in range(len(self.product_ids)) if i != self.position and i not in self.rejected]
        if constraint in ("bigger", "smaller"):
            here = size_of(self.titles[self.position])
            sign = 1 if constraint == "bigger" else -1
            for i in others:
                there = size_of(self.titles[i])
                if here and there and here[0] == there[0] and sign * (there[1] - here[1]) > 0:
                    return i
            return None
        if constraint == "cheaper":
            price = np.asarray(self.rel_price, dtype=np.float64)
            for i in others:
                if price[i] < price[self.position] - 1e-6:
                    return i
            return None
        word = re.compile(rf"\b{re.escape(constraint)}\b")
        for i in others:
            if self.titles[i] and word.search(self.titles[i].lower()):
                return i
        return None


    def to_dict(self) -> dict:
        """JSON-ready (the Redis backend stores it); :meth:`from_dict` reads it back."""
        return {"customer_id": self.customer_id, "request_id": self.request_id, "product_ids": self.product_ids,
                "titles": self.titles, "scores": self.scores, "rel_price": self.rel_price,
                "position": self.position, "quantity": self.quantity, "unit": self.unit,
                "intent": getattr(self.intent, "value", self.intent), "personalized": self.personalized,
                "cancelled": self.cancelled, "rejected": sorted(self.rejected)}

    @classmethod
    def from_dict(cls, data: dict) -> "Turn":
        from voicecart.schemas import Intent

        return cls(**{**data, "intent": Intent(data["intent"]), "rejected": set(data["rejected"])})


class ConversationUnavailable(ServingError):
    """The conversation store did not answer (the turn is answered as a new request)."""


class ConversationStore(Protocol):
    """conversation_id -> the last Turn, for ``ttl_s`` seconds after it was written."""

    def get(self, conversation_id: str, customer_id: str) -> Turn | None:
        """The turn, or None (unknown, expired, or another customer's); raises ConversationUnavailable."""
        ...

    def put(self, conversation_id: str, turn: Turn) -> None:
        ...


class MemoryConversationStore:
    """conversation_id -> Turn, with a TTL (seconds) and a bound on how many are kept (LRU)."""

    def __init__(self, ttl_s: float = 300.0, max_conversations: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self.max_conversations = max_conversations
        self._turns: OrderedDict[str, Turn] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, conversation_id: str, customer_id: str, now: float | None = None) -> Turn | None:
        now = time.monotonic() if now is None else now
        with self._lock:
            turn = self._turns.get(conversation_id)
            if turn is None:
                return None
            if turn.expires_at < now or turn.customer_id != customer_id:
                if turn.expires_at < now:
                    del self._turns[conversation_id]
                return None
            self._turns.move_to_end(conversation_id)
            return turn

    def put(self, conversation_id: str, turn: Turn, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        turn.expires_at = now + self.ttl_s
        with self._lock:
            self._turns[conversation_id] = turn
            self._turns.move_to_end(conversation_id)
            while len(self._turns) > self.max_conversations:
                self._turns.popitem(last=False)

    def __len__(self) -> int:
        return len(self._turns)


def conversation_store(settings: Any, redis_url: str | None, health: Any = None) -> ConversationStore:
    """The store ``settings.conversations`` names (ServingSettings); ``redis_url`` is the online store's
    (None when the online store is not Redis: the conversation store then needs its own ``url``)."""
    conf = settings.conversations
    if conf.type == "redis":
        from voicecart.serving.conversation_redis import RedisConversationStore

        if not (conf.url or redis_url):
            raise ValueError("serving.conversations.type is redis but neither serving.conversations.url nor a Redis "
                             "online store (features.online) names one")
        return RedisConversationStore(conf.url or redis_url, settings.conversation_ttl_s, conf.key_prefix,
                                      conf.timeout_s, settings=settings, health=health)
    return MemoryConversationStore(settings.conversation_ttl_s, conf.max_conversations)
