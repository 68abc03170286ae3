"""The gateway app in process (no servers): every refusal in its platform's shape, never a 5xx, and a
spoken apology when the endpoint cannot be reached (it points at a closed localhost port here)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from anyio.from_thread import start_blocking_portal
from google.cloud.dialogflowcx_v3.types import webhook

from voicecart.gateway.app import create_app
from voicecart.gateway.dialogflow import WebhookResponse
from voicecart.gateway.mapping import EMPTY, UNAVAILABLE, UNKNOWN
from voicecart.gateway.settings import GatewaySettings
from voicecart.gateway.testing import AlexaSigner, alexa_envelope, intent_request

SECRET = "unit-test-webhook-secret"
SKILL = "amzn1.ask.skill.unit"
W = webhook.WebhookRequest
HOOK = "/dialogflow/cx/webhook"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the socket is: connections are refused


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> AlexaSigner:
    return AlexaSigner(tmp_path_factory.mktemp("alexa-app"))


class Client:
    """The app over httpx's ASGI transport, its lifespan run, called from sync tests through a portal."""

    def __init__(self, portal, http: httpx.AsyncClient) -> None:  # noqa: ANN001
        self.portal, self.http = portal, http

    def post(self, path: str, content: bytes | str | Iterator[bytes], headers: dict) -> httpx.Response:
        if isinstance(content, Iterator):
            chunks = list(content)

            async def stream() -> AsyncIterator[bytes]:
                for chunk in chunks:
                    yield chunk

            return self.portal.call(lambda: self.http.post(path, content=stream(), headers=headers))
        return self.portal.call(lambda: self.http.post(path, content=content, headers=headers))

    def get(self, path: str) -> httpx.Response:
        return self.portal.call(self.http.get, path)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, signer: AlexaSigner):
    settings = GatewaySettings.model_validate({
        "endpoint": {"url": f"http://127.0.0.1:{closed_port()}", "timeout_s": 0.5, "feedback_retries": 0},
        "dialogflow": {"enabled": True, "secret": SECRET},
        "alexa": {"enabled": True, "skill_ids": [SKILL], "cert_dir": str(signer.cert_dir),
                  "trust_roots": str(signer.trust_roots)},
        "identity": {"type": "sqlite", "path": str(tmp_path_factory.mktemp("id") / "identity.sqlite")},
        "max_body_bytes": 64 * 1024})
    app = create_app(settings)
    with start_blocking_portal() as portal:
        lifespan = app.router.lifespan_context(app)
        portal.call(lifespan.__aenter__)
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")
        try:
            yield Client(portal, http)
        finally:
            portal.call(http.aclose)
            portal.call(lifespan.__aexit__, None, None, None)


def webhook_call(client: Client, body: bytes | str, secret: str | None = SECRET):  # noqa: ANN201
    headers = {"content-type": "application/json"}
    if secret is not None:
        headers["X-Voicecart-Webhook-Secret"] = secret
    r = client.post(HOOK, content=body, headers=headers)
    assert r.status_code < 500, r.text
    return r, WebhookResponse.from_json(r.text)  # every answer is a WebhookResponse


def df_request(tag: str, text: str | None = None) -> str:
    req = W(fulfillment_info=W.FulfillmentInfo(tag=tag),
            session_info=webhook.SessionInfo(session="projects/p/locations/global/agents/a/sessions/u1"))
    if text is not None:
        req.text = text
    return W.to_json(req)


def spoken(response: WebhookResponse) -> str:
    return " ".join(m.text.text[0] for m in response.fulfillment_response.messages)


@pytest.mark.parametrize("secret", [None, "wrong-secret-of-some-length"])
def test_a_missing_or_wrong_secret_is_a_401(client, secret):
    r, response = webhook_call(client, df_request("add", "add milk"), secret=secret)
    assert r.status_code == 401 and "webhook secret" in response.payload["error"]


@pytest.mark.parametrize("body, status, reason", [
    (b"{not json", 400, "body: not a Dialogflow CX WebhookRequest"),
    (b'{"fulfillmentInfo": 5}', 400, "body: not a Dialogflow CX WebhookRequest"),
    (b"\xff\xfe", 400, "body"),
    (df_request("checkout", "pay now"), 400, "fulfillmentInfo.tag: 'checkout' is not one of"),
    (df_request("", "add milk"), 400, "fulfillmentInfo.tag"),
    ('{"fulfillmentInfo": {"tag": "add"}, "text": "add milk"}', 400, "sessionInfo.session: missing"),
])
def test_bad_webhook_requests_are_4xx_with_the_reason_and_an_apology(client, body, status, reason):
    r, response = webhook_call(client, body)
    assert r.status_code == status and response.payload["error"].startswith(reason), r.text
    assert spoken(response).startswith("Sorry")
    assert "Traceback" not in r.text


def test_a_1_mb_body_is_a_413_before_parsing(client):
    r, response = webhook_call(client, b'{"text": "' + b"x" * 1_000_000 + b'"}')
    assert r.status_code == 413 and "larger than" in response.payload["error"]
    chunked = client.post(HOOK, content=iter([b"x" * 40_000] * 3),
                          headers={"X-Voicecart-Webhook-Secret": SECRET})  # no content-length announced
    assert chunked.status_code == 413


def test_empty_slots_get_a_spoken_apology_without_calling_the_endpoint(client):
    r, response = webhook_call(client, df_request("add"))
    assert r.status_code == 200 and spoken(response).startswith(EMPTY)


def test_words_the_endpoint_would_refuse_get_a_spoken_apology(client):
    r, response = webhook_call(client, df_request("add", "add \u0007milk"))  # a control character
    assert r.status_code == 200 and spoken(response).startswith(EMPTY)


def test_an_unreachable_endpoint_is_a_spoken_apology_not_an_error(client):
    r, response = webhook_call(client, df_request("add", "add milk"))
    assert r.status_code == 200 and spoken(response).startswith(UNAVAILABLE)


def alexa_call(client: Client, signer: AlexaSigner, body: bytes, headers: dict | None = None):  # noqa: ANN201
    r = client.post("/alexa", content=body, headers=headers if headers is not None else signer.headers(body))
    assert r.status_code < 500, r.text
    return r


def test_alexa_refusals_are_400s_with_the_reason(client, signer):
    r = alexa_call(client, signer, b"{oops")
    assert r.status_code == 400 and r.json()["error"].startswith("body: not valid JSON")
    body = alexa_envelope(intent_request("AddItemIntent", product="milk"), SKILL)
    r = alexa_call(client, signer, body, headers={**signer.headers(body), "Signature-256": signer.sign(b"other")})
    assert r.status_code == 400 and "does not match its Signature-256" in r.json()["error"]
    r = alexa_call(client, signer, b"{" + b" " * 1_000_000 + b"}")
    assert r.status_code == 413


def test_alexa_unknown_intents_empty_slots_and_a_down_endpoint_are_spoken_apologies(client, signer):
    for request, words in [(intent_request("OrderPizzaIntent"), UNKNOWN),
                           (intent_request("AddItemIntent", product=None, quantity="2"), EMPTY),
                           (intent_request("AddItemIntent", product="milk"), UNAVAILABLE)]:
        r = alexa_call(client, signer, alexa_envelope(request, SKILL))
        assert r.status_code == 200, r.text
        out = r.json()["response"]
        assert out["outputSpeech"]["ssml"].startswith("<speak>" + words.split(".")[0])
        assert out["shouldEndSession"] is False and "reprompt" in out


def test_health_and_metrics(client):
    assert client.get("/healthz").json() == {"status": "ok", "platforms": ["dialogflow", "alexa"]}
    r, _ = webhook_call(client, df_request("add", "add milk"), secret="wrong-secret-of-some-length")
    assert r.status_code == 401  # its own refused call: the test must not lean on another test's side effects
    text = client.get("/metrics").text
    assert 'voicecart_gateway_requests_total{platform="dialogflow",status="401"}' in text
    assert "voicecart_gateway_latency_seconds_bucket" in text
