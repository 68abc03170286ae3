"""A Triton model repository the local CPU Triton can run, from the export's ONE template.

The bundle's ``triton/cpu`` and ``triton/gpu`` repositories (``voicecart.export.triton``) use the
ONNX Runtime backend, which the cluster's Triton image has. The ``nvidia-pytriton`` wheel used
on this machine (scripts/tools/triton.sh) ships only the Python backend, so for it we render the
same ``config.pbtxt`` with ``backend: "python"`` and a generated ``model.py`` that runs the very
same ``model.onnx`` with ONNX Runtime: same tensors, same names, same scores.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from voicecart.export.signature import ModelSignature
from voicecart.export.triton import render_config
from voicecart.serving.errors import BundleError

_PYTHON_MODEL = '''\
"""Triton Python-backend model: the voicecart ranker through ONNX Runtime (generated, do not edit)."""
import os

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils

INPUTS = {inputs!r}
OUTPUT = {output!r}


class TritonPythonModel:
    def initialize(self, args):
        here = os.path.join(args["model_repository"], args["model_version"])
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self.session = ort.InferenceSession(os.path.join(here, "model.onnx"), opts,
                                            providers=["CPUExecutionProvider"])

    def execute(self, requests):
        responses = []
        for request in requests:
            feeds = {{name: pb_utils.get_input_tensor_by_name(request, name).as_numpy() for name in INPUTS}}
            (scores,) = self.session.run([OUTPUT], feeds)
            out = pb_utils.Tensor(OUTPUT, np.ascontiguousarray(scores, dtype=np.float32))
            responses.append(pb_utils.InferenceResponse(output_tensors=[out]))
        return responses
'''


def write_python_backend_repository(onnx_path: Path, signature: ModelSignature, repo: Path, name: str) -> Path:
    """``repo/<name>/config.pbtxt`` (python backend, KIND_CPU) + ``1/model.onnx`` + ``1/model.py``."""
    onnx_path, repo = Path(onnx_path), Path(repo)
    if not onnx_path.is_file():
        raise BundleError(f"ranker model {onnx_path} does not exist")
    config = render_config(signature, name, "cpu", max_batch_size=0)
    if 'backend: "onnxruntime"' not in config:
        raise BundleError("the export's config.pbtxt template changed: no onnxruntime backend line to swap")
    config = config.replace('backend: "onnxruntime"', 'backend: "python"')
    # dynamic batching needs max_batch_size > 0; each request here is one resolve already.
    config = config.split("dynamic_batching")[0] + "version_policy" + config.split("version_policy", 1)[1]
    version_dir = repo / name / "1"
    version_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(onnx_path, version_dir / "model.onnx")
    (version_dir / "model.py").write_text(
        _PYTHON_MODEL.format(inputs=signature.input_names, output=signature.output_names[0]))
    (repo / name / "config.pbtxt").write_text(config)
    return repo
