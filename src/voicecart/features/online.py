"""The online profile store: ONE Feast read per request, and pushes from feedback.

The served engine holds a :class:`FeastProfiles` (a :class:`ProfileStore` opened lazily and reopened by the
engine's circuit breaker while the store is down). Used directly::

    from voicecart.features.online import ProfileStore
    from voicecart.features.errors import FeatureStoreUnavailable

    profiles = ProfileStore.from_settings(settings.features)   # once, at start-up
    try:
        profile = profiles.get("00020220")       # CustomerProfile, or None for an unknown customer
    except FeatureStoreUnavailable:
        profile = None                           # answer anyway, "personalized": false

``get`` reads the ``serving_profile`` feature service (the ``customer_profile`` row and the C-STAR
``customer_embedding``) with the provider's ``online_read``, one call per feature view of the service,
resolved from the registry once when the store opens; its cost does not grow with the number of
candidates. It answers what ``FeatureStore.get_online_features`` on that service answers (a test holds
them equal) without re-resolving the service and rebuilding a response per request, which cost more than
the read itself (docs/benchmarks.md, the serving section). Any failure of the online store (SQLite file missing, Redis
down, registry unreadable) surfaces as :class:`FeatureStoreUnavailable`, never as a backend type.

``push(profiles)`` writes updated profile rows online through the ``customer_profile_push`` push
source; :func:`with_purchase` folds one bought product into a profile to make such a row.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from voicecart.config import FeatureSettings
from voicecart.features.errors import FeatureStoreError, FeatureStoreUnavailable
from voicecart.schemas.api import CustomerProfile

if TYPE_CHECKING:
    import pyarrow as pa
    from feast import FeatureStore

log = logging.getLogger("voicecart.features.online")

PROBE_CUSTOMER = "voicecart-health-probe"
"""The customer id health probes read: no such customer, so a read that answers proves the store works."""

PROFILE_COLUMNS = ("order_count", "mean_basket_size", "mean_days_between_orders", "last_order_ts",
                   "product_ids", "product_counts", "product_last_ts")


class ProfileStore:
    """Read and update customer profiles in the Feast online store (SQLite locally, Redis at scale)."""

    def __init__(self, store: "FeatureStore", settings: FeatureSettings | None = None) -> None:
        from voicecart.features.definitions import PROFILE_SERVICE

        self._store = store
        self._settings = settings
        try:
            self._service = store.get_feature_service(PROFILE_SERVICE)
            # (feature view, the service's features of it): what one profile read asks each view for
            self._reads = [(store.get_feature_view(p.name), [f.name for f in p.features])
                           for p in self._service.feature_view_projections]
        except Exception as exc:  # noqa: BLE001 - missing registry, unknown service, unreachable GCS...
            raise FeatureStoreUnavailable(
                f"feature service {PROFILE_SERVICE!r} is not readable from the registry ({type(exc).__name__}: "
                f"{exc}); run `voicecart features apply`") from None
        self._provider = store._get_provider()  # noqa: SLF001 - Feast's one way to the provider's online_read
        if settings is not None:
            from voicecart.features.store import online_backend

            online_backend(settings).tune(store, settings.online)

    @classmethod
    def from_settings(cls, settings: FeatureSettings) -> "ProfileStore":
        from voicecart.features.store import open_store

        return cls(open_store(settings, must_exist=True), settings)

    def get(self, customer_id: str) -> CustomerProfile | None:
        """The customer's profile (one online read), ``None`` if the store has no row for them."""
        return profile_from_row(customer_id, self.row(customer_id))

    def row(self, customer_id: str) -> dict[str, Any]:
        """feature name -> value of the service's features for one customer (None where the store has none)."""
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value
        from feast.type_map import feast_value_type_to_python_type

        key = EntityKey(join_keys=["customer_id"], entity_values=[Value(string_val=customer_id)])
        row: dict[str, Any] = {}
        try:
            for view, names in self._reads:
                # a copy: Feast's Redis store appends its timestamp columns to the list it is given
                (_, values), = self._provider.online_read(self._store.config, view, [key], list(names))
                values = values or {}
                for name in names:
                    value = values.get(name)
                    row[name] = None if value is None else feast_value_type_to_python_type(value)
        except Exception as exc:  # noqa: BLE001 - every backend raises its own types
            raise FeatureStoreUnavailable(f"online profile read failed ({type(exc).__name__}: {exc})") from None
        return row

    def push(self, profiles: Iterable[CustomerProfile]) -> int:
        """Write whole profile rows online (the push source); returns how many were written."""
        import pandas as pd

        from voicecart.features.definitions import PROFILE_PUSH

        rows = [profile_to_row(p) for p in profiles]
        if not rows:
            return 0
        try:
            self._store.push(PROFILE_PUSH, pd.DataFrame(rows))
        except Exception as exc:  # noqa: BLE001
            raise FeatureStoreUnavailable(f"online profile push failed ({type(exc).__name__}: {exc})") from None
        return len(rows)


class FeastProfiles:
    """The Feast online store, opened lazily and reopened by :meth:`probe`.

    The engine's circuit breaker calls :meth:`probe` (in the background) while the store is
    failing: it drops the current Feast objects and opens new ones, so a store whose connection
    died (a truncated SQLite file, a restarted Redis) heals without a restart.
    """

    def __init__(self, settings: FeatureSettings) -> None:
        self.settings = settings
        self._store: Any = None
        self._lock = threading.Lock()

    def _open(self) -> "ProfileStore":
        store = self._store
        if store is not None:
            return store
        with self._lock:
            if self._store is None:
                self._store = ProfileStore.from_settings(self.settings)
            return self._store

    def get(self, customer_id: str) -> CustomerProfile | None:
        return self._open().get(customer_id)

    def probe(self) -> None:
        """Reconnect, then one read; raises while the store is still down."""
        with self._lock:
            self._store = None
        self._open().get(PROBE_CUSTOMER)

    def warm_up(self) -> bool:
        """Open the store and do one read before serving (Feast's first read is slow); False if down."""
        try:
            self._open().get(PROBE_CUSTOMER)
            return True
        except Exception as exc:  # noqa: BLE001 - down at start: serve by popularity, retry later
            log.warning("online store not available at start-up, answering by popularity: %s", exc)
            return False

    def push(self, profiles: Iterable[CustomerProfile]) -> int:
        return self._open().push(profiles)

    def describe(self) -> str:
        from voicecart.features.store import describe_online

        return f"Feast online store ({describe_online(self.settings)})"



def profile_from_row(customer_id: str, row: dict[str, Any]) -> CustomerProfile | None:
    """Build a :class:`CustomerProfile` from one Feast online row (feature name → value)."""
    if row.get("product_ids") is None and row.get("order_count") is None and not row.get("embedding"):
        return None  # nothing known; a customer new to the shop may still have an embedding (empty trajectory)
    return CustomerProfile(
        customer_id=customer_id,
        order_count=row.get("order_count") or 0,
        mean_basket_size=row.get("mean_basket_size") or 0.0,
        mean_days_between_orders=row.get("mean_days_between_orders"),
        last_order_ts=row.get("last_order_ts"),
        product_ids=row.get("product_ids") or [],
        product_counts=row.get("product_counts") or [],
        product_last_ts=row.get("product_last_ts") or [],
        embedding=row.get("embedding") or None,
    )


def profile_to_row(profile: CustomerProfile) -> dict[str, Any]:
    """One push-source row for a profile (``as_of`` or now becomes its event timestamp)."""
    ts = profile.as_of or datetime.now(timezone.utc)
    return {"customer_id": profile.customer_id,
            "event_timestamp": ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc),
            **{c: getattr(profile, c) for c in PROFILE_COLUMNS}}


def with_purchase(profile: CustomerProfile, product_id: str, at: datetime) -> CustomerProfile:
    """The profile after one more purchase of ``product_id`` at ``at`` (a feedback ``bought`` event).

    Counts the product once more, moves its last-purchase time, keeps most-bought-first order.
    Customer-level counters (orders, basket size) move only with whole orders, at the next build.
    """
    if not product_id:
        raise FeatureStoreError("with_purchase needs a product_id")
    ts = (at if at.tzinfo else at.replace(tzinfo=timezone.utc)).timestamp()
    items = {p: [c, t] for p, c, t in zip(profile.product_ids, profile.product_counts, profile.product_last_ts)}
    count, last = items.get(product_id, [0.0, ts])
    items[product_id] = [count + 1.0, max(last, ts)]
    ordered = sorted(items.items(), key=lambda kv: (kv[1][0], kv[1][1], kv[0]), reverse=True)
    return profile.model_copy(update={
        "product_ids": [p for p, _ in ordered],
        "product_counts": [v[0] for _, v in ordered],
        "product_last_ts": [v[1] for _, v in ordered],
        "last_order_ts": max(profile.last_order_ts or ts, ts),
        "as_of": at if at.tzinfo else at.replace(tzinfo=timezone.utc),
    })


def read_product_stats(settings: FeatureSettings, store: "FeatureStore | None" = None) -> "pa.Table":
    """Every product's row of the ``product_features`` view, online (what serving loads at start and reload).

    Products are those of the registered offline table (the materialized snapshot); rows the online store
    does not hold come back empty and are dropped. Raises :class:`FeatureStoreUnavailable`.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from voicecart.features.definitions import PRODUCT_FIELDS
    from voicecart.features.store import offline_dir, open_store

    try:
        store = store or open_store(settings, must_exist=True)
        path = offline_dir(settings) / "product_features.parquet"
        ids = sorted(set(pq.read_table(path, columns=["product_id"]).column("product_id").to_pylist()))
        names = [f"product_features:{f.name}" for f in PRODUCT_FIELDS]
        rows = store.get_online_features(features=names, entity_rows=[{"product_id": p} for p in ids]).to_dict()
    except FeatureStoreUnavailable:
        raise
    except Exception as exc:  # noqa: BLE001 - every backend raises its own types
        raise FeatureStoreUnavailable(f"product statistics read failed ({type(exc).__name__}: {exc})") from None
    table = pa.table({"product_id": rows["product_id"], **{f.name: rows[f.name] for f in PRODUCT_FIELDS}})
    table = table.filter(pc.is_valid(table.column("popularity_all")))
    moment = pq.read_table(path, columns=["event_timestamp"]).column("event_timestamp")
    at = pc.max(moment).cast(pa.timestamp("us", tz="UTC"))
    return table.append_column("event_timestamp", pa.array([at.as_py()] * table.num_rows, pa.timestamp("us", tz="UTC")))
