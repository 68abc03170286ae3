"""Export a torch scoring module to ONNX and TorchScript, and prove the exports rank like torch.

The module is called positionally with the inputs in signature order and returns one score
tensor ``[batch, candidates]`` (or a tuple whose first item is it). A higher score ranks first.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from voicecart.export.signature import ModelSignature


class ExportMismatchError(RuntimeError):
    """An exported model does not rank like the torch model it came from."""


def _scores(out: object) -> torch.Tensor:
    if isinstance(out, (tuple, list)):
        out = out[0]
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"the model must return a score tensor, got {type(out).__name__}")
    return out


def torch_scores(module: torch.nn.Module, inputs: dict[str, np.ndarray]) -> np.ndarray:
    module.eval()
    with torch.no_grad():
        return _scores(module(*[torch.from_numpy(np.ascontiguousarray(a)) for a in inputs.values()])).numpy()


def signature_of(module: torch.nn.Module, example_inputs: dict[str, np.ndarray],
                 output_name: str = "scores") -> ModelSignature:
    scores = torch_scores(module, example_inputs)
    return ModelSignature.from_examples(example_inputs, {output_name: scores})


def export_onnx(module: torch.nn.Module, example_inputs: dict[str, np.ndarray], path: Path,
                signature: ModelSignature, opset: int = 17) -> Path:
    """Write ``path`` (ONNX) with dynamic batch and candidate dimensions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    module.eval()
    args = tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in example_inputs.values())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter warns that it is legacy
        torch.onnx.export(module, args, str(path), input_names=signature.input_names,
                          output_names=signature.output_names, dynamic_axes=signature.dynamic_axes(),
                          opset_version=opset, dynamo=False)
    return path


def export_torchscript(module: torch.nn.Module, example_inputs: dict[str, np.ndarray], path: Path) -> Path:
    """Write ``path`` (TorchScript, traced) — what TorchServe and libtorch load."""
    path.parent.mkdir(parents=True, exist_ok=True)
    module.eval()
    args = tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in example_inputs.values())
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(module, args, check_trace=False)
    traced.save(str(path))
    return path


def onnx_scores(path: Path, inputs: dict[str, np.ndarray]) -> np.ndarray:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return session.run(None, dict(inputs))[0]


def torchscript_scores(path: Path, inputs: dict[str, np.ndarray]) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated upstream but is what TorchServe loads
        module = torch.jit.load(str(path), map_location="cpu")
    return torch_scores(module, inputs)


def rankings(scores: np.ndarray) -> np.ndarray:
    """Candidate indices best first, per request (stable, so ties keep candidate order)."""
    return np.argsort(-scores, axis=-1, kind="stable")


def same_ranking(reference: np.ndarray, other: np.ndarray, atol: float = 1e-5) -> bool:
    """True when ``other`` orders every request's candidates as ``reference`` does.

    Positions where the two orders differ count as equal only if the reference scores of the
    swapped candidates are tied within ``atol`` (a tie may break either way after export).
    """
    ref_order, other_order = rankings(reference), rankings(other)
    if np.array_equal(ref_order, other_order):
        return True
    ref_sorted = np.take_along_axis(reference, ref_order, axis=-1)
    ref_of_other = np.take_along_axis(reference, other_order, axis=-1)
    return bool(np.all(np.abs(ref_sorted - ref_of_other) <= atol))


@dataclass(frozen=True)
class Agreement:
    fmt: str
    max_abs_diff: float
    same_ranking: bool


def check_agreement(module: torch.nn.Module, inputs: dict[str, np.ndarray], *, onnx_path: Path | None = None,
                    torchscript_path: Path | None = None, atol: float = 1e-4) -> list[Agreement]:
    """Score ``inputs`` with torch and each export; raise :class:`ExportMismatchError` on disagreement."""
    reference = torch_scores(module, inputs)
    results = []
    for fmt, path, score in (("onnx", onnx_path, onnx_scores), ("torchscript", torchscript_path, torchscript_scores)):
        if path is None:
            continue
        got = score(path, inputs)
        if got.shape != reference.shape:
            raise ExportMismatchError(f"{fmt} export {path} returns shape {got.shape}, torch {reference.shape}")
        diff = float(np.max(np.abs(got - reference))) if reference.size else 0.0
        agree = Agreement(fmt, diff, same_ranking(reference, got, atol))
        if not agree.same_ranking or diff > atol:
            raise ExportMismatchError(
                f"{fmt} export {path} disagrees with torch: max |score diff| {diff:.2e} "
                f"(tolerance {atol:.0e}), same ranking: {agree.same_ranking}")
        results.append(agree)
    return results
