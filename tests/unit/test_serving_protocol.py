"""Protocol adapters without a server: V1 bodies -> requests (errors name the field), the
OpenAPI document matches the models, the local Triton repository keeps the export's tensors."""

from __future__ import annotations

import json

import pytest
from kserve.errors import InvalidInput

from voicecart.export.signature import ModelSignature, TensorSpec
from voicecart.serving.openapi import DOC, render
from voicecart.serving.server import parse_instances
from voicecart.serving.triton_repo import write_python_backend_repository

OK = {"customer_id": "c1", "utterance": "add milk"}


@pytest.mark.parametrize("payload, field", [
    (b"{not json", "body"),
    ([OK], "body"),
    ({}, "instances"),
    ({"instances": OK}, "instances"),
    ({"instances": []}, "instances"),
    ({"instances": [OK] * 17}, "instances"),
    ({"instances": [OK], "extra": 1}, "extra"),
    ({"instances": [{"utterance": "add milk"}]}, "instances[0].customer_id"),
    ({"instances": [OK, {"customer_id": "c1", "utterance": 3}]}, "instances[1].utterance"),
    ({"instances": [{"customer_id": "c\x00", "utterance": "add milk"}]}, "instances[0].customer_id"),
    ({"instances": [{**OK, "locale": "x" * 40}]}, "instances[0].locale"),
])
def test_bad_v1_bodies_raise_invalid_input_naming_the_field(payload, field):
    with pytest.raises(InvalidInput) as info:
        parse_instances(payload, max_instances=16)
    assert str(info.value).startswith(field)


def test_good_v1_body_parses_every_instance():
    got = parse_instances(b'{"instances": [{"customer_id": "c1", "utterance": " add milk "}]}', 16)
    assert got[0].customer_id == "c1" and got[0].utterance == "add milk"


def test_checked_in_openapi_document_matches_the_models():
    assert DOC.exists(), "docs/openapi.json missing: run python -m voicecart.serving.openapi"
    assert DOC.read_text() == render(), "docs/openapi.json drifted: run python -m voicecart.serving.openapi"
    doc = json.loads(DOC.read_text())
    assert {"/v1/models/voicecart:predict", "/v1/feedback", "/v1/models/voicecart:reload", "/v2/health/ready",
            "/v2/health/live", "/v2/models/voicecart-ranker/infer", "/v2/models/voicecart-ranker"} <= set(doc["paths"])
    assert "customer_id" in doc["components"]["schemas"]["ResolveRequest"]["required"]


def test_python_backend_repository_keeps_the_export_signature(tmp_path):
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"onnx bytes")
    sig = ModelSignature(inputs=[TensorSpec(name="features", dtype="float32", shape=[-1, -1, 31])],
                         outputs=[TensorSpec(name="scores", dtype="float32", shape=[-1, -1])])
    repo = write_python_backend_repository(onnx, sig, tmp_path / "repo", "voicecart")
    config = (repo / "voicecart" / "config.pbtxt").read_text()
    assert 'backend: "python"' in config and "KIND_CPU" in config and "dynamic_batching" not in config
    assert 'name: "features"' in config and "dims: [ -1, -1, 31 ]" in config and 'name: "scores"' in config
    model_py = (repo / "voicecart" / "1" / "model.py").read_text()
    assert "['features']" in model_py and "'scores'" in model_py
    assert (repo / "voicecart" / "1" / "model.onnx").read_bytes() == b"onnx bytes"


@pytest.mark.parametrize("instance, field", [
    ({**OK, "utterance": "x" * 301}, "instances[0].utterance"),  # longer than the parser reads
    ({**OK, "utterance": " \u3000 "}, "instances[0].utterance"),  # blank after stripping
    ({**OK, "customer_id": "c 1"}, "instances[0].customer_id"),
    ({**OK, "customer_id": "c1\n"}, "instances[0].customer_id"),
    ({**OK, "conversation_id": "conv\x9b"}, "instances[0].conversation_id"),
    ({**OK, "utterance": "add milk\x1b"}, "instances[0].utterance"),
])
def test_rules_of_the_schema_are_the_rules_of_the_server(instance, field):
    from jsonschema import Draft202012Validator

    from voicecart.schemas.api import ResolveRequest

    with pytest.raises(InvalidInput) as info:
        parse_instances({"instances": [instance]}, max_instances=16)
    assert str(info.value).startswith(field)
    assert not Draft202012Validator(ResolveRequest.model_json_schema()).is_valid(instance)


def test_v2_request_rules_in_python_and_in_the_schema_agree():
    from jsonschema import Draft202012Validator

    from voicecart.serving.openapi import check_v2_request, v2_request_schema

    validator = Draft202012Validator(v2_request_schema(3))
    good = {"inputs": [{"name": "features", "shape": [1, 2, 3], "datatype": "FP32", "data": [0.0] * 6}]}
    bad = [{"inputs": [{**good["inputs"][0], "data": [0.0] * 5}]},
           {"inputs": [{**good["inputs"][0], "shape": [1, 9, 3], "data": [0.0] * 27}]},
           {"inputs": [{**good["inputs"][0], "datatype": "FP64"}]},
           {"inputs": [{**good["inputs"][0], "data": [1e7] * 6}]},
           {**good, "outputs": [{"name": "other"}]}, {**good, "extra": 1}, {"inputs": []}]
    check_v2_request(good, 3)
    assert validator.is_valid(good)
    for body in bad:
        assert not validator.is_valid(body), body
        with pytest.raises(ValueError):
            check_v2_request(body, 3)
