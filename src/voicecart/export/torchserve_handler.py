"""TorchServe handler of the ranker's ``.mar``: scores candidates with the TorchScript export.

Self-contained on purpose (torch, numpy and the standard library only): TorchServe imports it in
its own worker, where voicecart may not be installed. Request body (JSON)::

    {"inputs": {"<input name>": [[...], ...], ...}}   # tensors in the bundle's signature.json

Response per request: ``{"scores": [[...]], "ranking": [[best candidate index, ...]]}``. A body
that does not match the signature is answered 400 with a reason naming the input.
"""

from __future__ import annotations

import json
import os

import numpy as np
import torch


class RankerHandler:
    def __init__(self) -> None:
        self.model = None
        self.inputs: list[dict] = []
        self.initialized = False

    def initialize(self, context) -> None:  # noqa: ANN001 - TorchServe's Context
        props = context.system_properties
        model_dir = props.get("model_dir")
        manifest = context.manifest
        serialized = manifest["model"]["serializedFile"]
        with open(os.path.join(model_dir, "signature.json")) as f:
            self.inputs = json.load(f)["inputs"]
        torch.set_num_threads(1)
        self.model = torch.jit.load(os.path.join(model_dir, serialized), map_location="cpu")
        self.model.eval()
        self.initialized = True

    def _tensors(self, body: object) -> list[torch.Tensor]:
        if isinstance(body, (bytes, bytearray)):
            body = json.loads(body.decode("utf-8"))
        if not isinstance(body, dict) or not isinstance(body.get("inputs"), dict):
            raise ValueError('body must be a JSON object {"inputs": {name: array}}')
        tensors = []
        for spec in self.inputs:
            name = spec["name"]
            if name not in body["inputs"]:
                raise ValueError(f"input {name!r} is missing")
            arr = np.asarray(body["inputs"][name], dtype=spec["dtype"])
            if arr.ndim != len(spec["shape"]):
                raise ValueError(f"input {name!r} must have {len(spec['shape'])} dimensions, got {arr.ndim}")
            for axis, want in enumerate(spec["shape"]):
                if want != -1 and arr.shape[axis] != want:
                    raise ValueError(f"input {name!r} dimension {axis} must be {want}, got {arr.shape[axis]}")
            tensors.append(torch.from_numpy(arr))
        return tensors

    def handle(self, data: list[dict], context) -> list:  # noqa: ANN001
        answers = []
        for idx, row in enumerate(data):
            body = row.get("body") if row.get("body") is not None else row.get("data")
            try:
                tensors = self._tensors(body)
            except (ValueError, TypeError, json.JSONDecodeError) as exc:
                context.set_response_status(400, str(exc), idx)
                answers.append({"error": str(exc)})
                continue
            with torch.no_grad():
                out = self.model(*tensors)
            scores = (out[0] if isinstance(out, (tuple, list)) else out).numpy()
            ranking = np.argsort(-scores, axis=-1, kind="stable")
            answers.append({"scores": scores.tolist(), "ranking": ranking.tolist()})
        return answers


_service = RankerHandler()


def handle(data, context):  # noqa: ANN001, ANN201 - TorchServe's module-level entry point
    if not _service.initialized:
        _service.initialize(context)
    if data is None:
        return None
    return _service.handle(data, context)
