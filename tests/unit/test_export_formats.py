"""ONNX and TorchScript exports rank candidates exactly as the torch model does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from voicecart.export import (
    ExportMismatchError,
    ModelSignature,
    check_agreement,
    export_onnx,
    export_torchscript,
    onnx_scores,
    rankings,
    render_config,
    same_ranking,
    torch_scores,
    torchscript_scores,
)
from voicecart.export.formats import signature_of


class Scorer(torch.nn.Module):
    """A small real candidate scorer: features [B, C, F] and a candidate mask [B, C] -> scores [B, C]."""

    def __init__(self, n_features: int = 6) -> None:
        super().__init__()
        self.mlp = torch.nn.Sequential(torch.nn.Linear(n_features, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        scores = self.mlp(features).squeeze(-1)
        return torch.where(mask, scores, torch.full_like(scores, -1e9))


def _inputs(batch: int, candidates: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    mask = np.ones((batch, candidates), dtype=bool)
    mask[:, -1] = False
    return {"features": rng.random((batch, candidates, 6), dtype=np.float32), "mask": mask}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Scorer, Path, Path]:
    torch.manual_seed(0)
    model = Scorer()
    example = _inputs(2, 5)
    out = tmp_path_factory.mktemp("export")
    sig = signature_of(model, example)
    return model, export_onnx(model, example, out / "m.onnx", sig), export_torchscript(model, example, out / "m.pt")


@pytest.mark.parametrize("batch,candidates", [(1, 3), (4, 17), (32, 100)])
def test_onnx_and_torchscript_rank_held_out_requests_like_torch(exported, batch: int, candidates: int) -> None:
    model, onnx_path, ts_path = exported
    held_out = _inputs(batch, candidates, seed=batch * 1000 + candidates)
    reference = torch_scores(model, held_out)
    for got in (onnx_scores(onnx_path, held_out), torchscript_scores(ts_path, held_out)):
        assert np.array_equal(rankings(got), rankings(reference))
        np.testing.assert_allclose(got, reference, atol=1e-5)


def test_check_agreement_refuses_an_export_of_another_model(exported, tmp_path: Path) -> None:
    model, _, _ = exported
    torch.manual_seed(1)
    other = Scorer()
    example = _inputs(2, 5)
    wrong = export_onnx(other, example, tmp_path / "other.onnx", signature_of(other, example))
    with pytest.raises(ExportMismatchError, match="onnx export .* disagrees with torch"):
        check_agreement(model, _inputs(8, 20, seed=3), onnx_path=wrong)


def test_same_ranking_tolerates_only_ties() -> None:
    ref = np.array([[0.5, 0.5, 0.1]], dtype=np.float32)
    assert same_ranking(ref, np.array([[0.5, 0.50001, 0.1]], dtype=np.float32))
    assert not same_ranking(ref, np.array([[0.5, 0.6, 0.9]], dtype=np.float32))


def test_signature_has_dynamic_batch_and_candidate_dims(exported) -> None:
    model, _, _ = exported
    sig = signature_of(model, _inputs(2, 5))
    assert [(t.name, t.dtype, t.shape) for t in sig.inputs] == [("features", "float32", [-1, -1, 6]),
                                                                 ("mask", "bool", [-1, -1])]
    assert [(t.name, t.shape) for t in sig.outputs] == [("scores", [-1, -1])]
    assert sig.dynamic_axes()["features"] == {0: "batch", 1: "candidates"}


def test_triton_cpu_and_gpu_configs_come_from_one_template(exported) -> None:
    model, _, _ = exported
    sig: ModelSignature = signature_of(model, _inputs(2, 5))
    cpu, gpu = render_config(sig, "voicecart", "cpu"), render_config(sig, "voicecart", "gpu")
    assert "kind: KIND_CPU" in cpu and "kind: KIND_GPU" in gpu
    for text in (cpu, gpu):
        assert 'backend: "onnxruntime"' in text and "dynamic_batching {" in text
        assert 'name: "features"' in text and "dims: [ -1, 6 ]" in text and "data_type: TYPE_BOOL" in text
        assert text.count("{") == text.count("}")
    # the flavours differ only in the instance kind and the GPU optimization block
    assert cpu.replace("KIND_CPU", "KIND_GPU") == gpu.replace("optimization {\n  cuda { graphs: false }\n}\n", "")
    with pytest.raises(ValueError, match="unknown Triton flavour"):
        render_config(sig, "voicecart", "tpu")  # type: ignore[arg-type]


class BranchOnInput(torch.nn.Module):
    """Data-dependent control flow: tracing freezes one branch, so the exports disagree with torch."""

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if float(features.mean()) > 0.5:
            return features.sum(-1)
        return -features.sum(-1)


def test_bundle_is_not_written_when_an_export_disagrees_with_torch(tmp_path: Path) -> None:
    from datetime import datetime, timezone

    from voicecart.export import build_bundle
    from voicecart.registry import BundleError, Registry
    from voicecart.schemas import ModelMetadata

    model = BranchOnInput()
    high = {"features": np.full((1, 4, 3), 0.9, dtype=np.float32)}
    low = {"features": np.random.default_rng(0).random((1, 6, 3), dtype=np.float32) * 0.2}
    sig = signature_of(model, high)
    onnx_path = export_onnx(model, high, tmp_path / "m.onnx", sig)
    ts_path = export_torchscript(model, high, tmp_path / "m.pt")
    check_agreement(model, high, onnx_path=onnx_path, torchscript_path=ts_path)  # same branch: agree
    with pytest.raises(ExportMismatchError, match="disagrees with torch"):
        check_agreement(model, low, onnx_path=onnx_path, torchscript_path=ts_path)
    # build_bundle checks the held-out requests it is given before it writes metadata.json
    meta = ModelMetadata(name="voicecart", version="draft", created_at=datetime.now(timezone.utc),
                         feature_schema_hash="x")
    with pytest.raises(ExportMismatchError):
        build_bundle(model, high, tmp_path / "bundle", meta, mar=False, held_out=[low])
    assert not (tmp_path / "bundle" / "metadata.json").exists()
    with pytest.raises(BundleError, match="metadata.json is missing"):
        Registry(tmp_path / "reg").publish(tmp_path / "bundle")
