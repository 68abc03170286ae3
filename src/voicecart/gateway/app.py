"""The gateway web app: the enabled platforms' routes, health, metrics; ``voicecart gateway serve`` runs it.

Every route answers in its platform's shape and never with a 5xx or a stack trace: a body over
the limit is a 413, a bad or unauthenticated call a 4xx with the reason, an endpoint that does
not answer a spoken apology.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

from voicecart.gateway.endpoint import Endpoint
from voicecart.gateway.identity import IdentityStore, open_identity
from voicecart.gateway.mapping import Conversations
from voicecart.gateway.settings import GatewaySettings

log = logging.getLogger("voicecart.gateway")

DIALOGFLOW_PATH = "/dialogflow/cx/webhook"
ALEXA_PATH = "/alexa"

TURNS = Counter("voicecart_gateway_requests_total", "Platform calls by outcome", ["platform", "status"])
LATENCY = Histogram("voicecart_gateway_latency_seconds", "Receipt to answer, per platform", ["platform"],
                    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0))


class BodyTooLarge(Exception):
    pass


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The body, refusing more than ``max_bytes`` whether or not a Content-Length announced it."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > max_bytes):
        raise BodyTooLarge()
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise BodyTooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(settings: GatewaySettings, endpoint: Endpoint | None = None,
               identity: IdentityStore | None = None) -> FastAPI:
    """The app for these settings; ``endpoint``/``identity`` may be given (tests, the benchmark)."""
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state["endpoint"] = endpoint or Endpoint(settings.endpoint)
        state["identity"] = identity or open_identity(settings.identity)
        conversations = Conversations(state["endpoint"], state["identity"], settings.session_ttl_s,
                                      settings.alexa.skill_name)
        if settings.dialogflow.enabled:
            from voicecart.gateway.dialogflow import DialogflowWebhook

            state["dialogflow"] = DialogflowWebhook(settings.dialogflow, conversations)
        if settings.alexa.enabled:
            from voicecart.gateway.alexa import AlexaSkill

            state["alexa"] = AlexaSkill(settings.alexa, conversations)
        # Everything imported so far (the platforms' SDKs, protobuf, pydantic models) lives as long as the
        # process: move it out of the collector's reach so a full collection never walks it mid-turn.
        gc.collect()
        gc.freeze()
        yield
        await state["endpoint"].close()
        await state["identity"].close()

    app = FastAPI(title="voicecart gateway", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    if settings.dialogflow.enabled:
        from voicecart.gateway.dialogflow import error as dialogflow_error

        app.add_route(DIALOGFLOW_PATH, _route("dialogflow", state, dialogflow_error, settings.max_body_bytes),
                      methods=["POST"])
    if settings.alexa.enabled:
        from voicecart.gateway.alexa import error as alexa_error

        app.add_route(ALEXA_PATH, _route("alexa", state, alexa_error, settings.max_body_bytes), methods=["POST"])

    @app.get("/healthz")
    async def healthz() -> Response:
        body = {"status": "ok", "platforms": [p for p in ("dialogflow", "alexa") if p in state]}
        return Response(orjson.dumps(body), media_type="application/json")

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


def _route(platform: str, state: dict[str, Any], error: Any, max_bytes: int) -> Any:
    """The POST route of one platform: its adapter's answer, or its shape of a 413 or of a failed turn (a plain
    Starlette route: the body is read raw, so FastAPI's parameter machinery has nothing to do on a turn)."""
    async def route(request: Request) -> Response:
        start = time.perf_counter()
        try:
            body = await read_body(request, max_bytes)
        except BodyTooLarge:
            answer = error(413, f"body: larger than {max_bytes} bytes")
        else:
            try:
                answer = await state[platform].handle(request.headers, body)
            except Exception:  # noqa: BLE001 - a bug must still answer in the platform's shape
                log.exception("%s turn failed", platform)
                answer = error(200, "internal: the gateway could not answer this turn")
        TURNS.labels(platform=platform, status=str(answer.status)).inc()
        LATENCY.labels(platform=platform).observe(time.perf_counter() - start)
        return Response(answer.body, status_code=answer.status, media_type="application/json")

    return route


def serve(settings: GatewaySettings) -> None:
    """Run the app with uvicorn on settings.host:port (one process; the chart scales replicas)."""
    import uvicorn

    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s", level=logging.WARNING)
    logging.getLogger("voicecart").setLevel(logging.INFO)  # one line per refusal, ids only
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="warning",
                access_log=False, loop="uvloop", http="httptools", server_header=False)
