"""The OpenAPI document of the gateway-facing routes, generated from the same pydantic models the
server validates with. ``python -m voicecart.serving.openapi`` rewrites ``docs/openapi.json``; a
unit test fails when the checked-in file drifts from the models.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema

from voicecart.schemas import FeedbackEvent, ResolveRequest, ResolveResponse

DOC = Path(__file__).resolve().parents[3] / "docs" / "openapi.json"


class PredictRequest(BaseModel):
    """KServe V1 predict body."""

    instances: list[ResolveRequest] = Field(min_length=1, max_length=1024)


class PredictResponse(BaseModel):
    predictions: list[ResolveResponse]


class FeedbackAccepted(BaseModel):
    event_id: str
    duplicate: bool
    """True when this event_id was already logged (the call is idempotent)."""


class Error(BaseModel):
    error: str
    """What was wrong, starting with the field it concerns (e.g. ``instances[0].utterance: ...``)."""


def _json(ref: str, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": ref}}}}


def openapi_document(model_name: str = "voicecart") -> dict:
    models = [PredictRequest, PredictResponse, FeedbackEvent, FeedbackAccepted, Error]
    refs, schema = models_json_schema([(m, "validation" if m in (PredictRequest, FeedbackEvent) else "serialization")
                                       for m in models], ref_template="#/components/schemas/{model}")
    ref = {m: refs[(m, mode)]["$ref"] for (m, mode) in refs}
    bad = _json(ref[Error], "Invalid input: the message names the field")
    return {
        "openapi": "3.1.0",
        "info": {"title": "voicecart resolve API", "version": "1",
                 "description": "What voice gateways call: resolve an utterance to a product, report feedback."},
        "paths": {
            f"/v1/models/{model_name}:predict": {"post": {
                "summary": "Resolve utterances (KServe V1 protocol)", "operationId": "resolve",
                "requestBody": {"required": True, **_json(ref[PredictRequest], "instances of ResolveRequest")},
                "responses": {"200": _json(ref[PredictResponse], "predictions of ResolveResponse, in order"),
                              "400": bad, "404": _json(ref[Error], "Unknown model name"),
                              "413": _json(ref[Error], "Body larger than serving.max_body_bytes")}}},
            "/v1/feedback": {"post": {
                "summary": "Report what the customer did after an answer", "operationId": "feedback",
                "requestBody": {"required": True, **_json(ref[FeedbackEvent], "one FeedbackEvent")},
                "responses": {"202": _json(ref[FeedbackAccepted], "Logged durably; pushed to the online store next"),
                              "200": _json(ref[FeedbackAccepted], "Already logged (same event_id)"),
                              "400": bad, "413": _json(ref[Error], "Body too large")}}},
        },
        "components": {"schemas": schema["$defs"]},
    }


def render() -> str:
    return json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n"


def main() -> None:  # pragma: no cover - writes the checked-in document
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(render())
    sys.stdout.write(f"wrote {DOC}\n")


if __name__ == "__main__":  # pragma: no cover
    main()
