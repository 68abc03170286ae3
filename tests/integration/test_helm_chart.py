"""The voicecart Helm chart, proven with real helm v4: lint --strict, render, and every rendered
document validated (KServe kinds against the pinned CRDs, core kinds against Kubernetes 1.35)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from voicecart.rollout.manifests import (
    KUBERNETES_VERSION,
    ManifestError,
    helm_template,
    tool,
    validate_document,
)

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "voicecart"
PRODUCTION = CHART / "values-production.yaml"
HELM = tool("helm")
KUBECTL = tool("kubectl")
needs_helm = pytest.mark.skipif(HELM is None, reason="helm not installed in tools/bin (run: bash scripts/tools/k8s.sh)")
OFFLINE = {**os.environ, "KUBECONFIG": os.devnull}

CASES = {
    "default": dict(),
    "production": dict(values=[PRODUCTION]),
    "cpu": dict(set_values=["resolution.variant=cpu", "resolution.gpu.enabled=false"]),
    "standard-canary": dict(set_values=["resolution.canary.enabled=true",
                                        "resolution.canary.storageUri=gs://m/registry/voicecart/versions/v0002"]),
    "knative-canary": dict(set_values=["deploymentMode=Knative", "resolution.canary.enabled=true",
                                       "resolution.canary.storageUri=gs://m/registry/voicecart/versions/v0002"]),
    "cpu-canary": dict(set_values=["resolution.variant=cpu", "resolution.gpu.enabled=false",
                                   "resolution.canary.enabled=true", "resolution.canary.trafficPercent=25",
                                   "resolution.canary.storageUri=gs://m/registry/voicecart/versions/v0002"]),
    "gateway-dialogflow": dict(set_values=["gateway.dialogflow.enabled=true", "feedback.enabled=false"]),
}


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(HELM), *args], capture_output=True, text=True, env=OFFLINE)


def render(case: str) -> list[dict]:
    return helm_template(CHART, namespace="shop", **CASES[case])


def by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def isvc(docs: list[dict]) -> dict:
    (only,) = by_kind(docs, "InferenceService")
    return only


def pod_specs(docs: list[dict]) -> list[tuple[str, dict]]:
    """Every pod spec the chart renders, including the InferenceService components."""
    out = []
    for d in docs:
        name = f"{d['kind']}/{d['metadata']['name']}"
        if d["kind"] in ("StatefulSet", "Deployment"):
            out.append((name, d["spec"]["template"]["spec"]))
        elif d["kind"] == "CronJob":
            out.append((name, d["spec"]["jobTemplate"]["spec"]["template"]["spec"]))
        elif d["kind"] == "InferenceService":
            spec = d["spec"]
            out.append((name + ".predictor", spec["predictor"]))
            if "transformer" in spec:
                out.append((name + ".transformer", spec["transformer"]))
            for c in spec.get("canary") or []:
                out.append((name + ".canary", c["predictor"]))
    return out


def containers(pod: dict) -> list[dict]:
    return (list(pod.get("initContainers") or []) + list(pod.get("containers") or [])
            + ([pod["model"]] if "model" in pod else []))


@needs_helm
@pytest.mark.parametrize("values", [None, PRODUCTION], ids=["default", "production"])
def test_helm_lint_strict_passes(values: Path | None) -> None:
    args = ["lint", "--strict", str(CHART)] + (["-f", str(values)] if values else [])
    proc = helm(*args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 chart(s) failed" in proc.stdout


@needs_helm
@pytest.mark.parametrize("case", sorted(CASES))
def test_every_rendered_document_validates(case: str) -> None:
    docs = render(case)
    checked = {validate_document(d, source=f"helm template ({case})") for d in docs}
    assert f"kubernetes-{KUBERNETES_VERSION}" in checked
    assert "kserve-crd:serving.kserve.io/v1beta1" in checked
    assert not by_kind(docs, "Secret"), "the chart must never carry secret values"


@needs_helm
def test_gpu_predictor_is_triton_on_gpu_nodes() -> None:
    spec = isvc(render("default"))["spec"]
    pred = spec["predictor"]
    assert pred["model"]["runtime"] == "kserve-tritonserver"
    assert pred["model"]["modelFormat"]["name"] == "triton"
    assert pred["model"]["storageUri"].endswith("/versions/v0001/triton/gpu")
    assert pred["model"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pred["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert pred["tolerations"][0]["key"] == "nvidia.com/gpu"
    transformer = spec["transformer"]["containers"][0]
    assert transformer["image"] == "ghcr.io/voicecart/voicecart-engine:0.1.0"
    env = {e["name"]: e.get("value") for e in transformer["env"]}
    assert env["STORAGE_URI"].endswith("/versions/v0001")  # the transformer loads the whole bundle


@needs_helm
def test_cpu_variant_runs_the_engine_in_process_without_gpu() -> None:
    spec = isvc(render("cpu"))["spec"]
    assert "transformer" not in spec
    (engine,) = spec["predictor"]["containers"]
    assert engine["image"].startswith("ghcr.io/voicecart/voicecart-engine:")
    assert "--triton-url" not in " ".join(engine["args"])
    assert "nvidia.com/gpu" not in str(spec) and "nodeSelector" not in spec["predictor"]


@needs_helm
def test_canary_is_expressed_the_way_the_selected_mode_honours() -> None:
    standard = isvc(render("standard-canary"))
    assert standard["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    assert "canaryTrafficPercent" not in standard["spec"]["predictor"]  # ignored in Standard mode
    (canary,) = standard["spec"]["canary"]
    assert canary["trafficPercent"] == 10
    assert canary["predictor"]["name"] == "challenger"
    assert canary["predictor"]["model"]["storageUri"] == "gs://m/registry/voicecart/versions/v0002/triton/gpu"
    assert not {"minReplicas", "maxReplicas", "scaleMetric", "scaleTarget"} & canary["predictor"].keys()
    assert standard["spec"]["predictor"]["model"]["storageUri"].endswith("v0001/triton/gpu")

    knative = isvc(render("knative-canary"))
    assert knative["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Serverless"
    assert "canary" not in knative["spec"]
    assert knative["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert knative["spec"]["predictor"]["model"]["storageUri"].endswith("v0002/triton/gpu")


@needs_helm
@pytest.mark.parametrize("case", ["default", "production", "cpu-canary"])
def test_every_pod_is_non_root_read_only_and_unprivileged(case: str) -> None:
    pods = pod_specs(render(case))
    assert len(pods) >= 4
    for name, pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] > 0, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        # only the rollout controller talks to the Kubernetes API
        assert pod.get("automountServiceAccountToken") is name.endswith("-rollout"), name
        for c in containers(pod):
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            assert "add" not in sc["capabilities"], name
            assert c["resources"]["limits"] and c["resources"]["requests"], name


@needs_helm
def test_secrets_are_only_referenced_never_inlined() -> None:
    docs = render("production")
    cm = next(d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("feature-store"))
    assert cm["data"]["VOICECART_FEATURES__ONLINE__TYPE"] == "redis"
    assert cm["data"]["VOICECART_FEATURES__OFFLINE__TYPE"] == "bigquery"
    assert "VOICECART_FEATURES__OFFLINE__PROJECT" not in cm["data"]
    engine = isvc(docs)["spec"]["transformer"]["containers"][0]
    env = {e["name"]: e for e in engine["env"]}
    assert env["VOICECART_FEATURES__OFFLINE__PROJECT"]["valueFrom"]["secretKeyRef"] == {"name": "voicecart-bigquery",
                                                                                       "key": "project"}
    assert env["VOICECART_REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "voicecart-redis"
    # the password joins the address by Kubernetes' $(VAR) expansion, never as a literal
    assert env["VOICECART_FEATURES__ONLINE__URL"]["value"].endswith(",password=$(VOICECART_REDIS_PASSWORD)")
    assert list(env).index("VOICECART_REDIS_PASSWORD") < list(env).index("VOICECART_FEATURES__ONLINE__URL")
    for d in docs:
        for pod_name, pod in pod_specs([d]):
            for c in containers(pod):
                for e in c.get("env") or []:
                    assert "value" in e or "secretKeyRef" in e.get("valueFrom", {}), (pod_name, e)


def _has_setting(model, parts: list[str]) -> bool:  # noqa: ANN001 - a pydantic model class
    """``parts`` names a field of ``model``, through nested sections (and either member of a union)."""
    import typing

    field = model.model_fields.get(parts[0])
    if field is None or len(parts) == 1:
        return field is not None
    members = typing.get_args(field.annotation) or (field.annotation,)
    return any(hasattr(m, "model_fields") and _has_setting(m, parts[1:]) for m in members)


@needs_helm
@pytest.mark.parametrize("case", ["default", "production", "cpu"])
def test_engine_environment_is_accepted_by_the_real_settings_model(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every VOICECART_* variable the chart sets names a real settings field, and the settings load."""
    from voicecart.config import Settings, load_settings

    docs = render(case)
    cm = next(d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("feature-store"))
    engines = [c for _, pod in pod_specs(docs) for c in pod.get("containers") or []
               if c["image"].startswith("ghcr.io/voicecart/voicecart-engine:") and c["args"][0] == "serve"]
    assert engines
    for c in engines:
        env = {k: v for k, v in cm["data"].items() if k.startswith("VOICECART_")}
        for e in c["env"]:
            env[e["name"]] = e.get("value", "from-a-secret")
        for name, value in env.items():
            if not name.startswith("VOICECART_") or name == "VOICECART_REDIS_PASSWORD":
                continue
            section, _, field = name.removeprefix("VOICECART_").lower().partition("__")
            assert section in Settings.model_fields, name
            assert _has_setting(Settings.model_fields[section].annotation, field.split("__")), f"{name}: no such setting"
            monkeypatch.setenv(name, value)
        settings = load_settings()
        assert settings.features.online.type == "redis" and settings.features.offline.type == "bigquery"
        assert settings.serving.model_name == "voicecart"
        assert str(settings.serving.feedback_db).startswith(("/tmp/", "/var/lib/voicecart/")) or \
            "--feedback-db=/var/lib/voicecart/feedback/events.sqlite" in c["args"]


@needs_helm
def test_rbac_grants_only_the_rollout_controller_get_and_patch_on_its_isvc() -> None:
    docs = render("default")
    (role,) = by_kind(docs, "Role")
    assert by_kind(docs, "ClusterRole") == [] and by_kind(docs, "ClusterRoleBinding") == []
    (rule,) = role["rules"]
    assert rule == {"apiGroups": ["serving.kserve.io"], "resources": ["inferenceservices"],
                    "resourceNames": ["voicecart"], "verbs": ["get", "patch"]}
    (binding,) = by_kind(docs, "RoleBinding")
    assert [s["name"] for s in binding["subjects"]] == ["voicecart-rollout"] == [role["metadata"]["name"]]
    assert all(sa.get("automountServiceAccountToken") is False for sa in by_kind(docs, "ServiceAccount"))


@needs_helm
def test_network_policies_admit_only_gateways_prometheus_and_the_own_isvc() -> None:
    docs = render("production")
    policies = {p["metadata"]["name"]: p for p in by_kind(docs, "NetworkPolicy")}
    deny = next(p for n, p in policies.items() if n.endswith("default-deny"))
    assert deny["spec"]["policyTypes"] == ["Ingress"] and "ingress" not in deny["spec"]
    allowed = set()
    for p in policies.values():
        for rule in p["spec"].get("ingress", []):
            for peer in rule["from"]:
                if "namespaceSelector" in peer:
                    allowed.add(peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"])
                elif peer["podSelector"]["matchLabels"].get("app.kubernetes.io/component") == "gateway":
                    assert p["metadata"]["name"].endswith("-gateway-to-feedback")  # the voice gateway's feedback
                else:
                    assert peer["podSelector"]["matchLabels"] == {"serving.kserve.io/inferenceservice": "voicecart"}
    assert allowed == {"istio-system", "voice-gateway", "monitoring"}


@needs_helm
def test_knative_mode_lets_the_activator_reach_the_queue_proxy() -> None:
    docs = render("knative-canary")
    policy = next(p for p in by_kind(docs, "NetworkPolicy") if p["metadata"]["name"].endswith("resolution-ingress"))
    serving = policy["spec"]["ingress"][0]
    namespaces = {p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for p in serving["from"]
                  if "namespaceSelector" in p}
    assert namespaces == {"istio-system", "knative-serving"}
    assert [p["port"] for p in serving["ports"]] == [8012, 8013]
    standard = next(p for p in by_kind(render("default"), "NetworkPolicy") if p["metadata"]["name"].endswith("resolution-ingress"))
    assert [p["port"] for p in standard["spec"]["ingress"][0]["ports"]] == [8080]


@needs_helm
def test_recurring_run_submits_the_compiled_pipeline_from_the_pipeline_image() -> None:
    (cron,) = [c for c in by_kind(render("production"), "CronJob") if c["metadata"]["name"].endswith("-retrain")]
    assert cron["spec"]["schedule"] == "30 2 * * *" and cron["spec"]["concurrencyPolicy"] == "Forbid"
    (c,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert c["image"] == "ghcr.io/voicecart/voicecart-pipeline:0.1.0"
    assert "--package=/opt/voicecart/pipelines/training.yaml" in c["args"]
    assert "--param=promotion_margin=0.005" in c["args"]


@needs_helm
def test_rollout_controller_runs_the_real_cli_as_the_only_account_with_api_rights() -> None:
    import typer

    from voicecart.cli import app

    docs = render("default")
    (cron,) = [c for c in by_kind(docs, "CronJob") if c["metadata"]["name"].endswith("-rollout")]
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (binding,) = by_kind(docs, "RoleBinding")
    assert pod["serviceAccountName"] == binding["subjects"][0]["name"]
    (c,) = pod["containers"]
    assert c["args"][:2] == ["rollout", "watch"] and "--max-looks=1" in c["args"]
    group = typer.main.get_command(app)
    params = group.commands["rollout"].commands["watch"].make_context("watch", c["args"][2:]).params
    assert params["namespace"] == "shop" and params["name"] == "voicecart" and params["max_looks"] == 1
    assert params["prometheus"].startswith("http://")
    # the controller reads the registry the recurring pipeline run's gate writes its canary requests to
    (run,) = [c for c in by_kind(docs, "CronJob") if not c["metadata"]["name"].endswith("-rollout")]
    run_args = run["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert f"--param=registry_uri={params['registry']}" in run_args
    empty = helm_template(CHART, namespace="shop", set_values=["rollout.registry="])
    (cron,) = [c for c in by_kind(empty, "CronJob") if c["metadata"]["name"].endswith("-rollout")]
    assert not any(a.startswith("--registry") for a in
                   cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"])


@needs_helm
def test_notes_tell_how_to_call_the_endpoint() -> None:
    proc = helm("install", "vc", str(CHART), "--dry-run=client", "--namespace", "shop")
    assert proc.returncode == 0, proc.stderr
    notes = proc.stdout.split("NOTES:", 1)[1]
    assert "/v1/models/voicecart:predict" in notes
    assert "kubectl -n shop get inferenceservice voicecart" in notes


# -- bad values are refused, naming the value ---------------------------------------------------

BAD_VALUES = {
    "negative-canary-percent": ("resolution:\n  canary:\n    trafficPercent: -5\n", "/resolution/canary/trafficPercent"),
    "canary-over-100": ("resolution:\n  canary:\n    trafficPercent: 150\n", "/resolution/canary/trafficPercent"),
    "missing-image-tag": ("image:\n  engine:\n    tag: null\n", "/image/engine"),
    "empty-image-tag": ("image:\n  pipeline:\n    tag: \"\"\n", "/image/pipeline/tag"),
    "latest-image-tag": ("image:\n  engine:\n    tag: latest\n", "/image/engine/tag"),
    "gpu-without-toleration": ("resolution:\n  gpu:\n    enabled: true\n    tolerations: []\n", "/resolution/gpu/tolerations"),
    "gpu-tolerations-removed": ("resolution:\n  gpu:\n    tolerations: null\n", "/resolution/gpu"),
    "canary-without-model": ("resolution:\n  canary:\n    enabled: true\n", "/resolution/canary"),
    "unknown-mode": ("deploymentMode: Serverless\n", "/deploymentMode"),
    "root-user": ("podSecurity:\n  runAsUser: 0\n", "/podSecurity/runAsUser"),
    "typo-in-key": ("resolution:\n  canaryy: {}\n", "canaryy"),
    "gateway-unknown-auth": ("gateway:\n  dialogflow:\n    auth: basic\n", "/gateway/dialogflow/auth"),
    "gateway-inline-secret": ("gateway:\n  dialogflow:\n    secret: hunter2\n", "/gateway/dialogflow/secret"),
}


@needs_helm
@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_bad_values_are_refused_naming_the_value(case: str, tmp_path: Path) -> None:
    text, named = BAD_VALUES[case]
    bad = tmp_path / f"{case}.yaml"
    bad.write_text(text)
    lint = helm("lint", "--strict", str(CHART), "-f", str(bad))
    assert lint.returncode != 0, f"{case} was accepted:\n{lint.stdout}"
    assert named in lint.stdout + lint.stderr, lint.stdout + lint.stderr
    with pytest.raises(ManifestError, match="values don't meet the specifications"):
        helm_template(CHART, values=[bad])


@needs_helm
@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed in tools/bin (run: bash scripts/tools/k8s.sh)")
def test_kubectl_decodes_every_rendered_document_offline(tmp_path: Path) -> None:
    # `kubectl create --dry-run=client` needs an API server for discovery (verified: it dials
    # localhost:8080); `kubectl label --local` decodes every object client-side with no server.
    out = tmp_path / "all.yaml"
    out.write_text(yaml.safe_dump_all(render("production")))
    proc = subprocess.run([str(KUBECTL), "label", "--local", "-f", str(out), "voicecart.io/checked=true", "-o", "name"],
                          capture_output=True, text=True, env=OFFLINE)
    assert proc.returncode == 0, proc.stderr
    assert "inferenceservice.serving.kserve.io/voicecart" in proc.stdout
    assert len(proc.stdout.split()) == len(render("production"))
