"""The OpenAPI document of every route the server answers, generated from the same pydantic models
(and the same constants) the server validates with. The server serves it at ``/openapi.json``;
``python -m voicecart.serving.openapi`` rewrites ``docs/openapi.json``, and a unit test fails when
the checked-in file drifts. Every route outside this document answers 404, every method a path does
not list answers 405 with ``Allow``, and every error has the shape ``{"error": "<field>: <reason>"}``.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema

from voicecart.schemas import FeedbackEvent
from voicecart.schemas.api import ID_PATTERN, PredictRequest, PredictResponse

DOC = Path(__file__).resolve().parents[3] / "docs" / "openapi.json"
RANKER_SUFFIX = "-ranker"
V2_MAX_JSON_CANDIDATES = 8
"""Most candidates in one JSON-encoded V2 tensor ([1, n, F], n <= 8); bigger batches use the binary
tensor extension (``Inference-Header-Content-Length``), as the transformer does."""
V2_VALUE_BOUND = 1e6
"""Feature values are bounded so every accepted tensor scores to finite numbers."""


class FeedbackAccepted(BaseModel):
    event_id: str
    duplicate: bool
    """True when this event_id was already logged with the same body (the call is idempotent)."""
    flags: list[str] = Field(default_factory=list)
    """What the server noticed and stored with the event: unknown_product, unknown_customer, customer_unchecked."""


class Error(BaseModel):
    """The one error shape of every route."""

    error: str
    """What was wrong, starting with the field it concerns (e.g. ``instances[0].utterance: ...``)."""


class Reloaded(BaseModel):
    model_version: str


class ArmState(BaseModel):
    version: str
    requests: int
    errors: int
    """Answers that fell back because the ranker failed or missed the deadline."""
    slow: int
    """Answers slower than serving.deadline_ms."""
    feedback: int
    kept: int
    """Feedback events that kept or bought the answer."""


class CanaryState(BaseModel):
    """Both arms since the split started: what `voicecart rollout local` decides on."""

    percent: int
    """Share of customers the canary answers (0: no canary)."""
    since_s: float
    champion: ArmState
    canary: ArmState | None = None


class DependencyState(BaseModel):
    state: str
    """closed (healthy), open (failing: skipped), half_open (a trial call is running)."""
    error: str | None = None
    since_s: float | None = None


class Readiness(BaseModel):
    ready: bool
    model_version: str
    degraded: list[str]
    """Dependencies whose breaker is not closed; answers are then less personal (and say so)."""
    dependencies: dict[str, DependencyState]


class Liveness(BaseModel):
    live: bool


class ModelList(BaseModel):
    models: list[str]


class ModelReady(BaseModel):
    name: str
    ready: bool


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(BaseModel):
    name: str
    versions: list[str] | None = None
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class OutputTensor(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[float]
    parameters: dict[str, Any] | None = None


class InferResponse(BaseModel):
    model_name: str
    model_version: str | None = None
    id: str
    parameters: dict[str, Any] | None = None
    outputs: list[OutputTensor]


def v2_request_schema(n_features: int, input_name: str = "features", output_name: str = "scores") -> dict:
    """The JSON form of a V2 ranker request, every rule stated: one FP32 tensor [1, n, F], n*F values."""
    number = {"type": "number", "minimum": -V2_VALUE_BOUND, "maximum": V2_VALUE_BOUND}
    shapes = [{"properties": {"shape": {"const": [1, n, n_features]},
                              "data": {"minItems": n * n_features, "maxItems": n * n_features}}}
              for n in range(1, V2_MAX_JSON_CANDIDATES + 1)]
    tensor = {"type": "object", "additionalProperties": False, "required": ["name", "shape", "datatype", "data"],
              "properties": {"name": {"const": input_name}, "datatype": {"const": "FP32"},
                             "shape": {"type": "array", "items": {"type": "integer"}},
                             "data": {"type": "array", "items": number},
                             "parameters": {"type": "object", "additionalProperties": False}},
              "oneOf": shapes}
    requested = {"type": "object", "additionalProperties": False, "required": ["name"],
                 "properties": {"name": {"const": output_name},
                                "parameters": {"type": "object", "additionalProperties": False}}}
    return {"type": "object", "additionalProperties": False, "required": ["inputs"],
            "description": f"One candidate list as a [1, n, {n_features}] FP32 tensor, n from 1 to "
                           f"{V2_MAX_JSON_CANDIDATES}, values in [-{V2_VALUE_BOUND:g}, {V2_VALUE_BOUND:g}], data "
                           "flattened row-major. (Binary tensors, the Inference-Header-Content-Length extension, "
                           "carry any n.)",
            "properties": {"id": {"type": "string", "maxLength": 128, "pattern": ID_PATTERN,
                                  "not": {"type": "string", "pattern": "\n"}},
                           "parameters": {"type": "object", "additionalProperties": False},
                           "inputs": {"type": "array", "minItems": 1, "maxItems": 1, "items": tensor},
                           "outputs": {"type": "array", "maxItems": 1, "items": requested}}}


def check_v2_request(body: Any, n_features: int, input_name: str = "features", output_name: str = "scores") -> None:
    """Raise ValueError naming the field when ``body`` breaks :func:`v2_request_schema` (same rules, in Python)."""
    import re

    def obj(value: Any, where: str, allowed: set[str], required: set[str] = frozenset()) -> dict:  # type: ignore[assignment]
        if not isinstance(value, dict):
            raise ValueError(f"{where or 'body'}: expected an object")
        extra = sorted(set(value) - allowed)
        if extra:
            raise ValueError(f"{where + '.' if where else ''}{extra[0]}: extra field not permitted")
        missing = sorted(required - set(value))
        if missing:
            raise ValueError(f"{where + '.' if where else ''}{missing[0]}: field required")
        return value

    body = obj(body, "", {"id", "parameters", "inputs", "outputs"}, {"inputs"})
    if "id" in body:
        rid = body["id"]
        if not isinstance(rid, str) or len(rid) > 128 or not re.search(ID_PATTERN, rid) or "\n" in rid:
            raise ValueError("id: a string of at most 128 characters without whitespace or control characters")
    if "parameters" in body:
        obj(body["parameters"], "parameters", set())
    inputs = body["inputs"]
    if not isinstance(inputs, list) or len(inputs) != 1:
        raise ValueError("inputs: expected a list of exactly one tensor")
    t = obj(inputs[0], "inputs[0]", {"name", "shape", "datatype", "data", "parameters"},
            {"name", "shape", "datatype", "data"})
    if t["name"] != input_name:
        raise ValueError(f"inputs[0].name: must be {input_name!r}")
    if t["datatype"] != "FP32":
        raise ValueError("inputs[0].datatype: must be 'FP32'")
    if "parameters" in t:
        obj(t["parameters"], "inputs[0].parameters", set())
    shape, data = t["shape"], t["data"]
    if not isinstance(shape, list) or any(not isinstance(d, int) or isinstance(d, bool) for d in shape):
        raise ValueError("inputs[0].shape: expected a list of integers")
    if len(shape) != 3 or shape[0] != 1 or shape[2] != n_features or not 1 <= shape[1] <= V2_MAX_JSON_CANDIDATES:
        raise ValueError(f"inputs[0].shape: must be [1, n, {n_features}] with n from 1 to {V2_MAX_JSON_CANDIDATES}")
    if not isinstance(data, list) or len(data) != shape[1] * n_features:
        raise ValueError(f"inputs[0].data: expected {shape[1] * n_features} numbers (the shape's product)")
    for i, x in enumerate(data):
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) \
                or abs(x) > V2_VALUE_BOUND:
            raise ValueError(f"inputs[0].data[{i}]: expected a number in [-{V2_VALUE_BOUND:g}, {V2_VALUE_BOUND:g}]")
    if "outputs" in body:
        outputs = body["outputs"]
        if not isinstance(outputs, list) or len(outputs) > 1:
            raise ValueError("outputs: expected a list of at most one requested output")
        for i, out in enumerate(outputs):
            o = obj(out, f"outputs[{i}]", {"name", "parameters"}, {"name"})
            if o["name"] != output_name:
                raise ValueError(f"outputs[{i}].name: must be {output_name!r}")
            if "parameters" in o:
                obj(o["parameters"], f"outputs[{i}].parameters", set())


def _json(ref: str, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": ref}}}}


def openapi_document(model_name: str = "voicecart", max_instances: int = 16, n_features: int | None = None) -> dict:
    """The whole contract of a server serving ``model_name`` (V1 resolve) and ``model_name-ranker`` (V2)."""
    if n_features is None:
        from voicecart.ranking.features import FEATURE_NAMES

        n_features = len(FEATURE_NAMES)
    ranker = model_name + RANKER_SUFFIX
    models = [PredictRequest, PredictResponse, FeedbackEvent, FeedbackAccepted, Error, Reloaded, CanaryState, Readiness,
              Liveness, ModelList, ModelReady, ServerMetadata, ModelMetadata, InferResponse]
    refs, schema = models_json_schema([(m, "validation" if m in (PredictRequest, FeedbackEvent) else "serialization")
                                       for m in models], ref_template="#/components/schemas/{model}")
    ref = {m: refs[(m, mode)]["$ref"] for (m, mode) in refs}
    defs = schema["$defs"]
    defs["PredictRequest"]["properties"]["instances"]["maxItems"] = max_instances
    defs["V2InferRequest"] = v2_request_schema(n_features)
    bad = _json(ref[Error], "Invalid input: the message names the field")
    too_big = _json(ref[Error], "Body larger than serving.max_body_bytes")
    not_found = _json(ref[Error], "Unknown model")

    def get(summary: str, op: str, model: type[BaseModel], description: str, **extra: dict) -> dict:
        return {"get": {"summary": summary, "operationId": op,
                        "responses": {"200": _json(ref[model], description), **extra}}}

    def post(summary: str, op: str, body: dict | None, responses: dict) -> dict:
        out: dict = {"summary": summary, "operationId": op, "responses": {**responses, "413": too_big}}
        if body is not None:
            out["requestBody"] = {"required": True, **body}
        return {"post": out}

    paths = {
        f"/v1/models/{model_name}:predict": post(
            "Resolve utterances (KServe V1 protocol)", "resolve", _json(ref[PredictRequest], "instances of ResolveRequest"),
            {"200": _json(ref[PredictResponse], "predictions of ResolveResponse, in order"), "400": bad}),
        "/v1/feedback": post(
            "Report what the customer did after an answer", "feedback", _json(ref[FeedbackEvent], "one FeedbackEvent"),
            {"202": _json(ref[FeedbackAccepted], "Logged durably; pushed to the online store next"),
             "200": _json(ref[FeedbackAccepted], "Already logged with the same body (same event_id)"),
             "400": bad, "409": _json(ref[Error], "event_id already logged with a different body: the message "
                                                  "names the fields that differ; the logged event is kept")}),
        f"/v1/models/{model_name}:reload": post(
            "Load the bundle now at the model dir and swap it in", "reload", None,
            {"200": _json(ref[Reloaded], "The version now serving"),
             "409": _json(ref[Error], "The bundle could not be loaded; the current model keeps serving")}),
        f"/v1/models/{model_name}:canary": get(
            "The champion and canary arms since the split started", "canary", CanaryState,
            "Each arm's version and counts (requests, errors, slow, feedback, kept)"),
        "/v1/models": get("Models served", "listModelsV1", ModelList, "Names of the served models"),
        f"/v1/models/{model_name}": get("Is the resolve model ready", "resolveModelReady", ModelReady, "Readiness"),
        f"/v2/models/{ranker}/infer": post(
            "Score one candidate list with the ranker (Open Inference Protocol V2)", "rank",
            _json("#/components/schemas/V2InferRequest", "one [1, n, F] FP32 tensor"),
            {"200": _json(ref[InferResponse], "scores, [1, n] FP32"), "400": bad, "404": not_found}),
        f"/v2/models/{ranker}": get("Ranker metadata (V2)", "rankerMetadata", ModelMetadata, "Tensors and versions"),
        f"/v2/models/{ranker}/ready": get("Is the ranker ready (V2)", "rankerReady", ModelReady, "Readiness"),
        "/v2/models": get("Models served (V2)", "listModelsV2", ModelList, "Names of the served models"),
        "/v2": get("Server metadata (V2)", "serverMetadata", ServerMetadata, "Name, version, extensions"),
        "/v2/health/live": get("Liveness", "live", Liveness, "The process answers"),
        "/v2/health/ready": get(
            "Readiness, with the state of every dependency", "ready", Readiness,
            "Ready; `degraded` lists dependencies whose breaker is open (answers are less personal)",
            **{"503": _json(ref[Readiness], "Not ready: a dependency is degraded and serving.ready_when_degraded "
                                            "is false")}),
        "/metrics": {"get": {"summary": "Prometheus metrics", "operationId": "metrics",
                             "responses": {"200": {"description": "Prometheus text format",
                                                   "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
        "/openapi.json": {"get": {"summary": "This document", "operationId": "openapi",
                                  "responses": {"200": {"description": "OpenAPI 3.1",
                                                        "content": {"application/json": {"schema": {
                                                            "type": "object"}}}}}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "voicecart resolve API", "version": "2",
                 "description": "What voice gateways call: resolve an utterance to a product, report feedback; "
                                "the ranker as a V2 predictor; health, metrics, reload. Every error is "
                                '{"error": "<field>: <reason>"}; unlisted methods answer 405 with Allow.'},
        "paths": paths,
        "components": {"schemas": defs},
    }


def allowed_methods(document: dict) -> dict[str, frozenset[str]]:
    """path -> the methods the document lists for it (HEAD goes with GET)."""
    out = {}
    for path, ops in document["paths"].items():
        methods = {m.upper() for m in ops}
        out[path] = frozenset(methods | ({"HEAD"} if "GET" in methods else set()))
    return out


def render() -> str:
    return json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n"


def main() -> None:  # pragma: no cover - writes the checked-in document
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(render())
    sys.stdout.write(f"wrote {DOC}\n")


if __name__ == "__main__":  # pragma: no cover
    main()
