"""The contracts of the request path: the resolve endpoint, the feedback intake, and the ONE online profile row
the engine reads per request (:class:`CustomerProfile`).

Every rule a request is checked against is in its JSON schema (the OpenAPI document is generated
from these models): identifiers and text are checked with the same regular expressions the schema
publishes (``pattern`` / ``not.pattern``, searched with Python's ``re`` as JSON Schema validators
do), lengths are counted on the raw value, and nothing is stripped before a rule is applied.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ID_PATTERN = r"^[^\s\x00-\x1f\x7f-\x9f]+$"
"""An identifier: no whitespace, no control characters (C0, DEL, C1)."""
TEXT_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"
"""Control characters refused in free text (tab, newline and carriage return are whitespace there)."""
TEXT_PATTERN = r"\S"
"""Free text must hold at least one character that is not whitespace."""
TIMESTAMP_PATTERN = (r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})$")
"""RFC 3339 date-time with an explicit offset (no epochs, no dates without a time, no local times)."""
MAX_ID = 128
MAX_UTTERANCE = 300
"""The parser's bound (``voicecart.ranking.parse.MAX_CHARS``): a voice turn is a sentence or two."""

_ID_RE, _CONTROL_RE, _TEXT_RE = re.compile(ID_PATTERN), re.compile(TEXT_CONTROL), re.compile(TEXT_PATTERN)
_TS_RE = re.compile(TIMESTAMP_PATTERN)
_NEWLINE = "\n"


def _id_field(description: str, max_length: int = MAX_ID, **kw: Any) -> Any:
    # `$` in a JSON Schema pattern also matches before a final newline: `not` rules that one out
    extra = {"pattern": ID_PATTERN, "not": {"type": "string", "pattern": _NEWLINE}}
    return Field(min_length=1, max_length=max_length, description=description, json_schema_extra=extra, **kw)


def check_id(value: str | None, field: str) -> str | None:
    """The schema's identifier rule, in Python (the message names the rule)."""
    if value is not None and (not _ID_RE.search(value) or _NEWLINE in value):
        raise ValueError(f"{field} must not contain whitespace or control characters")
    return value


def check_text(value: str, field: str) -> str:
    if _CONTROL_RE.search(value):
        raise ValueError(f"{field} contains control characters")
    if not _TEXT_RE.search(value):
        raise ValueError(f"{field} is blank")
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
    reason: str | None = None
    """Why the intent is unknown: not_shopping, no_product, negative_quantity, quantity_out_of_range,
    two_quantities, too_long, empty, unreadable."""


class ResolveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: str = _id_field("The shopper's id in the retailer's system.")
    utterance: str = Field(min_length=1, max_length=MAX_UTTERANCE,
                           description="What the shopper said (ASR text). Leading and trailing whitespace is "
                                       "ignored; control characters other than tab and newline are refused.",
                           json_schema_extra={"pattern": TEXT_PATTERN, "not": {"type": "string", "pattern": TEXT_CONTROL}})
    locale: str | None = _id_field("BCP 47 language tag, e.g. en-US.", max_length=35, default=None)
    store_id: str | None = _id_field("The store whose catalogue applies.", default=None)
    request_id: str | None = _id_field("Echoed in the answer; a new one is made when absent.", default=None)
    conversation_id: str | None = _id_field("Ties follow-up turns to the answer they refer to.", default=None)

    @field_validator("customer_id", "locale", "store_id", "request_id", "conversation_id")
    @classmethod
    def _ids(cls, v: str | None, info) -> str | None:  # noqa: ANN001
        return check_id(v, info.field_name)

    @field_validator("utterance")
    @classmethod
    def _utterance(cls, v: str) -> str:
        return check_text(v, "utterance").strip()


class PredictRequest(BaseModel):
    """KServe V1 predict body."""

    model_config = ConfigDict(extra="forbid")

    instances: list[ResolveRequest] = Field(min_length=1, max_length=16)
    parameters: dict[str, Any] | None = Field(default=None, description="Accepted and ignored (V1 protocol).")


class ProductRef(BaseModel):
    id: str
    title: str | None = None
    score: float | None = None


Arm = Literal["champion", "canary"]


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
    """Server time from receipt of the HTTP request to this answer (queueing included)."""
    fallbacks: list[str] = Field(default_factory=list)
    """Why the answer is less than the full path (e.g. "profile_unavailable", "deadline")."""
    conversation_id: str | None = None
    reason: str | None = None
    """When there is no product: why (the parser's reason, or "no_candidates")."""
    arm: Arm = "champion"
    """Which arm answered: the champion, or the canary model taking its share of traffic."""


class PredictResponse(BaseModel):
    predictions: list[ResolveResponse]


FeedbackKind = Literal["kept", "removed", "swapped", "bought", "reasked"]


class FeedbackEvent(BaseModel):
    """What the customer did after an answer; the implicit label of the next training window.

    ``timestamp`` must also lie within the server's window around the time it receives the event
    (``serving.feedback_max_age_s`` before, ``serving.feedback_max_ahead_s`` after); outside it the
    event is refused with 400 naming ``timestamp``.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "allOf": [{"if": {"properties": {"kind": {"const": "swapped"}}, "required": ["kind"]},
                   "then": {"required": ["substitute_id"], "properties": {"substitute_id": {"type": "string"}}}}]})

    event_id: str = _id_field("Idempotency key: the same id with the same body is acknowledged once.")
    request_id: str = _id_field("The answer this event is about.")
    customer_id: str = _id_field("The shopper.")
    product_id: str = _id_field("The product the answer gave.")
    kind: FeedbackKind
    substitute_id: str | None = _id_field("The product swapped in; required when kind is 'swapped'.", default=None)
    arm: Arm | None = Field(default=None, description="The arm that gave the answer (from the answer); the server "
                                                      "fills it from its traffic split when absent.")
    model_version: str | None = _id_field("The model version that gave the answer (from the answer); the server "
                                          "fills it when absent.", default=None)
    timestamp: datetime = Field(description="When it happened: RFC 3339 with an offset, within the server's window.",
                                json_schema_extra={"type": "string", "format": "date-time",
                                                   "pattern": TIMESTAMP_PATTERN})

    @field_validator("event_id", "request_id", "customer_id", "product_id", "substitute_id", "model_version")
    @classmethod
    def _ids(cls, v: str | None, info) -> str | None:  # noqa: ANN001
        return check_id(v, info.field_name)

    @field_validator("timestamp", mode="before")
    @classmethod
    def _rfc3339(cls, v: Any) -> Any:
        if isinstance(v, datetime):
            if v.tzinfo is None:
                raise ValueError("timestamp needs a UTC offset")
            return v
        if not isinstance(v, str) or not _TS_RE.search(v):
            raise ValueError("timestamp must be an RFC 3339 date-time with an offset, e.g. 2024-05-01T12:00:00Z")
        return v

    @model_validator(mode="after")
    def _substitute_only_for_swaps(self) -> "FeedbackEvent":
        if self.kind == "swapped" and self.substitute_id is None:
            raise ValueError("substitute_id is required when kind is 'swapped'")
        return self


class CustomerProfile(BaseModel):
    """The customer profile: ONE online-store row per customer, everything the request path needs.

    Customer-level features plus the customer × product history as parallel arrays, served as one
    Feast row so that resolving a request costs one online read, whatever the number of candidates.
    Times are epoch seconds (UTC) to keep the row compact.
    """

    customer_id: str
    order_count: int = 0
    mean_basket_size: float = 0.0
    mean_days_between_orders: float | None = None
    last_order_ts: float | None = None
    product_ids: list[str] = Field(default_factory=list)
    product_counts: list[float] = Field(default_factory=list)
    product_last_ts: list[float] = Field(default_factory=list)
    embedding: list[float] | None = None
    """C-STAR trajectory embedding, when one has been computed."""
    as_of: datetime | None = None

    @model_validator(mode="after")
    def _parallel_arrays(self) -> "CustomerProfile":
        n = len(self.product_ids)
        if len(self.product_counts) != n or len(self.product_last_ts) != n:
            raise ValueError(
                "product_ids, product_counts and product_last_ts must have the same length "
                f"(got {n}, {len(self.product_counts)}, {len(self.product_last_ts)})"
            )
        return self

    @property
    def has_history(self) -> bool:
        return bool(self.product_ids)
