"""The KServe adapters: the resolve transformer (V1), the ranker predictor (V2), the feedback route.

The transport is KServe's ModelServer; these classes only turn protocol payloads into engine
calls (STYLE.md: the model never parses HTTP). ``voicecart serve`` calls :func:`serve`; the
integration tests start it on a free localhost port in a subprocess.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from fastapi import Request
from fastapi.responses import ORJSONResponse
from kserve import InferOutput, InferRequest, InferResponse, Model
from kserve.errors import InvalidInput
from pydantic import ValidationError

from voicecart.config import Settings
from voicecart.schemas import FeedbackEvent, ResolveRequest
from voicecart.serving import metrics
from voicecart.serving.bundle import load_serving_model
from voicecart.serving.engine import ResolutionEngine
from voicecart.serving.errors import BundleError
from voicecart.serving.feedback import FeedbackIntake, FeedbackLog

log = logging.getLogger("voicecart.serving.server")

RANKER_SUFFIX = "-ranker"


def validation_message(exc: ValidationError, prefix: str = "") -> str:
    """``instances[0].customer_id: Field required; ...`` — every bad field named."""
    parts = []
    for err in exc.errors():
        loc = prefix + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]).lstrip(".")
        parts.append(f"{loc or '<body>'}: {err['msg']}")
    return "; ".join(parts)


def parse_instances(payload: Any, max_instances: int) -> list[ResolveRequest]:
    """V1 body -> ResolveRequests, raising InvalidInput naming the bad field."""
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

    def __init__(self, name: str, engine: ResolutionEngine, max_instances: int = 16) -> None:
        super().__init__(name)
        self.engine = engine
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
        if len(requests) == 1:  # the voice gateway's case: no thread hop
            answers = [self.engine.resolve(requests[0])]
        else:
            loop = asyncio.get_running_loop()
            answers = await asyncio.gather(*[loop.run_in_executor(None, self.engine.resolve, r) for r in requests])
        return {"predictions": [a.model_dump(mode="json") for a in answers]}


class RankerModel(Model):
    """The ranker as a V2 (Open Inference Protocol) predictor, run in process by ONNX Runtime."""

    def __init__(self, name: str, engine: ResolutionEngine) -> None:
        super().__init__(name)
        self.engine = engine
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
            scores = local.score(feeds)
        except Exception as exc:  # noqa: BLE001 - wrong shapes are the caller's fault
            raise InvalidInput(f"inputs: the ranker cannot score these tensors ({type(exc).__name__})") from None
        out = InferOutput(name=local.output_name, shape=list(scores.shape), datatype="FP32", data=scores)
        return InferResponse(response_id=payload.id or uuid.uuid4().hex, model_name=self.name,
                             infer_outputs=[out], model_version=self.engine.model.version)


# -- routes beside the models ---------------------------------------------------------------------

class BodyLimit:
    """ASGI middleware: a body over ``max_bytes`` is a 413, before anything parses it."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return await _reject(send, 413, f"body: larger than {self.max_bytes} bytes")
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
            await self.app(scope, limited, send)
        except _TooLarge:
            await _reject(send, 413, f"body: larger than {self.max_bytes} bytes")


class _TooLarge(Exception):
    pass


async def _reject(send: Any, status: int, message: str) -> None:
    body = orjson.dumps({"error": message})
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def add_routes(app: Any, engine: ResolutionEngine, intake: FeedbackIntake, reload_model: Any, model_name: str) -> None:
    """The feedback intake and the reload route, on the ModelServer's FastAPI app."""
    async def feedback(request: Request) -> ORJSONResponse:
        body = await request.body()
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return ORJSONResponse({"error": f"body: not valid JSON ({exc})"}, status_code=400)
        try:
            event = FeedbackEvent.model_validate(data)
        except ValidationError as exc:
            return ORJSONResponse({"error": validation_message(exc)}, status_code=400)
        appended = await asyncio.get_running_loop().run_in_executor(None, intake.receive, event)
        metrics.FEEDBACK.labels(kind=event.kind, duplicate=str(appended.duplicate).lower()).inc()
        # durable (fsync'd) before this 2xx; the push to the online store happens after it
        return ORJSONResponse({"event_id": event.event_id, "duplicate": appended.duplicate},
                              status_code=200 if appended.duplicate else 202)

    async def reload(request: Request) -> ORJSONResponse:
        try:
            version = await asyncio.get_running_loop().run_in_executor(None, reload_model)
        except BundleError as exc:
            metrics.RELOADS.labels(outcome="failed").inc()
            return ORJSONResponse({"error": f"model_dir: {exc}", "model_version": engine.model.version},
                                  status_code=409)
        metrics.RELOADS.labels(outcome="ok").inc()
        return ORJSONResponse({"model_version": version})

    app.add_api_route("/v1/feedback", feedback, methods=["POST"], tags=["voicecart"])
    app.add_api_route(f"/v1/models/{model_name}:reload", reload, methods=["POST"], tags=["voicecart"])


# -- assembling a server --------------------------------------------------------------------------

def _configure_logs() -> None:
    """One JSON line per request on stderr (voicecart.serving.requests); KServe's per-request
    access and timing lines would cost more than a resolve, so they are off."""
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
    """Everything one server process holds: engine, feedback intake, reload."""

    def __init__(self, model_dir: str | Path, settings: Settings, profiles: Any = None, stats: Any = None) -> None:
        self.model_dir = str(model_dir)
        self.settings = settings
        self.stats = stats  # serving.bundle.StatsSource: product statistics, read at load and on each reload
        s = settings.serving
        self.profiles = profiles
        self.feedback_log = FeedbackLog(s.feedback_db)
        push = None
        if profiles is not None and hasattr(profiles, "push"):
            from voicecart.serving.profiles import feedback_push

            push = feedback_push(profiles)
        self.intake = FeedbackIntake(self.feedback_log, push, s.feedback_push_interval_s)
        model = self._load()
        self.engine = ResolutionEngine(model, profiles, s, max_candidates=settings.ranking.max_candidates,
                                       on_feedback=self.intake.receive)
        self._reload_lock = threading.Lock()
        if hasattr(profiles, "warm_up"):
            profiles.warm_up()
        self.engine.warm_up()

    def _load(self):  # noqa: ANN202
        s = self.settings.serving
        return load_serving_model(self.model_dir, stats=self.stats, predictor=s.predictor)

    def reload(self) -> str:
        """Load the bundle now at model_dir (e.g. a registry's new champion) and swap it in."""
        with self._reload_lock:
            model = self._load()  # fully loaded before anyone sees it
            self.engine.swap(model)
        log.info("reloaded model version %s", model.version)
        return model.version

    def watch(self, every_s: float) -> None:
        def loop() -> None:
            from voicecart.registry import load_bundle

            while True:
                threading.Event().wait(every_s)
                try:
                    if load_bundle(self.model_dir).version != self.engine.model.version:
                        self.reload()
                except Exception as exc:  # noqa: BLE001 - keep serving the current model
                    log.warning("champion check failed: %s", exc)

        threading.Thread(target=loop, name="champion-watch", daemon=True).start()


def serve(model_dir: str | Path, settings: Settings, profiles: Any = None, service: Service | None = None,
          stats: Any = None) -> None:
    """Start the KServe ModelServer on settings.serving.port: ready once model and catalogue are loaded.

    ``service`` lets a caller assemble the engine itself (the benchmark's naive path does).
    """
    from kserve import ModelServer
    from kserve import model_server as kserve_server

    s = settings.serving
    service = service or Service(model_dir, settings, profiles, stats)  # loads before the port opens: ready == loaded
    service.intake.start()  # replays events a previous process left unpushed
    if s.reload_poll_s > 0:
        service.watch(s.reload_poll_s)
    app = kserve_server.app
    app.add_middleware(BodyLimit, max_bytes=s.max_body_bytes)
    add_routes(app, service.engine, service.intake, service.reload, s.model_name)
    server = ModelServer(http_port=s.port, enable_grpc=False, workers=1, enable_latency_logging=False)
    _configure_logs()
    # Everything loaded so far (torch, feast, pandas, the catalogue) lives as long as the process:
    # move it out of the collector's reach so a full collection never walks it mid-request.
    gc.collect()
    gc.freeze()
    server.start([ResolveModel(s.model_name, service.engine, s.max_instances),
                  RankerModel(s.model_name + RANKER_SUFFIX, service.engine)])
