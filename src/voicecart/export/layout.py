"""Where each file lives inside a model bundle (shared by the writer and the registry)."""

import hashlib
from pathlib import Path

METADATA = "metadata.json"
"""``schemas.ModelMetadata``; written last, so a bundle without it is incomplete."""
CHECKSUMS = "files.json"
"""sha256 of every other file, checked when a bundle is loaded."""
SIGNATURE = "signature.json"
"""Input/output tensor names, dtypes and shapes (``export.signature.ModelSignature``)."""
WEIGHTS_DIR = "model"
"""The torch weights as the ranker's own ``save`` writes them."""
ONNX = "onnx/model.onnx"
TORCHSCRIPT = "torchscript/model.pt"
TRITON_DIR = "triton"
"""``triton/cpu/<name>/config.pbtxt`` + ``1/model.onnx``; same for ``triton/gpu``."""
TORCHSERVE_DIR = "torchserve"
"""KServe PyTorch runtime layout: ``config/config.properties`` + ``model-store/<name>.mar``."""


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
