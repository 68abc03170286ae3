"""The standalone manifests (kserve/, manifests/) validate offline, and kserve/ has not drifted
from the Helm chart it is rendered from."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from voicecart.rollout.manifests import ManifestError, load_documents, tool, validate_document

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
KSERVE = sorted((REPO / "kserve").glob("*.yaml"))
MANIFESTS = sorted(p for p in (REPO / "manifests").glob("*.yaml") if p.name != "kustomization.yaml")
HELM, KUBECTL = tool("helm"), tool("kubectl")
OFFLINE = {**os.environ, "KUBECONFIG": os.devnull}


@pytest.mark.parametrize("path", KSERVE + MANIFESTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_standalone_manifest_validates(path: Path) -> None:
    docs = load_documents(path.read_text())
    assert docs, f"{path} holds no documents"
    for doc in docs:
        validate_document(doc, source=str(path.relative_to(REPO)))


def test_kserve_folder_has_the_isvc_variants_and_the_feedback_intake() -> None:
    kinds = {p.name: [d["kind"] for d in load_documents(p.read_text())] for p in KSERVE}
    assert kinds["inferenceservice-gpu.yaml"] == ["InferenceService"]
    assert kinds["inferenceservice-cpu.yaml"] == ["InferenceService"]
    assert sorted(kinds["feedback.yaml"]) == ["Service", "StatefulSet"]
    canary = load_documents((REPO / "kserve" / "inferenceservice-gpu-canary-standard.yaml").read_text())[0]
    assert canary["spec"]["canary"][0]["predictor"]["name"] == "v0002"


def test_validation_names_the_field_that_is_wrong() -> None:
    doc = load_documents((REPO / "kserve" / "inferenceservice-gpu.yaml").read_text())[0]
    doc["spec"]["canary"] = [{"trafficPercent": 130, "predictor": {"name": "v2"}}]
    with pytest.raises(ManifestError, match=r"spec\.canary\[0\]\.trafficPercent: 130 is greater than the maximum of 100"):
        validate_document(doc)
    doc = next(d for d in load_documents((REPO / "kserve" / "feedback.yaml").read_text()) if d["kind"] == "StatefulSet")
    doc["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFS"] = True
    with pytest.raises(ManifestError, match="readOnlyRootFS"):
        validate_document(doc)


def test_example_secrets_carry_keys_but_no_values() -> None:
    secrets = load_documents((REPO / "manifests" / "secrets.example.yaml").read_text())
    assert {s["metadata"]["name"] for s in secrets} >= {"voicecart-redis", "voicecart-bigquery"}
    for s in secrets:
        assert "data" not in s
        for key, value in s["stringData"].items():
            assert value in ("", '{"auths": {}}'), f"{s['metadata']['name']}.{key} has a value"


@pytest.mark.skipif(HELM is None, reason="helm not installed in tools/bin (run: bash scripts/tools/k8s.sh)")
def test_kserve_manifests_are_what_the_chart_renders(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    (copy / "kserve").mkdir(parents=True)
    (copy / "helm").symlink_to(REPO / "helm")
    (copy / "tools").symlink_to(REPO / "tools")
    script = copy / "kserve" / "render.sh"
    script.write_text((REPO / "kserve" / "render.sh").read_text())
    proc = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=OFFLINE)
    assert proc.returncode == 0, proc.stderr
    for path in KSERVE:
        rendered = (copy / "kserve" / path.name).read_text()
        assert rendered == path.read_text(), f"kserve/{path.name} drifted from the chart: run bash kserve/render.sh"


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed in tools/bin (run: bash scripts/tools/k8s.sh)")
def test_kubectl_kustomize_renders_the_manifests_offline() -> None:
    proc = subprocess.run([str(KUBECTL), "kustomize", str(REPO / "manifests")], capture_output=True, text=True, env=OFFLINE)
    assert proc.returncode == 0, proc.stderr
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    assert sorted(d["kind"] for d in docs) == ["CronJob", "Job", "Namespace", "ServiceAccount"]
    for doc in docs:
        validate_document(doc, source="kubectl kustomize manifests/")


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed in tools/bin (run: bash scripts/tools/k8s.sh)")
def test_kubectl_decodes_the_standalone_manifests_offline() -> None:
    files = [str(p) for p in KSERVE + MANIFESTS]
    args = [str(KUBECTL), "label", "--local", "voicecart.io/checked=true", "-o", "name"]
    for f in files:
        args += ["-f", f]
    proc = subprocess.run(args, capture_output=True, text=True, env=OFFLINE)
    assert proc.returncode == 0, proc.stderr
    assert "inferenceservice.serving.kserve.io/voicecart" in proc.stdout
