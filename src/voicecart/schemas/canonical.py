"""Canonical tables: the one schema every dataset adapter writes and everything downstream reads.

Each table has a pydantic row model (for validation at boundaries and docs) and the matching
Arrow schema (for parquet). Identifiers are strings so any retailer's ids fit; category codes
are the path department > aisle > subclass (``category_l1`` > ``category_l2`` > ``category_l3``).

Version 1.1 added nullable columns only (household labels, manufacturer, store, discounts): a 1.0
dataset still reads, its missing columns as nulls.
"""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = "1.1"


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Customer(_Row):
    customer_id: str = Field(min_length=1)
    age_group: str | None = None
    """Demographic bucket when the source has one (Ta-Feng AGE_GROUP)."""
    postal_area: str | None = None
    """Residence area when the source has one (Ta-Feng PIN_CODE)."""
    income_band: str | None = None
    """Household income band when known (Complete Journey: "35-49K", ...)."""
    household_size: str | None = None
    """Number of people in the household when known ("1", ..., "5+")."""
    household_composition: str | None = None
    """Adults and kids when known ("2 Adults Kids", "1 Adult No Kids", ...)."""
    kids_count: str | None = None
    """Number of children when known ("0", "1", "2", "3+")."""
    marital_status: str | None = None
    home_ownership: str | None = None


class Product(_Row):
    product_id: str = Field(min_length=1)
    title: str | None = None
    brand: str | None = None
    size: str | None = None
    manufacturer: str | None = None
    category_l1: str = Field(min_length=1, description="department code")
    category_l2: str = Field(min_length=1, description="aisle code")
    category_l3: str = Field(min_length=1, description="subclass code")
    category_l1_name: str | None = None
    category_l2_name: str | None = None
    category_l3_name: str | None = None


class Order(_Row):
    order_id: str = Field(min_length=1)
    customer_id: str = Field(min_length=1)
    timestamp: datetime
    store_id: str | None = None


class OrderLine(_Row):
    order_id: str = Field(min_length=1)
    product_id: str = Field(min_length=1)
    quantity: float = Field(gt=0)
    price: float | None = Field(default=None, ge=0, description="unit price paid")
    discount: float | None = Field(default=None, ge=0, description="unit discount of the store (loyalty card, "
                                   "coupon match): price + discount is the shelf price")
    coupon: float | None = Field(default=None, ge=0, description="unit manufacturer coupon, refunded to the store: "
                                 "the shopper paid price - coupon")


_ARROW_TYPES = {
    "customers": pa.schema(
        [
            pa.field("customer_id", pa.string(), nullable=False),
            pa.field("age_group", pa.string()),
            pa.field("postal_area", pa.string()),
            pa.field("income_band", pa.string()),
            pa.field("household_size", pa.string()),
            pa.field("household_composition", pa.string()),
            pa.field("kids_count", pa.string()),
            pa.field("marital_status", pa.string()),
            pa.field("home_ownership", pa.string()),
        ]
    ),
    "products": pa.schema(
        [
            pa.field("product_id", pa.string(), nullable=False),
            pa.field("title", pa.string()),
            pa.field("brand", pa.string()),
            pa.field("size", pa.string()),
            pa.field("manufacturer", pa.string()),
            pa.field("category_l1", pa.string(), nullable=False),
            pa.field("category_l2", pa.string(), nullable=False),
            pa.field("category_l3", pa.string(), nullable=False),
            pa.field("category_l1_name", pa.string()),
            pa.field("category_l2_name", pa.string()),
            pa.field("category_l3_name", pa.string()),
        ]
    ),
    "orders": pa.schema(
        [
            pa.field("order_id", pa.string(), nullable=False),
            pa.field("customer_id", pa.string(), nullable=False),
            pa.field("timestamp", pa.timestamp("us"), nullable=False),
            pa.field("store_id", pa.string()),
        ]
    ),
    "order_lines": pa.schema(
        [
            pa.field("order_id", pa.string(), nullable=False),
            pa.field("product_id", pa.string(), nullable=False),
            pa.field("quantity", pa.float64(), nullable=False),
            pa.field("price", pa.float64()),
            pa.field("discount", pa.float64()),
            pa.field("coupon", pa.float64()),
        ]
    ),
}

CANONICAL_TABLES: tuple[str, ...] = tuple(_ARROW_TYPES)
ROW_MODELS: dict[str, type[_Row]] = {
    "customers": Customer,
    "products": Product,
    "orders": Order,
    "order_lines": OrderLine,
}


def arrow_schema(table: str) -> pa.Schema:
    """The Arrow schema of one canonical table (``KeyError`` names the unknown table)."""
    try:
        return _ARROW_TYPES[table]
    except KeyError:
        raise KeyError(f"unknown canonical table {table!r}; known: {', '.join(CANONICAL_TABLES)}") from None


class TableEntry(BaseModel):
    file: str
    rows: int = Field(ge=0)
    sha256: str


class Manifest(BaseModel):
    """``manifest.json`` beside the parquet files of one prepared dataset."""

    schema_version: str = SCHEMA_VERSION
    source: str
    source_path: str | None = None
    created_at: datetime
    tables: dict[str, TableEntry]
    stats: dict[str, int | float | str] = Field(default_factory=dict)
