"""Exports of the ranker: ONNX, TorchScript, a Triton model repository and a TorchServe .mar.

Names are imported lazily, so ``voicecart.registry`` (which only needs :mod:`layout`, the
signature and checksums) never pulls torch into a serving process.
"""

from __future__ import annotations

import importlib

_WHERE = {
    "build_bundle": "bundle", "onnx_latency_ms": "bundle", "write_checksums": "bundle", "sha256": "layout",
    "ExportMismatchError": "formats", "check_agreement": "formats", "export_onnx": "formats",
    "export_torchscript": "formats", "onnx_scores": "formats", "rankings": "formats", "same_ranking": "formats",
    "torch_scores": "formats", "torchscript_scores": "formats",
    "ModelSignature": "signature", "TensorSpec": "signature",
    "render_config": "triton", "write_model_repository": "triton",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):  # noqa: ANN202
    if name not in _WHERE:
        raise AttributeError(f"module 'voicecart.export' has no attribute {name!r}")
    return getattr(importlib.import_module(f"voicecart.export.{_WHERE[name]}"), name)
