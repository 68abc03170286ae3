"""Request/response contracts of the resolve endpoint and the feedback intake."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_CONTROL = {chr(c) for c in range(32)} - {"\t", "\n", "\r"} | {"\x7f"}


def _no_control_chars(value: str | None, field: str) -> str | None:
    if value is not None and any(ch in _CONTROL for ch in value):
        raise ValueError(f"{field} contains control characters")
    return value


class Intent(str, Enum):
    add = "add"
    remove = "remove"
    reorder = "reorder"
    ask = "ask"
    unknown = "unknown"


class ParsedUtterance(BaseModel):
    """What the parser understood from one utterance."""

    intent: Intent
    quantity: float = 1.0
    unit: str | None = None
    mention: str | None = None
    """The product words, normalised (e.g. "milk")."""
    category: str | None = None
    """A category code when the mention is one (Ta-Feng has codes, not names)."""
    attributes: list[str] = Field(default_factory=list)
    """Constraints like "organic", "bigger" used by follow-up turns."""


class ResolveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    customer_id: str = Field(min_length=1, max_length=128)
    utterance: str = Field(min_length=1, max_length=1000)
    locale: str | None = Field(default=None, max_length=35)
    store_id: str | None = Field(default=None, max_length=128)
    request_id: str | None = Field(default=None, max_length=128)
    conversation_id: str | None = Field(default=None, max_length=128)

    @field_validator("customer_id", "utterance", "locale", "store_id", "request_id", "conversation_id")
    @classmethod
    def _printable(cls, v: str | None, info) -> str | None:  # noqa: ANN001
        return _no_control_chars(v, info.field_name)


class ProductRef(BaseModel):
    id: str
    title: str | None = None
    score: float | None = None


class ResolveResponse(BaseModel):
    request_id: str
    intent: Intent
    quantity: float = 1.0
    unit: str | None = None
    product: ProductRef | None = None
    alternatives: list[ProductRef] = Field(default_factory=list)
    confirmation: str
    """The sentence the assistant speaks back."""
    personalized: bool
    model_version: str
    latency_ms: float
    fallbacks: list[str] = Field(default_factory=list)
    """Why the answer is less than the full path (e.g. "profile_unavailable", "deadline")."""
    conversation_id: str | None = None


FeedbackKind = Literal["kept", "removed", "swapped", "bought", "reasked"]


class FeedbackEvent(BaseModel):
    """What the customer did after an answer; the implicit label of the next training window."""

    model_config = ConfigDict(extra="forbid")

    event_id: str = Field(min_length=1, max_length=128)
    request_id: str = Field(min_length=1, max_length=128)
    customer_id: str = Field(min_length=1, max_length=128)
    product_id: str = Field(min_length=1, max_length=128)
    kind: FeedbackKind
    substitute_id: str | None = Field(default=None, max_length=128)
    timestamp: datetime

    @model_validator(mode="after")
    def _substitute_only_for_swaps(self) -> "FeedbackEvent":
        if self.kind == "swapped" and not self.substitute_id:
            raise ValueError("substitute_id is required when kind is 'swapped'")
        return self
