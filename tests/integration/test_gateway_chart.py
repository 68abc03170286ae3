"""The chart's voice gateway, rendered with real helm: off until a platform is enabled, its args and
environment accepted by the real CLI and settings model, secrets only referenced, its network
policies, and the engine image's entrypoint running `voicecart gateway serve`."""

from __future__ import annotations

import re

import pytest

from tests.integration.test_helm_chart import CHART, PRODUCTION, by_kind, containers, needs_helm
from voicecart.rollout.manifests import helm_template

pytestmark = pytest.mark.integration


def render(*set_values: str, production: bool = False) -> list[dict]:
    return helm_template(CHART, namespace="shop", values=[PRODUCTION] if production else [], set_values=set_values)


def gateway_container(docs: list[dict]) -> dict:
    (deployment,) = [d for d in by_kind(docs, "Deployment") if d["metadata"]["name"].endswith("-gateway")]
    (container,) = containers(deployment["spec"]["template"]["spec"])
    return container


def expand(env: list[dict], secrets: dict[str, str]) -> dict[str, str]:
    """The container's environment as the kubelet builds it: secret values, then $(VAR) expansion in order."""
    out: dict[str, str] = {}
    for e in env:
        if "valueFrom" in e:
            ref = e["valueFrom"]["secretKeyRef"]
            out[e["name"]] = secrets[f"{ref['name']}/{ref['key']}"]
        else:
            out[e["name"]] = re.sub(r"\$\((\w+)\)", lambda m: out.get(m.group(1), m.group(0)), e["value"])
    return out


@needs_helm
def test_no_gateway_is_rendered_until_a_platform_is_enabled():
    docs = render()
    assert not [d for d in docs if d["metadata"]["name"].endswith(("-gateway", "-gateway-ingress"))]
    assert gateway_container(render("gateway.alexa.enabled=true"))["args"][:2] == ["gateway", "serve"]


@needs_helm
def test_production_gateway_runs_the_real_cli_with_settings_the_model_accepts(monkeypatch):
    import typer

    from voicecart.cli import app
    from voicecart.config import load_settings

    c = gateway_container(render(production=True))
    params = typer.main.get_command(app).commands["gateway"].commands["serve"].make_context(
        "serve", c["args"][2:]).params
    assert params["host"] == "0.0.0.0" and params["port"] == 8090
    secrets = {"voicecart-dialogflow/webhook-secret": "a-dialogflow-secret-from-k8s",
               "voicecart-alexa/skill-id": "amzn1.ask.skill.prod", "voicecart-redis/password": "pw"}
    for name, value in expand(c["env"], secrets).items():
        monkeypatch.setenv(name, value)
    g = load_settings().gateway
    assert g.dialogflow.enabled and g.dialogflow.auth == "bearer"
    assert g.dialogflow.secret.get_secret_value() == "a-dialogflow-secret-from-k8s"
    assert g.alexa.enabled and g.alexa.skill_ids == ["amzn1.ask.skill.prod"]
    assert str(g.alexa.cert_dir) == "/etc/voicecart/alexa-certificates"
    assert g.identity.type == "redis" and g.identity.url.endswith(",password=pw")
    assert g.endpoint.host_header == "voicecart-shop.shop.voicecart.internal"  # the ISVC's route: canaries apply
    assert g.endpoint.feedback_url == "http://voicecart-feedback.shop.svc.cluster.local"
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    assert mounts["/etc/voicecart/alexa-certificates"]["readOnly"] is True


@needs_helm
def test_gateway_secrets_are_referenced_never_written():
    docs = render(production=True)
    env = {e["name"]: e for e in gateway_container(docs)["env"]}
    assert env["VOICECART_GATEWAY__DIALOGFLOW__SECRET"]["valueFrom"]["secretKeyRef"] == {
        "name": "voicecart-dialogflow", "key": "webhook-secret"}
    assert env["VOICECART_ALEXA_SKILL_ID"]["valueFrom"]["secretKeyRef"]["name"] == "voicecart-alexa"
    assert env["VOICECART_GATEWAY__ALEXA__SKILL_IDS"]["value"] == '["$(VOICECART_ALEXA_SKILL_ID)"]'
    assert not by_kind(docs, "Secret")
    assert not [k for cm in by_kind(docs, "ConfigMap") for k in cm["data"] if k.startswith("VOICECART_GATEWAY")]


@needs_helm
def test_only_the_ingress_gateways_and_prometheus_reach_the_gateway_and_only_it_is_added_to_feedback():
    docs = render(production=True)
    policies = {p["metadata"]["name"]: p for p in by_kind(docs, "NetworkPolicy")}
    ingress = policies["voicecart-gateway-ingress"]["spec"]
    namespaces = {peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                  for peer in ingress["ingress"][0]["from"]}
    assert namespaces == {"istio-system", "voice-gateway", "monitoring"}
    assert [p["port"] for p in ingress["ingress"][0]["ports"]] == [8090]
    feedback = policies["voicecart-gateway-to-feedback"]["spec"]
    assert feedback["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "feedback"
    (peer,) = feedback["ingress"][0]["from"]
    assert peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "gateway"
    (service,) = [s for s in by_kind(docs, "Service") if s["metadata"]["name"] == "voicecart-gateway"]
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_the_engine_image_entrypoint_runs_the_gateway_command():
    from tests.unit.test_dockerfiles_entrypoints import translate

    argv, _ = translate("gateway", "serve", "--host=0.0.0.0", "--port=8090")
    assert argv == ["gateway", "serve", "--host=0.0.0.0", "--port=8090"]
