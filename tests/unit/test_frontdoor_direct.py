"""The front door's direct predict at the ASGI level, with a real KServe ``Model``: what a real server
cannot easily be made to do (a client that leaves mid-body, a chunked body over the limit, a model not ready)."""

from __future__ import annotations

import asyncio

import orjson
from kserve import Model

from voicecart.serving.server import Frontdoor

PATH = "/v1/models/m:predict"


class Echo(Model):
    def __init__(self) -> None:
        super().__init__("m")
        self.ready = True
        self.calls = 0

    async def predict(self, payload, headers=None, response_headers=None):  # noqa: ANN001, ANN201
        self.calls += 1
        return {"predictions": payload["instances"]}


def _run(model: Echo, messages: list[dict], headers: list | None = None) -> tuple[list[dict], list[str]]:
    routed: list[str] = []

    async def app(scope, receive, send):  # noqa: ANN001, ANN202 - the KServe app behind the door
        routed.append(scope["path"])
        body = b""
        while True:
            m = await receive()
            body += m.get("body", b"")
            if not m.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": body})

    door = Frontdoor(app, max_bytes=256, methods={}, direct={PATH: model})
    queue = list(messages)
    sent: list[dict] = []

    async def receive() -> dict:
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": PATH, "headers": headers or []}
    asyncio.run(door(scope, receive, send))
    return sent, routed


def test_a_plain_json_predict_is_answered_by_the_model():
    model = Echo()
    sent, routed = _run(model, [{"type": "http.request", "body": b'{"instances": [1, 2]}'}])
    assert routed == [] and model.calls == 1
    assert sent[0]["status"] == 200 and orjson.loads(sent[1]["body"]) == {"predictions": [1, 2]}


def test_a_client_gone_mid_body_runs_nothing_and_gets_nothing():
    model = Echo()
    sent, routed = _run(model, [{"type": "http.request", "body": b'{"instances": [1]}', "more_body": True},
                                {"type": "http.disconnect"}])
    assert model.calls == 0 and sent == [] and routed == []


def test_a_chunked_body_over_the_limit_is_a_413_before_the_model():
    model = Echo()
    chunk = {"type": "http.request", "body": b" " * 200, "more_body": True}
    sent, _ = _run(model, [chunk, chunk, {"type": "http.request", "body": b"{}"}])
    assert model.calls == 0 and sent[0]["status"] == 413


def test_a_model_not_ready_or_a_cloudevent_takes_kserves_route_with_the_body():
    model = Echo()
    model.ready = False
    body = b'{"instances": [3]}'
    sent, routed = _run(model, [{"type": "http.request", "body": body}])
    assert routed == [PATH] and sent[1]["body"] == body and model.calls == 0
    model.ready = True
    event = orjson.dumps({"specversion": "1.0", "id": "1", "source": "t", "type": "x", "time": "2026-01-01T00:00:00Z",
                          "data": {"instances": [4]}})
    sent, routed = _run(model, [{"type": "http.request", "body": event}])  # read, then replayed to the route
    assert routed == [PATH] and sent[1]["body"] == event and model.calls == 0
    sent, routed = _run(model, [{"type": "http.request", "body": body}], headers=[(b"ce-id", b"1")])
    assert routed == [PATH] and model.calls == 0
