"""Real redis-server on a free localhost port: materialize through Feast, read the same values as SQLite."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from datetime import datetime

import pytest

from tests.integration.test_features_feast import feast_row
from tests.unit.test_features_sql import toy_dataset
from voicecart.config import FeatureSettings
from voicecart.features import FeatureStoreUnavailable, build_features
from voicecart.features.online import ProfileStore
from voicecart.features.store import apply, materialize, offline_dir, open_store

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"
WINDOW = (datetime(2000, 1, 1), datetime(2002, 1, 1))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(port: int, folder) -> subprocess.Popen:
    proc = subprocess.Popen([REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {proc.returncode}")
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start listening")


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    import os

    if not os.path.exists(REDIS):
        pytest.skip("redis-server is not installed: run `make tools` (scripts/tools/redis.sh)")
    port = free_port()
    proc = start_redis(port, tmp_path_factory.mktemp("redis"))
    yield proc, port
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def stores(redis_server, tmp_path_factory):
    """The same offline tables materialized into SQLite and into the real Redis."""
    _, port = redis_server
    root = tmp_path_factory.mktemp("stores")
    data = toy_dataset(root / "data")
    sqlite = FeatureSettings(store_dir=root / "sqlite")
    redis = FeatureSettings(store_dir=root / "redis", online={"type": "redis", "url": f"127.0.0.1:{port}"})
    for settings in (sqlite, redis):
        build_features(data, offline_dir(settings))
        apply(settings)
        materialize(settings, *WINDOW)
    return sqlite, redis


def test_redis_serves_the_same_profiles_as_sqlite(stores):
    sqlite, redis = (ProfileStore.from_settings(s) for s in stores)
    for customer in ("c1", "c2", "c3"):
        assert redis.get(customer) == sqlite.get(customer), customer
    for customer in ("c1", "c2", "c3", "nobody"):  # the served read is Feast's get_online_features answer
        assert redis.row(customer) == feast_row(redis, customer), customer
    c1 = redis.get("c1")
    assert c1.order_count == 4 and c1.product_ids == ["p2", "p1", "p9", "p3"], "real rows, not two empty answers"


def test_redis_serves_the_same_product_features_as_sqlite(stores):
    refs = [f"product_features:{f}" for f in ("price", "popularity_all", "popularity_30d", "rel_price")]
    rows = [{"product_id": p} for p in ("p1", "p2", "p3", "p9")]
    sqlite, redis = (open_store(s, must_exist=True).get_online_features(features=refs, entity_rows=rows).to_dict()
                     for s in stores)
    assert redis == sqlite
    assert redis["popularity_all"] == [2.0, 2.0, 2.0, 1.0]


def test_unreachable_redis_is_a_clear_error_and_leaves_no_registry(tmp_path):
    dead = FeatureSettings(store_dir=tmp_path / "dead", online={"type": "redis", "url": f"127.0.0.1:{free_port()}"})
    build_features(toy_dataset(tmp_path / "data"), offline_dir(dead))
    with pytest.raises(FeatureStoreUnavailable, match=r"Redis online store at 127\.0\.0\.1:\d+ is unreachable"):
        apply(dead)
    assert not (tmp_path / "dead" / "registry.db").exists()


def test_reads_fail_with_the_typed_error_once_redis_is_down(stores, redis_server, tmp_path):
    """Last in this module: stops the server. Serving falls back on exactly this exception."""
    proc, port = redis_server
    profiles = ProfileStore.from_settings(stores[1])
    assert profiles.get("c1") is not None
    proc.terminate()
    proc.wait(timeout=10)
    with pytest.raises(FeatureStoreUnavailable, match="online profile read failed"):
        profiles.get("c1")
    with pytest.raises(FeatureStoreUnavailable, match="unreachable"):
        materialize(stores[1], *WINDOW)
