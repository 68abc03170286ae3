"""The bundle's TorchServe .mar, served by a real TorchServe on localhost, ranks like torch."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch

from voicecart.export import build_bundle, rankings, torch_scores
from voicecart.registry import Registry, feature_schema_hash
from voicecart.schemas import ModelMetadata

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BIN = Path(sys.executable).parent
TORCHSERVE = BIN / "torchserve"


class Scorer(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.mlp = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        scores = self.mlp(features).squeeze(-1)
        return torch.where(mask, scores, torch.full_like(scores, -1e9))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _requests(n: int, seed: int) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        c = int(rng.integers(2, 40))
        mask = rng.random((1, c)) > 0.1
        mask[0, 0] = True
        out.append({"features": rng.random((1, c, 5), dtype=np.float32), "mask": mask})
    return out


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    if not TORCHSERVE.exists() or shutil.which("java") is None:
        pytest.skip("TorchServe or Java missing: run `bash scripts/tools/torchserve.sh`")
    torch.manual_seed(7)
    model = Scorer()
    tmp = tmp_path_factory.mktemp("ts")
    meta = ModelMetadata(name="voicecart", version="draft", created_at=datetime.now(timezone.utc),
                         feature_schema_hash=feature_schema_hash(list("abcde")))
    built = build_bundle(model, _requests(1, 0)[0], tmp / "bundle", meta)
    reg = Registry(tmp / "registry")
    reg.promote(reg.publish(built), "test")
    bundle = reg.load()
    # The bundle's own config.properties (KServe paths) with localhost ports and this model store.
    inference, management, metrics, grpc1, grpc2 = (_free_port() for _ in range(5))
    text = (bundle.torchserve_dir / "config" / "config.properties").read_text()
    overrides = {"inference_address": f"http://127.0.0.1:{inference}",
                 "management_address": f"http://127.0.0.1:{management}",
                 "metrics_address": f"http://127.0.0.1:{metrics}",
                 "grpc_inference_port": str(grpc1), "grpc_management_port": str(grpc2),
                 "model_store": str(bundle.torchserve_dir / "model-store")}
    for key, value in overrides.items():
        text = re.sub(rf"^{key}=.*$", f"{key}={value}", text, flags=re.M)
    cfg = tmp / "config.properties"
    cfg.write_text(text)
    env = {**os.environ, "LOG_LOCATION": str(tmp / "logs"), "METRICS_LOCATION": str(tmp / "logs"),
           "JAVA_TOOL_OPTIONS": "-Xmx512m", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([str(TORCHSERVE), "--start", "--foreground", "--ts-config", str(cfg),
                             "--model-store", str(bundle.torchserve_dir / "model-store"),
                             "--disable-token-auth", "--ncs"],
                            cwd=tmp, env=env, stdout=(tmp / "ts.out").open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{inference}/predictions/voicecart"
    deadline = time.monotonic() + 120
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"torchserve exited: {(tmp / 'ts.out').read_text()[-2000:]}")
            try:
                status = httpx.get(f"http://127.0.0.1:{management}/models/voicecart", timeout=2).json()
                if status and status[0]["workers"] and status[0]["workers"][0]["status"] == "READY":
                    break
            except (httpx.HTTPError, ValueError, KeyError, IndexError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"torchserve did not load the .mar: {(tmp / 'ts.out').read_text()[-2000:]}")
            time.sleep(1)
        yield model, url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_torchserve_ranks_held_out_requests_like_torch(served) -> None:
    model, url = served
    with httpx.Client(timeout=30) as client:
        for request in _requests(25, seed=11):
            body = {"inputs": {k: v.tolist() for k, v in request.items()}}
            answer = client.post(url, json=body)
            assert answer.status_code == 200, answer.text
            got = answer.json()
            reference = torch_scores(model, request)
            assert got["ranking"] == rankings(reference).tolist()
            np.testing.assert_allclose(np.asarray(got["scores"], dtype=np.float32), reference, atol=1e-5)


def test_torchserve_answers_a_body_without_an_input_with_400(served) -> None:
    _, url = served
    answer = httpx.post(url, json={"inputs": {"features": [[[0.1] * 5]]}}, timeout=30)
    assert answer.status_code == 400
    assert "mask" in answer.text
