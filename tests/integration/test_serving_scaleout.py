"""Two `voicecart serve` replicas behind a real round-robin proxy (Debian's haproxy), conversation
turns in a real Redis: a three-turn conversation whose turns land on different replicas answers as
on one replica; with Redis gone, turns degrade to single-turn answers that say so, never a 5xx."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.integration.serving_world import synthetic_world
from tests.integration.test_features_redis import REDIS, start_redis
from voicecart.serving.local import LocalServer, free_port, wait_http

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PREDICT = "/v1/models/voicecart:predict"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
TURNS = ("add yogurt", "no, the other one", "make it three")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    import os

    for tool in (REDIS, HAPROXY):
        if not os.path.exists(tool):
            pytest.skip(f"{tool} is not installed: run `make tools` (scripts/tools/redis.sh, haproxy.sh)")
    return synthetic_world(tmp_path_factory.mktemp("scaleout"), customers=200, seed=5, customer_index=4)


@pytest.fixture()
def redis(tmp_path):
    port = free_port()
    proc = start_redis(port, tmp_path)
    yield proc, port
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def replica(world: dict, tmp_path: Path, name: str, redis_port: int, failures: int = 3, workers: int = 1) -> LocalServer:
    env = {"VOICECART_SERVING__CONVERSATIONS__TYPE": "redis",
           "VOICECART_SERVING__CONVERSATIONS__URL": f"127.0.0.1:{redis_port}",
           "VOICECART_SERVING__BREAKER_FAILURES": str(failures), "VOICECART_SERVING__BREAKER_RETRY_S": "60"}
    return LocalServer(world["bundle"], "--profiles-from", str(world["data"]), "--deadline-ms", "2000",
                       "--workers", str(workers),
                       "--feedback-db", str(tmp_path / f"fb-{name}.sqlite"), env=env,
                       log_path=tmp_path / f"{name}.log")


def start_haproxy(tmp_path: Path, backends: list[int]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    servers = "\n".join(f"  server r{i} 127.0.0.1:{p}" for i, p in enumerate(backends))
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(f"""global
  maxconn 256
defaults
  mode http
  timeout connect 2s
  timeout client 10s
  timeout server 10s
frontend front
  bind 127.0.0.1:{port}
  default_backend replicas
backend replicas
  balance roundrobin
{servers}
""")
    proc = subprocess.Popen([HAPROXY, "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/v2/health/live", 30, proc)
    return proc, url


def turn(url: str, customer: str, text: str, conversation: str, request_id: str) -> dict:
    # a new connection per turn (as separate voice turns arrive), so round robin spreads them
    with httpx.Client(timeout=10) as client:
        r = client.post(url + PREDICT, json={"instances": [{"customer_id": customer, "utterance": text,
                                                             "conversation_id": conversation,
                                                             "request_id": request_id}]})
    assert r.status_code == 200, r.text
    return r.json()["predictions"][0]


def answered_by(logs: dict[str, Path], request_id: str) -> str:
    for name, path in logs.items():
        for line in path.read_text().splitlines():
            if line.startswith("{") and json.loads(line).get("request_id") == request_id:
                return name
    raise AssertionError(f"no replica logged {request_id}")


def essence(answer: dict) -> tuple:
    return (answer["intent"], answer["quantity"], answer["product"]["id"] if answer["product"] else None,
            [a["id"] for a in answer["alternatives"]], answer["fallbacks"])


def test_a_conversation_spread_over_two_replicas_answers_as_on_one(world, tmp_path, redis):
    """Replica b runs two worker processes (serving.workers), so the turns cross processes there too."""
    _, redis_port = redis
    a, b = replica(world, tmp_path, "a", redis_port), replica(world, tmp_path, "b", redis_port, workers=2)
    with a, b:
        proxy, url = start_haproxy(tmp_path, [a.port, b.port])
        try:
            spread = [turn(url, world["customer"], text, "conv-spread", f"spread-{i}") for i, text in enumerate(TURNS)]
            single = [turn(a.url, world["customer"], text, "conv-single", f"single-{i}")
                      for i, text in enumerate(TURNS)]
        finally:
            proxy.terminate()
            proxy.wait(timeout=10)
    logs = {"a": tmp_path / "a.log", "b": tmp_path / "b.log"}
    replicas = [answered_by(logs, f"spread-{i}") for i in range(len(TURNS))]
    assert len(set(replicas)) == 2, replicas  # the turns really landed on both replicas
    assert [essence(x) for x in spread] == [essence(x) for x in single]
    assert spread[1]["product"]["id"] == spread[0]["alternatives"][0]["id"]  # "the other one" was understood
    assert spread[2]["quantity"] == 3.0 and spread[2]["fallbacks"] == []


def test_with_redis_gone_turns_degrade_to_single_turn_answers_that_say_so(world, tmp_path, redis):
    proc, redis_port = redis
    a, b = replica(world, tmp_path, "a", redis_port, 1), replica(world, tmp_path, "b", redis_port, 1)
    with a, b:
        proxy, url = start_haproxy(tmp_path, [a.port, b.port])
        try:
            first = turn(url, world["customer"], "add yogurt", "conv-down", "down-0")
            proc.kill()
            proc.wait()
            answers = [turn(url, world["customer"], text, "conv-down", f"down-{i}")
                       for i, text in enumerate(("no, the other one", "add milk", "add bread", "add milk"), 1)]
            ready = httpx.get(a.url + "/v2/health/ready", timeout=10)
        finally:
            proxy.terminate()
            proxy.wait(timeout=10)
    assert first["fallbacks"] == []
    for answer in answers:
        assert "conversation_unavailable" in answer["fallbacks"], answer
    assert answers[0]["product"] is None  # "the other one" without its conversation is not a product
    assert answers[1]["product"] is not None and "milk" in answers[1]["product"]["title"]
    assert ready.status_code == 200 and "conversations" in ready.json()["degraded"]
