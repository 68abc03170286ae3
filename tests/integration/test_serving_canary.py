"""The canary on one machine: a real server on a registry answers with the champion and the canary side by side,
split by customer; every answer and feedback event carries its arm and version; `voicecart rollout local`
decides with the sequential test and ends the canary in the registry; a canary that fails to load never answers."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from voicecart.data.synthetic import SyntheticConfig, generate
from voicecart.data.store import write_dataset
from voicecart.export.model import bundle_from_dataset
from voicecart.registry import Registry
from voicecart.serving.engine import arm_of
from voicecart.serving.local import LocalServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PREDICT = "/v1/models/voicecart:predict"
CANARY = "/v1/models/voicecart:canary"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("canary")
    tables, _ = generate(SyntheticConfig(n_customers=200, seed=5))
    write_dataset(tables, root / "data", source="synthetic")
    first = bundle_from_dataset(root / "data", root / "b1", epochs=1, seed=0)
    second = bundle_from_dataset(root / "data", root / "b2", epochs=1, seed=1)
    return {"root": root, "data": root / "data", "bundles": (first, second),
            "customers": [str(c) for c in tables.customers.column("customer_id").to_pylist()]}


def _registry(world: dict, where: Path, percent: int) -> Registry:
    reg = Registry(where)
    first, second = world["bundles"]
    reg.promote(reg.publish(first), "champion for the test")
    pointer = reg.start_canary(reg.publish(second), percent, "the gate passed it")
    assert pointer.state == "requested" and reg.champion() == "v0001"
    return reg


def _ask(url: str, customer: str, request_id: str) -> dict:
    r = httpx.post(url + PREDICT, json={"instances": [{"customer_id": customer, "utterance": "add milk",
                                                       "request_id": request_id}]}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["predictions"][0]


def test_both_arms_answer_split_by_customer_and_rollout_local_decides(world: dict, tmp_path: Path) -> None:
    reg = _registry(world, tmp_path / "registry", percent=50)
    with LocalServer(tmp_path / "registry", "--profiles-from", str(world["data"]), "--deadline-ms", "5000",
                     "--feedback-db", str(tmp_path / "fb.sqlite"), log_path=tmp_path / "server.log") as server:
        answers = {}
        for i, customer in enumerate(world["customers"][:60]):
            answers[customer] = _ask(server.url, customer, f"r{i}")
        for customer, answer in answers.items():  # the split is the customer's, the version the arm's
            assert answer["arm"] == arm_of(customer, 50)
            assert answer["model_version"] == {"champion": "v0001", "canary": "v0002"}[answer["arm"]]
        arms = {a["arm"] for a in answers.values()}
        assert arms == {"champion", "canary"}
        again = _ask(server.url, world["customers"][0], "r-again")  # sticky: the same customer, the same arm
        assert again["arm"] == answers[world["customers"][0]]["arm"]

        for i, (customer, answer) in enumerate(answers.items()):
            if answer["product"]:
                event = {"event_id": f"e{i}", "request_id": f"r{i}", "customer_id": customer,
                         "product_id": answer["product"]["id"], "kind": "kept",
                         "timestamp": "2026-12-01T12:00:00Z"}
                r = httpx.post(server.url + "/v1/feedback", json=event, timeout=10)
                assert r.status_code in (200, 202), r.text
        state = httpx.get(server.url + CANARY, timeout=10).json()
        assert state["percent"] == 50 and state["champion"]["version"] == "v0001"
        assert state["canary"]["version"] == "v0002"
        assert state["champion"]["requests"] + state["canary"]["requests"] == len(answers) + 1
        by_arm = {arm: sum(a["arm"] == arm for a in answers.values()) for arm in ("champion", "canary")}
        assert state["canary"]["requests"] - (again["arm"] == "canary") == by_arm["canary"]
        assert state["canary"]["feedback"] + state["champion"]["feedback"] == sum(bool(a["product"])
                                                                                  for a in answers.values())

        # a look needing more traffic than there was keeps the canary running ...
        cmd = [str(Path(sys.executable).parent / "voicecart"), "rollout", "local", "--registry",
               str(tmp_path / "registry"), "--url", server.url]
        wait = subprocess.run([*cmd, "--min-requests", "100000"], capture_output=True, text=True, timeout=120)
        assert wait.returncode == 0, wait.stderr
        assert "continue" in wait.stdout + wait.stderr and reg.canary() is not None
        # ... past its time limit without a verdict (60 requests cannot prove a 0.5-point margin) the canary is
        # rolled back: the registry's canary ends, the champion stays, and the server reloads
        done = subprocess.run([*cmd, "--min-requests", "10", "--max-duration-h", "0.0001"], capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr + done.stdout
        assert reg.canary() is None, done.stdout + done.stderr
        history = reg.pointer().history
        assert history[-1].version == "v0002" and history[-1].action == "canary_rollback"
        assert reg.champion() == "v0001" and "rollback" in done.stdout + done.stderr
        state = httpx.get(server.url + CANARY, timeout=10).json()
        assert state["canary"] is None and state["champion"]["version"] == reg.champion()


def test_a_canary_that_fails_to_load_never_takes_traffic(world: dict, tmp_path: Path) -> None:
    _registry(world, tmp_path / "registry", percent=90)
    onnx = tmp_path / "registry" / "voicecart" / "versions" / "v0002" / "onnx" / "model.onnx"
    onnx.write_bytes(b"not an onnx graph")
    with LocalServer(tmp_path / "registry", "--profiles-from", str(world["data"]), "--deadline-ms", "5000",
                     log_path=tmp_path / "server.log") as server:
        for i, customer in enumerate(world["customers"][:30]):
            answer = _ask(server.url, customer, f"r{i}")
            assert answer["arm"] == "champion" and answer["model_version"] == "v0001"
        assert httpx.get(server.url + CANARY, timeout=10).json()["canary"] is None
    assert "canary v0002 refused" in (tmp_path / "server.log").read_text()
