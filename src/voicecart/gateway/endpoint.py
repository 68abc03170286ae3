"""The resolve endpoint over HTTP, as any client sees it: KServe V1 predict and the feedback intake.

One keep-alive client per gateway process. A resolve that fails (unreachable, timeout, an error
status) raises :class:`EndpointUnavailable` and the adapter apologises in speech; feedback is sent
off the answer's path, retried while the intake does not acknowledge it, and never raises.
"""

from __future__ import annotations

import asyncio
import logging

import httpx
import orjson
from prometheus_client import Counter
from pydantic import ValidationError

from voicecart.gateway.settings import EndpointSettings
from voicecart.schemas import FeedbackEvent, ResolveRequest, ResolveResponse

log = logging.getLogger("voicecart.gateway.endpoint")

FEEDBACK = Counter("voicecart_gateway_feedback_total", "Feedback events the gateway sent, by outcome",
                   ["kind", "outcome"])
"""outcome: queued (before the platform gets its answer), delivered, refused (a 4xx), dropped (retries spent)."""


class EndpointUnavailable(Exception):
    """The endpoint gave no usable answer; the message says why (no personal data)."""


class Endpoint:
    def __init__(self, settings: EndpointSettings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        base = settings.url.rstrip("/")
        self.predict_url = f"{base}/v1/models/{settings.model_name}:predict"
        self.feedback_url = f"{(settings.feedback_url or base).rstrip('/')}/v1/feedback"
        headers = {"content-type": "application/json"}
        if settings.host_header:
            headers["host"] = settings.host_header
        self._client = httpx.AsyncClient(timeout=settings.timeout_s, headers=headers, transport=transport,
                                         limits=httpx.Limits(max_connections=64, max_keepalive_connections=32))
        self._pending: set[asyncio.Task] = set()

    async def resolve(self, request: ResolveRequest) -> ResolveResponse:
        body = orjson.dumps({"instances": [request.model_dump(exclude_none=True)]})
        try:
            response = await self._client.post(self.predict_url, content=body)
        except httpx.TimeoutException:
            raise EndpointUnavailable("resolve: the endpoint did not answer in time") from None
        except httpx.HTTPError as exc:
            raise EndpointUnavailable(f"resolve: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise EndpointUnavailable(f"resolve: HTTP {response.status_code}: {_error_of(response)}")
        try:
            (answer,) = orjson.loads(response.content)["predictions"]
            return ResolveResponse.model_validate(answer)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, ValidationError) as exc:
            raise EndpointUnavailable(f"resolve: unreadable answer ({type(exc).__name__})") from None

    def send_feedback(self, event: FeedbackEvent) -> None:
        """Queue one event; delivered in the background (the shopper never waits for it)."""
        FEEDBACK.labels(kind=event.kind, outcome="queued").inc()
        task = asyncio.get_running_loop().create_task(self._deliver(event))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _deliver(self, event: FeedbackEvent) -> bool:
        body = event.model_dump_json().encode()
        delay = 0.05
        for attempt in range(self.settings.feedback_retries + 1):
            try:
                response = await self._client.post(self.feedback_url, content=body)
            except httpx.HTTPError as exc:
                why = type(exc).__name__
            else:
                if response.status_code in (200, 202):
                    FEEDBACK.labels(kind=event.kind, outcome="delivered").inc()
                    return True
                if 400 <= response.status_code < 500:  # refused for good (invalid, or 409 conflict): no retry
                    FEEDBACK.labels(kind=event.kind, outcome="refused").inc()
                    log.warning("feedback %s refused: HTTP %s %s", event.event_id, response.status_code,
                                _error_of(response))
                    return False
                why = f"HTTP {response.status_code}"
            if attempt < self.settings.feedback_retries:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
        FEEDBACK.labels(kind=event.kind, outcome="dropped").inc()
        log.error("feedback %s not delivered after %d attempts (%s)", event.event_id,
                  self.settings.feedback_retries + 1, why)
        return False

    async def drain(self, timeout_s: float = 5.0) -> None:
        """Wait for queued feedback (on shutdown)."""
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=timeout_s)

    async def close(self) -> None:
        await self.drain()
        await self._client.aclose()


def _error_of(response: httpx.Response) -> str:
    try:
        return str(orjson.loads(response.content).get("error", ""))[:200]
    except (orjson.JSONDecodeError, AttributeError):
        return response.text[:200]
