"""The cluster's online store: Feast's Redis store, tuned so a down Redis costs milliseconds, not seconds."""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voicecart.features.errors import FeatureStoreError, FeatureStoreUnavailable

if TYPE_CHECKING:
    from feast import FeatureStore

    from voicecart.config import RedisOnline


def address(url: str) -> tuple[str, int]:
    """``host:port[,params]`` (Feast's format) or ``redis://host:port/db`` -> (host, port)."""
    hostport = url.split(",", 1)[0].removeprefix("redis://").split("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    try:
        return (host or "localhost"), int(port or 6379)
    except ValueError:
        raise FeatureStoreError(f"features.online.url {url!r} is not host:port") from None


def feast_config(config: "RedisOnline", store_dir: Path) -> dict[str, Any]:
    connection = config.url
    if connection.startswith("redis://"):  # URL form -> Feast's host:port,db=N
        host, port = address(connection)
        db = connection.removeprefix("redis://").partition("/")[2]
        connection = f"{host}:{port}" + (f",db={db}" if db else "")
    if "socket_connect_timeout=" not in connection:
        connection += f",socket_connect_timeout={config.timeout_s:g}"
    return {"type": "redis", "connection_string": connection}


def describe(config: "RedisOnline", store_dir: Path) -> str:
    host, port = address(config.url)
    return f"redis {host}:{port}"


def check_reachable(config: "RedisOnline", timeout_s: float = 1.0) -> None:
    """Fail fast with a clear message when the configured Redis does not answer a PING."""
    host, port = address(config.url)
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.sendall(b"PING\r\n")
            reply = sock.recv(64)
    except OSError as exc:
        raise FeatureStoreUnavailable(
            f"Redis online store at {host}:{port} is unreachable ({exc.strerror or exc}); start redis-server "
            "there or set features.online.url (VOICECART_FEATURES__ONLINE__URL)") from None
    if not reply.startswith((b"+PONG", b"-NOAUTH")):
        raise FeatureStoreUnavailable(f"{host}:{port} answered {reply[:40]!r} to PING: not a Redis server")


def tune(store: "FeatureStore", config: "RedisOnline") -> None:
    """Profile reads get no retries and a read timeout: a down Redis costs milliseconds, not seconds.

    redis-py retries a refused connection with backoff (~4.5 s by default); on the request path
    we would rather answer unpersonalized at once. Feast builds its Redis client lazily and
    offers no hook, so we build it now and adjust its connection settings.
    """
    try:
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        online = store._get_provider().online_store  # noqa: SLF001 - Feast has no public accessor
        client = online._get_client(store.config.online_store)  # noqa: SLF001
        kwargs = client.connection_pool.connection_kwargs
        kwargs["retry"] = Retry(NoBackoff(), 0)
        kwargs["socket_timeout"] = config.timeout_s
        if hasattr(client, "retry"):
            client.retry = Retry(NoBackoff(), 0)
    except Exception:  # noqa: BLE001 - a Feast internals change must not break reads, only slow failures
        logging.getLogger(__name__).warning("could not disable Redis retries; a down Redis will slow reads")
