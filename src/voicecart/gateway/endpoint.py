"""The resolve endpoint over HTTP, as any client sees it: KServe V1 predict and the feedback intake.

One keep-alive aiohttp session per gateway process (httpx's async client cost about three times
the CPU per call here, which matters against a 2 ms budget). A resolve that fails (unreachable, timeout, an error
status) raises :class:`EndpointUnavailable` and the adapter apologises in speech; feedback is sent
off the answer's path, retried while the intake does not acknowledge it, and never raises.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
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
    def __init__(self, settings: EndpointSettings) -> None:
        self.settings = settings
        base = settings.url.rstrip("/")
        self.predict_url = f"{base}/v1/models/{settings.model_name}:predict"
        self.feedback_url = f"{(settings.feedback_url or base).rstrip('/')}/v1/feedback"
        self._headers = {"content-type": "application/json"}
        if settings.host_header:
            self._headers["host"] = settings.host_header
        self._session: aiohttp.ClientSession | None = None
        self._pending: set[asyncio.Task] = set()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:  # created on the running loop
            self._session = aiohttp.ClientSession(
                headers=self._headers, timeout=aiohttp.ClientTimeout(total=self.settings.timeout_s),
                connector=aiohttp.TCPConnector(limit=64, keepalive_timeout=30), skip_auto_headers=("User-Agent",))
        return self._session

    async def _post(self, url: str, body: bytes) -> tuple[int, bytes]:
        async with self._client().post(url, data=body) as response:
            return response.status, await response.read()

    async def resolve(self, request: ResolveRequest) -> ResolveResponse:
        body = orjson.dumps({"instances": [request.model_dump(exclude_none=True)]})
        try:
            status, content = await self._post(self.predict_url, body)
        except asyncio.TimeoutError:
            raise EndpointUnavailable("resolve: the endpoint did not answer in time") from None
        except aiohttp.ClientError as exc:
            raise EndpointUnavailable(f"resolve: {type(exc).__name__}") from None
        if status != 200:
            raise EndpointUnavailable(f"resolve: HTTP {status}: {_error_of(content)}")
        try:
            (answer,) = orjson.loads(content)["predictions"]
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
                status, content = await self._post(self.feedback_url, body)
            except (asyncio.TimeoutError, aiohttp.ClientError) as exc:
                why = type(exc).__name__
            else:
                if status in (200, 202):
                    FEEDBACK.labels(kind=event.kind, outcome="delivered").inc()
                    return True
                if 400 <= status < 500:  # refused for good (invalid, or 409 conflict): no retry
                    FEEDBACK.labels(kind=event.kind, outcome="refused").inc()
                    log.warning("feedback %s refused: HTTP %s %s", event.event_id, status, _error_of(content))
                    return False
                why = f"HTTP {status}"
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
        if self._session is not None:
            await self._session.close()


def _error_of(content: bytes) -> str:
    try:
        return str(orjson.loads(content).get("error", ""))[:200]
    except (orjson.JSONDecodeError, AttributeError):
        return content[:200].decode("utf-8", "replace")
