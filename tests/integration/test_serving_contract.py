"""The server against its own OpenAPI document: schemathesis (``--checks all``, seeded) on a real
server, every route; a small budget here, ``VOICECART_SCHEMATHESIS_EXAMPLES=200`` for the full run.
Also: bad requests log one line each, never a traceback, and every error has one shape."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
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
