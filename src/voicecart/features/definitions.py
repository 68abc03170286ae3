"""The Feast objects, defined once: entities, sources, feature views, the push source, services.

:func:`feature_objects` builds them for one offline backend (parquet files here, BigQuery tables
at scale) so the local and the production repository hold the same views with the same fields.
``feature_repo/repo.py`` exposes the local set to the ``feast`` CLI.

Views and what reads them:

=====================  ==========  ======  ===========================================================
view                   entity      TTL     read by
=====================  ==========  ======  ===========================================================
``customer_profile``   customer    365 d   serving, one online read per request (push source: feedback)
``customer_embedding`` customer    90 d    serving (same read) and the ranker; written by C-STAR
``customer_features``  customer    365 d   training (category shares per level, recency)
``product_features``   product     30 d    serving, loaded whole at start and on reload (not per request)
=====================  ==========  ======  ===========================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from feast import Entity, FeatureService, FeatureView, Field, FileSource, PushSource, ValueType
from feast.data_source import DataSource
from feast.types import Array, Float32, Float64, Int64, String

from voicecart.features.build import EMBEDDINGS_FILE
from voicecart.features.sql import POPULARITY_WINDOWS_DAYS

TIMESTAMP = "event_timestamp"
PROFILE_PUSH = "customer_profile_push"
PROFILE_SERVICE = "serving_profile"

customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.STRING,
                  description="A shopper (canonical customers.customer_id)")
product = Entity(name="product", join_keys=["product_id"], value_type=ValueType.STRING,
                 description="A catalogue product (canonical products.product_id)")

PROFILE_FIELDS = [
    Field(name="order_count", dtype=Int64),
    Field(name="mean_basket_size", dtype=Float64),
    Field(name="mean_days_between_orders", dtype=Float64),
    Field(name="last_order_ts", dtype=Float64),
    Field(name="product_ids", dtype=Array(String)),
    Field(name="product_counts", dtype=Array(Float64)),
    Field(name="product_last_ts", dtype=Array(Float64)),
]
CUSTOMER_FIELDS = [
    Field(name="order_count", dtype=Int64),
    Field(name="mean_basket_size", dtype=Float64),
    Field(name="mean_days_between_orders", dtype=Float64),
    Field(name="last_order_ts", dtype=Float64),
    Field(name="days_since_last_order", dtype=Float64),
    *[f for k in (1, 2, 3) for f in (Field(name=f"category_l{k}_ids", dtype=Array(String)),
                                     Field(name=f"category_l{k}_shares", dtype=Array(Float64)))],
]
PRODUCT_FIELDS = [  # the product_stats query's columns (one row per product and moment)
    Field(name="popularity_all", dtype=Float64),
    *[Field(name=f"popularity_{d}d", dtype=Float64) for d in POPULARITY_WINDOWS_DAYS],
    Field(name="popularity_decayed", dtype=Float64),
    Field(name="buyers", dtype=Float64),
    Field(name="first_sale_ts", dtype=Float64),
    Field(name="price", dtype=Float64),
    Field(name="rel_price", dtype=Float64),
]
EMBEDDING_FIELDS = [Field(name="embedding", dtype=Array(Float32))]


@dataclass(frozen=True)
class FileTables:
    """Offline tables as parquet files in one folder (what ``build_features`` writes)."""

    folder: Path

    def source(self, table: str) -> DataSource:
        return FileSource(name=f"{table}_source", path=str((Path(self.folder) / f"{table}.parquet").resolve()),
                          timestamp_field=TIMESTAMP)


@dataclass(frozen=True)
class BigQueryTables:
    """Offline tables in one BigQuery dataset (``project.dataset``), filled by the transpiled SQL."""

    project: str
    dataset: str

    def source(self, table: str) -> DataSource:
        from feast import BigQuerySource

        return BigQuerySource(name=f"{table}_source", table=f"{self.project}.{self.dataset}.{table}",
                              timestamp_field=TIMESTAMP)


def feature_objects(tables: FileTables | BigQueryTables) -> list:
    """Every Feast object of the voicecart repository, reading the offline tables from ``tables``."""
    profile_batch = tables.source("customer_profile")
    profile_push = PushSource(name=PROFILE_PUSH, batch_source=profile_batch,
                              description="Updated profile rows from feedback events (online)")
    profile = FeatureView(
        name="customer_profile", entities=[customer], ttl=timedelta(days=365), schema=PROFILE_FIELDS,
        source=profile_push, online=True,
        description="ONE row per customer: customer-level features + their products as parallel arrays")
    embedding = FeatureView(
        name="customer_embedding", entities=[customer], ttl=timedelta(days=90), schema=EMBEDDING_FIELDS,
        source=tables.source(EMBEDDINGS_FILE.removesuffix(".parquet")), online=True,
        description="C-STAR trajectory embedding (list<float32>)")
    customer_features = FeatureView(
        name="customer_features", entities=[customer], ttl=timedelta(days=365), schema=CUSTOMER_FIELDS,
        source=tables.source("customer_features"), online=False,
        description="Customer-level features with category shares per level (training)")
    product_features = FeatureView(
        name="product_features", entities=[product], ttl=timedelta(days=30), schema=PRODUCT_FIELDS,
        source=tables.source("product_features"), online=True,
        description="Popularity (overall, sliding windows, decayed), buyers, first sale, price level at a moment")
    services = [
        FeatureService(name=PROFILE_SERVICE, features=[profile, embedding],
                       description="The request path: one online read per request"),
        FeatureService(name="ranker_training", features=[profile, customer_features, product_features, embedding],
                       description="Personalized ranker: training examples (customer, product, time)"),
        FeatureService(name="cstar_training", features=[customer_features],
                       description="C-STAR downstream heads: customer-level targets and inputs"),
    ]
    return [customer, product, profile_batch, profile_push, profile, embedding, customer_features,
            product_features, *services]
