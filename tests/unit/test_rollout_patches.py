"""The InferenceService patches of the canary controller, for both KServe modes, applied to the
manifests the chart renders (kserve/*.yaml) and validated against the pinned KServe CRD."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from voicecart.rollout import (
    DeploymentMode,
    ManifestError,
    Rollout,
    RolloutError,
    apply_merge_patch,
    canary_state,
    deployment_mode,
    promote_patch,
    rollback_patch,
    start_patch,
    traffic_patch,
    validate_kserve,
)
from voicecart.rollout.manifests import load_documents

REPO = Path(__file__).resolve().parents[2]
V1 = "gs://voicecart-models/registry/voicecart/versions/v0001"
V2 = "gs://voicecart-models/registry/voicecart/versions/v0002"
NOW = "2026-11-23T10:00:00Z"


def load(name: str) -> dict[str, Any]:
    return load_documents((REPO / "kserve" / name).read_text())[0]


def knative(doc: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    doc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] = "Serverless"
    return doc


class Cluster:
    """An API server stand-in for one ISVC: stores it and applies merge patches (RFC 7386)."""

    def __init__(self, isvc: dict[str, Any]) -> None:
        self.isvc = copy.deepcopy(isvc)
        self.patches: list[dict[str, Any]] = []

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        assert (namespace, name) == (self.isvc["metadata"]["namespace"], self.isvc["metadata"]["name"])
        return copy.deepcopy(self.isvc)

    def patch(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        self.patches.append(body)
        self.isvc = apply_merge_patch(self.isvc, body)
        return copy.deepcopy(self.isvc)


def rollout(doc: dict[str, Any]) -> tuple[Rollout, Cluster]:
    cluster = Cluster(doc)
    return Rollout(cluster, "voicecart", "voicecart", clock=lambda: NOW), cluster


@pytest.mark.parametrize("name", ["inferenceservice-gpu.yaml", "inferenceservice-cpu.yaml"])
def test_standard_mode_start_promote_moves_the_canary_into_the_stable_slot(name: str) -> None:
    original = load(name)
    ro, cluster = rollout(original)
    ro.start(V2, 10)
    live = cluster.isvc
    (canary,) = live["spec"]["canary"]
    assert canary["trafficPercent"] == 10 and canary["predictor"]["name"] == "v0002"
    assert not {"minReplicas", "maxReplicas", "scaleMetric", "scaleTarget"} & canary["predictor"].keys()
    assert live["spec"]["predictor"] == original["spec"]["predictor"]  # stable untouched
    state = canary_state(live)
    assert (state.mode, state.percent, state.stable_uri, state.canary_uri) == (DeploymentMode.standard, 10, V1, V2)

    ro.set_traffic(50)
    assert cluster.isvc["spec"]["canary"][0]["trafficPercent"] == 50

    ro.promote()
    live = cluster.isvc
    assert "canary" not in live["spec"] and canary_state(live) is None
    predictor = live["spec"]["predictor"]
    assert predictor["name"] == "v0002"  # KServe retargets the stable name: no pod restart
    assert predictor["minReplicas"] == original["spec"]["predictor"]["minReplicas"]
    assert predictor["maxReplicas"] == original["spec"]["predictor"]["maxReplicas"]
    assert V2 in str(predictor) and V1 not in str(predictor)
    assert live["metadata"]["annotations"]["voicecart.io/champion-storage-uri"] == V2
    if "transformer" in live["spec"]:
        assert V2 in str(live["spec"]["transformer"]) and V1 not in str(live["spec"]["transformer"])
    assert len(cluster.patches) == 3


def test_standard_mode_rollback_restores_exactly_the_stable_spec() -> None:
    original = load("inferenceservice-gpu.yaml")
    ro, cluster = rollout(original)
    ro.start(V2, 20)
    ro.rollback()
    assert cluster.isvc["spec"] == original["spec"]
    assert not any(k.startswith("voicecart.io/canary") for k in cluster.isvc["metadata"]["annotations"])


def test_knative_mode_uses_canary_traffic_percent_and_rolls_back_to_the_old_model() -> None:
    original = knative(load("inferenceservice-gpu.yaml"))
    assert deployment_mode(original) is DeploymentMode.knative
    ro, cluster = rollout(original)
    ro.start(V2, 10)
    pred = cluster.isvc["spec"]["predictor"]
    assert "canary" not in cluster.isvc["spec"]
    assert pred["canaryTrafficPercent"] == 10
    assert pred["model"]["storageUri"] == V2 + "/triton/gpu"
    ro.rollback()
    assert cluster.isvc["spec"] == original["spec"]

    ro.start(V2, 10)
    ro.promote()
    pred = cluster.isvc["spec"]["predictor"]
    assert "canaryTrafficPercent" not in pred and pred["model"]["storageUri"] == V2 + "/triton/gpu"
    assert canary_state(cluster.isvc) is None


def test_the_chart_rendered_canary_is_read_back() -> None:
    state = canary_state(load("inferenceservice-gpu-canary-standard.yaml"))
    assert (state.name, state.percent, state.canary_uri, state.stable_uri) == ("v0002", 10, V2, V1)
    state = canary_state(load("inferenceservice-gpu-canary-knative.yaml"))
    assert (state.mode, state.percent, state.canary_uri) == (DeploymentMode.knative, 10, V2)


@pytest.mark.parametrize("mode", ["Standard", "Serverless"])
@pytest.mark.parametrize("name", ["inferenceservice-gpu.yaml", "inferenceservice-cpu.yaml"])
def test_every_patch_yields_an_isvc_the_crd_accepts(mode: str, name: str) -> None:
    doc = load(name)
    doc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] = mode
    started = apply_merge_patch(doc, start_patch(doc, V2, 5, now=NOW))
    moved = apply_merge_patch(started, traffic_patch(started, 40, now=NOW))
    for result in (started, moved, apply_merge_patch(moved, promote_patch(moved)),
                   apply_merge_patch(moved, rollback_patch(moved))):
        validate_kserve(result)


@pytest.mark.parametrize("percent", [0, 100, -5, 150, True, 12.5])
def test_canary_percent_out_of_range_is_refused(percent: Any) -> None:
    doc = load("inferenceservice-gpu.yaml")
    with pytest.raises(RolloutError, match="canary percent must be an integer from 1 to 99"):
        start_patch(doc, V2, percent, now=NOW)


def test_steps_that_do_not_apply_are_refused_with_the_reason() -> None:
    doc = load("inferenceservice-gpu.yaml")
    with pytest.raises(RolloutError, match="has no canary running"):
        promote_patch(doc)
    with pytest.raises(RolloutError, match="already the champion"):
        start_patch(doc, V1 + "/", 10, now=NOW)
    running = apply_merge_patch(doc, start_patch(doc, V2, 10, now=NOW))
    with pytest.raises(RolloutError, match="already running"):
        start_patch(running, V2, 10, now=NOW)
    with pytest.raises(RolloutError, match="DNS-1123"):
        start_patch(doc, V2, 10, now=NOW, name="Canary_2")
    doc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] = "ModelMesh"
    with pytest.raises(RolloutError, match="ModelMesh"):
        deployment_mode(doc)


def test_a_patch_the_crd_would_reject_is_never_sent() -> None:
    doc = load("inferenceservice-gpu.yaml")
    doc["spec"]["predictor"]["minReplicas"] = "two"  # a live object the CRD rejects once patched
    ro, cluster = rollout(doc)
    with pytest.raises(ManifestError, match=r"spec\.canary\[0\]\.predictor|spec\.predictor\.minReplicas"):
        ro.start(V2, 10)
    assert cluster.patches == []


@pytest.mark.parametrize("target, patch, result", [
    # RFC 7386, Appendix A
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
])
def test_merge_patch_follows_rfc_7386(target: Any, patch: Any, result: Any) -> None:
    assert apply_merge_patch(target, patch) == result


@pytest.mark.parametrize("mode", ["Standard", "Serverless"])
def test_successive_rollouts_each_promote_cleanly(mode: str) -> None:
    doc = load("inferenceservice-gpu.yaml")
    doc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] = mode
    ro, cluster = rollout(doc)
    for n in (2, 3, 4):
        bundle = f"gs://voicecart-models/registry/voicecart/versions/v000{n}"
        ro.start(bundle, 10)
        assert canary_state(cluster.isvc).canary_uri == bundle
        ro.promote()
        validate_kserve(cluster.isvc)
        assert cluster.isvc["metadata"]["annotations"]["voicecart.io/champion-storage-uri"] == bundle
        assert cluster.isvc["spec"]["predictor"]["model"]["storageUri"] == bundle + "/triton/gpu"
        transformer_env = {e["name"]: e.get("value") for e in cluster.isvc["spec"]["transformer"]["containers"][0]["env"]}
        assert transformer_env["STORAGE_URI"] == bundle
    if mode == "Standard":
        assert cluster.isvc["spec"]["predictor"]["name"] == "v0004"
    # a rollback after promotions returns to the last champion, not the first
    ro.start("gs://voicecart-models/registry/voicecart/versions/v0005", 10)
    ro.rollback()
    assert cluster.isvc["spec"]["predictor"]["model"]["storageUri"].startswith(
        "gs://voicecart-models/registry/voicecart/versions/v0004/")
