"""The customer profile: ONE online-store row per customer, everything the request path needs."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, model_validator


class CustomerProfile(BaseModel):
    """Customer-level features plus the customer × product history as parallel arrays.

    Served as one Feast row so that resolving a request costs one online read, whatever the
    number of candidates. Times are epoch seconds (UTC) to keep the row compact.
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
