"""The KServe adapters: the resolve transformer (V1), the ranker predictor (V2), the feedback route.

The transport is KServe's ModelServer; these classes only turn protocol payloads into engine
calls (STYLE.md: the model never parses HTTP). Nothing runs on the event loop but parsing and
dispatch: every resolve, score and feedback append runs in a worker thread, and a profile read that is
still out when a resolve's candidates are ready is awaited on the loop (no thread waits on the store), so
a slow dependency delays only the requests that need it, never the health probes. ``voicecart serve`` calls
:func:`serve`; ``serving.workers`` > 1 starts that many processes on the port, each on its own
listening socket (SO_REUSEPORT: the kernel spreads the connections).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import gc
import logging
import multiprocessing as mp
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from kserve import InferOutput, InferRequest, InferResponse, Model
from kserve.errors import InvalidInput, ModelNotFound, ModelNotReady, ServerNotReady
from kserve.utils.utils import is_structured_cloudevent
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from voicecart.config import Settings
from voicecart.schemas import FeedbackEvent, ResolveRequest
from voicecart.serving import metrics
from voicecart.serving.bundle import load_serving_model
from voicecart.serving.engine import Health, Pending, ResolutionEngine, conversation_store
from voicecart.serving.errors import BundleError
from voicecart.serving.feedback import FeedbackIntake, FeedbackLog, outside_window
from voicecart.serving.openapi import RANKER_SUFFIX, allowed_methods, check_v2_request, openapi_document

log = logging.getLogger("voicecart.serving.server")

class JsonResponse(Response):
    """A JSON body rendered by orjson (FastAPI's JsonResponse is deprecated and warns on each use)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


RECEIVED_AT: contextvars.ContextVar[float | None] = contextvars.ContextVar("received_at", default=None)
"""``time.perf_counter()`` when the current HTTP request reached the server (set by :class:`Frontdoor`)."""


def validation_message(exc: ValidationError, prefix: str = "") -> str:
    """``instances[0].customer_id: Field required; ...`` — every bad field named."""
    parts = []
    for err in exc.errors():
        loc = prefix + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]).lstrip(".")
        parts.append(f"{loc or '<body>'}: {err['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


def parse_instances(payload: Any, max_instances: int) -> list[ResolveRequest]:
    """V1 body -> ResolveRequests, raising InvalidInput naming the bad field (the rules of PredictRequest)."""
    if isinstance(payload, (bytes, bytearray)):
        try:
            payload = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(f"body: not valid JSON ({exc})") from None
    if not isinstance(payload, dict):
        raise InvalidInput(f"body: expected a JSON object with 'instances', got {type(payload).__name__}")
    if "instances" not in payload:
        raise InvalidInput("instances: field required")
    extra = sorted(set(payload) - {"instances", "parameters"})
    if extra:
        raise InvalidInput(f"{extra[0]}: extra field not permitted (expected 'instances')")
    if payload.get("parameters") is not None and not isinstance(payload["parameters"], dict):
        raise InvalidInput("parameters: expected an object or null")
    instances = payload["instances"]
    if not isinstance(instances, list):
        raise InvalidInput(f"instances: expected a list, got {type(instances).__name__}")
    if not instances:
        raise InvalidInput("instances: must hold at least one ResolveRequest")
    if len(instances) > max_instances:
        raise InvalidInput(f"instances: at most {max_instances} per call, got {len(instances)}")
    out = []
    for i, item in enumerate(instances):
        try:
            out.append(ResolveRequest.model_validate(item))
        except ValidationError as exc:
            raise InvalidInput(validation_message(exc, f"instances[{i}].")) from None
    return out


class ResolveModel(Model):
    """The transformer: V1 ``instances`` of ResolveRequest -> ``predictions`` of ResolveResponse."""

    def __init__(self, name: str, engine: ResolutionEngine, pool: ThreadPoolExecutor, max_instances: int = 16) -> None:
        super().__init__(name)
        self.engine = engine
        self.pool = pool
        self.max_instances = max_instances
        self.ready = True

    def load(self) -> bool:
        self.ready = True
        return True

    async def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> dict:
        return {"instances": parse_instances(payload, self.max_instances)}

    async def predict(self, payload: dict, headers: dict[str, str] | None = None,
                      response_headers: dict[str, str] | None = None) -> dict:
        requests: list[ResolveRequest] = payload["instances"]
        received = RECEIVED_AT.get()
        answers = await asyncio.gather(*[self._answer(r, received) for r in requests])
        return {"predictions": [a.model_dump(mode="json") for a in answers]}

    async def _answer(self, request: ResolveRequest, received: float | None):  # noqa: ANN202 - ResolveResponse
        """The engine's work on a worker thread; a profile read still out after it is awaited here, on the
        loop, for at most its share of the deadline, so no thread waits on the store."""
        loop = asyncio.get_running_loop()
        step = await loop.run_in_executor(self.pool, self.engine.begin, request, received)
        if isinstance(step, Pending):
            await asyncio.wait([asyncio.wrap_future(step.read)], timeout=step.wait_s())  # never cancels the read
            step = await loop.run_in_executor(self.pool, self.engine.finish, step)
        return step


class RankerModel(Model):
    """The ranker as a V2 (Open Inference Protocol) predictor, run in process by ONNX Runtime."""

    def __init__(self, name: str, engine: ResolutionEngine, pool: ThreadPoolExecutor) -> None:
        super().__init__(name)
        self.engine = engine
        self.pool = pool
        self.ready = True

    def _local(self):  # noqa: ANN202 - predictor_onnx.OnnxScorer
        scorer = self.engine.model.scorer
        return getattr(scorer, "fallback", scorer)  # the in-process session behind a remote predictor

    async def predict(self, payload: InferRequest, headers: dict[str, str] | None = None,
                      response_headers: dict[str, str] | None = None) -> InferResponse:
        if not isinstance(payload, InferRequest):
            raise InvalidInput("body: expected a V2 inference request")
        local = self._local()
        feeds = {}
        for tensor in payload.inputs:
            if tensor.name not in local.input_names:
                raise InvalidInput(f"inputs.{tensor.name}: unknown input (expected {local.input_names})")
            try:
                feeds[tensor.name] = np.asarray(tensor.as_numpy(), dtype=np.float32)
            except Exception as exc:  # noqa: BLE001
                raise InvalidInput(f"inputs.{tensor.name}: unreadable tensor ({exc})") from None
        missing = set(local.input_names) - set(feeds)
        if missing:
            raise InvalidInput(f"inputs.{sorted(missing)[0]}: required input missing")
        try:
            scores = await asyncio.get_running_loop().run_in_executor(self.pool, local.score, feeds)
        except Exception as exc:  # noqa: BLE001 - wrong shapes are the caller's fault
            raise InvalidInput(f"inputs: the ranker cannot score these tensors ({type(exc).__name__})") from None
        out = InferOutput(name=local.output_name, shape=list(scores.shape), datatype="FP32", data=scores)
        return InferResponse(response_id=payload.id or uuid.uuid4().hex, model_name=self.name,
                             infer_outputs=[out], model_version=self.engine.model.version)


# -- the front door: timing, body limit, methods --------------------------------------------------

def _route(path: str) -> str:
    """A small, fixed set of labels for the latency histogram (never the raw path)."""
    for suffix, label in ((":predict", "predict"), ("/infer", "infer"), ("/feedback", "feedback"),
                          (":reload", "reload"), ("/health/ready", "ready"), ("/health/live", "live"),
                          ("/metrics", "metrics")):
        if path.endswith(suffix):
            return label
    return "other"


class Frontdoor:
    """ASGI middleware in front of everything.

    * times each request from receipt to its last response byte (``voicecart_request_latency_seconds``)
      and publishes the receipt time to the handlers (:data:`RECEIVED_AT`);
    * refuses a body over ``max_bytes`` with 413 before anything parses it;
    * answers a method the OpenAPI document does not list for a path with 405 and ``Allow``;
    * answers a plain-JSON V1 predict for a model in ``direct`` itself (``serving.direct_predict``): the body
      goes to the model's KServe pipeline (``Model.__call__``: preprocess, predict, postprocess) as KServe's
      V1 route would send it, without the router, the dependency solver and the response classes between.
      A CloudEvent, another content type or a model not ready takes KServe's route, body replayed.
    """

    def __init__(self, app: Any, max_bytes: int, methods: dict[str, frozenset[str]],
                 direct: dict[str, ResolveModel] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.methods = methods
        self.direct = direct or {}

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        RECEIVED_AT.set(start)
        route = _route(scope["path"])
        status = 0

        async def timed_send(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                metrics.request_latency(route).observe(time.perf_counter() - start)
                if 400 <= status < 500:
                    metrics.BAD_REQUESTS.labels(route=route, status=str(status)).inc()

        allowed = self.methods.get(scope["path"])
        if allowed is not None and scope["method"] not in allowed:
            listed = ", ".join(sorted(allowed))
            return await _reject(timed_send, 405, f"method: {scope['method']} not allowed (allowed: {listed})",
                                 [(b"allow", listed.encode())], f"{scope['method']} {scope['path']}")
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return await _reject(timed_send, 413, f"body: larger than {self.max_bytes} bytes",
                                 where=_where(scope))
        seen = 0

        async def limited() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge()
            return message

        try:
            model = self.direct.get(scope["path"])
            if model is not None and scope["method"] == "POST" and _plain_json(scope["headers"]) and model.ready:
                await self._predict(model, scope, limited, timed_send)
            else:
                await self.app(scope, limited, timed_send)
        except _TooLarge:
            await _reject(timed_send, 413, f"body: larger than {self.max_bytes} bytes",
                          where=_where(scope))
        except _Disconnected:
            log.debug("client gone before the body of %s arrived", _where(scope))

    async def _predict(self, model: ResolveModel, scope: dict, receive: Any, send: Any) -> None:
        """One V1 predict, answered as KServe's route answers it: same decode, same model call, same errors."""
        body = await _read_body(receive)
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return await _reject(send, 400, f"Unrecognized request format: {exc}", where=_where(scope))
        if isinstance(payload, dict) and is_structured_cloudevent(payload):  # KServe unwraps and rewraps it
            return await self.app(scope, _replay(body, receive), send)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            response, extra = await model(payload, headers=headers)
        except InvalidInput as exc:
            return await _reject(send, 400, str(exc), where=_where(scope))
        except Exception:  # noqa: BLE001 - as the app's handler: a 500 with one shape, the traceback logged
            log.error("500 %s", _where(scope), exc_info=True)
            return await _reject(send, 500, "server: internal error", log_line=False)
        out = orjson.dumps(response, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)
        more = [(k.lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in (extra or {}).items()
                if k.lower() not in ("content-length", "content-type")]  # a model's own headers, as KServe passes them
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(out)).encode()), (b"content-type", b"application/json"),
                                *more]})
        await send({"type": "http.response.body", "body": out})


def _plain_json(headers: list) -> bool:
    """No CloudEvent headers, and a JSON content type or none (what KServe's decode reads as plain JSON)."""
    for key, value in headers:
        if key.startswith(b"ce-") or (key == b"content-type" and value != b"application/json"):
            return False
    return True


class _Disconnected(Exception):
    pass


async def _read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away mid-body: nothing runs (as Starlette's
            raise _Disconnected()                # request.body() raises ClientDisconnect on KServe's route)
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Any) -> Callable:
    """A receive that hands the app the body already read, then whatever the client sends next."""
    sent = False

    async def replay() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _where(scope: dict) -> str:
    return f"{scope['method']} {scope['path']}"


class _TooLarge(Exception):
    pass


async def _reject(send: Any, status: int, message: str, headers: list | None = None, where: str = "",
                  log_line: bool = True) -> None:
    if log_line:
        log.info("%d %s: %s", status, where, message)
    body = orjson.dumps({"error": message})
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


# -- one error shape, one log line ----------------------------------------------------------------

def _error(status: int, message: str, request: Request, headers: dict | None = None) -> JsonResponse:
    log.info("%d %s %s: %s", status, request.method, request.url.path, message)
    return JsonResponse({"error": message}, status_code=status, headers=headers)


def add_error_handlers(app: Any) -> None:
    """Every error as ``{"error": "<field>: <reason>"}``; a 4xx logs one line, only a 5xx a traceback."""
    async def invalid(request: Request, exc: Exception) -> JsonResponse:
        return _error(400, str(exc), request)

    async def not_found(request: Request, exc: Exception) -> JsonResponse:
        return _error(404, f"model: {exc}", request)

    async def not_ready(request: Request, exc: Exception) -> JsonResponse:
        return _error(503, f"model: {exc}", request)

    async def http_error(request: Request, exc: StarletteHTTPException) -> JsonResponse:
        what = "path" if exc.status_code == 404 else "method" if exc.status_code == 405 else "request"
        return _error(exc.status_code, f"{what}: {exc.detail}", request, getattr(exc, "headers", None))

    async def unparsable(request: Request, exc: RequestValidationError) -> JsonResponse:
        parts = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
            parts.append(f"{loc}: {err.get('msg')}")
        return _error(400, "; ".join(parts) or "body: invalid", request)

    async def internal(request: Request, exc: Exception) -> JsonResponse:
        log.error("500 %s %s", request.method, request.url.path, exc_info=exc)
        return JsonResponse({"error": "server: internal error"}, status_code=500)

    app.exception_handlers.clear()
    for kind, handler in ((InvalidInput, invalid), (ModelNotFound, not_found), (ModelNotReady, not_ready),
                          (ServerNotReady, not_ready), (StarletteHTTPException, http_error),
                          (RequestValidationError, unparsable), (Exception, internal)):
        app.add_exception_handler(kind, handler)


# -- routes beside the models ---------------------------------------------------------------------

def add_routes(app: Any, service: "Service", document: dict, dataplane: Any, repository: Any) -> None:
    """Every route of the OpenAPI document, and no other: KServe's V1/V2 handlers where they serve as
    they are; ours for feedback, reload, readiness and the checked V2 infer. KServe's explain,
    versions and repository load/unload are not served (a caller must not unload the model)."""
    from kserve.protocol.rest.server import metrics_handler
    from kserve.protocol.rest.v1_endpoints import V1Endpoints
    from kserve.protocol.rest.v2_datamodels import InferenceRequest
    from kserve.protocol.rest.v2_endpoints import V2Endpoints

    s = service.settings.serving
    engine, io = service.engine, service.io_pool
    ranker = s.model_name + RANKER_SUFFIX
    v1, v2 = V1Endpoints(dataplane, repository), V2Endpoints(dataplane, repository)

    async def feedback(request: Request) -> JsonResponse:
        received = datetime.now(timezone.utc)
        try:
            data = orjson.loads(await request.body())
        except orjson.JSONDecodeError as exc:
            return _error(400, f"body: not valid JSON ({exc})", request)
        try:
            event = FeedbackEvent.model_validate(data)
        except ValidationError as exc:
            return _error(400, validation_message(exc), request)
        late = outside_window(event.timestamp, received, s.feedback_max_age_s, s.feedback_max_ahead_s)
        if late:
            return _error(400, late, request)
        appended, flags = await asyncio.get_running_loop().run_in_executor(io, service.receive_feedback, event)
        if appended.conflict:
            metrics.FEEDBACK_CONFLICTS.inc()
            return _error(409, f"event_id: {event.event_id!r} is already logged with a different "
                               f"{', '.join(appended.conflict)}; the logged event is kept", request)
        metrics.FEEDBACK.labels(kind=event.kind, duplicate=str(appended.duplicate).lower()).inc()
        # durable (fsync'd) before this 2xx; the push to the online store happens after it
        return JsonResponse({"event_id": event.event_id, "duplicate": appended.duplicate, "flags": list(flags)},
                              status_code=200 if appended.duplicate else 202)

    async def reload(request: Request) -> JsonResponse:
        try:
            version = await asyncio.get_running_loop().run_in_executor(io, service.reload)
        except BundleError as exc:
            metrics.RELOADS.labels(outcome="failed").inc()
            return _error(409, f"model_dir: {exc}", request)
        metrics.RELOADS.labels(outcome="ok").inc()
        return JsonResponse({"model_version": version})

    async def canary(request: Request) -> JsonResponse:
        return JsonResponse(service.canary_state())

    async def ready(request: Request) -> JsonResponse:
        degraded = service.health.degraded()
        ok = not degraded or s.ready_when_degraded
        return JsonResponse({"ready": ok, "model_version": engine.model.version, "degraded": degraded,
                               "dependencies": service.health.report()}, status_code=200 if ok else 503)

    async def infer(request: Request, model_name: str) -> Response:
        body = await request.body()
        if "inference-header-content-length" in request.headers:  # binary tensors: KServe decodes them
            return await v2.infer(request, Response(), model_name, body)
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return _error(400, f"body: not valid JSON ({exc})", request)
        try:
            if model_name == ranker:
                check_v2_request(data, n_features=service.n_features)
            parsed = InferenceRequest.model_validate(data)
        except ValidationError as exc:
            return _error(400, validation_message(exc), request)
        except ValueError as exc:
            return _error(400, str(exc), request)
        return await v2.infer(request, Response(), model_name, parsed)

    multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
    for path, handler, method in (
            ("/metrics", _metrics_handler_multiprocess() if multiprocess else metrics_handler, "GET"),
            # ours before KServe's /v1/models/{model_name}, which would read "voicecart:canary" as a model name
            (f"/v1/models/{s.model_name}:canary", canary, "GET"),
            ("/v1/models", v1.models, "GET"), ("/v1/models/{model_name}", v1.model_ready, "GET"),
            ("/v1/models/{model_name}:predict", v1.predict, "POST"),
            (f"/v1/models/{s.model_name}:reload", reload, "POST"), ("/v1/feedback", feedback, "POST"),
            ("/v2", v2.metadata, "GET"), ("/v2/health/live", v2.live, "GET"), ("/v2/health/ready", ready, "GET"),
            ("/v2/models", v2.models, "GET"), ("/v2/models/{model_name}", v2.model_metadata, "GET"),
            ("/v2/models/{model_name}/ready", v2.model_ready, "GET"),
            ("/v2/models/{model_name}/infer", infer, "POST")):
        app.add_api_route(path, handler, methods=[method], response_model=None)
    app.openapi = lambda: document


# -- assembling a server --------------------------------------------------------------------------

def _configure_logs() -> None:
    """One JSON line per request on stderr (voicecart.serving.requests); KServe's per-request
    access and timing lines would cost more than a resolve, so they are off."""
    import warnings

    from fastapi.exceptions import FastAPIDeprecationWarning

    warnings.filterwarnings("ignore", category=FastAPIDeprecationWarning)  # KServe's app class: ORJSONResponse
    for noisy in ("uvicorn.access", "kserve.trace"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    ours = logging.getLogger("voicecart")
    if not ours.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        ours.addHandler(handler)
        ours.setLevel(logging.INFO)
        ours.propagate = False


class Service:
    """Everything one server process holds: engine, feedback intake, reload, dependency health."""

    def __init__(self, model_dir: str | Path, settings: Settings, profiles: Any = None, stats: Any = None) -> None:
        self.model_dir = str(model_dir)
        self.settings = settings
        self.stats = stats  # serving.bundle.StatsSource: product statistics, read at load and on each reload
        s = settings.serving
        self.profiles = profiles
        self.health = Health()
        self.feedback_log = FeedbackLog(s.feedback_db)
        push = None
        if profiles is not None and hasattr(profiles, "push"):
            from voicecart.serving.profiles import feedback_push

            push = feedback_push(profiles)
        from voicecart.features.offline import feedback_sink

        offline = feedback_sink(settings.features.offline, settings.features.store_dir)
        self.intake = FeedbackIntake(self.feedback_log, push, s.feedback_push_interval_s, offline=offline)
        model = self._load()
        conversations = conversation_store(s, getattr(settings.features.online, "url", None), self.health)
        self.engine = ResolutionEngine(model, profiles, s, max_candidates=settings.ranking.max_candidates,
                                       on_feedback=self.intake.receive, conversations=conversations,
                                       health=self.health)
        self.pool = ThreadPoolExecutor(max_workers=s.threads(), thread_name_prefix="resolve")
        # feedback appends (an fsync each) and reloads (a bundle load) wait on the disk: never on the resolve thread
        self.io_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="io")
        self._reload_lock = threading.Lock()
        self._products: tuple[str, frozenset[str]] = ("", frozenset())
        canary, percent = self._load_canary()
        if canary is not None:
            self.engine.swap(model, canary, percent)
        if hasattr(profiles, "warm_up"):
            profiles.warm_up()
        self.engine.warm_up()

    @property
    def n_features(self) -> int:
        shape = self._ranker_shape()
        return int(shape[-1]) if shape and isinstance(shape[-1], int) else 0

    def _ranker_shape(self) -> list:
        scorer = self.engine.model.scorer
        local = getattr(scorer, "fallback", scorer)
        return list(local.session.get_inputs()[0].shape) if hasattr(local, "session") else []

    def _load(self):  # noqa: ANN202
        s = self.settings.serving
        return load_serving_model(self.model_dir, stats=self.stats, predictor=s.predictor)

    def _canary_pointer(self):  # noqa: ANN202 - registry.CanaryPointer | None
        """The registry's canary waiting or running beside its champion (None for a bundle folder)."""
        from voicecart.registry import Registry
        from voicecart.schemas.locations import local_path

        path = local_path(self.model_dir)
        if path is not None and not (path / "voicecart").is_dir():
            return None  # a bundle folder, not a registry: no canary
        try:
            pointer = Registry(self.model_dir, name=self.settings.serving.model_name).canary()
        except Exception as exc:  # noqa: BLE001 - an unreadable pointer: the champion alone serves
            log.warning("canary pointer unreadable: %s", exc)
            return None
        return pointer if pointer is not None and pointer.state in ("requested", "running") else None

    def _load_canary(self):  # noqa: ANN202 - (ServingModel | None, percent)
        """The canary's model beside the champion, or (None, 0); a bundle that fails to load never takes traffic."""
        pointer = self._canary_pointer()
        if pointer is None:
            return None, 0
        s = self.settings.serving
        try:
            model = load_serving_model(self.model_dir, stats=self.stats, predictor=s.predictor, version=pointer.version)
        except BundleError as exc:  # a canary whose bundle fails to load never takes traffic
            log.warning("canary %s refused: %s", pointer.version, exc)
            return None, 0
        return model, pointer.percent

    def reload(self) -> str:
        """Load the bundle now at model_dir (e.g. a registry's new champion, and its canary) and swap it in."""
        with self._reload_lock:
            model = self._load()  # fully loaded before anyone sees it
            canary, percent = self._load_canary()
            self.engine.swap(model, canary, percent)
        log.info("reloaded model version %s%s", model.version,
                 f" with canary {canary.version} at {percent}%" if canary is not None else "")
        return model.version

    def canary_state(self) -> dict:
        engine = self.engine
        champion, canary = engine.model, engine.canary
        return {"percent": engine.canary_percent, "since_s": round(time.time() - engine.canary_since, 3),
                "champion": {"version": champion.version, **engine.arms["champion"].as_dict()},
                "canary": None if canary is None else {"version": canary.version, **engine.arms["canary"].as_dict()}}

    def feedback_flags(self, event: FeedbackEvent) -> tuple[str, ...]:
        """What training should know about an event: products not in the catalogue, customers the store lacks."""
        model = self.engine.model
        if self._products[0] != model.version:
            self._products = (model.version, frozenset(str(p) for p in model.catalog.product_ids))
        products = self._products[1]
        flags = []
        if event.product_id not in products or (event.substitute_id and event.substitute_id not in products):
            flags.append("unknown_product")
        breaker = self.engine.profile_breaker
        if self.profiles is None or (breaker is not None and not breaker.allow()):
            flags.append("customer_unchecked")
        else:
            try:
                if self.profiles.get(event.customer_id) is None:
                    flags.append("unknown_customer")
            except Exception:  # noqa: BLE001 - store down: the event is kept, marked unchecked
                flags.append("customer_unchecked")
        return tuple(flags)

    def receive_feedback(self, event: FeedbackEvent):  # noqa: ANN201 - (Appended, flags)
        event = self.engine.feedback_arm(event)  # which arm answered it (and that arm's counts)
        flags = self.feedback_flags(event)
        return self.intake.receive(event, flags), flags

    def watch(self, every_s: float) -> None:
        def loop() -> None:
            from voicecart.registry import load_bundle

            while True:
                threading.Event().wait(every_s)
                try:
                    pointer = self._canary_pointer()
                    canary = None if pointer is None else pointer.version
                    serving = None if self.engine.canary is None else self.engine.canary.version
                    if load_bundle(self.model_dir).version != self.engine.model.version or canary != serving:
                        self.reload()
                except Exception as exc:  # noqa: BLE001 - keep serving the current model
                    log.warning("champion check failed: %s", exc)

        threading.Thread(target=loop, name="champion-watch", daemon=True).start()

    def describe(self) -> str:
        """One line for the start-up banner: the profile source, predictor and conversation store."""
        s = self.settings.serving
        profiles = getattr(self.profiles, "describe", lambda: type(self.profiles).__name__)() \
            if self.profiles is not None else "none (popularity answers only)"
        conv = self.engine.conversations
        conversations = f"redis {conv.url}" if hasattr(conv, "url") else "memory (this process)"
        predictor = f"Triton at {s.predictor.url}" if s.predictor.type == "triton" else "in-process ONNX Runtime"
        return (f"profiles: {profiles}; predictor: {predictor}; "
                f"conversations: {conversations}; feedback log: {s.feedback_db} (offline: {self.intake.offline_name})")


def _metrics_handler_multiprocess() -> Callable:
    """/metrics over every worker process (prometheus_client's multiprocess mode)."""
    from prometheus_client import CollectorRegistry, exposition, multiprocess

    async def handler(request: Request) -> Response:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        encoder, content_type = exposition.choose_encoder(request.headers.get("accept"))
        return Response(content=encoder(registry), headers={"content-type": content_type})

    return handler


def build_server(service: Service) -> Any:
    """The uvicorn server of one process: KServe's app with our routes, handlers and front door."""
    from kserve import ModelServer
    from kserve import model_server as kserve_server
    from kserve.protocol.rest.server import RESTServer

    s = service.settings.serving
    models = [ResolveModel(s.model_name, service.engine, service.pool, s.max_instances),
              RankerModel(s.model_name + RANKER_SUFFIX, service.engine, service.pool)]
    model_server = ModelServer(http_port=s.port, enable_grpc=False, workers=1, enable_latency_logging=False)
    for model in models:
        model_server.register_model(model)
        model.enable_latency_logging = False
    rest = RESTServer(kserve_server.FASTAPI_APP_IMPORT_STRING, model_server.dataplane,
                      model_server.model_repository_extension, s.port, workers=1)
    rest.config.host = s.host
    app = kserve_server.app
    document = openapi_document(s.model_name, s.max_instances, service.n_features or None)
    add_routes(app, service, document, model_server.dataplane, model_server.model_repository_extension)
    add_error_handlers(app)
    direct = {f"/v1/models/{s.model_name}:predict": models[0]} if s.direct_predict else None
    app.add_middleware(Frontdoor, max_bytes=s.max_body_bytes, methods=allowed_methods(document), direct=direct)
    return rest


def _run(service: Service, sockets: list | None = None, push: bool = True) -> None:
    s = service.settings.serving
    if push:
        service.intake.start()  # replays events a previous process left unpushed
    if s.reload_poll_s > 0:
        service.watch(s.reload_poll_s)
    rest = build_server(service)
    _configure_logs()
    # Everything loaded so far (torch, feast, pandas, the catalogue) lives as long as the process:
    # move it out of the collector's reach so a full collection never walks it mid-request.
    gc.collect()
    gc.freeze()
    rest._server.run(sockets=sockets)  # noqa: SLF001 - RESTServer.run would rebuild the app


def worker_cpu(index: int, workers: int, allowed: set[int], mode: str = "auto") -> int | None:
    """The CPU worker ``index`` of ``workers`` is pinned to, or None to leave it to the scheduler.

    ``auto`` pins only when the workers are a whole multiple of the CPUs the process may use (one busy
    process per core, or the same number on each): each worker's threads (event loop, resolve thread,
    profile reads) then hand work to each other on one CPU, not across vCPUs, where each wake-up cost this
    VM about 60 µs of CPU instead of 10 (docs/serving.md, Workers). Fewer workers than CPUs stay unpinned,
    free to use the idle cores, and so do uneven counts (3 on 2 CPUs would give one CPU two of the three
    workers that the kernel feeds equally).
    """
    if mode != "auto" or not allowed or workers < len(allowed) or workers % len(allowed):
        return None
    return sorted(allowed)[index % len(allowed)]


def _pin(index: int, settings: Settings) -> None:
    """Pin every thread of this worker (those a library started at import included) to its CPU; a
    refusal (a sandbox without the call) leaves the worker unpinned, never stops it."""
    s = settings.serving
    if not hasattr(os, "sched_setaffinity"):
        return
    cpu = worker_cpu(index, s.workers, os.sched_getaffinity(0), s.cpu_affinity)
    if cpu is None:
        return
    try:
        tasks = [int(t) for t in os.listdir("/proc/self/task")] if os.path.isdir("/proc/self/task") else [0]
        for task in tasks:
            with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
                os.sched_setaffinity(task, {cpu})
    except OSError as exc:
        log.warning("worker %d not pinned to CPU %d: %s", index, cpu, exc)
        return
    log.info("worker %d pinned to CPU %d (serving.cpu_affinity: %s)", index, cpu, s.cpu_affinity)


def _worker(model_dir: str, settings: Settings, profiles_factory: Callable | None, stats: Any, sockets: list,
            index: int) -> None:
    """One of ``serving.workers`` processes: its own engine and thread pool on its own socket of the port."""
    _configure_logs()
    _pin(index, settings)  # before the engine's threads start: they inherit the CPU
    profiles = profiles_factory() if profiles_factory is not None else None
    # one process pushes feedback to the online store (the log is shared); all append
    _run(Service(model_dir, settings, profiles, stats), sockets, push=index == 0)


def serve(model_dir: str | Path, settings: Settings, profiles: Any = None, service: Service | None = None,
          profiles_factory: Callable[[], Any] | None = None, stats: Any = None) -> None:
    """Start the server on settings.serving.host:port; it binds once model and catalogue are loaded.

    ``service`` lets a caller assemble the engine itself (the benchmark's naive path does).
    With ``serving.workers`` > 1, ``profiles_factory`` (picklable, e.g. ``functools.partial``)
    builds each worker's profile source, and each worker listens on its own socket of the port. ``stats`` (a
    picklable ``serving.bundle.StatsSource``) is where every worker reads the product statistics.
    """
    s = settings.serving
    if s.workers == 1:
        if service is None:
            profiles = profiles if profiles is not None else (profiles_factory() if profiles_factory else None)
            service = Service(model_dir, settings, profiles, stats)  # loads before the port opens: ready == loaded
        _run(service)
        return
    _serve_workers(str(model_dir), settings, profiles_factory, stats)


def reuse_port_socket(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A listening socket on host:port that other sockets of this user share (SO_REUSEPORT).

    One socket per worker, not one socket for all: the kernel then hashes each new connection to one of
    them. On one shared socket the worker that wakes first accepts every connection waiting (asyncio
    accepts up to its backlog per wake-up), so a client's burst of connections lands on one process while
    the other idles (hey's 10 connections did).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def _serve_workers(model_dir: str, settings: Settings, profiles_factory: Callable | None, stats: Any) -> None:
    import shutil
    import signal
    import tempfile

    s = settings.serving
    metrics_dir = tempfile.mkdtemp(prefix="voicecart-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir  # inherited by the spawned workers
    socks = [reuse_port_socket(s.host, s.port) for _ in range(s.workers)]
    mp.allow_connection_pickling()
    spawn = mp.get_context("spawn")
    procs = [spawn.Process(target=_worker, args=(model_dir, settings, profiles_factory, stats, [sock], i),
                           name=f"voicecart-worker-{i}") for i, sock in enumerate(socks)]
    for p in procs:
        p.start()
    log.info("started %d workers on %s:%d", s.workers, s.host, s.port)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(0.5):
        if any(p.exitcode is not None for p in procs):  # a worker died: exit, the orchestrator restarts the pod
            log.error("a worker exited (%s); stopping", [p.exitcode for p in procs])
            break
    for p in procs:
        if p.exitcode is None:
            p.terminate()
    for p in procs:
        p.join(timeout=30)
    for sock in socks:
        sock.close()
    shutil.rmtree(metrics_dir, ignore_errors=True)


__all__ = ["Frontdoor", "RankerModel", "ResolveModel", "Service", "build_server", "serve", "worker_cpu"]
