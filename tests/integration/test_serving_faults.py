"""The online store fails under a running server, in each way measured in issue 17, and heals without
a restart: SQLite truncated then restored, corrupted then restored; Redis killed then restarted,
hung (SIGSTOP) then continued. Meanwhile every answer is a 200 that says why it is not personal,
and readiness answers with the degraded dependency named (503 when ``ready_when_degraded`` is off)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.serving_world import synthetic_world
from tests.integration.test_features_redis import REDIS, start_redis
from voicecart.config import FeatureSettings
from voicecart.serving.local import LocalServer, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PREDICT = "/v1/models/voicecart:predict"
HEAL_TRIES = 300  # requests 0.1 s apart while waiting for the breaker's background trial to reconnect


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return synthetic_world(tmp_path_factory.mktemp("faults"), customers=150, seed=13, customer_index=2)


def server(world: dict, tmp_path: Path, settings: FeatureSettings, **env: str) -> LocalServer:
    env = {**settings.env(), "VOICECART_SERVING__BREAKER_RETRY_S": "0.2", **env}
    return LocalServer(world["bundle"], "--deadline-ms", "2000", "--feedback-db", str(tmp_path / "fb.sqlite"),
                       env=env, log_path=tmp_path / "server.log")


def answer(url: str, customer: str) -> dict:
    r = httpx.post(url + PREDICT, json={"instances": [{"customer_id": customer, "utterance": "add milk"}]},
                   timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["predictions"][0]


def until(url: str, customer: str, done, what: str) -> dict:  # noqa: ANN001
    for _ in range(HEAL_TRIES):
        a = answer(url, customer)
        if done(a):
            return a
        time.sleep(0.1)
    raise AssertionError(f"never {what}; last answer: {a}")


def degrade(url: str, customer: str) -> dict:
    """Answers until one is degraded, then as many more as open the breaker (3, the default)."""
    until(url, customer, degraded, "degraded")
    for _ in range(3):
        a = answer(url, customer)
        assert degraded(a) and a["product"] is not None, a
    return a


def personal(a: dict) -> bool:
    return a["personalized"] and a["fallbacks"] == []


def degraded(a: dict) -> bool:
    return not a["personalized"] and bool({"profile_unavailable", "profile_timeout"} & set(a["fallbacks"]))


def test_a_broken_sqlite_store_heals_without_a_restart_and_readiness_says_so(world, tmp_path):
    from voicecart.features.store import publish

    settings = FeatureSettings(store_dir=tmp_path / "store")
    publish(world["data"], settings, world["as_of"])
    db = settings.store_dir / "online_store.db"
    good = db.read_bytes()
    with server(world, tmp_path, settings, VOICECART_SERVING__READY_WHEN_DEGRADED="false") as srv:
        assert personal(answer(srv.url, world["customer"]))
        for damage in (b"", b"this is not a database " * 400):  # truncated, then corrupted
            db.write_bytes(damage)
            degrade(srv.url, world["customer"])
            ready = httpx.get(srv.url + "/v2/health/ready", timeout=10)
            assert ready.status_code == 503 and ready.json()["degraded"] == ["profiles"], ready.text
            assert ready.json()["dependencies"]["profiles"]["state"] in ("open", "half_open")
            db.write_bytes(good)
            until(srv.url, world["customer"], personal, "healed")
            ready = httpx.get(srv.url + "/v2/health/ready", timeout=10)
            assert ready.status_code == 200 and ready.json()["degraded"] == []


@pytest.fixture()
def redis_store(world, tmp_path):
    import os

    if not os.path.exists(REDIS):
        pytest.skip("redis-server is not installed: run `make tools` (scripts/tools/redis.sh)")
    from voicecart.features.store import publish

    port = free_port()
    folder = tmp_path / "redis"
    folder.mkdir()
    proc = start_redis(port, folder)
    settings = FeatureSettings(store_dir=tmp_path / "store", online={"type": "redis", "url": f"127.0.0.1:{port}"})
    publish(world["data"], settings, world["as_of"])
    state = {"proc": proc, "port": port, "folder": folder, "settings": settings}
    yield state
    for sig in (signal.SIGCONT, signal.SIGKILL):
        if state["proc"].poll() is None:
            state["proc"].send_signal(sig)
    state["proc"].wait()


def test_a_killed_then_hung_redis_store_heals_without_a_restart(world, tmp_path, redis_store):
    import redis

    with server(world, tmp_path, redis_store["settings"]) as srv:
        assert personal(answer(srv.url, world["customer"]))
        redis.Redis(port=redis_store["port"]).save()  # so the restarted Redis holds the profiles again
        redis_store["proc"].kill()
        redis_store["proc"].wait()
        degrade(srv.url, world["customer"])
        ready = httpx.get(srv.url + "/v2/health/ready", timeout=10)
        assert ready.status_code == 200 and ready.json()["degraded"] == ["profiles"]  # ready_when_degraded: true
        redis_store["proc"] = start_redis(redis_store["port"], redis_store["folder"])
        until(srv.url, world["customer"], personal, "healed after the restart")

        redis_store["proc"].send_signal(signal.SIGSTOP)  # hung: connections open, nothing answers
        degrade(srv.url, world["customer"])
        ready = httpx.get(srv.url + "/v2/health/ready", timeout=10)
        assert ready.status_code == 200 and "profiles" in ready.json()["degraded"]
        redis_store["proc"].send_signal(signal.SIGCONT)
        until(srv.url, world["customer"], personal, "healed after SIGCONT")
