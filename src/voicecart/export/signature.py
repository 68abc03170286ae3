"""The tensor signature of an exported model: input and output names, dtypes and shapes.

Written once per bundle as ``signature.json`` and read by everything that feeds the exported
model (the Triton ``config.pbtxt`` generator, the TorchServe handler, the serving engine).
Dimension ``-1`` is dynamic; dimension 0 of every tensor is the batch (requests).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

_TRITON_TYPES = {
    "float32": "TYPE_FP32", "float16": "TYPE_FP16", "float64": "TYPE_FP64",
    "int64": "TYPE_INT64", "int32": "TYPE_INT32", "int8": "TYPE_INT8", "uint8": "TYPE_UINT8",
    "bool": "TYPE_BOOL",
}


class TensorSpec(BaseModel):
    name: str
    dtype: str
    """numpy dtype name, e.g. ``float32``."""
    shape: list[int]
    """Full shape including the batch dimension; -1 where dynamic."""

    @property
    def triton_type(self) -> str:
        try:
            return _TRITON_TYPES[self.dtype]
        except KeyError:
            raise ValueError(f"tensor {self.name!r}: dtype {self.dtype} has no Triton type") from None


class ModelSignature(BaseModel):
    inputs: list[TensorSpec] = Field(min_length=1)
    outputs: list[TensorSpec] = Field(min_length=1)

    @classmethod
    def from_examples(cls, inputs: dict[str, np.ndarray], outputs: dict[str, np.ndarray],
                      dynamic_dims: int = 2) -> "ModelSignature":
        """Signature of example tensors; the first ``dynamic_dims`` dimensions become -1."""
        def spec(name: str, arr: np.ndarray) -> TensorSpec:
            shape = [-1 if i < dynamic_dims else int(d) for i, d in enumerate(arr.shape)]
            return TensorSpec(name=name, dtype=str(arr.dtype), shape=shape)
        return cls(inputs=[spec(n, a) for n, a in inputs.items()],
                   outputs=[spec(n, a) for n, a in outputs.items()])

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]

    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        """The ``dynamic_axes`` argument of ``torch.onnx.export`` for this signature."""
        axes: dict[str, dict[int, str]] = {}
        for t in [*self.inputs, *self.outputs]:
            names = {0: "batch", 1: "candidates"}
            axes[t.name] = {i: names.get(i, f"dim{i}") for i, d in enumerate(t.shape) if d == -1}
        return axes

    def save(self, path: Path) -> Path:
        path.write_text(self.model_dump_json(indent=2))
        return path

    @classmethod
    def load(cls, path: Path) -> "ModelSignature":
        return cls.model_validate(json.loads(Path(path).read_text()))
