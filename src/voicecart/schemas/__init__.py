"""Every model that crosses a boundary, defined once (DESIGN.md layer 1)."""

from voicecart.schemas.canonical import (
    CANONICAL_TABLES,
    SCHEMA_VERSION,
    Customer,
    Manifest,
    Order,
    OrderLine,
    Product,
    TableEntry,
    arrow_schema,
)
from voicecart.schemas.api import (
    CustomerProfile,
    FeedbackEvent,
    FeedbackKind,
    Intent,
    ParsedUtterance,
    ProductRef,
    ResolveRequest,
    ResolveResponse,
)
from voicecart.schemas.model import DataWindow, ModelMetadata

__all__ = [
    "CANONICAL_TABLES",
    "SCHEMA_VERSION",
    "Customer",
    "CustomerProfile",
    "DataWindow",
    "FeedbackEvent",
    "FeedbackKind",
    "Intent",
    "Manifest",
    "ModelMetadata",
    "Order",
    "OrderLine",
    "ParsedUtterance",
    "Product",
    "ProductRef",
    "ResolveRequest",
    "ResolveResponse",
    "TableEntry",
    "arrow_schema",
]
