"""The remote predictor: the ranker served by Triton (or any KServe V2 model server) over the Open Inference
Protocol (V2) HTTP with ``tritonclient.http`` — never tritonclient.grpc here: it clashes with kserve's
protobufs (kserve issue 3099). When it fails, the in-process ONNX Runtime session answers (FallbackScorer)."""

from __future__ import annotations

import logging
import threading

from typing import TYPE_CHECKING

import numpy as np

from voicecart.serving.errors import PredictorUnavailable

if TYPE_CHECKING:
    from voicecart.serving.predictor import Scorer

log = logging.getLogger("voicecart.serving.predictor")

_V2_TYPES = {"float32": "FP32", "float64": "FP64", "float16": "FP16", "int64": "INT64", "int32": "INT32",
             "int8": "INT8", "uint8": "UINT8", "bool": "BOOL"}


class TritonScorer:
    """The ranker served by a separate V2 predictor (Triton, or any KServe V2 model server)."""

    name = "triton"

    def __init__(self, url: str, model_name: str, timeout_s: float = 1.0, output_name: str | None = None) -> None:
        import tritonclient.http as httpclient

        self._http = httpclient
        self.url = url.removeprefix("http://")
        self.model_name = model_name
        self.timeout_s = timeout_s
        self._local = threading.local()  # the client is gevent-based: one per thread that calls it
        self.output_name = output_name

    @property
    def client(self):  # noqa: ANN201 - tritonclient.http.InferenceServerClient of the calling thread
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._http.InferenceServerClient(self.url, connection_timeout=self.timeout_s,
                                                      network_timeout=self.timeout_s)
            self._local.client = client
        return client

    def _output(self) -> str:
        if self.output_name is None:
            self.output_name = self.client.get_model_metadata(self.model_name)["outputs"][0]["name"]
        return self.output_name

    def ready(self) -> bool:
        try:
            return bool(self.client.is_model_ready(self.model_name))
        except Exception:
            return False

    def score(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        out_name = self.output_name or "scores"
        try:
            out_name = self._output()
            tensors = []
            for name, value in feeds.items():
                x = np.ascontiguousarray(value)
                tensor = self._http.InferInput(name, list(x.shape), _V2_TYPES[x.dtype.name])
                tensor.set_data_from_numpy(x, binary_data=True)
                tensors.append(tensor)
            result = self.client.infer(self.model_name, tensors,
                                       outputs=[self._http.InferRequestedOutput(out_name, binary_data=True)])
            scores = result.as_numpy(out_name)
        except Exception as exc:
            raise PredictorUnavailable(f"triton at {self.url}: {type(exc).__name__}: {exc}") from None
        if scores is None:
            raise PredictorUnavailable(f"triton at {self.url} returned no {out_name!r} output")
        return np.asarray(scores, np.float32)

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:
            pass


def open(config, bundle):  # noqa: A001, ANN001, ANN201 - the backend's one entry point
    from voicecart.serving.predictor_onnx import OnnxScorer

    remote = TritonScorer(config.url, config.model or bundle.metadata.name, timeout_s=config.timeout_ms / 1000,
                          output_name=bundle.signature.output_names[0])
    return FallbackScorer(remote, OnnxScorer(bundle.onnx))


class FallbackScorer:
    """Try the remote predictor; on any failure answer with the in-process one and say so."""

    def __init__(self, primary: Scorer, fallback: Scorer) -> None:
        self.primary = primary
        self.fallback = fallback
        self.name = f"{primary.name}+{fallback.name}"

    def score_with_source(self, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, str | None]:
        try:
            return self.primary.score(feeds), None
        except PredictorUnavailable as exc:
            log.warning("predictor fallback: %s", exc)
            return self.fallback.score(feeds), "predictor_unavailable"

    def score(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        return self.score_with_source(feeds)[0]
