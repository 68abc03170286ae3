"""The local predictor: the exported ranker run in process by ONNX Runtime (one session, loaded once)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from voicecart.serving.errors import BundleError


class OnnxScorer:
    """The exported ranker run in process by ONNX Runtime (one session, loaded once)."""

    name = "onnxruntime"

    def __init__(self, onnx_path: Path, threads: int = 1) -> None:
        import onnxruntime as ort

        if not Path(onnx_path).is_file():
            raise BundleError(f"ranker model {onnx_path} does not exist")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise BundleError(f"ranker model {onnx_path} cannot be loaded: {exc}") from None
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_name = self.session.get_outputs()[0].name

    def score(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        (scores,) = self.session.run([self.output_name], feeds)
        return np.asarray(scores, np.float32)


def open(config, bundle) -> OnnxScorer:  # noqa: A001, ANN001 - the backend's one entry point
    return OnnxScorer(bundle.onnx, threads=config.threads)
