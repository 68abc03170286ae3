"""Write a complete model bundle: weights, ONNX, TorchScript, Triton repository, TorchServe .mar.

One folder, the unit the registry versions and serving loads (layout in :mod:`voicecart.export.layout`).
Every export is checked against torch before the bundle counts as written.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from voicecart.export import layout
from voicecart.export.layout import sha256
from voicecart.export.formats import check_agreement, export_onnx, export_torchscript, onnx_scores, signature_of
from voicecart.export.torchserve import write_kserve_layout
from voicecart.export.triton import write_model_repository
from voicecart.schemas import ModelMetadata


def write_checksums(root: Path) -> Path:
    """``files.json``: sha256 of every file of the bundle except metadata and itself."""
    files = {p.relative_to(root).as_posix(): sha256(p) for p in sorted(root.rglob("*"))
             if p.is_file() and p.name not in (layout.CHECKSUMS, layout.METADATA)}
    path = root / layout.CHECKSUMS
    path.write_text(json.dumps(files, indent=2, sort_keys=True))
    return path


def build_bundle(module: torch.nn.Module, example_inputs: dict[str, np.ndarray], out: Path,
                 metadata: ModelMetadata, *, save_weights: Callable[[Path], object] | None = None,
                 mar: bool = True, atol: float = 1e-4,
                 held_out: list[dict[str, np.ndarray]] | None = None) -> Path:
    """Export ``module`` into the bundle folder ``out`` and write its metadata last.

    ``save_weights(dir)`` writes the torch weights the way the model's own ``save`` does
    (default: ``state_dict`` to ``model/weights.pt``). ``held_out`` requests are scored by torch
    and by both exports, one by one, before anything else is written. Raises
    :class:`~voicecart.export.formats.ExportMismatchError` when an export disagrees with torch.
    """
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    weights_dir = out / layout.WEIGHTS_DIR
    weights_dir.mkdir()
    if save_weights is not None:
        save_weights(weights_dir)
    else:
        torch.save(module.state_dict(), weights_dir / "weights.pt")

    signature = signature_of(module, example_inputs)
    signature.save(out / layout.SIGNATURE)
    onnx_path = export_onnx(module, example_inputs, out / layout.ONNX, signature)
    ts_path = export_torchscript(module, example_inputs, out / layout.TORCHSCRIPT)
    worst: dict[str, float] = {}
    for request in [example_inputs, *(held_out or [])]:
        for a in check_agreement(module, request, onnx_path=onnx_path, torchscript_path=ts_path, atol=atol):
            worst[a.fmt] = max(worst.get(a.fmt, 0.0), a.max_abs_diff)

    name = metadata.name
    for flavour in ("cpu", "gpu"):
        write_model_repository(onnx_path, signature, out / layout.TRITON_DIR / flavour, name, flavour)  # type: ignore[arg-type]
    if mar:
        write_kserve_layout(ts_path, signature, out / layout.TORCHSERVE_DIR, name)

    extra = dict(metadata.extra)
    extra.update({f"export_max_abs_diff_{fmt}": diff for fmt, diff in worst.items()})
    metadata = metadata.model_copy(update={"extra": extra})
    write_checksums(out)
    (out / layout.METADATA).write_text(metadata.model_dump_json(indent=2))
    return out


def onnx_latency_ms(onnx_path: Path, inputs: dict[str, np.ndarray], repeats: int = 200) -> dict[str, float]:
    """p50/p99 latency (ms) of one ONNX Runtime call on ``inputs`` (one session, one thread)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    feeds = dict(inputs)
    for _ in range(10):
        session.run(None, feeds)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        session.run(None, feeds)
        times.append((time.perf_counter() - t0) * 1000)
    return {"p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99))}


__all__ = ["build_bundle", "onnx_latency_ms", "onnx_scores", "sha256", "write_checksums"]
