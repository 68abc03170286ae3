"""The real KServe ModelServer (``voicecart serve``) on a free localhost port, over HTTP.

V1 resolve with httpx, the V2 ranker with tritonclient.http, hot reload under load, metrics,
bad input and a hypothesis fuzz of 1,000+ requests (feedback across kill -9: test_serving_feast.py).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from voicecart.data.store import write_dataset
from voicecart.data.synthetic import SyntheticConfig, generate
from voicecart.export.model import bundle_from_dataset
from voicecart.serving.local import LocalServer
from voicecart.serving.predictor_onnx import OnnxScorer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PREDICT = "/v1/models/voicecart:predict"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("serving")
    tables, _ = generate(SyntheticConfig(n_customers=300, seed=3))
    write_dataset(tables, root / "data", source="synthetic")
    bundle = bundle_from_dataset(root / "data", root / "bundle", version="v0001", epochs=1)
    return {"root": root, "data": root / "data", "bundle": bundle,
            "customer": Path(str(tables.customers.column("customer_id")[5]))}


@pytest.fixture(scope="module")
def server(world: dict[str, Path]):
    root = world["root"]
    # a generous deadline: on a loaded CI machine the 50 ms default would turn answers into fallbacks
    srv = LocalServer(world["bundle"], "--profiles-from", str(world["data"]), "--deadline-ms", "2000",
                      "--feedback-db", str(root / "fb-main.sqlite"), log_path=root / "server.log")
    with srv:
        yield srv


def resolve(url: str, customer: str, utterance: str, **extra: str) -> httpx.Response:
    return httpx.post(url + PREDICT, json={"instances": [{"customer_id": customer, "utterance": utterance, **extra}]},
                      timeout=10)


def test_resolve_answers_with_a_personalized_product_and_three_alternatives(server, world):
    r = resolve(server.url, str(world["customer"]), "add two milk", request_id="req-1")
    assert r.status_code == 200
    (answer,) = r.json()["predictions"]
    assert answer["request_id"] == "req-1"
    assert answer["intent"] == "add" and answer["quantity"] == 2.0
    assert "milk" in answer["product"]["title"]
    assert len(answer["alternatives"]) == 3
    assert answer["personalized"] is True and answer["fallbacks"] == []
    assert answer["model_version"] == "v0001"
    assert answer["product"]["title"] in answer["confirmation"]


def test_unknown_customer_gets_a_popularity_answer_not_an_error(server):
    r = resolve(server.url, "nobody-we-know", "add bread")
    (answer,) = r.json()["predictions"]
    assert r.status_code == 200 and answer["product"] is not None
    assert answer["personalized"] is False and "no_profile" in answer["fallbacks"]


def test_follow_up_turns_over_http(server, world):
    customer = str(world["customer"])
    first = resolve(server.url, customer, "add yogurt").json()["predictions"][0]
    conv = first["conversation_id"]
    other = resolve(server.url, customer, "no, the other one", conversation_id=conv).json()["predictions"][0]
    assert other["product"]["id"] == first["alternatives"][0]["id"]
    three = resolve(server.url, customer, "make it three", conversation_id=conv).json()["predictions"][0]
    assert three["quantity"] == 3.0 and three["product"]["id"] == other["product"]["id"]
    cancel = resolve(server.url, customer, "cancel that", conversation_id=conv).json()["predictions"][0]
    assert cancel["intent"] == "remove" and cancel["product"]["id"] == other["product"]["id"]


def test_v2_ranker_over_tritonclient_matches_in_process_onnx(server, world):
    import tritonclient.http as tc

    local = OnnxScorer(world["bundle"] / "onnx/model.onnx")
    n_features = local.session.get_inputs()[0].shape[-1]
    x = np.random.default_rng(0).normal(size=(1, 7, n_features)).astype(np.float32)
    client = tc.InferenceServerClient(server.url.removeprefix("http://"))
    assert client.is_model_ready("voicecart-ranker")
    tensor = tc.InferInput("features", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x, binary_data=True)
    result = client.infer("voicecart-ranker", [tensor], request_id="v2-1")
    expected = local.score({"features": x})
    np.testing.assert_allclose(result.as_numpy("scores"), expected, rtol=1e-5, atol=1e-5)
    assert result.get_response()["id"] == "v2-1"


@pytest.mark.parametrize("body, field", [
    (b'{"instances": [', "body"),
    (b'{"instances": [{"customer_id": "c1"}]}', "instances[0].utterance"),
    (b'{"instances": [{"customer_id": 7, "utterance": "add milk"}]}', "instances[0].customer_id"),
    (b'{"instances": [{"customer_id": "c1", "utterance": "add \\u0007milk"}]}', "instances[0].utterance"),
    (b'{"instances": [{"customer_id": "c1", "utterance": "add milk", "colour": "red"}]}', "instances[0].colour"),
    (b'{"instances": {"customer_id": "c1"}}', "instances"),
    (b'{"inputs": []}', "instances"),
    (b'[1, 2]', "body"),
    (b'{"instances": [{"customer_id": "c1", "utterance": "' + b"x" * 1200 + b'"}]}', "instances[0].utterance"),
])
def test_bad_resolve_input_is_a_400_naming_the_field(server, body, field):
    r = httpx.post(server.url + PREDICT, content=body, headers={"content-type": "application/json"}, timeout=10)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error.startswith(field) or (field == "body" and "request format" in error), error


def test_huge_body_unknown_model_and_bad_feedback_are_4xx(server):
    huge = b'{"instances": [' + b",".join([b'{"customer_id": "c", "utterance": "add milk"}'] * 5000) + b"]}"
    assert httpx.post(server.url + PREDICT, content=huge, timeout=10).status_code == 413
    assert httpx.post(server.url + "/v1/models/nope:predict", json={"instances": []}, timeout=10).status_code == 404
    r = httpx.post(server.url + "/v1/feedback", json={"event_id": "x", "kind": "bought"}, timeout=10)
    assert r.status_code == 400 and "request_id" in r.json()["error"]
    assert resolve(server.url, "c1", "add milk").status_code == 200  # and it keeps serving


def test_metrics_expose_latency_fallbacks_personalized_share_and_version(server, world):
    resolve(server.url, str(world["customer"]), "add milk")
    text = httpx.get(server.url + "/metrics", timeout=10).text
    assert "voicecart_resolve_latency_seconds_bucket" in text
    assert 'voicecart_resolves_total{personalized="true"}' in text
    assert 'voicecart_fallbacks_total{reason="no_profile"}' in text or "voicecart_fallbacks_total" in text
    assert 'voicecart_model_info{version="v0001"} 1.0' in text


def test_fuzzed_requests_never_get_a_5xx(server):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    text = st.text(max_size=40)
    scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), text)
    json_value = st.recursive(scalar, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                              st.dictionaries(text, inner, max_size=3)), max_leaves=8)
    instance = st.fixed_dictionaries(
        {}, optional={"customer_id": st.one_of(st.just("C0000005"), text, scalar),
                      "utterance": st.one_of(st.sampled_from(["add milk", "two loaves of bread", "cancel that"]),
                                             text, scalar),
                      "locale": scalar, "store_id": scalar, "request_id": scalar, "conversation_id": scalar})
    valid = st.fixed_dictionaries({"customer_id": st.just("C0000005"),
                                   "utterance": st.sampled_from(["add milk", "two loaves of bread", "cancel that"])},
                                  optional={"conversation_id": st.text(alphabet="abc", max_size=3)})
    body = st.one_of(st.fixed_dictionaries({"instances": st.lists(instance, max_size=3)}),
                     st.fixed_dictionaries({"instances": st.lists(valid, min_size=1, max_size=2)}),
                     st.fixed_dictionaries({"instances": json_value}), json_value)
    feedback = st.fixed_dictionaries({}, optional={
        "event_id": scalar, "request_id": scalar, "customer_id": scalar, "product_id": scalar,
        "kind": st.one_of(st.sampled_from(["kept", "removed", "swapped", "bought", "reasked"]), scalar),
        "substitute_id": scalar, "timestamp": st.one_of(st.just("2020-01-01T00:00:00Z"), scalar)})
    statuses: list[int] = []
    client = httpx.Client(base_url=server.url, timeout=10)

    @settings(max_examples=1100, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(path=st.sampled_from([PREDICT, "/v1/feedback"]), predict=body, event=feedback, raw=st.binary(max_size=64))
    def one(path: str, predict, event, raw: bytes) -> None:
        payload = predict if path == PREDICT else event
        r = client.post(path, json=payload) if len(statuses) % 7 else client.post(path, content=raw)
        statuses.append(r.status_code)
        assert r.status_code < 500, (path, payload, r.text)

    one()
    client.close()
    assert len(statuses) >= 1000
    assert any(s == 200 for s in statuses) and any(400 <= s < 500 for s in statuses)


def test_hot_reload_of_a_new_champion_drops_no_request(world, tmp_path):
    from voicecart.registry import Registry

    registry = Registry(tmp_path / "registry")
    v1 = registry.publish(world["bundle"])
    registry.promote(v1, "first")
    with LocalServer(tmp_path / "registry", "--no-profiles", "--feedback-db", str(tmp_path / "fb.sqlite"),
                     log_path=tmp_path / "server.log") as srv:
        statuses, versions, stop = [], set(), threading.Event()

        def hammer() -> None:
            with httpx.Client(base_url=srv.url, timeout=10) as c:
                while not stop.is_set():
                    r = c.post(PREDICT, json={"instances": [{"customer_id": "c1", "utterance": "add milk"}]})
                    statuses.append(r.status_code)
                    if r.status_code == 200:
                        versions.add(r.json()["predictions"][0]["model_version"])

        threads = [threading.Thread(target=hammer) for _ in range(3)]
        for t in threads:
            t.start()
        v2 = registry.publish(world["bundle"])
        registry.promote(v2, "challenger won")
        reload = httpx.post(srv.url + "/v1/models/voicecart:reload", timeout=60)
        for _ in range(400):  # keep hammering until the new version has answered
            if v2 in versions:
                break
            time.sleep(0.05)
        stop.set()
        for t in threads:
            t.join()
    assert reload.status_code == 200 and reload.json()["model_version"] == v2
    assert statuses and set(statuses) == {200}
    assert v2 in versions


def test_transformer_calls_a_kserve_v2_predictor_like_the_cluster_split(server, world, tmp_path):
    """Transformer (resolve) -> predictor (ranker over V2) as two ModelServers, as KServe deploys them."""
    customer = str(world["customer"])
    with LocalServer(world["bundle"], "--triton-url", server.url.removeprefix("http://"),
                     "--triton-model", "voicecart-ranker", "--profiles-from", str(world["data"]),
                     "--deadline-ms", "2000", "--feedback-db", str(tmp_path / "fb.sqlite"),
                     log_path=tmp_path / "transformer.log") as transformer:
        for text in ("add milk", "add two loaves of bread", "add cheese"):
            split = resolve(transformer.url, customer, text).json()["predictions"][0]
            direct = resolve(server.url, customer, text).json()["predictions"][0]
            assert split["fallbacks"] == [] and split["personalized"] == direct["personalized"]
            assert split["product"]["id"] == direct["product"]["id"]
            assert [a["id"] for a in split["alternatives"]] == [a["id"] for a in direct["alternatives"]]


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(c) for c in f.read().split()]


@pytest.mark.parametrize("mode", ["auto", "off"])
def test_workers_are_pinned_one_cpu_each_when_they_are_as_many_as_the_cpus(world, tmp_path, mode):
    """``serving.cpu_affinity``: auto pins worker i to the i-th CPU when the workers cover the CPUs; off
    leaves every worker on all of them. Read from the kernel (sched_getaffinity of each worker process)."""
    import os

    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    if not 2 <= len(allowed) <= 4 or not os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children"):
        pytest.skip(f"needs Linux and 2-4 usable CPUs (this process may use {len(allowed)})")
    srv = LocalServer(world["bundle"], "--profiles-from", str(world["data"]), "--deadline-ms", "2000",
                      "--workers", str(len(allowed)), "--feedback-db", str(tmp_path / "fb.sqlite"),
                      env={"VOICECART_SERVING__CPU_AFFINITY": mode}, log_path=tmp_path / "server.log")
    with srv:
        workers = _children(srv.proc.pid)
        # the spawn machinery's resource tracker is a child too; the workers are the ones that load a model
        workers = [w for w in workers if "spawn_main" in open(f"/proc/{w}/cmdline").read()]
        assert len(workers) == len(allowed), workers
        cpus = [os.sched_getaffinity(w) for w in workers]
        r = resolve(srv.url, str(world["customer"]), "add milk")
        assert r.status_code == 200, r.text
    if mode == "auto":
        assert sorted(next(iter(c)) for c in cpus) == sorted(allowed) and all(len(c) == 1 for c in cpus), cpus
        assert (tmp_path / "server.log").read_text().count("pinned to CPU") == len(allowed)
    else:
        assert all(c == allowed for c in cpus), cpus
        assert "pinned to CPU" not in (tmp_path / "server.log").read_text()
