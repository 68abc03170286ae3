"""The Feast repository of voicecart: configuration from settings, apply, materialize.

Two store configurations come from the ``features`` settings section, one backend per concern
(no secrets in files: BigQuery uses ambient Google credentials, Redis a ``host:port`` address):

* local (default): offline = parquet files read by Feast's ``file`` (dask) store, online = SQLite,
  registry = ``<store_dir>/registry.db``;
* production (``offline: bigquery``, ``online: redis``): BigQuery dataset
  ``bigquery_project.bigquery_dataset``, Redis at ``redis_url``.

Each can be chosen independently (e.g. parquet offline + Redis online, as the integration test does).
"""

from __future__ import annotations

import contextlib
import io
import shutil
import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voicecart.config import FeatureSettings
from voicecart.features.errors import FeatureDefinitionError, FeatureStoreError, FeatureStoreUnavailable

if TYPE_CHECKING:
    from feast import FeatureStore
    from feast.repo_config import RepoConfig


def offline_dir(settings: FeatureSettings) -> Path:
    """Where the local offline parquet tables live (what ``build_features`` writes)."""
    return Path(settings.store_dir) / "offline"


def repo_config_dict(settings: FeatureSettings) -> dict[str, Any]:
    """The ``feature_store.yaml`` content for these settings, as a plain dict."""
    store_dir = Path(settings.store_dir).resolve()
    if settings.offline == "bigquery":
        if not settings.bigquery_project or not settings.bigquery_dataset:
            raise FeatureStoreError("features.offline is 'bigquery' but features.bigquery_project and "
                                    "features.bigquery_dataset are not both set (VOICECART_FEATURES__BIGQUERY_*)")
        offline: dict[str, Any] = {"type": "bigquery", "project_id": settings.bigquery_project,
                                   "dataset": settings.bigquery_dataset}
    else:
        offline = {"type": "file"}
    if settings.online == "redis":
        connection = settings.redis_url
        if connection.startswith("redis://"):  # URL form → Feast's host:port,db=N
            host, port = redis_address(connection)
            db = connection.removeprefix("redis://").partition("/")[2]
            connection = f"{host}:{port}" + (f",db={db}" if db else "")
        if "socket_connect_timeout=" not in connection:
            connection += f",socket_connect_timeout={settings.online_timeout_s:g}"
        online: dict[str, Any] = {"type": "redis", "connection_string": connection}
    else:
        online = {"type": "sqlite", "path": str(store_dir / "online_store.db")}
    return {
        "project": settings.project,
        "provider": "gcp" if settings.offline == "bigquery" else "local",
        "registry": {"registry_type": "file", "path": settings.registry or str(store_dir / "registry.db"),
                     "cache_ttl_seconds": 60},
        "offline_store": offline,
        "online_store": online,
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


def redis_address(url: str) -> tuple[str, int]:
    """``host:port[,params]`` (Feast's format) or ``redis://host:port`` → (host, port)."""
    address = url.split(",", 1)[0].removeprefix("redis://").split("/", 1)[0]
    host, _, port = address.rpartition(":")
    try:
        return (host or "localhost"), int(port or 6379)
    except ValueError:
        raise FeatureStoreError(f"features.redis_url {url!r} is not host:port") from None


def check_online_reachable(settings: FeatureSettings, timeout_s: float = 1.0) -> None:
    """Fail fast with a clear message when the configured Redis does not answer."""
    if settings.online != "redis":
        return
    host, port = redis_address(settings.redis_url)
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.sendall(b"PING\r\n")
            reply = sock.recv(64)
    except OSError as exc:
        raise FeatureStoreUnavailable(
            f"Redis online store at {host}:{port} is unreachable ({exc.strerror or exc}); start redis-server "
            "there or set features.redis_url (VOICECART_FEATURES__REDIS_URL)") from None
    if not reply.startswith((b"+PONG", b"-NOAUTH")):
        raise FeatureStoreUnavailable(f"{host}:{port} answered {reply[:40]!r} to PING: not a Redis server")


def open_store(settings: FeatureSettings, *, must_exist: bool = False) -> "FeatureStore":
    """A Feast ``FeatureStore`` for these settings (no network until used).

    With ``must_exist`` a local registry that was never applied is an error instead of being
    created empty (readers must not leave an empty store behind).
    """
    from feast import FeatureStore

    config = repo_config(settings)
    registry = str(config.registry.path)
    if "://" not in registry:
        if must_exist and not Path(registry).exists():
            raise FeatureStoreUnavailable(f"no feature registry at {registry}; run `voicecart features apply` "
                                          "(or set features.store_dir / features.registry)")
        Path(registry).parent.mkdir(parents=True, exist_ok=True)
    return FeatureStore(config=config)


def check_window(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """Both ends as UTC; :class:`FeatureStoreError` when ``end`` is not after ``start``."""
    start, end = _utc(start), _utc(end)
    if end <= start:
        raise FeatureStoreError(f"materialize window is empty: end {end.isoformat()} is not after start "
                                f"{start.isoformat()}; pass --start before --end")
    return start, end


def definitions(settings: FeatureSettings) -> list:
    """The Feast objects for the configured offline backend."""
    from voicecart.features.definitions import BigQueryTables, FileTables, feature_objects

    if settings.offline == "bigquery":
        return feature_objects(BigQueryTables(settings.bigquery_project or "", settings.bigquery_dataset or ""))
    return feature_objects(FileTables(offline_dir(settings)))


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
    registry_path = Path(store.config.registry.path)
    local_registry = "://" not in str(store.config.registry.path)
    backup = registry_path.with_name(registry_path.name + ".bak")
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
        backup.unlink(missing_ok=True)
    return ApplySummary(registry=str(store.config.registry.path),
                        views=[o.name for o in objects if isinstance(o, FeatureView)],
                        services=[o.name for o in objects if isinstance(o, FeatureService)])


ONLINE_VIEWS: tuple[str, ...] = ("customer_profile", "customer_embedding", "product_features")


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)


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
    if settings.offline != "duckdb":
        return {}
    import duckdb

    counts = {}
    for view in views:  # each view reads the parquet file of its own name
        path = offline_dir(settings) / f"{view}.parquet"
        if path.exists():
            q = ("SELECT COUNT(DISTINCT {key}) FROM read_parquet(?) WHERE event_timestamp BETWEEN ? AND ?"
                 .format(key="product_id" if view == "product_features" else "customer_id"))
            counts[view] = duckdb.execute(q, [str(path), start, end]).fetchall()[0][0]
    return counts


def _is_connection_error(exc: BaseException) -> bool:
    try:
        import redis

        redis_errors: tuple[type[BaseException], ...] = (redis.ConnectionError, redis.TimeoutError)
    except ImportError:  # pragma: no cover
        redis_errors = ()
    return isinstance(exc, (ConnectionError, OSError, *redis_errors))
