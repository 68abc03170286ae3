"""A real Triton (scripts/tools/triton.sh) serving the exported ranker on a free localhost port:
the engine's answers through Triton equal its in-process answers, and Triton down falls back."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import numpy as np
import pytest

from voicecart.schemas.times import from_epoch
from voicecart.config import ServingSettings
from voicecart.data.store import write_dataset
from voicecart.data.synthetic import SyntheticConfig, generate
from voicecart.registry import load_bundle
from voicecart.schemas import ResolveRequest
from voicecart.export.model import bundle_from_dataset
from voicecart.serving.bundle import load_serving_model
from voicecart.serving.engine import ResolutionEngine
from voicecart.serving.local import LocalServer, free_port, wait_http
from voicecart.serving.predictor_onnx import OnnxScorer
from voicecart.serving.predictor_triton import TritonScorer
from voicecart.serving.triton_repo import write_python_backend_repository

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
TRITON = REPO / ".venv-triton" / "server" / "bin" / "tritonserver"
UTTERANCES = ["add milk", "add two loaves of bread", "add yogurt", "get me some coffee", "add cheese", "add 3 apples"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    if not TRITON.exists():
        pytest.skip(f"Triton not installed at {TRITON}: run `bash scripts/tools/triton.sh` (make tools)")
    root = tmp_path_factory.mktemp("triton")
    tables, _ = generate(SyntheticConfig(n_customers=200, seed=5))
    write_dataset(tables, root / "data", source="synthetic")
    bundle_dir = bundle_from_dataset(root / "data", root / "bundle", epochs=1)
    bundle = load_bundle(bundle_dir)
    repo = write_python_backend_repository(bundle.onnx, bundle.signature, root / "triton-repo", bundle.metadata.name)
    customers = [str(c) for c in tables.customers.column("customer_id").to_pylist()[:8]]
    return {"root": root, "data": root / "data", "bundle": bundle_dir, "repo": repo, "customers": customers}


@pytest.fixture(scope="module")
def triton(world: dict):
    http = free_port()
    cmd = [str(TRITON), f"--model-repository={world['repo']}", f"--http-port={http}", f"--grpc-port={free_port()}",
           f"--metrics-port={free_port()}", "--allow-grpc=false", "--allow-metrics=false", "--exit-timeout-secs=5"]
    log = open(world["root"] / "triton.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://127.0.0.1:{http}/v2/health/ready", 120, proc)
        yield {"url": f"127.0.0.1:{http}", "proc": proc}
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        log.close()


def test_triton_scores_equal_in_process_onnx_runtime(world, triton):
    n_features = load_bundle(world["bundle"]).signature.inputs[0].shape[-1]
    x = np.random.default_rng(1).normal(size=(1, 12, n_features)).astype(np.float32)
    remote = TritonScorer(triton["url"], "voicecart", timeout_s=5).score({"features": x})
    local = OnnxScorer(load_bundle(world["bundle"]).onnx).score({"features": x})
    np.testing.assert_allclose(remote, local, rtol=1e-5, atol=1e-5)


def _answers(url: str, customers: list[str]) -> list[dict]:
    out = []
    with httpx.Client(base_url=url, timeout=10) as c:
        for customer in customers:
            for text in UTTERANCES:
                r = c.post("/v1/models/voicecart:predict", json={"instances": [{"customer_id": customer, "utterance": text}]})
                assert r.status_code == 200
                out.append(r.json()["predictions"][0])
    return out


def test_server_through_triton_answers_like_the_in_process_engine_and_falls_back_when_triton_dies(world, triton, tmp_path):

    from voicecart.serving.profiles import profiles_from_dataset

    model = load_serving_model(world["bundle"])
    profiles = profiles_from_dataset(world["data"], from_epoch(model.now))
    engine = ResolutionEngine(model, profiles, ServingSettings(deadline_ms=10_000))
    expected = [engine.resolve(ResolveRequest(customer_id=c, utterance=u)) for c in world["customers"] for u in UTTERANCES]

    with LocalServer(world["bundle"], "--triton-url", triton["url"], "--profiles-from", str(world["data"]),
                     "--feedback-db", str(tmp_path / "fb.sqlite"), "--deadline-ms", "2000",
                     log_path=tmp_path / "server.log") as srv:
        got = _answers(srv.url, world["customers"])
        assert len(got) == len(expected)
        for want, answer in zip(expected, got):
            assert answer["fallbacks"] == want.fallbacks  # no predictor fallback: Triton answered
            assert (answer["product"] or {}).get("id") == (want.product.id if want.product else None)
            assert [a["id"] for a in answer["alternatives"]] == [a.id for a in want.alternatives]
        assert any(a["personalized"] for a in got)

        triton["proc"].kill()  # Triton down: the in-process ranker answers, the same products
        triton["proc"].wait(timeout=10)
        degraded = _answers(srv.url, world["customers"][:2])
        for want, answer in zip(expected, degraded):
            assert (answer["product"] or {}).get("id") == (want.product.id if want.product else None)
            if want.personalized:
                assert "predictor_unavailable" in answer["fallbacks"]
