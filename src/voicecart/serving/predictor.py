"""The ranker as a predictor: named input tensors (the bundle's signature) -> scores.

One small interface, one module per backend (STYLE.md), chosen by the typed ``serving.predictor``
config: ``onnx`` (:mod:`.predictor_onnx`, in process, the local default) or ``triton``
(:mod:`.predictor_triton`, a remote V2 predictor with the in-process one as its fallback).
"""

from __future__ import annotations

import importlib
from typing import Protocol

import numpy as np


class Scorer(Protocol):
    name: str

    def score(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """Input tensors by name (batch first) -> the first output (scores), float32."""
        ...


def open_predictor(config, bundle) -> Scorer:  # noqa: ANN001 - config.OnnxPredictor | config.TritonPredictor
    """The scorer of a typed predictor config for this bundle."""
    return importlib.import_module(f"voicecart.serving.predictor_{config.type}").open(config, bundle)
