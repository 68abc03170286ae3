"""The real gateway (``voicecart gateway serve``) in front of the real engine (``voicecart serve``), on
localhost: Dialogflow CX requests built with the official ``WebhookRequest`` and parsed back into
``WebhookResponse``; Alexa envelopes built with ``ask_sdk_model`` and signed by a chain this test
makes; conversations across a session; the feedback that reaches the engine's log; refusals that
never reach the engine; identity links in a real Redis; the App Intent request of docs/gateways.md."""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from google.cloud.dialogflowcx_v3.types import webhook

from voicecart.data.store import write_dataset
from voicecart.data.synthetic import SyntheticConfig, generate
from voicecart.feedback import read_events
from voicecart.gateway.dialogflow import STATE, WebhookResponse, plain
from voicecart.gateway.mapping import EMPTY, LOST_TRACK, SessionState
from voicecart.gateway.testing import AlexaSigner, LocalGateway, alexa_envelope, intent_request
from voicecart.serving.local import LocalServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SECRET = "integration-webhook-secret"
SKILL = "amzn1.ask.skill.integration"
HOOK = "/dialogflow/cx/webhook"
W = webhook.WebhookRequest


@pytest.fixture(scope="module")
def servable_bundle(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A synthetic dataset and a servable bundle: the one place this file gets a bundle from."""
    from voicecart.export.model import bundle_from_dataset

    root = tmp_path_factory.mktemp("gateway")
    tables, _ = generate(SyntheticConfig(n_customers=300, seed=3))
    write_dataset(tables, root / "data", source="synthetic")
    bundle = bundle_from_dataset(root / "data", root / "bundle", version="v0001", epochs=1)
    return {"root": root, "data": root / "data", "bundle": bundle,
            "customer": str(tables.customers.column("customer_id")[5])}


@pytest.fixture(scope="module")
def engine(servable_bundle: dict):
    root = servable_bundle["root"]
    srv = LocalServer(servable_bundle["bundle"], "--profiles-from", str(servable_bundle["data"]), "--deadline-ms", "2000",
                      "--feedback-db", str(root / "feedback.sqlite"), log_path=root / "engine.log")
    with srv:
        yield srv


@pytest.fixture(scope="module")
def signer(servable_bundle: dict) -> AlexaSigner:
    return AlexaSigner(servable_bundle["root"] / "alexa")


@pytest.fixture(scope="module")
def gateway(engine: LocalServer, signer: AlexaSigner, servable_bundle: dict):
    root = servable_bundle["root"]
    env = {"VOICECART_GATEWAY__DIALOGFLOW__ENABLED": "true", "VOICECART_GATEWAY__DIALOGFLOW__SECRET": SECRET,
           "VOICECART_GATEWAY__ALEXA__ENABLED": "true", "VOICECART_GATEWAY__ALEXA__SKILL_IDS": json.dumps([SKILL]),
           "VOICECART_GATEWAY__ALEXA__CERT_DIR": str(signer.cert_dir),
           "VOICECART_GATEWAY__ALEXA__TRUST_ROOTS": str(signer.trust_roots),
           "VOICECART_GATEWAY__IDENTITY__PATH": str(root / "identity.sqlite")}
    gw = LocalGateway(engine.url, env, log_path=root / "gateway.log")
    gw.cli("link", "dialogflow", "df-user-5", servable_bundle["customer"])
    gw.cli("link", "alexa", "amzn1.ask.account.LINKED", servable_bundle["customer"])
    with gw:
        yield gw


# -- helpers --------------------------------------------------------------------------------------

def metric(url: str, name: str, **labels: str) -> float:
    """Sum of a Prometheus counter's samples whose labels include ``labels``."""
    total = 0.0
    for line in httpx.get(url + "/metrics", timeout=10).text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            if all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
    return total


def resolves(engine: LocalServer) -> float:
    return metric(engine.url, "voicecart_resolves_total")


def events_of(servable_bundle: dict, request_id: str, kinds: set[str], timeout_s: float = 20.0) -> list:
    """The feedback events logged for a request, once all of ``kinds`` are there (delivery is asynchronous)."""
    deadline = time.monotonic() + timeout_s
    while True:
        path = servable_bundle["root"] / "feedback.sqlite"
        found = [e for e in read_events(path).events if e.request_id == request_id] if path.exists() else []
        if kinds <= {e.kind for e in found} or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


class DialogflowSession:
    """One Dialogflow CX session: carries the session parameters from answer to request, as the agent does."""

    def __init__(self, gateway, user: str | None = "df-user-5") -> None:
        self.gateway = gateway
        self.session = f"projects/p/locations/global/agents/a/sessions/{uuid.uuid4()}"
        self.params: dict = {"voicecart_user_id": user} if user else {}

    def say(self, tag: str, text: str | None = None, **intent_params) -> tuple[int, list[str], dict]:
        req = W(fulfillment_info=W.FulfillmentInfo(tag=tag), language_code="en",
                session_info=webhook.SessionInfo(session=self.session, parameters=self.params))
        if text is not None:
            req.text = text
        if intent_params:
            req.intent_info = W.IntentInfo(parameters={
                k: W.IntentInfo.IntentParameterValue(original_value=str(v), resolved_value=v)
                for k, v in intent_params.items()})
        r = httpx.post(self.gateway.url + HOOK, content=W.to_json(req), timeout=10,
                       headers={"X-Voicecart-Webhook-Secret": SECRET, "content-type": "application/json"})
        response = WebhookResponse.from_json(r.text)
        params = plain(response.session_info.parameters)
        for key, value in params.items():  # null deletes a parameter
            if value is None:
                self.params.pop(key, None)
            else:
                self.params[key] = value
        return r.status_code, [m.text.text[0] for m in response.fulfillment_response.messages], params

    @property
    def line(self):  # noqa: ANN201
        return SessionState.model_validate(self.params.get(STATE, {})).line


# -- Dialogflow CX --------------------------------------------------------------------------------

def test_dialogflow_session_add_other_one_make_it_two_ends_with_that_product_and_quantity(gateway, engine,
                                                                                          servable_bundle):
    s = DialogflowSession(gateway)
    status, said, params = s.say("add", "add milk")
    assert status == 200 and said[0].startswith("Added") and "milk" in said[0].lower()
    first = s.line
    assert params["voicecart_product_id"] == first.product_id and len(first.heard) == 4
    status, said, params = s.say("follow-up", "no, the other one")
    assert status == 200 and said[0].endswith("instead. Anything else?")
    assert params["voicecart_product_id"] == first.heard[1]  # the first alternative
    status, said, params = s.say("follow-up", "make it two")
    assert status == 200 and params["voicecart_product_id"] == first.heard[1] and params["voicecart_quantity"] == 2.0
    assert s.line.request_id == first.request_id  # still the line the first answer opened
    kept_before = metric(gateway.url, "voicecart_gateway_feedback_total", kind="kept", outcome="queued")
    status, said, _ = s.say("confirm", "yes")
    assert status == 200 and said[0].startswith("Great,")
    events = events_of(servable_bundle, first.request_id, {"reasked", "kept"})
    by_kind = {e.kind: e for e in events}
    assert by_kind["reasked"].product_id == first.product_id  # logged by the engine, not the gateway
    assert by_kind["kept"].product_id == first.heard[1] and by_kind["kept"].customer_id == servable_bundle["customer"]
    status, said, params = s.say("end", "that's all")
    assert status == 200 and said == ["Okay, your cart is saved. Goodbye."] and params[STATE] is None
    # one kept for the line, not a second one at the end of the session
    assert metric(gateway.url, "voicecart_gateway_feedback_total", kind="kept", outcome="queued") == kept_before + 1


def test_product_and_quantity_parameters_decide_the_request(gateway):
    s = DialogflowSession(gateway)
    status, said, params = s.say("add", "um, I'd want those", product="yogurt", quantity=3)
    assert status == 200 and params["voicecart_quantity"] == 3.0 and "yogurt" in said[0].lower()


def test_a_cancelled_line_sends_no_kept_the_engine_logs_the_removal(gateway, servable_bundle):
    s = DialogflowSession(gateway)
    s.say("add", "add bread")
    line = s.line
    queued = metric(gateway.url, "voicecart_gateway_feedback_total", kind="kept", outcome="queued")
    status, said, params = s.say("follow-up", "cancel that")
    assert status == 200 and said[0].startswith("Okay, I took") and "voicecart_product_id" not in s.params
    assert s.line.standing is False
    s.say("end")
    assert metric(gateway.url, "voicecart_gateway_feedback_total", kind="kept", outcome="queued") == queued
    (removed,) = events_of(servable_bundle, line.request_id, {"removed"})
    assert removed.kind == "removed" and removed.product_id == line.product_id


def test_moving_on_to_another_product_keeps_the_previous_line(gateway, servable_bundle):
    s = DialogflowSession(gateway)
    s.say("add", "add coffee")
    coffee = s.line
    s.say("add", "add rice")
    assert s.line.request_id != coffee.request_id
    (kept,) = events_of(servable_bundle, coffee.request_id, {"kept"})
    assert kept.product_id == coffee.product_id


def test_an_unlinked_shopper_gets_a_non_personal_answer_a_hint_and_sends_no_feedback(gateway, engine):
    s = DialogflowSession(gateway, user=None)
    queued = metric(gateway.url, "voicecart_gateway_feedback_total", outcome="queued")
    status, said, params = s.say("add", "add milk")
    assert status == 200 and said[0].endswith("Is that the one you want?") and "link your account" in said[1]
    assert params["voicecart_needs_confirmation"] is True
    status, said, _ = s.say("add", "add bread")
    assert len(said) == 1  # the hint once per session
    s.say("confirm")
    s.say("end")
    assert metric(gateway.url, "voicecart_gateway_feedback_total", outcome="queued") == queued


def test_a_stale_session_is_an_apology_without_a_resolve(gateway, engine):
    s = DialogflowSession(gateway)
    s.say("add", "add cheese")
    s.params[STATE]["line"]["at"] = time.time() - 3600  # an hour later, the session resumes
    before = resolves(engine)
    status, said, params = s.say("follow-up", "no, the other one")
    assert status == 200 and said[0] == LOST_TRACK and params[STATE]["line"] is None
    assert resolves(engine) == before


@pytest.mark.parametrize("body, status, reason", [
    (b"{truncated", 400, "body: not a Dialogflow CX WebhookRequest"),
    (b'{"fulfillmentInfo": {"tag": "checkout"}, "sessionInfo": {"session": "s"}}', 400, "fulfillmentInfo.tag"),
    (b'{"text": "' + b"x" * (1 << 20) + b'"}', 413, "body: larger than"),
])
def test_bad_webhook_calls_get_a_webhook_response_with_the_reason(gateway, engine, body, status, reason):
    before = resolves(engine)
    r = httpx.post(gateway.url + HOOK, content=body, timeout=10, headers={"X-Voicecart-Webhook-Secret": SECRET})
    assert r.status_code == status and "Traceback" not in r.text
    response = WebhookResponse.from_json(r.text)
    assert response.payload["error"].startswith(reason)
    assert response.fulfillment_response.messages[0].text.text[0].startswith("Sorry")
    assert resolves(engine) == before


def test_a_wrong_secret_is_a_401_and_empty_slots_an_apology(gateway, engine):
    r = httpx.post(gateway.url + HOOK, content=b"{}", timeout=10, headers={"X-Voicecart-Webhook-Secret": "guess"})
    assert r.status_code == 401
    before = resolves(engine)
    status, said, _ = DialogflowSession(gateway).say("add")
    assert status == 200 and said[0] == EMPTY and resolves(engine) == before


# -- Alexa ----------------------------------------------------------------------------------------

class AlexaSession:
    def __init__(self, gateway, signer: AlexaSigner, user: str = "amzn1.ask.account.LINKED") -> None:
        self.gateway, self.signer, self.user = gateway, signer, user
        self.session_id = f"amzn1.echo-api.session.{uuid.uuid4()}"
        self.attributes: dict | None = None

    def send(self, request, skill: str = SKILL, tamper: bool = False, **header_changes: str) -> httpx.Response:  # noqa: ANN001
        body = alexa_envelope(request, skill, user_id=self.user, session_id=self.session_id, attributes=self.attributes)
        headers = {**self.signer.headers(body), **header_changes}
        if tamper:
            body = body.replace(b"en-US", b"en-GB")
        r = httpx.post(self.gateway.url + "/alexa", content=body, headers=headers, timeout=10)
        if r.status_code == 200 and "sessionAttributes" in r.json():
            self.attributes = r.json()["sessionAttributes"]
        return r

    def line(self):  # noqa: ANN201
        return SessionState.model_validate((self.attributes or {}).get("voicecart", {})).line


def test_alexa_session_with_a_good_signature_resolves_and_follows_up(gateway, engine, signer, servable_bundle):
    a = AlexaSession(gateway, signer)
    before = resolves(engine)
    r = a.send(intent_request("AddItemIntent", product="milk", quantity=None))
    assert r.status_code == 200, r.text
    speech = r.json()["response"]["outputSpeech"]
    assert speech["type"] == "SSML" and speech["ssml"].startswith("<speak>Added") and resolves(engine) == before + 1
    first = a.line()
    r = a.send(intent_request("OtherOneIntent", attribute=None))
    assert a.line().product_id == first.heard[1]
    r = a.send(intent_request("ChangeQuantityIntent", quantity="2"))
    assert a.line().quantity == 2.0 and a.line().product_id == first.heard[1]
    r = a.send(intent_request("AMAZON.YesIntent"))
    assert "stays in your cart" in r.json()["response"]["outputSpeech"]["ssml"]
    r = a.send(intent_request("AMAZON.StopIntent"))
    out = r.json()["response"]
    assert out["shouldEndSession"] is True and "Goodbye" in out["outputSpeech"]["ssml"]
    kinds = {e.kind: e.product_id for e in events_of(servable_bundle, first.request_id, {"reasked", "kept"})}
    assert kinds == {"reasked": first.product_id, "kept": first.heard[1]}


@pytest.mark.parametrize("change, reason", [
    ("tampered", "body: does not match its Signature-256"),
    ("chain-url", "SignatureCertChainUrl: host"),
    ("stale", "request.timestamp"),
    ("skill", "applicationId: not this skill's"),
])
def test_alexa_refuses_forged_stale_or_foreign_requests_without_resolving(gateway, engine, signer, change, reason):
    a = AlexaSession(gateway, signer)
    when = datetime.now(timezone.utc) - timedelta(seconds=300 if change == "stale" else 0)
    request = intent_request("AddItemIntent", when=when, product="milk")
    before = resolves(engine)
    if change == "tampered":
        r = a.send(request, tamper=True)
    elif change == "chain-url":
        r = a.send(request, SignatureCertChainUrl="https://evil.example.com/echo.api/echo-api-cert-test.pem")
    elif change == "skill":
        r = a.send(request, skill="amzn1.ask.skill.not-ours")
    else:
        r = a.send(request)
    assert r.status_code == 400 and r.json()["error"].startswith(reason), r.text
    assert resolves(engine) == before


def test_alexa_bad_input_is_spoken_or_refused_never_a_5xx(gateway, engine, signer):
    a = AlexaSession(gateway, signer)
    r = a.send(intent_request("OrderPizzaIntent"))
    assert r.status_code == 200 and "Sorry, I can't do that here" in r.json()["response"]["outputSpeech"]["ssml"]
    r = a.send(intent_request("AddItemIntent", product=None, quantity="4"))
    assert r.status_code == 200 and r.json()["response"]["outputSpeech"]["ssml"].startswith("<speak>Sorry")
    r = a.send(intent_request("OtherOneIntent"))  # a follow-up with nothing to follow
    assert r.status_code == 200 and "lost track" in r.json()["response"]["outputSpeech"]["ssml"]
    huge = b"{" + b" " * (1 << 20) + b"}"
    r = httpx.post(gateway.url + "/alexa", content=huge, headers=signer.headers(huge), timeout=10)
    assert r.status_code == 413 and "larger than" in r.json()["error"]
    r = httpx.post(gateway.url + "/alexa", content=b"[", headers=signer.headers(b"["), timeout=10)
    assert r.status_code == 400 and r.json()["error"].startswith("body: not valid JSON")


# -- identity in a real Redis -------------------------------------------------------------------------

def test_links_in_the_online_stores_redis_are_read_by_every_replica(tmp_path, monkeypatch):
    import asyncio
    import os
    import subprocess
    import sys

    from tests.integration.test_features_redis import REDIS, free_port, start_redis
    from voicecart.gateway.identity import open_identity
    from voicecart.gateway.identity.redis import RedisIdentityConfig

    if not os.path.exists(REDIS):
        pytest.skip("redis-server is not installed: run `make tools` (scripts/tools/redis.sh)")
    port = free_port()
    proc = start_redis(port, tmp_path)
    try:
        env = {**os.environ, "VOICECART_GATEWAY__IDENTITY__TYPE": "redis",
               "VOICECART_GATEWAY__IDENTITY__URL": f"127.0.0.1:{port}"}
        cli = str(Path(sys.executable).parent / "voicecart")
        subprocess.run([cli, "gateway", "link", "alexa", "amzn1.ask.account.R", "C0000042"], env=env, check=True)
        who = subprocess.run([cli, "gateway", "whois", "alexa", "amzn1.ask.account.R"], env=env,
                             capture_output=True, text=True, check=True)
        assert who.stdout.strip() == "C0000042"

        async def read() -> tuple:
            a, b = (open_identity(RedisIdentityConfig(type="redis", url=f"127.0.0.1:{port}")) for _ in range(2))
            try:
                return await a.customer_for("alexa", "amzn1.ask.account.R"), await b.customer_for("dialogflow", "x")
            finally:
                await a.close()
                await b.close()

        assert asyncio.run(read()) == ("C0000042", None)
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    async def down() -> None:
        store = open_identity(RedisIdentityConfig(type="redis", url=f"127.0.0.1:{port}", timeout_s=0.2))
        try:
            await store.customer_for("alexa", "amzn1.ask.account.R")
        finally:
            await store.close()

    from voicecart.gateway.identity import IdentityError

    with pytest.raises(IdentityError, match="identity store"):
        asyncio.run(down())


# -- the App Intent REST path of docs/gateways.md -------------------------------------------------------

def test_the_app_intent_request_in_the_docs_is_answered_as_documented(engine):
    doc = (REPO / "docs" / "gateways.md").read_text()
    request = json.loads(re.search(r"<!-- app-intent-request -->\s*```json\n(.*?)```", doc, re.S).group(1))
    documented = json.loads(re.search(r"<!-- app-intent-response -->\s*```json\n(.*?)```", doc, re.S).group(1))
    r = httpx.post(engine.url + "/v1/models/voicecart:predict", json=request, timeout=10)
    assert r.status_code == 200
    (answer,) = r.json()["predictions"]
    (shown,) = documented["predictions"]
    assert set(answer) == set(shown)  # same fields as the docs show
    if answer["product"]["id"] == shown["product"]["id"]:  # the spoken answer as documented
        assert answer["confirmation"] == shown["confirmation"]
    assert answer["request_id"] == request["instances"][0]["request_id"]
