"""The Feast repository of voicecart: configuration from settings, apply, materialize.

The store configuration comes from the ``features`` settings section, one backend per concern, each
a module chosen by its typed config's ``type:`` (no secrets in files: BigQuery uses ambient Google
credentials, Redis a ``host:port`` address):

* offline: ``duckdb`` (:mod:`.offline_duckdb`: Feast's ``file`` store over the parquet tables) or
  ``bigquery`` (:mod:`.offline_bigquery`);
* online: ``sqlite`` (:mod:`.online_sqlite`) or ``redis`` (:mod:`.online_redis`);
* registry: ``<store_dir>/registry.db`` unless ``features.registry`` names another path or URI.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voicecart.config import FeatureSettings
from voicecart.features.errors import FeatureDefinitionError, FeatureStoreError, FeatureStoreUnavailable
from voicecart.features.offline import backend
from voicecart.schemas.locations import local_path
from voicecart.schemas.times import utc

if TYPE_CHECKING:
    from feast import FeatureStore
    from feast.repo_config import RepoConfig


def offline_dir(settings: FeatureSettings) -> Path:
    """Where the local offline parquet tables live (what ``build_features`` writes)."""
    return Path(settings.store_dir) / "offline"


def online_backend(settings: FeatureSettings):  # noqa: ANN201 - the backend module
    """The module of the configured online store (its ``type:`` picks it)."""
    return importlib.import_module(f"voicecart.features.online_{settings.online.type}")


def repo_config_dict(settings: FeatureSettings) -> dict[str, Any]:
    """The ``feature_store.yaml`` content for these settings, as a plain dict."""
    store_dir = Path(settings.store_dir).resolve()
    offline = backend(settings.offline)
    return {
        "project": settings.project,
        "provider": offline.PROVIDER,
        "registry": {"registry_type": "file", "path": settings.registry or str(store_dir / "registry.db"),
                     "cache_ttl_seconds": 60},
        "offline_store": offline.feast_config(settings.offline),
        "online_store": online_backend(settings).feast_config(settings.online, store_dir),
        "entity_key_serialization_version": 3,
    }


def repo_config(settings: FeatureSettings) -> "RepoConfig":
    """Feast's own, validated configuration object (raises :class:`FeatureStoreError` naming the field)."""
    from feast.repo_config import RepoConfig
    from pydantic import ValidationError

    raw = repo_config_dict(settings)
    try:
        config = RepoConfig(**raw)
        # The store configs are validated lazily by Feast: touch them so errors surface here.
        config.registry, config.offline_store, config.online_store  # noqa: B018
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise FeatureStoreError(f"invalid Feast configuration from the features settings: {problems}") from None
    config.repo_path = Path(settings.store_dir).resolve()
    return config


def check_online_reachable(settings: FeatureSettings) -> None:
    """Fail fast with a clear message when the configured online store does not answer."""
    online_backend(settings).check_reachable(settings.online)


def describe_online(settings: FeatureSettings) -> str:
    """``sqlite /path/online_store.db`` or ``redis host:port``: what a log line or banner names."""
    return online_backend(settings).describe(settings.online, Path(settings.store_dir))


def open_store(settings: FeatureSettings, *, must_exist: bool = False) -> "FeatureStore":
    """A Feast ``FeatureStore`` for these settings (no network until used).

    With ``must_exist`` a local registry that was never applied is an error instead of being
    created empty (readers must not leave an empty store behind).
    """
    from feast import FeatureStore

    config = repo_config(settings)
    registry = local_path(str(config.registry.path))
    if registry is not None:
        if must_exist and not registry.exists():
            raise FeatureStoreUnavailable(f"no feature registry at {registry}; run `voicecart features apply` "
                                          "(or set features.store_dir / features.registry)")
        registry.parent.mkdir(parents=True, exist_ok=True)
    return FeatureStore(config=config)


def check_window(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """Both ends as UTC; :class:`FeatureStoreError` when ``end`` is not after ``start``."""
    start, end = utc(start), utc(end)
    if end <= start:
        raise FeatureStoreError(f"materialize window is empty: end {end.isoformat()} is not after start "
                                f"{start.isoformat()}; pass --start before --end")
    return start, end


def definitions(settings: FeatureSettings) -> list:
    """The Feast objects for the configured offline backend."""
    from voicecart.features.definitions import feature_objects

    return feature_objects(backend(settings.offline).feast_tables(settings.offline, settings.store_dir))


def validate_sources(objects: list) -> None:
    """Every field, entity key and timestamp of each file-backed view exists in its parquet file."""
    import pyarrow.parquet as pq
    from feast import FeatureView, FileSource

    for view in (o for o in objects if isinstance(o, FeatureView)):
        source = view.batch_source
        if not isinstance(source, FileSource):
            continue
        path = Path(source.path)
        if not path.exists():
            raise FeatureDefinitionError(f"feature view {view.name!r} reads {path}, which does not exist; "
                                         "run `voicecart features build` first")
        columns = set(pq.read_schema(path).names)
        wanted = [f.name for f in view.schema] + list(view.join_keys) + [source.timestamp_field]
        missing = [c for c in wanted if c not in columns]
        if missing:
            raise FeatureDefinitionError(
                f"feature view {view.name!r} references column(s) {', '.join(missing)} missing from {path} "
                f"(it has: {', '.join(sorted(columns))}); rebuild the features or fix the view's schema")


@dataclass
class ApplySummary:
    registry: str
    views: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)


def apply(settings: FeatureSettings, objects: list | None = None) -> ApplySummary:
    """Register the feature objects, all or nothing.

    Definitions are checked against their sources and the online store is checked reachable
    *before* anything is written; if Feast fails part-way, the previous registry file is restored.
    """
    from feast import FeatureService, FeatureView

    objects = definitions(settings) if objects is None else objects
    validate_sources(objects)
    check_online_reachable(settings)
    store = open_store(settings)
    registry_path = local_path(str(store.config.registry.path))
    local_registry = registry_path is not None
    backup = registry_path.with_name(registry_path.name + ".bak") if local_registry else None
    existed = local_registry and registry_path.exists()
    if existed:
        shutil.copy2(registry_path, backup)
    try:
        store.apply(objects)
    except Exception as exc:
        if local_registry:
            if existed:
                shutil.copy2(backup, registry_path)
            else:
                registry_path.unlink(missing_ok=True)
        if isinstance(exc, FeatureStoreError):
            raise
        raise FeatureStoreError(f"feast apply failed, registry left as it was: {type(exc).__name__}: {exc}") from exc
    finally:
        if backup is not None:
            backup.unlink(missing_ok=True)
    return ApplySummary(registry=str(store.config.registry.path),
                        views=[o.name for o in objects if isinstance(o, FeatureView)],
                        services=[o.name for o in objects if isinstance(o, FeatureService)])


ONLINE_VIEWS: tuple[str, ...] = ("customer_profile", "customer_embedding", "product_features")


def materialize(settings: FeatureSettings, start: datetime, end: datetime,
                views: list[str] | tuple[str, ...] = ONLINE_VIEWS, store: "FeatureStore | None" = None) -> dict[str, int]:
    """Copy the latest row per entity with ``start <= event_timestamp <= end`` into the online store.

    Returns rows read from the offline source per view (an upper bound on entities written).
    """
    start, end = check_window(start, end)
    check_online_reachable(settings)
    store = store or open_store(settings, must_exist=True)
    try:
        known = {v.name for v in store.list_feature_views()}
    except Exception as exc:  # noqa: BLE001 - Feast raises many types for a missing registry
        raise FeatureStoreError(f"cannot read the feature registry ({exc}); run `voicecart features apply` first") from None
    unknown = [v for v in views if v not in known]
    if unknown:
        raise FeatureStoreError(f"feature view(s) {', '.join(unknown)} are not registered (known: "
                                f"{', '.join(sorted(known)) or 'none'}); run `voicecart features apply` first")
    try:
        store.materialize(start_date=start, end_date=end, feature_views=list(views))
    except Exception as exc:
        if _is_connection_error(exc):
            raise FeatureStoreUnavailable(f"online store unreachable during materialize: {exc}") from None
        raise
    return _rows_in_window(settings, views, start, end)


def publish(data_dir: str | Path, settings: FeatureSettings, as_of: datetime) -> dict[str, int]:
    """From a prepared dataset to servable profiles: build the feature tables as of ``as_of``,
    register the definitions and materialize everything up to ``as_of`` (Feast's own chatter muted)."""
    from voicecart.features.build import build_features

    build_features(data_dir, offline_dir(settings), as_of)
    with contextlib.redirect_stdout(io.StringIO()):
        apply(settings)
        return materialize(settings, as_of - timedelta(days=3650), as_of + timedelta(seconds=1))


def _rows_in_window(settings: FeatureSettings, views, start: datetime, end: datetime) -> dict[str, int]:
    from voicecart.data.store import duckdb_connect

    counts = {}
    con = duckdb_connect()
    try:
        for view in views:  # a local offline store: each view reads the parquet file of its own name
            path = offline_dir(settings) / f"{view}.parquet"
            if path.exists():
                q = ("SELECT COUNT(DISTINCT {key}) FROM read_parquet(?) WHERE event_timestamp BETWEEN ? AND ?"
                     .format(key="product_id" if view == "product_features" else "customer_id"))
                counts[view] = con.execute(q, [str(path), start, end]).fetchall()[0][0]
    finally:
        con.close()
    return counts


def _is_connection_error(exc: BaseException) -> bool:
    try:
        import redis

        redis_errors: tuple[type[BaseException], ...] = (redis.ConnectionError, redis.TimeoutError)
    except ImportError:  # pragma: no cover
        redis_errors = ()
    return isinstance(exc, (ConnectionError, OSError, *redis_errors))
