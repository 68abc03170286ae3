"""The server against its own OpenAPI document: schemathesis (``--checks all``, seeded) on a real
server, every route; a small budget here, ``VOICECART_SCHEMATHESIS_EXAMPLES=200`` for the full run.
Also: bad requests log one line each, never a traceback, and every error has one shape."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import orjson
import pytest

from tests.integration.serving_world import synthetic_world
from voicecart.serving.local import LocalServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("VOICECART_SCHEMATHESIS_EXAMPLES", "15"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    world = synthetic_world(tmp_path_factory.mktemp("contract"), customers=150, seed=21)
    root = world["root"]
    srv = LocalServer(world["bundle"], "--profiles-from", str(root / "data"), "--deadline-ms", "2000",
                      "--feedback-db", str(root / "fb.sqlite"), log_path=root / "server.log")
    with srv:
        srv.log = root / "server.log"  # type: ignore[attr-defined]
        yield srv


@pytest.fixture(scope="module")
def kserve_route(server):
    """The same world served with ``serving.direct_predict`` off: every predict through KServe's FastAPI route."""
    root = Path(server.cmd[server.cmd.index("--profiles-from") + 1]).parent
    srv = LocalServer(root / "bundle", "--profiles-from", str(root / "data"), "--deadline-ms", "2000",
                      "--feedback-db", str(root / "fb-kserve.sqlite"), log_path=root / "server-kserve.log",
                      env={"VOICECART_SERVING__DIRECT_PREDICT": "false"})
    with srv:
        yield srv


def _instance(i: int = 0, **extra: object) -> dict:
    return {"customer_id": "C0000003", "utterance": "add two milk", "request_id": f"r{i}", **extra}


CLOUDEVENT = {"specversion": "1.0", "id": "e1", "source": "test", "type": "voicecart.resolve",
              "time": "2026-12-01T00:00:00Z", "data": {"instances": [_instance(7)]}}

DIRECT_CASES = [
    b'{"instances": [{"customer_id": "C0000003", "utterance": "add milk", "request_id": "a"}]}',
    {"instances": [_instance(1), _instance(2, utterance="I need bread for me")]},
    {"instances": [_instance(3, utterance="add one 500201")], "parameters": None},
    {"instances": [_instance(4, customer_id="nobody-here", utterance="add 3 eggs")], "parameters": {}},
    {"instances": [_instance(5, utterance="hello there")]},
    b"{",
    b"",
    b"[1, 2]",
    b'"instances"',
    {"instances": []},
    {"instances": [_instance(i) for i in range(17)]},
    {"instances": [_instance(6)], "extra": 1},
    {"instances": [{"customer_id": "C0000003"}]},
    {"instances": [_instance(8, utterance="x" * 400)]},
    {"instances": [_instance(9)], "parameters": [1]},
    CLOUDEVENT,
    ("text/plain", b'{"instances": [{"customer_id": "C0000003", "utterance": "add milk", "request_id": "t"}]}'),
    ("application/cloudevents+json", orjson.dumps(CLOUDEVENT)),
    ("application/json", orjson.dumps({"instances": [_instance(10)]}),
     {"ce-specversion": "1.0", "ce-id": "e2", "ce-source": "test", "ce-type": "voicecart.resolve"}),
]


def _send(url: str, case: object) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if isinstance(case, tuple):
        headers["content-type"], body, *extra = case
        headers.update(*extra)
    elif isinstance(case, bytes):
        body = case
    else:
        body = orjson.dumps(case)
    return httpx.post(url + "/v1/models/voicecart:predict", content=body, headers=headers, timeout=10)


def _essence(r: httpx.Response) -> tuple:
    """Status, content type and body, less what differs on every call (timings, new conversation ids)."""
    data = r.json()
    if isinstance(data, dict) and isinstance(data.get("data"), dict):  # a CloudEvent: its id and time are new
        data = {k: v for k, v in data.items() if k not in ("id", "time")}
    predictions = (data.get("data") or data if isinstance(data, dict) else {}).get("predictions")
    for answer in predictions if isinstance(predictions, list) else []:
        answer.pop("latency_ms", None)
        answer.pop("conversation_id", None)
    return r.status_code, r.headers.get("content-type"), data


def _differences(a: object, b: object, where: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b), key=str) for d in _differences(a.get(k), b.get(k), f"{where}.{k}")]
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _differences(x, y, f"{where}[{i}]")]
    return [] if a == b else [f"{where}: direct {a!r} != KServe route {b!r}"]


@pytest.mark.parametrize("case", DIRECT_CASES, ids=[f"body{i}" for i in range(len(DIRECT_CASES))])
def test_the_direct_predict_answers_as_kserves_route_does(server, kserve_route, case):
    """``serving.direct_predict`` (the front door calls the model's KServe pipeline itself) changes no answer,
    no status and no error message against KServe's own V1 route, for good bodies, bad ones and CloudEvents."""
    direct, routed = _send(server.url, case), _send(kserve_route.url, case)
    a, b = _essence(direct), _essence(routed)
    assert a == b, _differences(a, b)
    assert direct.status_code < 500, direct.text


def test_schemathesis_finds_no_failure_on_any_route(server):
    doc = httpx.get(server.url + "/openapi.json", timeout=10).json()
    assert len(doc["paths"]) >= 14
    exe = Path(sys.executable).parent / "schemathesis"
    env = {**os.environ, "PYTHONPATH": str(REPO), "SCHEMATHESIS_HOOKS": "tests.integration.schemathesis_hooks"}
    run = subprocess.run([str(exe), "run", server.url + "/openapi.json", "--checks", "all", "-n", str(EXAMPLES),
                          "--seed", "17", "--no-color"], capture_output=True, text=True, env=env, timeout=1800)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "No issues found" in run.stdout, run.stdout[-3000:]
    log = server.log.read_text()
    assert "Traceback" not in log and '" 500' not in log


@pytest.mark.parametrize("method, path, body, status", [
    ("POST", "/v1/models/voicecart:predict", b"{", 400),
    ("GET", "/v1/models/voicecart:predict", None, 405),
    ("OPTIONS", "/v1/models/voicecart:predict", None, 405),
    ("DELETE", "/v1/feedback", None, 405),
    ("POST", "/v2/models/voicecart-ranker/infer", b'{"inputs": []}', 400),
    ("POST", "/v2/repository/models/voicecart/unload", None, 404),
    ("POST", "/v1/models/voicecart:explain", b"{}", 405),  # not served: only GET of a model named so
    ("GET", "/no/such/route", None, 404),
    ("POST", "/v1/models/other:predict", b'{"instances": [{"customer_id": "c", "utterance": "add milk"}]}', 404),
])
def test_every_error_has_one_shape_and_logs_one_line(server, method, path, body, status):
    before = server.log.read_text().count("\n")
    r = httpx.request(method, server.url + path, content=body, timeout=10)
    assert r.status_code == status, r.text
    assert set(r.json()) == {"error"} and r.json()["error"].split(":")[0], r.text
    if status == 405:
        assert r.headers["allow"]
    new = server.log.read_text().splitlines()[before:]
    mine = [line for line in new if path in line or "not allowed" in line]
    assert len(mine) == 1 and str(status) in mine[0], new
    assert not any("Traceback" in line for line in new)
