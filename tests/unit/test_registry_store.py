"""Registry: versions, champion pointer, rollback, corrupt and incompatible bundles, fsspec URIs."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
import torch

from voicecart.export import build_bundle
from voicecart.registry import (
    BundleError,
    IncompatibleBundleError,
    Registry,
    RegistryError,
    feature_schema_hash,
    load_bundle,
)
from voicecart.schemas import ModelMetadata

SCHEMA = feature_schema_hash(["count", "recency", "share"])


class Linear(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Linear(3, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.w(features).squeeze(-1)


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    example = {"features": np.random.default_rng(0).random((2, 4, 3), dtype=np.float32)}
    meta = ModelMetadata(name="voicecart", version="draft", created_at=datetime.now(timezone.utc),
                         metrics={"hr@1": 0.3}, feature_names=["count", "recency", "share"],
                         feature_schema_hash=SCHEMA, git_commit="abc")
    return build_bundle(Linear(), example, tmp_path_factory.mktemp("b") / "bundle", meta, mar=False)


def _uris(tmp_path: Path) -> list[str]:
    return [str(tmp_path / "reg"), f"file://{tmp_path}/reg2", f"memory://reg-{uuid.uuid4().hex}"]


@pytest.mark.parametrize("kind", [0, 1, 2], ids=["folder", "file-uri", "memory-uri"])
def test_publish_promote_rollback_on_every_backend(bundle_dir: Path, tmp_path: Path, kind: int) -> None:
    uri = _uris(tmp_path)[kind]
    reg = Registry(uri)
    assert reg.versions() == [] and reg.champion() is None
    v1 = reg.publish(bundle_dir)
    reg.promote(v1, "first model beat the baseline")
    v2 = reg.publish(bundle_dir)
    assert (v1, v2) == ("v0001", "v0002")
    assert reg.metadata(v2).parent_version == v1          # parent = champion at publish time
    reg.promote(v2, "won by 0.02")
    assert reg.champion() == v2
    assert [i.version for i in reg.list() if i.champion] == [v2]
    assert reg.rollback("canary errors").version == v1
    pointer = reg.pointer()
    assert [(e.version, e.action) for e in pointer.history] == [(v1, "promote"), (v2, "promote"), (v1, "rollback")]
    bundle = load_bundle(uri)                              # a registry root resolves to its champion
    assert bundle.version == v1 and bundle.onnx.exists() and bundle.torchscript.exists()
    assert (bundle.triton_repository("cpu") / "voicecart" / "config.pbtxt").exists()
    assert bundle.metadata.metrics == {"hr@1": 0.3}
    assert load_bundle(uri, version=v2).version == v2


def test_rollback_without_earlier_champion_is_refused(bundle_dir: Path, tmp_path: Path) -> None:
    reg = Registry(tmp_path / "reg")
    with pytest.raises(RegistryError, match="no champion to roll back"):
        reg.rollback()
    reg.promote(reg.publish(bundle_dir), "first")
    with pytest.raises(RegistryError, match="no earlier champion"):
        reg.rollback()


def test_unknown_version_names_the_known_ones(bundle_dir: Path, tmp_path: Path) -> None:
    reg = Registry(tmp_path / "reg")
    reg.publish(bundle_dir)
    with pytest.raises(RegistryError, match=r"no version 'v0042'.*known: v0001"):
        reg.promote("v0042", "typo")


def test_corrupt_bundle_is_refused_naming_the_file(bundle_dir: Path, tmp_path: Path) -> None:
    reg = Registry(tmp_path / "reg")
    v = reg.publish(bundle_dir)
    onnx = tmp_path / "reg" / "voicecart" / "versions" / v / "onnx" / "model.onnx"
    onnx.write_bytes(onnx.read_bytes()[:-10])
    with pytest.raises(BundleError, match="onnx/model.onnx does not match its checksum"):
        load_bundle(tmp_path / "reg", version=v)
    with pytest.raises(BundleError, match="checksum"):
        reg.promote(v, "must not become champion")
    assert reg.champion() is None


def test_metadata_that_is_not_model_metadata_is_refused(bundle_dir: Path, tmp_path: Path) -> None:
    reg = Registry(tmp_path / "reg")
    v = reg.publish(bundle_dir)
    meta = tmp_path / "reg" / "voicecart" / "versions" / v / "metadata.json"
    meta.write_text(json.dumps({"name": "voicecart"}))
    with pytest.raises(BundleError, match="not valid model metadata"):
        load_bundle(meta.parent)


def test_schema_hash_mismatch_is_incompatible(bundle_dir: Path, tmp_path: Path) -> None:
    reg = Registry(tmp_path / "reg")
    reg.promote(reg.publish(bundle_dir), "first")
    other = feature_schema_hash(["count", "recency", "share", "embedding_0"])
    with pytest.raises(IncompatibleBundleError, match="feature schema"):
        load_bundle(tmp_path / "reg", expected_feature_schema_hash=other)
    assert load_bundle(tmp_path / "reg", expected_feature_schema_hash=SCHEMA).version == "v0001"


def test_incomplete_upload_is_not_a_version(bundle_dir: Path, tmp_path: Path) -> None:
    reg = Registry(tmp_path / "reg")
    half = tmp_path / "reg" / "voicecart" / "versions" / "v0001"
    half.mkdir(parents=True)
    (half / "files.json").write_text("{}")
    assert reg.versions() == []
    assert reg.publish(bundle_dir) == "v0002"             # never reuses the half-written number


def test_run_records_keep_failed_runs(tmp_path: Path) -> None:
    reg = Registry(f"memory://runs-{uuid.uuid4().hex}")
    reg.record_run("r1", {"status": "failed", "step": "export", "error": "onnx disagrees"})
    reg.record_run("r2", {"status": "succeeded", "decision": "promote"})
    assert [r["status"] for r in reg.runs()] == ["failed", "succeeded"]


def test_load_bundle_of_nothing_says_what_it_expected(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="neither a model bundle"):
        load_bundle(tmp_path)


def test_feature_schema_hash_depends_on_order_and_names() -> None:
    assert feature_schema_hash(["a", "b"]) == feature_schema_hash(["a", "b"])
    assert feature_schema_hash(["a", "b"]) != feature_schema_hash(["b", "a"])


def test_a_canary_is_requested_beside_the_champion_and_ends_promoted_or_rolled_back(bundle_dir: Path, tmp_path: Path) -> None:
    reg = Registry(tmp_path / "reg")
    first = reg.start_canary(reg.publish(bundle_dir), 10, "gate passed")
    assert first.state == "promoted" and reg.champion() == "v0001" and reg.canary() is None  # nothing to split with
    pointer = reg.start_canary(reg.publish(bundle_dir), 10, "gate passed")
    assert (pointer.version, pointer.stable, pointer.percent, pointer.state) == ("v0002", "v0001", 10, "requested")
    assert reg.champion() == "v0001" and reg.canary() == pointer  # the champion keeps serving the rest
    assert reg.mark_canary_running().state == "running" and reg.canary().state == "running"
    reg.end_canary(False, "kept rate worse")
    assert reg.champion() == "v0001" and reg.canary() is None
    assert (reg.pointer().history[-1].version, reg.pointer().history[-1].action) == ("v0002", "canary_rollback")
    reg.start_canary(reg.publish(bundle_dir), 25, "gate passed")
    reg.end_canary(True, "not worse on every outcome")
    assert reg.champion() == "v0003" and reg.canary() is None
    with pytest.raises(RegistryError, match="no canary to end"):
        reg.end_canary(True, "again")


def test_a_corrupt_bundle_is_never_requested_as_a_canary(bundle_dir: Path, tmp_path: Path) -> None:
    reg = Registry(tmp_path / "reg")
    reg.promote(reg.publish(bundle_dir), "first")
    v2 = reg.publish(bundle_dir)
    (tmp_path / "reg" / "voicecart" / "versions" / v2 / "onnx" / "model.onnx").write_bytes(b"broken")
    with pytest.raises(BundleError):
        reg.start_canary(v2, 10, "gate passed")
    assert reg.canary() is None and reg.champion() == "v0001"
