"""A Triton model repository for the exported ranker, from ONE ``config.pbtxt`` template.

Two flavours of the same template: ``cpu`` (``KIND_CPU``, the local default and the tests) and
``gpu`` (``KIND_GPU``, the cluster's Triton predictor). Both use the ONNX Runtime backend and
dynamic batching; only the instance group (and, on GPU, the execution accelerator) differ.

Layout (what ``tritonserver --model-repository`` and KServe's Triton runtime read)::

    <repo>/<model_name>/config.pbtxt
    <repo>/<model_name>/1/model.onnx
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Literal

from voicecart.export.signature import ModelSignature, TensorSpec

Flavour = Literal["cpu", "gpu"]

CONFIG_TEMPLATE = Template("""\
name: "$name"
backend: "onnxruntime"
max_batch_size: $max_batch_size
input [
$inputs
]
output [
$outputs
]
instance_group [
  {
    count: $instance_count
    kind: $kind
  }
]
dynamic_batching {
  preferred_batch_size: [ $preferred ]
  max_queue_delay_microseconds: $max_queue_delay_us
}
${optimization}\
version_policy: { latest: { num_versions: 1 } }
""")

_GPU_OPTIMIZATION = """\
optimization {
  cuda { graphs: false }
}
"""


@dataclass(frozen=True)
class TritonFlavour:
    kind: str
    instance_count: int
    optimization: str


FLAVOURS: dict[str, TritonFlavour] = {
    "cpu": TritonFlavour(kind="KIND_CPU", instance_count=1, optimization=""),
    "gpu": TritonFlavour(kind="KIND_GPU", instance_count=1, optimization=_GPU_OPTIMIZATION),
}


def _tensor_block(t: TensorSpec, batched: bool) -> str:
    dims = t.shape[1:] if batched else t.shape
    return (f'  {{\n    name: "{t.name}"\n    data_type: {t.triton_type}\n'
            f'    dims: [ {", ".join(str(d) for d in dims)} ]\n  }}')


def render_config(signature: ModelSignature, name: str, flavour: Flavour = "cpu", *, max_batch_size: int = 64,
                  preferred_batch_sizes: tuple[int, ...] = (8, 32), max_queue_delay_us: int = 500) -> str:
    """The ``config.pbtxt`` text for ``signature`` in the given flavour."""
    if flavour not in FLAVOURS:
        raise ValueError(f"unknown Triton flavour {flavour!r}; expected one of {sorted(FLAVOURS)}")
    f = FLAVOURS[flavour]
    batched = max_batch_size > 0
    preferred = [b for b in preferred_batch_sizes if b <= max_batch_size] or [max(1, max_batch_size)]
    return CONFIG_TEMPLATE.substitute(
        name=name, max_batch_size=max_batch_size,
        inputs=",\n".join(_tensor_block(t, batched) for t in signature.inputs),
        outputs=",\n".join(_tensor_block(t, batched) for t in signature.outputs),
        instance_count=f.instance_count, kind=f.kind, preferred=", ".join(str(b) for b in preferred),
        max_queue_delay_us=max_queue_delay_us, optimization=f.optimization)


def write_model_repository(onnx_path: Path, signature: ModelSignature, repo: Path, name: str,
                           flavour: Flavour = "cpu", **config: int) -> Path:
    """Write ``repo/<name>/config.pbtxt`` and ``repo/<name>/1/model.onnx``; returns ``repo``."""
    model_dir = repo / name
    (model_dir / "1").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(onnx_path, model_dir / "1" / "model.onnx")
    (model_dir / "config.pbtxt").write_text(render_config(signature, name, flavour, **config))
    return repo
