"""Exports of the ranker: ONNX, TorchScript, a Triton model repository and a TorchServe .mar."""

from voicecart.export.bundle import build_bundle, onnx_latency_ms, write_checksums
from voicecart.export.formats import (
    ExportMismatchError,
    check_agreement,
    export_onnx,
    export_torchscript,
    onnx_scores,
    rankings,
    same_ranking,
    torch_scores,
    torchscript_scores,
)
from voicecart.export.signature import ModelSignature, TensorSpec
from voicecart.export.triton import render_config, write_model_repository

__all__ = [
    "ExportMismatchError",
    "ModelSignature",
    "TensorSpec",
    "build_bundle",
    "check_agreement",
    "export_onnx",
    "export_torchscript",
    "onnx_latency_ms",
    "onnx_scores",
    "rankings",
    "render_config",
    "same_ranking",
    "torch_scores",
    "torchscript_scores",
    "write_checksums",
    "write_model_repository",
]
